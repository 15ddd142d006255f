#include "nn/layers.h"

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "nn/init.h"

namespace vc::nn {

// ---------------------------------------------------------------- Linear

Linear::Linear(int64_t in, int64_t out, bool has_bias)
    : Module("Linear"), in_features(in), out_features(out) {
  VC_CHECK(in > 0 && out > 0, "Linear: sizes ", in, " -> ", out, " must be positive");
  weight = register_parameter("weight", Tensor::zeros({out, in}));
  if (has_bias) bias = register_parameter("bias", Tensor::zeros({out}));
}

void Linear::reset_own_parameters(Generator& gen) {
  double bound = 1.0 / std::sqrt(double(in_features));
  init::uniform_(weight, gen, -bound, bound);  // = kaiming_uniform(a = sqrt(5))
  if (bias.defined()) init::uniform_(bias, gen, -bound, bound);
}

Tensor Linear::forward(const Tensor& x) const {
  VC_CHECK(x.dim() >= 1 && x.size(-1) == in_features, "Linear: input ", x.shape(),
           " does not end in ", in_features);
  Tensor x2 = x.dim() == 1 ? x.unsqueeze(0) : x;
  Tensor y = matmul(x2, weight.transpose(0, 1));
  if (bias.defined()) y = add(y, bias);
  return x.dim() == 1 ? y.squeeze(0) : y;
}

// ---------------------------------------------------------------- LayerNorm

LayerNorm::LayerNorm(int64_t dim, double eps_) : Module("LayerNorm"), eps(eps_) {
  weight = register_parameter("weight", Tensor::ones({dim}));
  bias = register_parameter("bias", Tensor::zeros({dim}));
}

void LayerNorm::reset_own_parameters(Generator&) {
  init::ones_(weight);
  init::zeros_(bias);
}

Tensor LayerNorm::forward(const Tensor& x) const {
  VC_CHECK(x.dim() >= 1 && x.size(-1) == weight.size(0), "LayerNorm: input ", x.shape(),
           " does not end in ", weight.size(0));
  return layer_norm(x, weight, bias, eps);
}

// ---------------------------------------------------------------- Embedding

Embedding::Embedding(int64_t num, int64_t dim) : Module("Embedding") {
  weight = register_parameter("weight", Tensor::zeros({num, dim}));
}

void Embedding::reset_own_parameters(Generator& gen) { init::normal_(weight, gen, 0, 1); }

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight, ids); }

// ---------------------------------------------------------------- Dropout, DropPath

static Generator& generator_for(const Module& m, const char* what) {
  VC_CHECK(m.generator() != nullptr, what,
           ": training with p > 0 needs a generator; call set_generator() on the model");
  return *m.generator();
}

Dropout::Dropout(double p_) : Module("Dropout"), p(p_) {
  VC_CHECK(p >= 0 && p < 1, "Dropout: p = ", p, " outside [0, 1)");
}

Tensor Dropout::forward(const Tensor& x) const {
  if (!is_training() || p == 0) return x;
  Generator& gen = generator_for(*this, "Dropout");
  return dropout(x, p, true, gen.seed, gen.stream());
}

DropPath::DropPath(double p_) : Module("DropPath"), p(p_) {
  VC_CHECK(p >= 0 && p < 1, "DropPath: p = ", p, " outside [0, 1)");
}

Tensor DropPath::forward(const Tensor& x) const {
  if (!is_training() || p == 0) return x;
  VC_CHECK(x.dim() >= 1, "DropPath: input must have a batch dim, got ", x.shape());
  Generator& gen = generator_for(*this, "DropPath");
  Shape s(x.dim(), 1);
  s[0] = x.size(0);
  Tensor u = rand_uniform(s, gen.seed, gen.stream(), 0, 1, x.dtype(), x.device());
  Tensor keep = ge(u, Tensor::scalar(p, x.dtype(), x.device()));  // P(keep) = 1 - p
  return mul(x, mul(keep, 1.0 / (1.0 - p)));
}

