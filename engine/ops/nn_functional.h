// The neural-network functions with kernels of their own: softmax, log_softmax, layernorm,
// cross-entropy, dropout; and L2-normalize, composed from primitives.
#pragma once
#include <cstdint>

#include "engine/core/tensor.h"

namespace vc {

Tensor softmax(const Tensor& x, int64_t axis = -1);
Tensor log_softmax(const Tensor& x, int64_t axis = -1);

// Normalises over the last dim; weight and bias [n] may be undefined. Saves mean and rstd
// (two-pass variance) for the backward.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

// x / max(||x||_2, eps) along axis.
Tensor l2_normalize(const Tensor& x, int64_t axis = -1, double eps = 1e-12);

struct CrossEntropyOptions {
  double label_smoothing = 0.0;   // target = (1 - eps) onehot + eps / C
  int64_t ignore_index = -100;    // hard labels only
  bool mean = true;               // mean over counted rows, else sum
};
// logits [N, C]; target int64 [N] (hard labels) or float [N, C] (soft targets, e.g. mixup).
Tensor cross_entropy(const Tensor& logits, const Tensor& target,
                     const CrossEntropyOptions& opt = {});

// Zeroes each element with probability p and scales the rest by 1 / (1 - p). The mask is
// drawn from Philox(seed, stream), so a run is reproducible; identity when !training.
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t stream);

}  // namespace vc
