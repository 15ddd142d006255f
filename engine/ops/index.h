// Movement and indexing: concat, stack, split/chunk, index_select, gather, scatter_add,
// embedding. Index tensors are int64. Every sum of several sources into one destination is
// done by the destination's owner in increasing source order (no atomics, deterministic).
#pragma once
#include <vector>

#include "engine/core/tensor.h"

namespace vc {

Tensor concat(const std::vector<Tensor>& xs, int64_t axis);
Tensor stack(const std::vector<Tensor>& xs, int64_t axis);
// Pieces of `size` along axis (the last may be shorter); views.
std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t axis);
// n pieces of ceil(len / n) along axis (fewer when len < n); views.
std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t axis);

// y = x taken at idx (1-d) along axis.
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& idx);
// y[..., i, ...] = x[..., idx[..., i, ...], ...] along axis; idx has x's rank and the same
// sizes on every other axis.
Tensor gather(const Tensor& x, int64_t axis, const Tensor& idx);
// Returns base + (src scattered along axis at idx); idx and src have the same shape and
// base's sizes on every other axis. Differentiable in base and src.
Tensor scatter_add(const Tensor& base, int64_t axis, const Tensor& idx, const Tensor& src);
// Rows of weight [V, D] at ids (any shape) -> [..., D].
Tensor embedding(const Tensor& weight, const Tensor& ids);

}  // namespace vc
