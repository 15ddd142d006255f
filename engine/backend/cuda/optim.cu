// CUDA kernels of the optim family (see kernels_optim.h for the formulas): one thread per
// element, the CPU's double-precision expressions in the same order. CMake compiles this
// file with --fmad=false, so no multiply-add is fused and every element's update has the
// CPU's bits (IEEE double add, mul, div and sqrt are correctly rounded on both).
#include <cmath>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

template <class T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, int64_t n, double b1, double b2,
                             double eps, double bc2_sqrt, double step_size, double decay) {
  VC_GRID_LOOP(i, n) {
    double gi = g[i];
    double mi = b1 * double(m[i]) + (1.0 - b1) * gi;
    double vi = b2 * double(v[i]) + (1.0 - b2) * gi * gi;
    m[i] = T(mi);
    v[i] = T(vi);
    double pi = double(p[i]) * decay;
    p[i] = T(pi - step_size * mi / (sqrt(vi) / bc2_sqrt + eps));
  }
}

template <class T>
__global__ void sgd_kernel(T* p, const T* g, T* buf, int64_t n, double lr, double mu,
                           double damp, double wd, bool nesterov, bool first) {
  VC_GRID_LOOP(i, n) {
    double gi = double(g[i]) + wd * double(p[i]);
    double d = gi;
    if (mu != 0) {
      double b = first ? gi : mu * double(buf[i]) + (1.0 - damp) * gi;
      buf[i] = T(b);
      d = nesterov ? gi + mu * b : b;
    }
    p[i] = T(double(p[i]) - lr * d);
  }
}

void adamw_step(DType t, void* param, const void* grad, void* exp_avg, void* exp_avg_sq,
                int64_t n, double lr, double beta1, double beta2, double eps, double wd,
                int64_t step) {
  if (n <= 0) return;
  // The per-step constants on the host, exactly as the CPU computes them.
  const double bc1 = 1.0 - std::pow(beta1, double(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(beta2, double(step)));
  const double step_size = lr / bc1;
  const double decay = 1.0 - lr * wd;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    adamw_kernel<T><<<blocks_for(n), kThreads, 0, stream()>>>(
        static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg),
        static_cast<T*>(exp_avg_sq), n, beta1, beta2, eps, bc2_sqrt, step_size, decay);
  });
  VC_CUDA_LAUNCH("adamw_step");
}

void sgd_step(DType t, void* param, const void* grad, void* buf, int64_t n, double lr,
              double momentum, double dampening, double wd, bool nesterov, bool first) {
  if (n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    sgd_kernel<T><<<blocks_for(n), kThreads, 0, stream()>>>(
        static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(buf), n, lr,
        momentum, dampening, wd, nesterov, first);
  });
  VC_CUDA_LAUNCH("sgd_step");
}

}  // namespace

OptimKernels optim_kernels() { return {adamw_step, sgd_step}; }

}  // namespace vc::cuda_kernels
