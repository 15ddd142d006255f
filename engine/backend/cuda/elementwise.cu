// Elementwise CUDA kernels: the formulas of engine/backend/cpu/elementwise.cpp, one thread
// per output element. Each unary op's forward formula sits beside its derivative.
#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;  // sqrt(2 / pi)
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;   // 1 / sqrt(2 pi)

template <class T> __device__ T stable_sigmoid(T x) {
  if (x >= 0) return T(1) / (T(1) + exp(-x));
  T e = exp(x);
  return e / (T(1) + e);
}

template <class T> __device__ T unary_forward(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return exp(x);
    case UnaryOp::Log: return log(x);
    case UnaryOp::Sqrt: return sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / sqrt(x);
    case UnaryOp::Abs: return fabs(x);
    case UnaryOp::Tanh: return tanh(x);
    case UnaryOp::Sigmoid: return stable_sigmoid(x);
    case UnaryOp::Relu: return x > 0 ? x : T(0);
    case UnaryOp::GeluErf: return T(0.5) * x * (T(1) + erf(x * T(kInvSqrt2)));
    case UnaryOp::GeluTanh:
      return T(0.5) * x * (T(1) + tanh(T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x)));
    case UnaryOp::QuickGelu: return x * stable_sigmoid(T(1.702) * x);
    case UnaryOp::Pow: return pow(x, p0);
    case UnaryOp::Clamp: return x < p0 ? p0 : (x > p1 ? p1 : x);
    case UnaryOp::AddScalar: return x + p0;
    case UnaryOp::MulScalar: return x * p0;
  }
  return x;
}

// dy/dx given the input x and the output y.
template <class T> __device__ T unary_derivative(UnaryOp op, T x, T y, T p0, T p1) {
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
      return T(0.5) * (T(1) + erf(x * T(kInvSqrt2))) +
             x * T(kInvSqrt2Pi) * exp(T(-0.5) * x * x);
    case UnaryOp::GeluTanh: {
      T u = T(kSqrt2OverPi) * (x + T(0.044715) * x * x * x);
      T th = tanh(u);
      T du = T(kSqrt2OverPi) * (T(1) + T(3 * 0.044715) * x * x);
      return T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
    }
    case UnaryOp::QuickGelu: {
      T s = stable_sigmoid(T(1.702) * x);
      return s + T(1.702) * x * s * (T(1) - s);
    }
    case UnaryOp::Pow: return p0 == 0 ? T(0) : p0 * pow(x, p0 - T(1));
    case UnaryOp::Clamp: return (x >= p0 && x <= p1) ? T(1) : T(0);
    case UnaryOp::AddScalar: return T(1);
    case UnaryOp::MulScalar: return p0;
  }
  return T(0);
}

template <class T> __device__ T binary_apply(BinaryOp op, T a, T b) {
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

// Integer division by zero is undefined on the device as on the host; the CPU kernel would
// trap (SIGFPE), so give 0 here rather than garbage.
template <> __device__ int64_t binary_apply(BinaryOp op, int64_t a, int64_t b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return b == 0 ? 0 : a / b;
    case BinaryOp::Maximum: return a >= b ? a : b;
    case BinaryOp::Minimum: return a <= b ? a : b;
    case BinaryOp::Eq: return a == b;
    case BinaryOp::Ne: return a != b;
    case BinaryOp::Gt: return a > b;
    case BinaryOp::Ge: return a >= b;
    case BinaryOp::Lt: return a < b;
    case BinaryOp::Le: return a <= b;
  }
  return 0;
}
template <> __device__ uint8_t binary_apply(BinaryOp op, uint8_t a, uint8_t b) {
  switch (op) {
    case BinaryOp::Add: return uint8_t(a + b);
    case BinaryOp::Sub: return uint8_t(a - b);
    case BinaryOp::Mul: return uint8_t(a * b);
    case BinaryOp::Div: return b == 0 ? 0 : uint8_t(a / b);
    case BinaryOp::Maximum: return a >= b ? a : b;
    case BinaryOp::Minimum: return a <= b ? a : b;
    case BinaryOp::Eq: return a == b;
    case BinaryOp::Ne: return a != b;
    case BinaryOp::Gt: return a > b;
    case BinaryOp::Ge: return a >= b;
    case BinaryOp::Lt: return a < b;
    case BinaryOp::Le: return a <= b;
  }
  return 0;
}

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* y, int64_t n, T p0, T p1) {
  VC_GRID_LOOP(i, n) y[i] = unary_forward<T>(op, x[i], p0, p1);
}

