// CLIP's transformer, with OpenAI's state-dict names:
//   MultiheadAttention      in_proj_weight [3D, D] (rows q, k, v), in_proj_bias [3D],
//                           out_proj.weight [D, D], out_proj.bias [D]
//   ResidualAttentionBlock  ln_1, attn, ln_2, mlp.c_fc, mlp.c_proj (pre-LN)
//   Transformer             resblocks.0 ... resblocks.{layers-1}
// Tensors are batch-first [B, L, D] (OpenAI's code is [L, B, D]; the names don't change).
#pragma once
#include <memory>
#include <vector>

#include "nn/attention.h"
#include "nn/layers.h"

namespace vc::nn {

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t dim, int64_t heads);
  // Self-attention of x [B, L, D].
  Tensor forward(const Tensor& x, const AttentionOptions& opts = {}) const;
  // query [B, Lq, D] against key and value [B, Lk, D].
  AttentionResult forward(const Tensor& query, const Tensor& key, const Tensor& value,
                          const AttentionOptions& opts = {}) const;
  // Tokens [B, N, D] projected to per-head keys and values [B, H, N, D/H], for
  // AttentionOptions::extra_k / extra_v (TC-CLIP's context tokens).
  std::pair<Tensor, Tensor> project_kv(const Tensor& tokens) const;
  int64_t dim, heads;
  Tensor in_proj_weight, in_proj_bias;
  std::shared_ptr<Linear> out_proj;

 protected:
  void reset_own_parameters(Generator& gen) override;

 private:
  Tensor project(const Tensor& x, int64_t part) const;  // rows part*D.. of the packed weight
  Tensor split_heads(const Tensor& x) const;  // [B, L, D] -> [B, H, L, D/H]
  Tensor merge_heads(const Tensor& x) const;  // [B, H, L, D/H] -> [B, L, D]
};

// x = x + drop_path(attn(ln_1(x)));  x = x + drop_path(mlp(ln_2(x)))
class ResidualAttentionBlock : public Module {
 public:
  ResidualAttentionBlock(int64_t dim, int64_t heads, Activation activation,
                         double drop_path = 0.0);
  Tensor forward(const Tensor& x, const AttentionOptions& opts = {}) const;
  // Registered in CLIP's order, so state_dict() lists keys as OpenAI's checkpoints do.
  std::shared_ptr<MultiheadAttention> attn;
  std::shared_ptr<LayerNorm> ln_1;
  std::shared_ptr<MLP> mlp;
  std::shared_ptr<LayerNorm> ln_2;
  std::shared_ptr<DropPath> drop_path;
};

class Transformer : public Module {
 public:
  // drop_path: the stochastic-depth rate of every block (0 = none, CLIP).
  Transformer(int64_t width, int64_t layers, int64_t heads, Activation activation,
              double drop_path = 0.0);
  Tensor forward(const Tensor& x, const AttentionOptions& opts = {}) const;
  int64_t width() const { return width_; }
  int64_t layers() const { return int64_t(resblocks_.size()); }
  ResidualAttentionBlock& block(int64_t i) const;

 private:
  int64_t width_;
  std::vector<std::shared_ptr<ResidualAttentionBlock>> resblocks_;
};

}  // namespace vc::nn
