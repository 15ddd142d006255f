// Softmax, layernorm and cross-entropy, forward and backward. Rows are independent and
// owned by one thread; layernorm's weight/bias gradients are summed over rows by the owner
// of each column block.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"
#include "engine/backend/cpu/fast_exp.h"

namespace vc::cpu_kernels {

namespace {
constexpr int64_t kColumnBlock = 64;

template <class T> double row_max(const T* x, int64_t n) {
  double m = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < n; ++j) m = std::max(m, double(x[j]));
  return m;
}

// Σ f(j) for j < n in 8 fixed lanes (lane l sums j ≡ l mod 8 in order), then the lanes in
// a fixed tree. Eight independent chains instead of one serial chain; the lanes are written
// out in the source, so the order (and the bits) depend on neither the ISA nor the threads.
template <class F> inline double lane_sum(int64_t n, F f) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) acc[l] += f(j + l);
  for (int l = 0; j + l < n; ++l) acc[l] += f(j + l);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Two sums in one pass over the row, each in the lanes of lane_sum.
template <class F> inline void lane_sum2(int64_t n, F f, double& s1, double& s2) {
  double a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l) f(j + l, a[l], b[l]);
  for (int l = 0; j + l < n; ++l) f(j + l, a[l], b[l]);
  s1 = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
  s2 = ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));
}

// log(sum(exp(x))) of a row, stable; -inf for a row of -inf.
template <class T> double row_logsumexp(const T* x, int64_t n) {
  double m = row_max(x, n);
  if (std::isinf(m) && m < 0) return m;
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(double(x[j]) - m);
  return m + std::log(s);
}
}  // namespace

void softmax(DType t, const void* x, void* y, int64_t rows, int64_t n, bool log) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    T* yp = static_cast<T*>(y);
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * n;
      T* yr = yp + r * n;
      T m = T(row_max(xr, n));
      if (std::isinf(m) && m < 0) {  // every entry -inf: defined as 0 (log: -inf)
        for (int64_t j = 0; j < n; ++j) yr[j] = log ? T(-INFINITY) : T(0);
        continue;
      }
      // e_j = exp(x_j - m) in T through the vectorised fast_exp, summed in double in order.
      for (int64_t j = 0; j < n; ++j) yr[j] = fast_exp(T(xr[j] - m));
      double s = 0;
      for (int64_t j = 0; j < n; ++j) s += double(yr[j]);
      if (log) {
        T shift = T(double(m) + std::log(s));
        for (int64_t j = 0; j < n; ++j) yr[j] = xr[j] - shift;
      } else {
        T inv = T(1.0 / s);
        for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
      }
    }
  });
}

void softmax_backward(DType t, const void* y, const void* gy, void* gx, int64_t rows, int64_t n,
                      bool log) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T *yp = static_cast<const T*>(y), *gp = static_cast<const T*>(gy);
    T* out = static_cast<T*>(gx);
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t r = 0; r < rows; ++r) {
      const T *yr = yp + r * n, *gr = gp + r * n;
      T* o = out + r * n;
      double s = 0;
      if (log) {  // gx = g - softmax * sum(g)
        for (int64_t j = 0; j < n; ++j) s += gr[j];
        for (int64_t j = 0; j < n; ++j) {
          double p = std::isinf(double(yr[j])) ? 0.0 : std::exp(double(yr[j]));
          o[j] = T(std::isinf(double(yr[j])) ? 0.0 : double(gr[j]) - p * s);
        }
      } else {  // gx = y * (g - sum(g * y))
        for (int64_t j = 0; j < n; ++j) s += double(gr[j]) * yr[j];
        for (int64_t j = 0; j < n; ++j) o[j] = T(double(yr[j]) * (double(gr[j]) - s));
      }
    }
  });
}

void layernorm(DType t, const void* x, const void* w, const void* b, void* y, void* mean,
               void* rstd, int64_t rows, int64_t n, double eps) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T *xp = static_cast<const T*>(x), *wp = static_cast<const T*>(w),
            *bp = static_cast<const T*>(b);
    T *yp = static_cast<T*>(y), *mp = static_cast<T*>(mean), *rp = static_cast<T*>(rstd);
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * n;
      // Two passes (mean, then squared deviations: no cancellation), each in 8 lanes.
      double m = lane_sum(n, [&](int64_t j) { return double(xr[j]); }) / double(n);
      double v = lane_sum(n, [&](int64_t j) {
        double c = double(xr[j]) - m;
        return c * c;
      });
      double rs = 1.0 / std::sqrt(v / double(n) + eps);
      mp[r] = T(m);
      rp[r] = T(rs);
      for (int64_t j = 0; j < n; ++j) {
        double h = (double(xr[j]) - m) * rs;
        yp[r * n + j] = T(h * (wp ? double(wp[j]) : 1.0) + (bp ? double(bp[j]) : 0.0));
      }
    }
  });
}

