#include "models/clip/clip.h"

#include <cmath>

#include "engine/engine.h"
#include "nn/init.h"

namespace vc::clip {

nn::Activation activation_of(const ClipConfig& c) {
  return c.quick_gelu ? nn::Activation::QuickGELU : nn::Activation::GELU;
}

VisionTransformer::VisionTransformer(int64_t image_size_, int64_t patch_, int64_t width_,
                                     int64_t layers, int64_t heads, int64_t embed_dim,
                                     nn::Activation act, int64_t stem_channels)
    : Module("VisionTransformer"), image_size(image_size_), patch(patch_), width(width_), activation(act) {
  VC_CHECK(patch > 0 && image_size % patch == 0, "VisionTransformer: image size ", image_size,
           " is not a multiple of the patch size ", patch);
  int64_t tokens = (image_size / patch) * (image_size / patch) + 1;
  // Registered in OpenAI's order: conv1, class_embedding, positional_embedding, ln_pre,
  // transformer, ln_post, proj.
  // A stem (not in OpenAI's CLIP) comes first: a 3x3 convolution keeps the 32x32 grid and
  // gives every patch token local edges to start from (see ClipConfig::vision_stem).
  if (stem_channels > 0)
    stem = register_module("stem", std::make_shared<nn::Conv2d>(3, stem_channels, 3, 1, 1));
  conv1 = register_module("conv1", std::make_shared<nn::PatchEmbed>(stem ? stem_channels : 3, width, patch, false));
  class_embedding = register_parameter("class_embedding", Tensor::zeros({width}));
  positional_embedding = register_parameter("positional_embedding", Tensor::zeros({tokens, width}));
  ln_pre = register_module("ln_pre", std::make_shared<nn::LayerNorm>(width));
  transformer = register_module("transformer",
                                std::make_shared<nn::Transformer>(width, layers, heads, act));
  ln_post = register_module("ln_post", std::make_shared<nn::LayerNorm>(width));
  proj = register_parameter("proj", Tensor::zeros({width, embed_dim}));
}

void VisionTransformer::reset_own_parameters(Generator& gen) {
  double scale = 1.0 / std::sqrt(double(width));  // OpenAI: width ** -0.5 * randn
  nn::init::normal_(class_embedding, gen, 0, scale);
  nn::init::normal_(positional_embedding, gen, 0, scale);
  nn::init::normal_(proj, gen, 0, scale);
}

Tensor VisionTransformer::embed(const Tensor& images) const {
  VC_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == image_size &&
               images.size(3) == image_size,
           "VisionTransformer: expected images [N, 3, ", image_size, ", ", image_size, "], got ",
           images.shape());
  Tensor tokens = patches(images);  // [N, grid^2, width]
  int64_t n = tokens.size(0);
  Tensor cls = class_embedding.reshape({1, 1, width}).expand({n, 1, width});
  Tensor x = concat({cls, tokens}, 1);
  x = add(x, positional_embedding);
  return ln_pre->forward(x);
}

Tensor VisionTransformer::patches(const Tensor& images) const {
  return conv1->forward(stem ? nn::activate(activation, stem->forward(images)) : images);
}

Tensor VisionTransformer::head(const Tensor& tokens) const {
  Tensor cls = tokens.select(1, 0);  // [N, width]
  return matmul(ln_post->forward(cls), proj);
}

Tensor VisionTransformer::forward(const Tensor& images) const {
  return head(transformer->forward(embed(images)));
}

CLIP::CLIP(const ClipConfig& c) : Module("CLIP"), config(c) {
  nn::Activation act = activation_of(c);
  // OpenAI's state-dict order: positional_embedding, text_projection, logit_scale, visual,
  // transformer, token_embedding, ln_final.
  positional_embedding =
      register_parameter("positional_embedding", Tensor::zeros({c.context_length, c.text_width}));
  text_projection = register_parameter("text_projection", Tensor::zeros({c.text_width, c.embed_dim}));
  logit_scale = register_parameter("logit_scale", Tensor::scalar(std::log(1.0 / 0.07)));
  visual = register_module("visual", std::make_shared<VisionTransformer>(
                                         c.image_size, c.patch_size, c.vision_width,
                                         c.vision_layers, c.vision_heads, c.embed_dim, act,
                                         c.vision_stem));
  transformer = register_module(
      "transformer", std::make_shared<nn::Transformer>(c.text_width, c.text_layers, c.text_heads, act));
  token_embedding =
      register_module("token_embedding", std::make_shared<nn::Embedding>(c.vocab_size, c.text_width));
  ln_final = register_module("ln_final", std::make_shared<nn::LayerNorm>(c.text_width));
}

