// Elementwise CPU kernels. Each unary op's forward formula sits beside its derivative.
#include <cmath>
#include <algorithm>
#include <type_traits>

#include "engine/backend/cpu/cpu_kernels.h"
#include "engine/backend/cpu/fast_exp.h"

namespace vc::cpu_kernels {

namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;   // 1 / sqrt(2 pi)

// 1 / (1 + e^-x) without overflow: e^-|x| is at most 1.
template <class T> T stable_sigmoid(T x) {
  T e = fast_exp(-std::abs(x));
  T inv = T(1) / (T(1) + e);
  return x >= 0 ? inv : e * inv;
}

template <class T> T unary_forward(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return fast_exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Sigmoid: return stable_sigmoid(x);
    case UnaryOp::Relu: return x > 0 ? x : T(0);
    case UnaryOp::GeluErf: return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
    case UnaryOp::GeluTanh:
      return T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x)));
    case UnaryOp::QuickGelu: return x * stable_sigmoid(T(1.702) * x);
    case UnaryOp::Pow: return std::pow(x, p0);
    case UnaryOp::Clamp: return x < p0 ? p0 : (x > p1 ? p1 : x);
    case UnaryOp::AddScalar: return x + p0;
    case UnaryOp::MulScalar: return x * p0;
  }
  return x;
}

// dy/dx given the input x and the output y.
template <class T> T unary_derivative(UnaryOp op, T x, T y, T p0, T p1) {
  switch (op) {
    case UnaryOp::Neg: return T(-1);
    case UnaryOp::Exp: return y;
    case UnaryOp::Log: return T(1) / x;
    case UnaryOp::Sqrt: return T(0.5) / y;
    case UnaryOp::Rsqrt: return T(-0.5) * y * y * y;
    case UnaryOp::Abs: return x > 0 ? T(1) : (x < 0 ? T(-1) : T(0));
    case UnaryOp::Tanh: return T(1) - y * y;
    case UnaryOp::Sigmoid: return y * (T(1) - y);
    case UnaryOp::Relu: return x > 0 ? T(1) : T(0);
    case UnaryOp::GeluErf:  // Phi(x) + x phi(x)
      return T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2))) +
             x * T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
    case UnaryOp::GeluTanh: {
      T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
      T th = std::tanh(u);
      T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
      return T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
    }
    case UnaryOp::QuickGelu: {
      T s = stable_sigmoid(T(1.702) * x);
      return s + T(1.702) * x * s * (T(1) - s);
    }
    case UnaryOp::Pow: return p0 == 0 ? T(0) : p0 * std::pow(x, p0 - T(1));
    case UnaryOp::Clamp: return (x >= p0 && x <= p1) ? T(1) : T(0);
    case UnaryOp::AddScalar: return T(1);
    case UnaryOp::MulScalar: return p0;
  }
  return T(0);
}

template <class T> T binary_apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Maximum: return a >= b ? a : b;
    case BinaryOp::Minimum: return a <= b ? a : b;
    case BinaryOp::Eq: return T(a == b);
    case BinaryOp::Ne: return T(a != b);
    case BinaryOp::Gt: return T(a > b);
    case BinaryOp::Ge: return T(a >= b);
    case BinaryOp::Lt: return T(a < b);
    case BinaryOp::Le: return T(a <= b);
  }
  return T(0);
}

// Calls f(out_index_base, off0, off1, off2, inner) for each contiguous output row; the
// offsets are the inputs' element offsets at the row's first element.
template <class F> void for_each_row(const BroadcastDesc& d, F&& f) {
  if (d.numel == 0) return;
  int last = d.ndim - 1;
  int64_t inner = d.ndim ? d.shape[last] : 1;
  int64_t rows = d.numel / inner;
#pragma omp parallel for schedule(static) if (d.numel > 32768)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off[3] = {d.offsets[0], d.offsets[1], d.offsets[2]};
    int64_t rem = r;
    for (int i = last - 1; i >= 0; --i) {
      int64_t k = rem % d.shape[i];
      rem /= d.shape[i];
      for (int j = 0; j < 3; ++j) off[j] += k * d.strides[j][i];
    }
    f(r * inner, off, inner);
  }
}

template <class T>
void binary_t(BinaryOp op, const T* a, const T* b, T* out, const BroadcastDesc& d) {
  int last = d.ndim - 1;
  int64_t sa = d.ndim ? d.strides[0][last] : 0, sb = d.ndim ? d.strides[1][last] : 0;
  for_each_row(d, [&](int64_t o, const int64_t* off, int64_t inner) {
    const T* pa = a + off[0];
    const T* pb = b + off[1];
    T* po = out + o;
    if (op == BinaryOp::Add && sa == 1 && sb == 1) {
      for (int64_t j = 0; j < inner; ++j) po[j] = pa[j] + pb[j];
    } else if (op == BinaryOp::Mul && sa == 1 && sb == 1) {
      for (int64_t j = 0; j < inner; ++j) po[j] = pa[j] * pb[j];
    } else {
      for (int64_t j = 0; j < inner; ++j) po[j] = binary_apply(op, pa[j * sa], pb[j * sb]);
    }
  });
}

