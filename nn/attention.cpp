#include "nn/attention.h"

#include <cmath>

#include "engine/engine.h"

namespace vc::nn {

AttentionResult attention_core(const Tensor& q, const Tensor& k, const Tensor& v,
                               const AttentionOptions& opts) {
  return attention_ex(q, k, v, opts);
}

Tensor padding_key_bias(const Tensor& key_padding_mask, DType dtype) {
  VC_CHECK(key_padding_mask.dim() == 2, "padding_key_bias: mask ", key_padding_mask.shape(),
           " is not [B, Lk]");
  NoGradGuard no_grad;
  Tensor m = key_padding_mask.to(dtype);
  return masked_fill(Tensor::zeros(m.shape(), dtype), ne(m, Tensor::scalar(0, dtype)), -INFINITY);
}

}  // namespace vc::nn
