// Softmax, layernorm and cross-entropy, forward and backward: one block per row, row sums in
// double through a fixed tree (cuda_common.cuh). Layernorm's weight/bias gradients are
// summed per column by one owner: first each fixed chunk of kLnChunk rows, then the chunks
// in order (two stages, no atomics, independent of the launch size).
#include <cmath>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

constexpr int64_t kLnChunk = 64;
constexpr double kInf = INFINITY;

// log(sum(exp(x))) of a row, stable; -inf for a row of -inf (or an empty row).
template <class T> __device__ double row_logsumexp(const T* x, int64_t n, double* sh) {
  double m = -kInf;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m = fmax(m, double(x[j]));
  m = block_max(m, sh);
  if (isinf(m) && m < 0) return m;
  double s = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += exp(double(x[j]) - m);
  s = block_sum(s, sh);
  return m + log(s);
}

template <class T>
__global__ void softmax_kernel(const T* x, T* y, int64_t rows, int64_t n, bool take_log) {
  __shared__ double sh[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    double lse = row_logsumexp(xr, n, sh);
    bool dead = isinf(lse) && lse < 0;  // every entry -inf: defined as 0 (log: -inf)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      double v = dead ? (take_log ? -kInf : 0.0) : double(xr[j]) - lse;
      yr[j] = T(take_log || dead ? v : exp(v));
    }
  }
}

template <class T>
__global__ void softmax_backward_kernel(const T* y, const T* gy, T* gx, int64_t rows, int64_t n,
                                        bool take_log) {
  __shared__ double sh[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *yr = y + r * n, *gr = gy + r * n;
    T* o = gx + r * n;
    double s = 0;
    if (take_log) {  // gx = g - softmax * sum(g)
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += gr[j];
      s = block_sum(s, sh);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
        bool inf = isinf(double(yr[j]));
        double p = inf ? 0.0 : exp(double(yr[j]));
        o[j] = T(inf ? 0.0 : double(gr[j]) - p * s);
      }
    } else {  // gx = y * (g - sum(g * y))
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) s += double(gr[j]) * yr[j];
      s = block_sum(s, sh);
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
        o[j] = T(double(yr[j]) * (double(gr[j]) - s));
    }
  }
}

template <class T>
__global__ void layernorm_kernel(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd,
                                 int64_t rows, int64_t n, double eps) {
  __shared__ double sh[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    double m = 0, v = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) m += xr[j];
    m = block_sum(m, sh) / double(n);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) v += (xr[j] - m) * (xr[j] - m);
    v = block_sum(v, sh);
    double rs = 1.0 / sqrt(v / double(n) + eps);
    if (threadIdx.x == 0) {
      mean[r] = T(m);
      rstd[r] = T(rs);
    }
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      double h = (double(xr[j]) - m) * rs;
      y[r * n + j] = T(h * (w ? double(w[j]) : 1.0) + (b ? double(b[j]) : 0.0));
    }
  }
}

// gx = rstd * (dh - mean(dh) - h * mean(dh * h)), with h = (x - mean) * rstd, dh = g * w.
template <class T>
__global__ void layernorm_backward_kernel(const T* x, const T* w, const T* mean, const T* rstd,
                                          const T* gy, T* gx, int64_t rows, int64_t n) {
  __shared__ double sh[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T *xr = x + r * n, *gr = gy + r * n;
    double m = mean[r], rs = rstd[r], sum_dh = 0, sum_dh_h = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      double dh = double(gr[j]) * (w ? double(w[j]) : 1.0);
      sum_dh += dh;
      sum_dh_h += dh * (double(xr[j]) - m) * rs;
    }
    sum_dh = block_sum(sum_dh, sh) / double(n);
    sum_dh_h = block_sum(sum_dh_h, sh) / double(n);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      double h = (double(xr[j]) - m) * rs;
      double dh = double(gr[j]) * (w ? double(w[j]) : 1.0);
      gx[r * n + j] = T(rs * (dh - sum_dh - h * sum_dh_h));
    }
  }
}

