// Index kernels. Sums into shared destinations are done by the destination's owner.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

namespace {
template <class F> void by_elem_size(DType t, F&& f) {
  switch (dtype_size(t)) {
    case 1: f(uint8_t{}); break;
    case 4: f(uint32_t{}); break;
    case 8: f(uint64_t{}); break;
  }
}
}  // namespace

void index_select(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                  int64_t n_src, int64_t n_idx, int64_t inner) {
  size_t row = size_t(inner) * dtype_size(t);
  const char* xp = static_cast<const char*>(x);
  char* yp = static_cast<char*>(y);
#pragma omp parallel for schedule(static) if (outer * n_idx * inner > 65536)
  for (int64_t oi = 0; oi < outer * n_idx; ++oi) {
    int64_t o = oi / n_idx, i = oi % n_idx;
    std::memcpy(yp + size_t(oi) * row, xp + size_t(o * n_src + idx[i]) * row, row);
  }
}

void index_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_idx,
               int64_t n_dst, int64_t inner) {
  // CSR of destination -> sources, sources in increasing order (a stable counting sort).
  std::vector<int64_t> start(n_dst + 1, 0), src(n_idx);
  for (int64_t i = 0; i < n_idx; ++i) ++start[idx[i] + 1];
  for (int64_t j = 0; j < n_dst; ++j) start[j + 1] += start[j];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n_idx; ++i) src[fill[idx[i]]++] = i;
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
#pragma omp parallel for schedule(static) if (outer * n_dst * inner > 32768)
    for (int64_t oj = 0; oj < outer * n_dst; ++oj) {
      int64_t o = oj / n_dst, j = oj % n_dst;
      T* dst = yp + oj * inner;
      std::fill(dst, dst + inner, T(0));
      for (int64_t s = start[j]; s < start[j + 1]; ++s) {
        const T* row = xp + (o * n_idx + src[s]) * inner;
        for (int64_t k = 0; k < inner; ++k) dst[k] += row[k];
      }
    }
  });
}

void gather(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_src,
            int64_t n_idx, int64_t inner) {
  by_elem_size(t, [&](auto zero) {
    using E = decltype(zero);
    const E* xp = static_cast<const E*>(x);
    E* yp = static_cast<E*>(y);
#pragma omp parallel for schedule(static) if (outer * n_idx * inner > 65536)
    for (int64_t oi = 0; oi < outer * n_idx; ++oi) {
      int64_t o = oi / n_idx;
      for (int64_t k = 0; k < inner; ++k) {
        int64_t at = oi * inner + k;
        yp[at] = xp[(o * n_src + idx[at]) * inner + k];
      }
    }
  });
}

void scatter_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                 int64_t n_idx, int64_t n_dst, int64_t inner) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    // Each (o, k) column owns its n_dst destinations; sources are added in increasing i.
#pragma omp parallel for schedule(static) if (outer * n_idx * inner > 32768)
    for (int64_t ok = 0; ok < outer * inner; ++ok) {
      int64_t o = ok / inner, k = ok % inner;
      for (int64_t i = 0; i < n_idx; ++i) {
        int64_t at = (o * n_idx + i) * inner + k;
        yp[(o * n_dst + idx[at]) * inner + k] += xp[at];
      }
    }
  });
}

}  // namespace vc::cpu_kernels
