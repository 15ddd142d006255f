#include "nn/transformer.h"

#include <cmath>

#include "engine/engine.h"
#include "nn/init.h"

namespace vc::nn {

// ---------------------------------------------------------------- MultiheadAttention

MultiheadAttention::MultiheadAttention(int64_t dim_, int64_t heads_)
    : Module("MultiheadAttention"), dim(dim_), heads(heads_) {
  VC_CHECK(dim > 0 && heads > 0 && dim % heads == 0, "MultiheadAttention: dim ", dim,
           " is not a positive multiple of heads ", heads);
  in_proj_weight = register_parameter("in_proj_weight", Tensor::zeros({3 * dim, dim}));
  in_proj_bias = register_parameter("in_proj_bias", Tensor::zeros({3 * dim}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(dim, dim));
}

void MultiheadAttention::reset_own_parameters(Generator& gen) {
  // PyTorch's nn.MultiheadAttention: Xavier-uniform packed weight, zero biases.
  init::xavier_uniform_(in_proj_weight, gen);
  init::zeros_(in_proj_bias);
}

Tensor MultiheadAttention::split_heads(const Tensor& x) const {
  int64_t B = x.size(0), L = x.size(1);
  return x.reshape({B, L, heads, dim / heads}).permute({0, 2, 1, 3});
}

Tensor MultiheadAttention::merge_heads(const Tensor& x) const {
  int64_t B = x.size(0), L = x.size(2);
  return x.permute({0, 2, 1, 3}).reshape({B, L, dim});
}

Tensor MultiheadAttention::project(const Tensor& x, int64_t part) const {
  Tensor w = in_proj_weight.narrow(0, part * dim, dim), b = in_proj_bias.narrow(0, part * dim, dim);
  return split_heads(add(matmul(x, w.transpose(0, 1)), b));
}

Tensor MultiheadAttention::forward(const Tensor& x, const AttentionOptions& opts) const {
  VC_CHECK(x.dim() == 3 && x.size(2) == dim, "MultiheadAttention: input ", x.shape(),
           " is not [B, L, ", dim, "]");
  // One GEMM for the packed projection, then split into q, k, v.
  Tensor qkv = add(matmul(x, in_proj_weight.transpose(0, 1)), in_proj_bias);  // [B, L, 3D]
  Tensor q = split_heads(qkv.narrow(2, 0, dim));
  Tensor k = split_heads(qkv.narrow(2, dim, dim));
  Tensor v = split_heads(qkv.narrow(2, 2 * dim, dim));
  return out_proj->forward(merge_heads(attention_core(q, k, v, opts).out));
}

AttentionResult MultiheadAttention::forward(const Tensor& query, const Tensor& key,
                                            const Tensor& value, const AttentionOptions& opts) const {
  VC_CHECK(query.dim() == 3 && key.dim() == 3 && value.dim() == 3 && query.size(2) == dim &&
               key.size(2) == dim && value.size(2) == dim && key.size(1) == value.size(1) &&
               query.size(0) == key.size(0) && key.size(0) == value.size(0),
           "MultiheadAttention: query ", query.shape(), ", key ", key.shape(), ", value ",
           value.shape(), " are not [B, Lq, ", dim, "], [B, Lk, ", dim, "], [B, Lk, ", dim, "]");
  AttentionResult r = attention_core(project(query, 0), project(key, 1), project(value, 2), opts);
  r.out = out_proj->forward(merge_heads(r.out));
  return r;
}

std::pair<Tensor, Tensor> MultiheadAttention::project_kv(const Tensor& tokens) const {
  VC_CHECK(tokens.dim() == 3 && tokens.size(2) == dim, "MultiheadAttention: tokens ",
           tokens.shape(), " are not [B, N, ", dim, "]");
  return {project(tokens, 1), project(tokens, 2)};
}

// ---------------------------------------------------------------- ResidualAttentionBlock

ResidualAttentionBlock::ResidualAttentionBlock(int64_t dim, int64_t heads, Activation act,
                                               double drop_path_rate)
    : Module("ResidualAttentionBlock") {
  attn = register_module("attn", std::make_shared<MultiheadAttention>(dim, heads));
  ln_1 = register_module("ln_1", std::make_shared<LayerNorm>(dim));
  mlp = register_module("mlp", std::make_shared<MLP>(dim, 4 * dim, act));
  ln_2 = register_module("ln_2", std::make_shared<LayerNorm>(dim));
  drop_path = register_module("drop_path", std::make_shared<DropPath>(drop_path_rate));
}

Tensor ResidualAttentionBlock::forward(const Tensor& x, const AttentionOptions& opts) const {
  Tensor h = add(x, drop_path->forward(attn->forward(ln_1->forward(x), opts)));
  return add(h, drop_path->forward(mlp->forward(ln_2->forward(h))));
}

// ---------------------------------------------------------------- Transformer

Transformer::Transformer(int64_t width, int64_t layers, int64_t heads, Activation act,
                         double drop_path)
    : Module("Transformer"), width_(width) {
  VC_CHECK(layers >= 0, "Transformer: negative layer count ", layers);
  auto stack = register_module("resblocks", std::make_shared<Module>("ModuleList"));
  for (int64_t i = 0; i < layers; ++i)
    resblocks_.push_back(stack->register_module(
        std::to_string(i), std::make_shared<ResidualAttentionBlock>(width, heads, act, drop_path)));
}

ResidualAttentionBlock& Transformer::block(int64_t i) const {
  VC_CHECK(i >= 0 && i < layers(), "Transformer: block ", i, " of ", layers());
  return *resblocks_[i];
}

Tensor Transformer::forward(const Tensor& x, const AttentionOptions& opts) const {
  Tensor h = x;
  for (const auto& b : resblocks_) h = b->forward(h, opts);
  return h;
}

}  // namespace vc::nn