// Stage 1: partial[c, j] = sums over rows of chunk c, owner = (chunk, column).
template <class T>
__global__ void layernorm_param_partial(const T* x, const T* mean, const T* rstd, const T* gy,
                                        double* pw, double* pb, int64_t rows, int64_t n,
                                        int64_t chunks) {
  VC_GRID_LOOP(cj, chunks * n) {
    int64_t c = cj / n, j = cj % n;
    double sw = 0, sb = 0;
    int64_t r1 = min(rows, (c + 1) * kLnChunk);
    for (int64_t r = c * kLnChunk; r < r1; ++r) {
      double g = gy[r * n + j];
      sw += g * (double(x[r * n + j]) - double(mean[r])) * double(rstd[r]);
      sb += g;
    }
    pw[cj] = sw;
    pb[cj] = sb;
  }
}

// Stage 2: column j sums its chunks in order.
template <class T>
__global__ void layernorm_param_final(const double* pw, const double* pb, T* gw, T* gb,
                                      int64_t n, int64_t chunks) {
  VC_GRID_LOOP(j, n) {
    double sw = 0, sb = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      sw += pw[c * n + j];
      sb += pb[c * n + j];
    }
    if (gw) gw[j] = T(sw);
    if (gb) gb[j] = T(sb);
  }
}

// The target distribution q of row r at class j (label smoothing applied).
template <class T>
__device__ double target_at(const int64_t* labels, const T* soft, int64_t r, int64_t j,
                            int64_t n, double eps) {
  double base = labels ? double(labels[r] == j) : double(soft[r * n + j]);
  return (1.0 - eps) * base + eps / double(n);
}

template <class T>
__global__ void cross_entropy_kernel(const T* x, const int64_t* labels, const T* soft, T* loss,
                                     T* lse, int64_t rows, int64_t n, double eps,
                                     int64_t ignore_index) {
  __shared__ double sh[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    double z = row_logsumexp(xr, n, sh);
    if (threadIdx.x == 0) lse[r] = T(z);
    if (labels && labels[r] == ignore_index) {
      if (threadIdx.x == 0) loss[r] = T(0);
      continue;  // uniform across the block: no thread waits at a barrier alone
    }
    double l = 0;  // sum_j q_j (lse - x_j)
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
      double q = target_at(labels, soft, r, j, n, eps);
      if (q != 0) l += q * (z - double(xr[j]));
    }
    l = block_sum(l, sh);
    if (threadIdx.x == 0) loss[r] = T(l);
  }
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* x, const int64_t* labels, const T* soft,
                                              const T* lse, const T* gloss, T* out, int64_t rows,
                                              int64_t n, double eps, int64_t ignore_index) {
  __shared__ double sh[kRowThreads];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    T* o = out + r * n;
    if (labels && labels[r] == ignore_index) {
      for (int64_t j = threadIdx.x; j < n; j += blockDim.x) o[j] = T(0);
      continue;
    }
    double total_q = 0;
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x)
      total_q += target_at(labels, soft, r, j, n, eps);
    total_q = block_sum(total_q, sh);
    for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {  // d/dx_j = p_j * sum(q) - q_j
      double p = exp(double(x[r * n + j]) - double(lse[r]));
      o[j] = T(double(gloss[r]) * (p * total_q - target_at(labels, soft, r, j, n, eps)));
    }
  }
}

}  // namespace

void softmax(DType t, const void* x, void* y, int64_t rows, int64_t n, bool log) {
  if (rows <= 0 || n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    softmax_kernel<T><<<row_blocks(rows), kRowThreads, 0, stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(y), rows, n, log);
  });
  VC_CUDA_LAUNCH("softmax");
}