template <class C, class T>
void where_t(const C* cond, const T* a, const T* b, T* out, const BroadcastDesc& d) {
  int last = d.ndim - 1;
  int64_t sc = d.ndim ? d.strides[0][last] : 0, sa = d.ndim ? d.strides[1][last] : 0,
          sb = d.ndim ? d.strides[2][last] : 0;
  // The descriptor's offsets are 0 (cond), 1 (a), 2 (b).
  for_each_row(d, [&](int64_t o, const int64_t* off, int64_t inner) {
    for (int64_t j = 0; j < inner; ++j)
      out[o + j] = cond[off[0] + j * sc] != C(0) ? a[off[1] + j * sa] : b[off[2] + j * sb];
  });
}

}  // namespace

namespace {

// Fixed blocks, so which elements share a vector iteration never depends on the thread count.
constexpr int64_t kBlock = 4096;

template <UnaryOp OP, class T> void unary_loop(const T* x, T* y, int64_t n, T p0, T p1) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; ++i) y[i] = unary_forward<T>(OP, x[i], p0, p1);
  }
}

template <UnaryOp OP, class T>
void unary_backward_loop(const T* x, const T* y, const T* g, T* gx, int64_t n, T p0, T p1) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t b = 0; b < blocks; ++b) {
    int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; ++i)
      gx[i] = g[i] * unary_derivative<T>(OP, x[i], y[i], p0, p1);
  }
}

// Calls f(std::integral_constant<UnaryOp, op>) so each op gets its own loop, with the
// switch resolved at compile time (which is what lets the loops vectorise).
template <class F> void with_unary_op(UnaryOp op, F&& f) {
#define VC_UNARY_CASE(name) \
  case UnaryOp::name: return f(std::integral_constant<UnaryOp, UnaryOp::name>{});
  switch (op) {
    VC_UNARY_CASE(Neg) VC_UNARY_CASE(Exp) VC_UNARY_CASE(Log) VC_UNARY_CASE(Sqrt)
    VC_UNARY_CASE(Rsqrt) VC_UNARY_CASE(Abs) VC_UNARY_CASE(Tanh) VC_UNARY_CASE(Sigmoid)
    VC_UNARY_CASE(Relu) VC_UNARY_CASE(GeluErf) VC_UNARY_CASE(GeluTanh) VC_UNARY_CASE(QuickGelu)
    VC_UNARY_CASE(Pow) VC_UNARY_CASE(Clamp) VC_UNARY_CASE(AddScalar) VC_UNARY_CASE(MulScalar)
  }
#undef VC_UNARY_CASE
}

}  // namespace

void unary(UnaryOp op, DType t, const void* x, void* y, int64_t n, double p0, double p1) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    with_unary_op(op, [&](auto kind) {
      unary_loop<decltype(kind)::value, T>(static_cast<const T*>(x), static_cast<T*>(y), n,
                                            T(p0), T(p1));
    });
  });
}

void unary_backward(UnaryOp op, DType t, const void* x, const void* y, const void* gy, void* gx,
                    int64_t n, double p0, double p1) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    with_unary_op(op, [&](auto kind) {
      unary_backward_loop<decltype(kind)::value, T>(
          static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(gy),
          static_cast<T*>(gx), n, T(p0), T(p1));
    });
  });
}

void binary(BinaryOp op, DType t, const void* a, const void* b, void* out,
            const BroadcastDesc& d) {
  switch (t) {
    case DType::F32: return binary_t(op, (const float*)a, (const float*)b, (float*)out, d);
    case DType::F64: return binary_t(op, (const double*)a, (const double*)b, (double*)out, d);
    case DType::I64: return binary_t(op, (const int64_t*)a, (const int64_t*)b, (int64_t*)out, d);
    case DType::U8: return binary_t(op, (const uint8_t*)a, (const uint8_t*)b, (uint8_t*)out, d);
  }
}

void where(DType cond_t, const void* cond, DType t, const void* a, const void* b, void* out,
           const BroadcastDesc& d) {
  auto with_cond = [&](const auto* c) {
    switch (t) {
      case DType::F32: return where_t(c, (const float*)a, (const float*)b, (float*)out, d);
      case DType::F64: return where_t(c, (const double*)a, (const double*)b, (double*)out, d);
      case DType::I64: return where_t(c, (const int64_t*)a, (const int64_t*)b, (int64_t*)out, d);
      case DType::U8: return where_t(c, (const uint8_t*)a, (const uint8_t*)b, (uint8_t*)out, d);
    }
  };
  switch (cond_t) {
    case DType::F32: return with_cond((const float*)cond);
    case DType::F64: return with_cond((const double*)cond);
    case DType::I64: return with_cond((const int64_t*)cond);
    case DType::U8: return with_cond((const uint8_t*)cond);
  }
}

}  // namespace vc::cpu_kernels