void CLIP::reset_own_parameters(Generator& gen) {
  nn::init::normal_(token_embedding->weight, gen, 0, nn::init::kClipTokenEmbeddingStd);
  nn::init::normal_(positional_embedding, gen, 0, nn::init::kClipPositionalEmbeddingStd);
  nn::init::normal_(text_projection, gen, 0, 1.0 / std::sqrt(double(config.text_width)));
  nn::init::constant_(logit_scale, std::log(1.0 / 0.07));
}

void init_clip(CLIP& model, Generator& gen) {
  model.reset_parameters(gen);  // layer defaults, then CLIP's own stds on top
  nn::init::clip_transformer_(*model.visual->transformer, gen);
  nn::init::clip_transformer_(*model.transformer, gen);
}

Tensor CLIP::encode_image(const Tensor& images) const { return visual->forward(images); }

Tensor CLIP::encode_text(const Tensor& tokens) const {
  VC_CHECK(tokens.dim() == 2 && tokens.dtype() == DType::I64 && tokens.size(1) >= 1 &&
               tokens.size(1) <= config.context_length,
           "CLIP.encode_text: expected int64 tokens [N, L] with L <= ", config.context_length,
           ", got ", dtype_name(tokens.dtype()), " ", tokens.shape());
  // Shorter rows are exact: under the causal mask position i never sees positions after
  // it, so dropping trailing padding changes no feature at or before the end token.
  const int64_t L = tokens.size(1);
  Tensor pos = L == config.context_length ? positional_embedding : positional_embedding.narrow(0, 0, L);
  Tensor x = add(token_embedding->forward(tokens), pos);
  nn::AttentionOptions causal;
  causal.mask = AttentionMask::causal();
  x = ln_final->forward(transformer->forward(x, causal));  // [N, L, W]
  // The end-of-text token has the highest id: pool there.
  Tensor eot = argmax(tokens.to(DType::F64), 1, /*keepdim=*/true);  // [N, 1]
  Tensor idx = eot.unsqueeze(2).expand({tokens.size(0), 1, config.text_width}).contiguous();
  Tensor pooled = gather(x, 1, idx).squeeze(1);  // [N, W]
  return matmul(pooled, text_projection);
}

Tensor trim_padding(const Tensor& tokens) {
  VC_CHECK(tokens.dim() == 2 && tokens.dtype() == DType::I64, "trim_padding: expected int64 [N, L], got ",
           dtype_name(tokens.dtype()), " ", tokens.shape());
  std::vector<int64_t> ids = tokens.to_vector<int64_t>();
  const int64_t n = tokens.size(0), L = tokens.size(1);
  int64_t used = 1;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = L - 1; j >= used; --j)
      if (ids[size_t(i * L + j)] != 0) {
        used = j + 1;
        break;
      }
  return used == L ? tokens : tokens.narrow(1, 0, used).contiguous();
}

Tensor multi_positive_clip_loss(const Tensor& logits, const std::vector<int64_t>& group) {
  const int64_t B = int64_t(group.size());
  VC_CHECK(logits.dim() == 2 && B >= 1 && logits.size(0) == B && logits.size(1) >= B,
           "multi_positive_clip_loss: expected logits [B, B + extra] with B = ", B, " captions, got ",
           logits.shape());
  const int64_t C = logits.size(1);
  std::vector<double> target(size_t(B * C), 0.0);
  for (int64_t i = 0; i < B; ++i) {
    int64_t n = 0;
    for (int64_t j = 0; j < B; ++j) n += group[size_t(j)] == group[size_t(i)];
    for (int64_t j = 0; j < B; ++j)
      if (group[size_t(j)] == group[size_t(i)]) target[size_t(i * C + j)] = 1.0 / double(n);
  }
  Tensor to_text = Tensor::from_vector(target, {B, C}).to(logits.dtype());
  // Equality is symmetric, so text->image row i has the same targets over the B images.
  Tensor to_image = to_text.narrow(1, 0, B).contiguous();
  Tensor image_to_text = cross_entropy(logits, to_text);
  Tensor text_to_image = cross_entropy(logits.narrow(1, 0, B).transpose(0, 1).contiguous(), to_image);
  return mul(add(image_to_text, text_to_image), 0.5);
}

Tensor CLIP::scale() const { return clamp(exp(logit_scale), 0.0, 100.0); }

Tensor CLIP::logits(const Tensor& image_features, const Tensor& text_features) const {
  Tensor a = l2_normalize(image_features, -1), b = l2_normalize(text_features, -1);
  return mul(matmul(a, b.transpose(0, 1)), scale());
}

}  // namespace vc::clip
