// Random fills: element i is a pure function of (seed, stream, i).
#include "engine/backend/cpu/cpu_kernels.h"
#include "engine/rng/philox.h"

namespace vc::cpu_kernels {

void fill_random(Distribution d, DType t, void* y, int64_t n, uint64_t seed, uint64_t stream,
                 double a, double b) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    T* yp = static_cast<T*>(y);
#pragma omp parallel for schedule(static) if (n > 16384)
    for (int64_t i = 0; i < n; ++i) {
      double v = 0;
      switch (d) {
        case Distribution::Uniform: v = a + (b - a) * philox_uniform(seed, stream, i); break;
        case Distribution::Normal: v = a + b * philox_normal(seed, stream, i); break;
        case Distribution::Gumbel: v = philox_gumbel(seed, stream, i); break;
      }
      yp[i] = T(v);
    }
  });
}

}  // namespace vc::cpu_kernels