void softmax_backward(DType t, const void* y, const void* gy, void* gx, int64_t rows, int64_t n,
                      bool log) {
  if (rows <= 0 || n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    softmax_backward_kernel<T><<<row_blocks(rows), kRowThreads, 0, stream()>>>(
        static_cast<const T*>(y), static_cast<const T*>(gy), static_cast<T*>(gx), rows, n, log);
  });
  VC_CUDA_LAUNCH("softmax_backward");
}

void layernorm(DType t, const void* x, const void* w, const void* b, void* y, void* mean,
               void* rstd, int64_t rows, int64_t n, double eps) {
  if (rows <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    layernorm_kernel<T><<<row_blocks(rows), kRowThreads, 0, stream()>>>(
        static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(b),
        static_cast<T*>(y), static_cast<T*>(mean), static_cast<T*>(rstd), rows, n, eps);
  });
  VC_CUDA_LAUNCH("layernorm");
}

void layernorm_backward(DType t, const void* x, const void* w, const void* mean,
                        const void* rstd, const void* gy, void* gx, void* gw, void* gb,
                        int64_t rows, int64_t n) {
  if (n <= 0) return;
  int64_t chunks = (rows + kLnChunk - 1) / kLnChunk;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    const T *xp = static_cast<const T*>(x), *mp = static_cast<const T*>(mean),
            *rp = static_cast<const T*>(rstd), *gp = static_cast<const T*>(gy);
    if (rows > 0) {
      layernorm_backward_kernel<T><<<row_blocks(rows), kRowThreads, 0, stream()>>>(
          xp, static_cast<const T*>(w), mp, rp, gp, static_cast<T*>(gx), rows, n);
      VC_CUDA_LAUNCH("layernorm_backward");
    }
    if (!gw && !gb) return;
    DeviceScratch partial(size_t(2 * std::max<int64_t>(chunks, 1) * n) * sizeof(double));
    double* pw = partial.as<double>();
    double* pb = pw + std::max<int64_t>(chunks, 1) * n;
    if (chunks > 0) {
      layernorm_param_partial<T><<<blocks_for(chunks * n), kThreads, 0, stream()>>>(
          xp, mp, rp, gp, pw, pb, rows, n, chunks);
      VC_CUDA_LAUNCH("layernorm_param_partial");
    }
    layernorm_param_final<T><<<blocks_for(n), kThreads, 0, stream()>>>(
        pw, pb, static_cast<T*>(gw), static_cast<T*>(gb), n, chunks);
    VC_CUDA_LAUNCH("layernorm_param_final");
  });
}

void cross_entropy(DType t, const void* logits, const int64_t* labels, const void* soft,
                   void* loss, void* lse, int64_t rows, int64_t n, double eps,
                   int64_t ignore_index) {
  if (rows <= 0) return;
  if (labels) check_indices_on_device("cross_entropy", labels, rows, n, true, ignore_index);
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_kernel<T><<<row_blocks(rows), kRowThreads, 0, stream()>>>(
        static_cast<const T*>(logits), labels, static_cast<const T*>(soft), static_cast<T*>(loss),
        static_cast<T*>(lse), rows, n, eps, ignore_index);
  });
  VC_CUDA_LAUNCH("cross_entropy");
}

void cross_entropy_backward(DType t, const void* logits, const int64_t* labels, const void* soft,
                            const void* lse, const void* gloss, void* glogits, int64_t rows,
                            int64_t n, double eps, int64_t ignore_index) {
  if (rows <= 0 || n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    cross_entropy_backward_kernel<T><<<row_blocks(rows), kRowThreads, 0, stream()>>>(
        static_cast<const T*>(logits), labels, static_cast<const T*>(soft),
        static_cast<const T*>(lse), static_cast<const T*>(gloss), static_cast<T*>(glogits), rows,
        n, eps, ignore_index);
  });
  VC_CUDA_LAUNCH("cross_entropy_backward");
}

}  // namespace vc::cuda_kernels