template <class T>
__global__ void unary_backward_kernel(UnaryOp op, const T* x, const T* y, const T* gy, T* gx,
                                      int64_t n, T p0, T p1) {
  VC_GRID_LOOP(i, n) gx[i] = gy[i] * unary_derivative<T>(op, x[i], y[i], p0, p1);
}

// Element offsets of inputs 0..K-1 for output element i of the descriptor.
template <int K> __device__ void broadcast_offsets(const BroadcastDesc& d, int64_t i, int64_t* off) {
  for (int j = 0; j < K; ++j) off[j] = d.offsets[j];
  int64_t rem = i;
  for (int k = d.ndim - 1; k >= 0; --k) {
    int64_t c = rem % d.shape[k];
    rem /= d.shape[k];
    for (int j = 0; j < K; ++j) off[j] += c * d.strides[j][k];
  }
}

template <class T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, T* out, BroadcastDesc d) {
  VC_GRID_LOOP(i, d.numel) {
    int64_t off[2];
    broadcast_offsets<2>(d, i, off);
    out[i] = binary_apply<T>(op, a[off[0]], b[off[1]]);
  }
}

template <class C, class T>
__global__ void where_kernel(const C* cond, const T* a, const T* b, T* out, BroadcastDesc d) {
  VC_GRID_LOOP(i, d.numel) {
    int64_t off[3];
    broadcast_offsets<3>(d, i, off);
    out[i] = cond[off[0]] != C(0) ? a[off[1]] : b[off[2]];
  }
}

template <class T>
void binary_t(BinaryOp op, const void* a, const void* b, void* out, const BroadcastDesc& d) {
  if (d.numel == 0) return;
  binary_kernel<T><<<blocks_for(d.numel), kThreads, 0, stream()>>>(
      op, static_cast<const T*>(a), static_cast<const T*>(b), static_cast<T*>(out), d);
  VC_CUDA_LAUNCH("binary");
}

template <class C, class T>
void where_t(const void* cond, const void* a, const void* b, void* out, const BroadcastDesc& d) {
  if (d.numel == 0) return;
  where_kernel<C, T><<<blocks_for(d.numel), kThreads, 0, stream()>>>(
      static_cast<const C*>(cond), static_cast<const T*>(a), static_cast<const T*>(b),
      static_cast<T*>(out), d);
  VC_CUDA_LAUNCH("where");
}

template <class C>
void where_c(DType t, const void* cond, const void* a, const void* b, void* out,
             const BroadcastDesc& d) {
  switch (t) {
    case DType::F32: return where_t<C, float>(cond, a, b, out, d);
    case DType::F64: return where_t<C, double>(cond, a, b, out, d);
    case DType::I64: return where_t<C, int64_t>(cond, a, b, out, d);
    case DType::U8: return where_t<C, uint8_t>(cond, a, b, out, d);
  }
}

}  // namespace

void unary(UnaryOp op, DType t, const void* x, void* y, int64_t n, double p0, double p1) {
  if (n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    unary_kernel<T><<<blocks_for(n), kThreads, 0, stream()>>>(
        op, static_cast<const T*>(x), static_cast<T*>(y), n, T(p0), T(p1));
  });
  VC_CUDA_LAUNCH("unary");
}

void unary_backward(UnaryOp op, DType t, const void* x, const void* y, const void* gy, void* gx,
                    int64_t n, double p0, double p1) {
  if (n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    unary_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream()>>>(
        op, static_cast<const T*>(x), static_cast<const T*>(y), static_cast<const T*>(gy),
        static_cast<T*>(gx), n, T(p0), T(p1));
  });
  VC_CUDA_LAUNCH("unary_backward");
}

void binary(BinaryOp op, DType t, const void* a, const void* b, void* out,
            const BroadcastDesc& d) {
  switch (t) {
    case DType::F32: return binary_t<float>(op, a, b, out, d);
    case DType::F64: return binary_t<double>(op, a, b, out, d);
    case DType::I64: return binary_t<int64_t>(op, a, b, out, d);
    case DType::U8: return binary_t<uint8_t>(op, a, b, out, d);
  }
}

void where(DType cond_t, const void* cond, DType t, const void* a, const void* b, void* out,
           const BroadcastDesc& d) {
  switch (cond_t) {
    case DType::F32: return where_c<float>(t, cond, a, b, out, d);
    case DType::F64: return where_c<double>(t, cond, a, b, out, d);
    case DType::I64: return where_c<int64_t>(t, cond, a, b, out, d);
    case DType::U8: return where_c<uint8_t>(t, cond, a, b, out, d);
  }
}

}  // namespace vc::cuda_kernels
