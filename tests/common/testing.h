// Helpers shared by the test suites: random inputs, naive element access for reference
// loops, float64 central-difference gradient checks, and tensor hashes for determinism.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>

#include "engine/engine.h"

namespace vc::testing {

// Standard normal values, float64 by default (gradient checks run in float64).
inline Tensor randn(const Shape& shape, uint64_t seed, DType dtype = DType::F64) {
  return rand_normal(shape, seed, /*stream=*/7, 0, 1, dtype);
}

// Calls f(index) for every multi-index of shape, in row-major order.
inline void for_each_index(const Shape& shape, const std::function<void(const Shape&)>& f) {
  int64_t n = numel_of(shape);
  Shape idx(shape.size(), 0);
  for (int64_t i = 0; i < n; ++i) {
    f(idx);
    for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) break;
      idx[d] = 0;
    }
  }
}

// Element of a CPU tensor at a multi-index, through its strides, as a double.
inline double at(const Tensor& t, const Shape& idx) {
  int64_t off = t.offset();
  for (size_t d = 0; d < idx.size(); ++d) off += idx[d] * t.strides()[d];
  const void* base = t.impl().storage->data;
  switch (t.dtype()) {
    case DType::F32: return static_cast<const float*>(base)[off];
    case DType::F64: return static_cast<const double*>(base)[off];
    case DType::I64: return double(static_cast<const int64_t*>(base)[off]);
    case DType::U8: return static_cast<const uint8_t*>(base)[off];
  }
  return 0;
}

inline std::vector<double> values(const Tensor& t) {
  std::vector<double> v;
  for_each_index(t.shape(), [&](const Shape& i) { v.push_back(at(t, i)); });
  return v;
}

// max |a - b| over elements; shapes must match.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  std::vector<double> va = values(a), vb = values(b);
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isinf(va[i]) && va[i] == vb[i]) continue;
    m = std::max(m, std::isnan(va[i]) != std::isnan(vb[i]) ? INFINITY : std::abs(va[i] - vb[i]));
  }
  return m;
}

// Checks every element: |a - b| <= atol + rtol |b|.
inline void check_close(const Tensor& a, const Tensor& b, double atol, double rtol,
                        const std::string& what = "") {
  REQUIRE_MESSAGE(a.shape() == b.shape(), what, ": shape ", shape_str(a.shape()), " vs ",
                  shape_str(b.shape()));
  std::vector<double> va = values(a), vb = values(b);
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    if (va[i] == vb[i]) continue;  // also equal infinities
    double excess = std::abs(va[i] - vb[i]) - (atol + rtol * std::abs(vb[i]));
    if (std::isnan(excess)) excess = INFINITY;
    if (excess > worst) worst = excess, worst_i = i;
  }
  CHECK_MESSAGE(worst <= 0, what, ": element ", worst_i, " is ", va[worst_i], ", expected ",
                vb[worst_i]);
}

// Float64 central differences against autograd for every element of every input.
// L = sum(f(inputs) * w) with fixed random w, so every output element is exercised.
inline void gradcheck(const std::function<Tensor(const TensorList&)>& f, TensorList inputs,
                      const std::string& what, double eps = 1e-6, double atol = 1e-7,
                      double rtol = 1e-5) {
  for (Tensor& t : inputs) {
    REQUIRE(t.dtype() == DType::F64);
    t = t.contiguous().detach();
    t.set_requires_grad(true);
  }
  Tensor out = f(inputs);
  Tensor w = randn(out.shape(), 99);
  sum(mul(out, w)).backward();
  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    REQUIRE_MESSAGE(x.grad().defined(), what, ": input ", k, " got no gradient");
    double* p = x.data<double>();
    Tensor numeric = Tensor::zeros(x.shape(), DType::F64);
    for (int64_t i = 0; i < x.numel(); ++i) {
      double keep = p[i];
      p[i] = keep + eps;
      double up = sum(mul(f(inputs), w)).item();
      p[i] = keep - eps;
      double down = sum(mul(f(inputs), w)).item();
      p[i] = keep;
      numeric.data<double>()[i] = (up - down) / (2 * eps);
    }
    check_close(x.grad(), numeric, atol, rtol, what + " d/d input " + std::to_string(k));
  }
}

// Float64 central differences of a scalar loss against the autograd gradients already in
// each named tensor's grad(), at up to `picks` evenly spread elements per tensor (for
// models, whose every element would be too slow). Returns how many elements were checked.
inline int gradcheck_elements(const std::function<Tensor()>& loss, const std::vector<std::pair<std::string, Tensor>>& wrt,
                              int64_t picks = 3,
                              double eps = 1e-6, double atol = 1e-7, double rtol = 1e-5) {
  NoGradGuard no_grad;
  int checked = 0;
  for (const auto& [name, t] : wrt) {
    CAPTURE(name);
    REQUIRE(t.dtype() == DType::F64);
    REQUIRE(t.grad().defined());
    std::vector<double> g = t.grad().contiguous().to_vector<double>();
    double* p = const_cast<Tensor&>(t).data<double>();
    const int64_t n = t.numel(), k = std::min<int64_t>(picks, n);
    for (int64_t s = 0; s < k; ++s) {
      int64_t i = (s * n) / k + (n > 1 ? (7 * s + 1) % std::max<int64_t>(1, n / k) : 0);
      i = std::min(i, n - 1);
      const double keep = p[i];
      p[i] = keep + eps;
      const double up = loss().item();
      p[i] = keep - eps;
      const double down = loss().item();
      p[i] = keep;
      const double numeric = (up - down) / (2 * eps);
      CHECK_MESSAGE(std::abs(g[size_t(i)] - numeric) <= atol + rtol * std::abs(numeric), name, "[", i, "]: autograd ",
                    g[size_t(i)], ", numeric ", numeric);
      ++checked;
    }
  }
  return checked;
}

// FNV-1a over a tensor's bytes in logical order: equal hashes mean equal bits.
inline uint64_t hash_bits(const Tensor& t) {
  Tensor c = t.contiguous();
  std::vector<unsigned char> bytes(size_t(c.numel()) * dtype_size(c.dtype()));
  if (!bytes.empty()) c.copy_to_host(bytes.data(), bytes.size());
  uint64_t h = 1469598103934665603ull;
  for (unsigned char b : bytes) h = (h ^ b) * 1099511628211ull;
  return h;
}

}  // namespace vc::testing
