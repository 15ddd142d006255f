// Row-wise top-k and argsort with one total order: by value (NaN counts as the largest),
// then by lower index. The order is total, so the result is unique: no dependence on the
// sort algorithm or the thread count.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

void topk(DType t, const void* x, void* values, int64_t* idx, int64_t rows, int64_t n, int64_t k,
          bool largest) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* vp = static_cast<T*>(values);
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t row = 0; row < rows; ++row) {
      const T* v = xp + row * n;
      const bool want_largest = largest;  // a local copy: clang cannot capture it through omp
      auto greater = [](T a, T b) { return std::isnan(a) ? !std::isnan(b) : a > b; };
      auto before = [&](int64_t i, int64_t j) {
        T a = v[i], b = v[j];
        if (want_largest ? greater(a, b) : greater(b, a)) return true;
        if (want_largest ? greater(b, a) : greater(a, b)) return false;
        return i < j;
      };
      std::vector<int64_t> order(n);
      std::iota(order.begin(), order.end(), 0);
      if (k < n)
        std::partial_sort(order.begin(), order.begin() + k, order.end(), before);
      else
        std::sort(order.begin(), order.end(), before);
      for (int64_t i = 0; i < k; ++i) {
        idx[row * k + i] = order[i];
        if (vp) vp[row * k + i] = v[order[i]];
      }
    }
  });
}

}  // namespace vc::cpu_kernels