// ---------------------------------------------------------------- PatchEmbed

PatchEmbed::PatchEmbed(int64_t c, int64_t d, int64_t p, bool has_bias)
    : Module("PatchEmbed"), in_channels(c), dim(d), patch(p) {
  VC_CHECK(c > 0 && d > 0 && p > 0, "PatchEmbed: channels ", c, ", dim ", d, ", patch ", p,
           " must be positive");
  weight = register_parameter("weight", Tensor::zeros({d, c, p, p}));
  if (has_bias) bias = register_parameter("bias", Tensor::zeros({d}));
}

namespace {
// PyTorch's Conv2d default: weight and bias uniform in ±1/sqrt(fan_in).
void init_conv(Tensor& weight, Tensor& bias, int64_t fan_in, Generator& gen) {
  double bound = 1.0 / std::sqrt(double(fan_in));
  init::uniform_(weight, gen, -bound, bound);
  if (bias.defined()) init::uniform_(bias, gen, -bound, bound);
}
}  // namespace

void PatchEmbed::reset_own_parameters(Generator& gen) {
  init_conv(weight, bias, in_channels * patch * patch, gen);
}

Tensor PatchEmbed::forward(const Tensor& images) const {
  VC_CHECK(images.dim() == 4 && images.size(1) == in_channels && images.size(2) % patch == 0 &&
               images.size(3) % patch == 0,
           "PatchEmbed: images ", images.shape(), " are not [B, ", in_channels,
           ", H, W] with H and W multiples of ", patch);
  int64_t B = images.size(0), gh = images.size(2) / patch, gw = images.size(3) / patch;
  int64_t k = in_channels * patch * patch;
  // [B, C, gh, P, gw, P] -> [B, gh, gw, C, P, P]: one row per patch, in conv-kernel order.
  Tensor patches = images.reshape({B, in_channels, gh, patch, gw, patch})
                       .permute({0, 2, 4, 1, 3, 5})
                       .reshape({B, gh * gw, k});
  Tensor y = matmul(patches, weight.reshape({dim, k}).transpose(0, 1));
  return bias.defined() ? add(y, bias) : y;
}

// ---------------------------------------------------------------- Conv2d

Conv2d::Conv2d(int64_t c, int64_t o, int64_t k, int64_t s, int64_t p, bool has_bias)
    : Module("Conv2d"), in_channels(c), out_channels(o), kernel(k), stride(s), padding(p) {
  VC_CHECK(c > 0 && o > 0 && k > 0 && s > 0 && p >= 0, "Conv2d: channels ", c, " -> ", o,
           ", kernel ", k, ", stride ", s, ", padding ", p, " must be positive (padding >= 0)");
  weight = register_parameter("weight", Tensor::zeros({o, c, k, k}));
  if (has_bias) bias = register_parameter("bias", Tensor::zeros({o}));
}

void Conv2d::reset_own_parameters(Generator& gen) {
  init_conv(weight, bias, in_channels * kernel * kernel, gen);
}

Tensor Conv2d::forward(const Tensor& images) const {
  VC_CHECK(images.dim() == 4 && images.size(1) == in_channels, "Conv2d: images ", images.shape(),
           " are not [B, ", in_channels, ", H, W]");
  return conv2d(images, weight, bias, stride, padding);
}

// ---------------------------------------------------------------- MLP

Tensor activate(Activation a, const Tensor& x) {
  return a == Activation::QuickGELU ? quick_gelu(x) : gelu(x);
}

const char* activation_name(Activation a) {
  return a == Activation::QuickGELU ? "quick_gelu" : "gelu";
}

MLP::MLP(int64_t dim, int64_t hidden, Activation act) : Module("MLP"), activation(act) {
  c_fc = register_module("c_fc", std::make_shared<Linear>(dim, hidden));
  c_proj = register_module("c_proj", std::make_shared<Linear>(hidden, dim));
}

Tensor MLP::forward(const Tensor& x) const {
  return c_proj->forward(activate(activation, c_fc->forward(x)));
}

}  // namespace vc::nn
