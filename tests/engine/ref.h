// Helpers for the engine suite: naive references are built element by element from a
// lambda, and non-contiguous inputs come from permuted or narrowed storage.
#pragma once
#include <functional>
#include <numeric>

#include "tests/common/testing.h"

namespace vc::testing {

// A float64 tensor whose element at idx is f(idx): the form of every naive reference.
inline Tensor tensor_from(const Shape& shape, const std::function<double(const Shape&)>& f) {
  Tensor t = Tensor::zeros(shape, DType::F64);
  double* p = t.data<double>();
  int64_t i = 0;
  for_each_index(shape, [&](const Shape& idx) { p[i++] = f(idx); });
  return t;
}

// randn of `shape`, stored with its axes reversed and permuted back: non-contiguous.
inline Tensor randn_permuted(const Shape& shape, uint64_t seed, DType dtype = DType::F64) {
  Shape rev(shape.rbegin(), shape.rend());
  std::vector<int64_t> axes(shape.size());
  std::iota(axes.rbegin(), axes.rend(), 0);
  return randn(rev, seed, dtype).permute(axes);
}

// randn of `shape` as a window of a wider tensor along the last axis: non-contiguous.
inline Tensor randn_narrowed(const Shape& shape, uint64_t seed, DType dtype = DType::F64) {
  Shape wide = shape;
  wide.back() += 3;
  return randn(wide, seed, dtype).narrow(-1, 1, shape.back());
}

// x with every element replaced by f(x): a reference for elementwise maps.
inline Tensor map_ref(const Tensor& x, const std::function<double(double)>& f) {
  return tensor_from(x.shape(), [&](const Shape& i) { return f(at(x, i)); });
}

}  // namespace vc::testing
