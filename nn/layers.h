// The basic layers. Parameter names are PyTorch's (weight, bias), so a layer registered
// under CLIP's child name ("c_fc", "ln_1", "conv1", ...) gets CLIP's state-dict key.
// Activations are batch-first: [B, L, D].
#pragma once
#include <memory>
#include <string>

#include "nn/module.h"

namespace vc::nn {

// y = x W^T + b, W [out, in]. Default init (reset_parameters): PyTorch's, U(+-1/sqrt(in))
// for weight and bias.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) const;
  int64_t in_features, out_features;
  Tensor weight, bias;  // bias undefined when off

 protected:
  void reset_own_parameters(Generator& gen) override;
};

// Over the last dim; weight ones, bias zeros; eps 1e-5 as in CLIP.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;
  double eps;
  Tensor weight, bias;

 protected:
  void reset_own_parameters(Generator& gen) override;
};

// Rows of weight [num, dim] at int64 ids of any shape. Default init N(0, 1) (PyTorch);
// CLIP's token embedding uses std 0.02 (init::kClipTokenEmbeddingStd).
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim);
  Tensor forward(const Tensor& ids) const;
  Tensor weight;

 protected:
  void reset_own_parameters(Generator& gen) override;
};

// Zeroes elements with probability p in training (scaling the rest by 1/(1-p)); identity
// in eval. Each training call draws a fresh stream from the module's generator.
class Dropout : public Module {
 public:
  explicit Dropout(double p);
  Tensor forward(const Tensor& x) const;
  double p;
};

// Stochastic depth: drops the whole residual branch of a sample with probability p
// (scaling kept samples by 1/(1-p)); identity in eval. x is [B, ...].
class DropPath : public Module {
 public:
  explicit DropPath(double p);
  Tensor forward(const Tensor& x) const;
  double p;
};

// Patchify with kernel = stride = patch: [B, C, H, W] -> [B, (H/P)(W/P), D] by
// reshape/permute and one matmul against weight [D, C, P, P] (CLIP's conv1, no bias).
// Patches are in row-major grid order, each flattened as (c, i, j) like a conv kernel.
class PatchEmbed : public Module {
 public:
  PatchEmbed(int64_t in_channels, int64_t dim, int64_t patch, bool bias = false);
  Tensor forward(const Tensor& images) const;
  int64_t in_channels, dim, patch;
  Tensor weight, bias;

 protected:
  void reset_own_parameters(Generator& gen) override;
};

// A 2-D convolution ([B, C, H, W] -> [B, out, H', W'], PyTorch's weight layout [out, C, k, k])
// on the engine's conv2d op: a direct kernel, meant for small stems, not deep CNNs.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
         bool bias = true);
  Tensor forward(const Tensor& images) const;
  int64_t in_channels, out_channels, kernel, stride, padding;
  Tensor weight, bias;

 protected:
  void reset_own_parameters(Generator& gen) override;
};

enum class Activation { QuickGELU, GELU };
Tensor activate(Activation a, const Tensor& x);
const char* activation_name(Activation a);

// CLIP's MLP: c_fc -> activation -> c_proj. The activation is always named by the caller:
// OpenAI weights need QuickGELU, open_clip's plain ViTs use GELU.
class MLP : public Module {
 public:
  MLP(int64_t dim, int64_t hidden, Activation activation);
  Tensor forward(const Tensor& x) const;
  Activation activation;
  std::shared_ptr<Linear> c_fc, c_proj;
};

}  // namespace vc::nn
