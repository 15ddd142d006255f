// Row reductions: one thread owns each output row and walks it in order, so results do not
// depend on the thread count. Sums accumulate in double.
#include <algorithm>
#include <cmath>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

void reduce(ReduceOp op, DType t, const void* x, void* y, int64_t* arg, int64_t outer,
            int64_t inner, double correction) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
#pragma omp parallel for schedule(static) if (outer * inner > 32768 && outer > 1)
    for (int64_t r = 0; r < outer; ++r) {
      const T* row = xp + r * inner;
      switch (op) {
        case ReduceOp::Sum:
        case ReduceOp::Mean: {
          double s = 0;
          for (int64_t j = 0; j < inner; ++j) s += row[j];
          yp[r] = T(op == ReduceOp::Mean ? s / double(inner) : s);
          break;
        }
        case ReduceOp::Var: {  // two passes: mean, then squared deviations
          double m = 0, v = 0;
          for (int64_t j = 0; j < inner; ++j) m += row[j];
          m /= double(inner);
          for (int64_t j = 0; j < inner; ++j) v += (row[j] - m) * (row[j] - m);
          yp[r] = T(v / (double(inner) - correction));
          break;
        }
        case ReduceOp::Max:
        case ReduceOp::Min: {
          int64_t best = 0;
          for (int64_t j = 1; j < inner; ++j) {
            bool better = op == ReduceOp::Max ? row[j] > row[best] : row[j] < row[best];
            if (better || (std::isnan(row[j]) && !std::isnan(row[best]))) best = j;
          }
          yp[r] = row[best];
          if (arg) arg[r] = best;
          break;
        }
      }
    }
  });
}

void reduce_columns(ReduceOp op, DType t, const void* x, void* y, int64_t rows, int64_t cols) {
  constexpr int64_t kBlock = 256;  // columns per owner: one cache-friendly strip of each row
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
    int64_t blocks = (cols + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (rows * cols > 32768 && blocks > 1)
    for (int64_t b = 0; b < blocks; ++b) {
      int64_t c0 = b * kBlock, n = std::min(kBlock, cols - c0);
      double acc[kBlock] = {};
      for (int64_t r = 0; r < rows; ++r) {
        const T* row = xp + r * cols + c0;
        for (int64_t j = 0; j < n; ++j) acc[j] += row[j];
      }
      for (int64_t j = 0; j < n; ++j)
        yp[c0 + j] = T(op == ReduceOp::Mean ? acc[j] / double(rows) : acc[j]);
    }
  });
}

}  // namespace vc::cpu_kernels
