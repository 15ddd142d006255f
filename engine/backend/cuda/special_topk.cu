// Row-wise top-k and argsort on the GPU (engine/backend/cpu/special_topk.cpp is the
// reference) with the same total order: by value (NaN counts as the largest), then by lower
// index. The order is total, so each element's rank — the number of elements before it — is
// unique and the result is the CPU's exactly. One block per row; each thread ranks its
// elements against the row, read through shared memory in tiles: O(n²) work per row, fine
// for class counts and token counts (thousands), not meant for rows of millions.
#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

constexpr int kTopkTile = 1024;

template <class T> __device__ bool greater_nan(T a, T b) {
  return isnan(double(a)) ? !isnan(double(b)) : a > b;
}

// Whether element (a, i) comes before (b, j).
template <class T> __device__ bool before(bool largest, T a, int64_t i, T b, int64_t j) {
  if (largest ? greater_nan(a, b) : greater_nan(b, a)) return true;
  if (largest ? greater_nan(b, a) : greater_nan(a, b)) return false;
  return i < j;
}

template <class T>
__global__ void topk_kernel(const T* x, T* values, int64_t* idx, int64_t rows, int64_t n,
                            int64_t k, bool largest) {
  __shared__ T tile[kTopkTile];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const T* v = x + row * n;
    // Each thread ranks the elements i = threadIdx.x + q * blockDim.x; the loop bounds are
    // the same for every thread so that all reach each barrier.
    for (int64_t base = 0; base < n; base += blockDim.x) {
      int64_t i = base + threadIdx.x;
      T mine = i < n ? v[i] : T(0);
      int64_t rank = 0;
      for (int64_t t0 = 0; t0 < n; t0 += kTopkTile) {
        int64_t len = min(int64_t(kTopkTile), n - t0);
        __syncthreads();
        for (int64_t j = threadIdx.x; j < len; j += blockDim.x) tile[j] = v[t0 + j];
        __syncthreads();
        if (i < n)
          for (int64_t j = 0; j < len; ++j) rank += before(largest, tile[j], t0 + j, mine, i);
      }
      if (i < n && rank < k) {
        idx[row * k + rank] = i;
        if (values) values[row * k + rank] = mine;
      }
    }
  }
}

}  // namespace

void topk(DType t, const void* x, void* values, int64_t* idx, int64_t rows, int64_t n, int64_t k,
          bool largest) {
  if (rows <= 0 || k <= 0 || n <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    topk_kernel<T><<<row_blocks(rows), kRowThreads, 0, stream()>>>(
        static_cast<const T*>(x), static_cast<T*>(values), idx, rows, n, k, largest);
  });
  VC_CUDA_LAUNCH("topk");
}

}  // namespace vc::cuda_kernels
