// CLIP (Radford et al., 2021): a vision transformer and a text transformer whose projected
// features meet in one embedding space, compared by cosine similarity times a learned
// temperature. State-dict names are OpenAI's, so `visual.*`, `transformer.*`,
// `token_embedding.weight`, ... load from their checkpoints (converted to safetensors)
// without renaming; models/clip/weights.h maps Hugging Face names in.
//
// Video models use the towers frame-wise: the vision tower takes [B*T, 3, H, W] and exposes
// its steps (embed -> transformer -> head) so a model can insert temporal modules between.
#pragma once
#include <memory>

#include "models/clip/weights.h"
#include "nn/layers.h"
#include "nn/transformer.h"

namespace vc::clip {

nn::Activation activation_of(const ClipConfig& c);

class VisionTransformer : public nn::Module {
 public:
  VisionTransformer(int64_t image_size, int64_t patch, int64_t width, int64_t layers,
                    int64_t heads, int64_t embed_dim, nn::Activation act, int64_t stem = 0);
  // images [N, 3, H, W] -> features [N, embed_dim] (unnormalised).
  Tensor forward(const Tensor& images) const;
  // Patch tokens [N, grid^2, width]: conv1 over the pixels, or over the stem's output.
  Tensor patches(const Tensor& images) const;
  // Patch tokens with the class token first, positional embedding added, ln_pre applied:
  // [N, 1 + grid^2, width].
  Tensor embed(const Tensor& images) const;
  // ln_post of the class token, then the projection: [N, L, width] -> [N, embed_dim].
  Tensor head(const Tensor& tokens) const;

  int64_t image_size, patch, width;
  nn::Activation activation;
  std::shared_ptr<nn::Conv2d> stem;  // null unless ClipConfig::vision_stem > 0
  std::shared_ptr<nn::PatchEmbed> conv1;
  Tensor class_embedding, positional_embedding, proj;
  std::shared_ptr<nn::LayerNorm> ln_pre, ln_post;
  std::shared_ptr<nn::Transformer> transformer;

 protected:
  void reset_own_parameters(Generator& gen) override;
};

class CLIP : public nn::Module {
 public:
  explicit CLIP(const ClipConfig& config);

  // [N, 3, H, W] -> [N, embed_dim] (unnormalised).
  Tensor encode_image(const Tensor& images) const;
  // int64 token ids [N, L] -> [N, embed_dim] (unnormalised): the final layer-normed
  // feature at the end-of-text token, which has the highest id in the vocabulary (as in
  // OpenAI's argmax rule), then text_projection. L is the context length, or fewer when
  // trailing padding is cut off (same result: the mask is causal) — see trim_padding.
  // Rows must hold their end token.
  Tensor encode_text(const Tensor& tokens) const;
  // Cosine similarities times exp(logit_scale): [N_images, N_texts].
  Tensor logits(const Tensor& image_features, const Tensor& text_features) const;
  // exp(logit_scale), clamped at 100 as in CLIP's training.
  Tensor scale() const;

  ClipConfig config;
  std::shared_ptr<VisionTransformer> visual;
  std::shared_ptr<nn::Transformer> transformer;  // the text tower
  std::shared_ptr<nn::Embedding> token_embedding;
  Tensor positional_embedding, text_projection, logit_scale;
  std::shared_ptr<nn::LayerNorm> ln_final;

 protected:
  void reset_own_parameters(Generator& gen) override;
};

// Token ids [N, context] cut after the last column that holds a non-padding token (id 0
// is padding): encode_text gives the same features, faster for short captions.
Tensor trim_padding(const Tensor& tokens);

// CLIP's symmetric contrastive loss with repeated captions counted as positives. logits
// [B, B + extra]: image i against the batch's B captions, then `extra` caption-only negatives;
// group[i] names caption i's text (equal ids = the same string). Image->text row i puts
// target 1/n_i on every caption j with group[j] == group[i] (n_i of them, i itself included);
// text->image row i does the same over the B images. The loss is the mean of the two soft
// cross-entropies. With all groups distinct it is exactly CLIP's InfoNCE with targets arange(B).
// With duplicates whose features are equal (the same tokens through the same tower, as in
// pretrain-clip) it has InfoNCE's value and feature gradients too: InfoNCE's push of image i
// away from its twin caption is cancelled by the twin's own target. It differs only where
// equal captions can get different features.
Tensor multi_positive_clip_loss(const Tensor& logits, const std::vector<int64_t>& group);

// OpenAI's initialisation of a whole CLIP (initialize_parameters in model.py), seeded.
void init_clip(CLIP& model, Generator& gen);

}  // namespace vc::clip
