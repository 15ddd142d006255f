// CPU kernels of the optim family (see kernels_optim.h for the formulas).
#include <cmath>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

namespace {

template <class T>
void adamw(T* p, const T* g, T* m, T* v, int64_t n, double lr, double b1, double b2, double eps,
           double wd, int64_t step) {
  const double bc1 = 1.0 - std::pow(b1, double(step));
  const double bc2_sqrt = std::sqrt(1.0 - std::pow(b2, double(step)));
  const double step_size = lr / bc1;
  const double decay = 1.0 - lr * wd;
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
    double gi = g[i];
    double mi = b1 * double(m[i]) + (1.0 - b1) * gi;
    double vi = b2 * double(v[i]) + (1.0 - b2) * gi * gi;
    m[i] = T(mi);
    v[i] = T(vi);
    double pi = double(p[i]) * decay;
    p[i] = T(pi - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps));
  }
}

template <class T>
void sgd(T* p, const T* g, T* buf, int64_t n, double lr, double mu, double damp, double wd,
         bool nesterov, bool first) {
#pragma omp parallel for schedule(static) if (n > 32768)
  for (int64_t i = 0; i < n; ++i) {
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
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    adamw(static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(exp_avg),
          static_cast<T*>(exp_avg_sq), n, lr, beta1, beta2, eps, wd, step);
  });
}

void sgd_step(DType t, void* param, const void* grad, void* buf, int64_t n, double lr,
              double momentum, double dampening, double wd, bool nesterov, bool first) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    sgd(static_cast<T*>(param), static_cast<const T*>(grad), static_cast<T*>(buf), n, lr,
        momentum, dampening, wd, nesterov, first);
  });
}

}  // namespace

OptimKernels optim_kernels() { return {adamw_step, sgd_step}; }

}  // namespace vc::cpu_kernels