void layernorm_backward(DType t, const void* x, const void* w, const void* mean,
                        const void* rstd, const void* gy, void* gx, void* gw, void* gb,
                        int64_t rows, int64_t n) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T *xp = static_cast<const T*>(x), *wp = static_cast<const T*>(w),
            *mp = static_cast<const T*>(mean), *rp = static_cast<const T*>(rstd),
            *gp = static_cast<const T*>(gy);
    T *gxp = static_cast<T*>(gx), *gwp = static_cast<T*>(gw), *gbp = static_cast<T*>(gb);
    // gx = rstd * (dh - mean(dh) - h * mean(dh * h)), with h = (x - mean) * rstd, dh = g * w.
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t r = 0; r < rows; ++r) {
      const T *xr = xp + r * n, *gr = gp + r * n;
      double m = mp[r], rs = rp[r], sum_dh = 0, sum_dh_h = 0;
      lane_sum2(n, [&](int64_t j, double& a, double& b) {
        double dh = double(gr[j]) * (wp ? double(wp[j]) : 1.0);
        a += dh;
        b += dh * (double(xr[j]) - m) * rs;
      }, sum_dh, sum_dh_h);
      sum_dh /= double(n);
      sum_dh_h /= double(n);
      for (int64_t j = 0; j < n; ++j) {
        double h = (double(xr[j]) - m) * rs;
        double dh = double(gr[j]) * (wp ? double(wp[j]) : 1.0);
        gxp[r * n + j] = T(rs * (dh - sum_dh - h * sum_dh_h));
      }
    }
    if (!gwp && !gbp) return;
    int64_t blocks = (n + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      int64_t j0 = blk * kColumnBlock, j1 = std::min(n, j0 + kColumnBlock);
      std::vector<double> sw(j1 - j0, 0.0), sb(j1 - j0, 0.0);
      // Each column sums over the rows in order; 16 columns at a time in registers (a
      // fixed-size chunk), so the sums do not round-trip through memory row after row.
      int64_t j = j0;
      for (; j + 16 <= j1; j += 16) {
        double aw[16] = {}, ab[16] = {};
        for (int64_t r = 0; r < rows; ++r) {
          double m = mp[r], rs = rp[r];
          const T *gr = gp + r * n + j, *xr = xp + r * n + j;
          for (int c = 0; c < 16; ++c) {
            double g = gr[c];
            aw[c] += g * (double(xr[c]) - m) * rs;
            ab[c] += g;
          }
        }
        for (int c = 0; c < 16; ++c) sw[j - j0 + c] = aw[c], sb[j - j0 + c] = ab[c];
      }
      for (int64_t r = 0; r < rows && j < j1; ++r) {
        double m = mp[r], rs = rp[r];
        for (int64_t jj = j; jj < j1; ++jj) {
          double g = gp[r * n + jj];
          sw[jj - j0] += g * (double(xp[r * n + jj]) - m) * rs;
          sb[jj - j0] += g;
        }
      }
      for (int64_t c = j0; c < j1; ++c) {
        if (gwp) gwp[c] = T(sw[c - j0]);
        if (gbp) gbp[c] = T(sb[c - j0]);
      }
    }
  });
}

namespace {
// The target distribution q of row r at class j (label smoothing applied), and sum_j q.
template <class T>
double target_at(const int64_t* labels, const T* soft, int64_t r, int64_t j, int64_t n,
                 double eps) {
  double base = labels ? double(labels[r] == j) : double(soft[r * n + j]);
  return (1.0 - eps) * base + eps / double(n);
}
}  // namespace

void cross_entropy(DType t, const void* logits, const int64_t* labels, const void* soft,
                   void* loss, void* lse, int64_t rows, int64_t n, double eps,
                   int64_t ignore_index) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T *xp = static_cast<const T*>(logits), *sp = static_cast<const T*>(soft);
    T *lp = static_cast<T*>(loss), *zp = static_cast<T*>(lse);
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = xp + r * n;
      double z = row_logsumexp(xr, n);
      zp[r] = T(z);
      if (labels && labels[r] == ignore_index) {
        lp[r] = T(0);
        continue;
      }
      double l = 0;  // sum_j q_j (lse - x_j)
      for (int64_t j = 0; j < n; ++j) {
        double q = target_at(labels, sp, r, j, n, eps);
        if (q != 0) l += q * (z - double(xr[j]));
      }
      lp[r] = T(l);
    }
  });
}

void cross_entropy_backward(DType t, const void* logits, const int64_t* labels, const void* soft,
                            const void* lse, const void* gloss, void* glogits, int64_t rows,
                            int64_t n, double eps, int64_t ignore_index) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T *xp = static_cast<const T*>(logits), *sp = static_cast<const T*>(soft),
            *zp = static_cast<const T*>(lse), *gp = static_cast<const T*>(gloss);
    T* out = static_cast<T*>(glogits);
#pragma omp parallel for schedule(static) if (rows * n > 16384)
    for (int64_t r = 0; r < rows; ++r) {
      T* o = out + r * n;
      if (labels && labels[r] == ignore_index) {
        std::fill(o, o + n, T(0));
        continue;
      }
      double total_q = 0;
      for (int64_t j = 0; j < n; ++j) total_q += target_at(labels, sp, r, j, n, eps);
      for (int64_t j = 0; j < n; ++j) {  // d/dx_j = p_j * sum(q) - q_j
        double p = std::exp(double(xp[r * n + j]) - double(zp[r]));
        o[j] = T(double(gp[r]) * (p * total_q - target_at(labels, sp, r, j, n, eps)));
      }
    }
  });
}

}  // namespace vc::cpu_kernels
