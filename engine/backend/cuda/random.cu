// Random fills: element i is a pure function of (seed, stream, i) through the same Philox
// code as the CPU (engine/rng/philox.h). Compiled without FMA contraction (CMake sets
// --fmad=false for this file), so uniform draws are bitwise the CPU's; normal and Gumbel go
// through the device's double log / cos / sqrt, which may differ from glibc's in the last
// bit of the double — after rounding to float32 that almost never shows.
#include "engine/backend/cuda/cuda_common.cuh"
#include "engine/rng/philox.h"

namespace vc::cuda_kernels {

namespace {

template <class T>
__global__ void fill_random_kernel(Distribution d, T* y, int64_t n, uint64_t seed,
                                   uint64_t stream_id, double a, double b) {
  VC_GRID_LOOP(i, n) {
    double v = 0;
    switch (d) {
      case Distribution::Uniform: v = a + (b - a) * philox_uniform(seed, stream_id, i); break;
      case Distribution::Normal: v = a + b * philox_normal(seed, stream_id, i); break;
      case Distribution::Gumbel: v = philox_gumbel(seed, stream_id, i); break;
    }
    y[i] = T(v);
  }
}

}  // namespace

void fill_random(Distribution d, DType t, void* y, int64_t n, uint64_t seed, uint64_t stream_id,
                 double a, double b) {
  if (n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    fill_random_kernel<T><<<blocks_for(n), kThreads, 0, stream()>>>(d, static_cast<T*>(y), n,
                                                                      seed, stream_id, a, b);
  });
  VC_CUDA_LAUNCH("fill_random");
}

}  // namespace vc::cuda_kernels
