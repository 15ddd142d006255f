// Row reductions: one block owns each output row; every thread walks a fixed strided subset
// of the row and the block combines the partial results in a fixed tree (no atomics), so
// the bits are the same on every run. Sums accumulate in double, like the CPU.
#include <cmath>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

// Whether (v, i) comes before (w, j) for Max (or Min): NaN beats every number, then the
// extreme value, then the lower index — the CPU's left-to-right scan gives the same answer.
template <class T> __device__ bool wins(bool is_max, T v, int64_t i, T w, int64_t j) {
  bool vn = isnan(double(v)), wn = isnan(double(w));
  if (vn || wn) return vn && (!wn || i < j);
  if (v == w) return i < j;
  return is_max ? v > w : v < w;
}

template <class T>
__global__ void reduce_kernel(ReduceOp op, const T* x, T* y, int64_t* arg, int64_t outer,
                              int64_t inner, double correction) {
  __shared__ double sh[kRowThreads];
  __shared__ int64_t shi[kRowThreads];
  for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
    const T* row = x + r * inner;
    switch (op) {
      case ReduceOp::Sum:
      case ReduceOp::Mean: {
        double s = 0;
        for (int64_t j = threadIdx.x; j < inner; j += blockDim.x) s += row[j];
        s = block_sum(s, sh);
        if (threadIdx.x == 0) y[r] = T(op == ReduceOp::Mean ? s / double(inner) : s);
        break;
      }
      case ReduceOp::Var: {  // two passes: mean, then squared deviations
        double m = 0, v = 0;
        for (int64_t j = threadIdx.x; j < inner; j += blockDim.x) m += row[j];
        m = block_sum(m, sh) / double(inner);
        for (int64_t j = threadIdx.x; j < inner; j += blockDim.x) v += (row[j] - m) * (row[j] - m);
        v = block_sum(v, sh);
        if (threadIdx.x == 0) y[r] = T(v / (double(inner) - correction));
        break;
      }
      case ReduceOp::Max:
      case ReduceOp::Min: {
        bool is_max = op == ReduceOp::Max;
        int64_t best = threadIdx.x < inner ? int64_t(threadIdx.x) : -1;
        for (int64_t j = threadIdx.x + blockDim.x; j < inner; j += blockDim.x)
          if (wins(is_max, row[j], j, row[best], best)) best = j;
        shi[threadIdx.x] = best;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
          if (threadIdx.x < s) {
            int64_t a = shi[threadIdx.x], b = shi[threadIdx.x + s];
            if (b >= 0 && (a < 0 || wins(is_max, row[b], b, row[a], a))) shi[threadIdx.x] = b;
          }
          __syncthreads();
        }
        if (threadIdx.x == 0 && shi[0] >= 0) {  // an empty row has no extreme
          int64_t b = shi[0];
          y[r] = row[b];
          if (arg) arg[r] = b;
        }
        __syncthreads();
        break;
      }
    }
  }
}

// One thread owns each column and sums it in row order in double: the CPU's order and bits.
template <class T>
__global__ void reduce_columns_kernel(bool mean, const T* x, T* y, int64_t rows, int64_t cols) {
  VC_GRID_LOOP(c, cols) {
    double acc = 0;
    for (int64_t r = 0; r < rows; ++r) acc += double(x[r * cols + c]);
    y[c] = T(mean ? acc / double(rows) : acc);
  }
}

}  // namespace

void reduce_columns(ReduceOp op, DType t, const void* x, void* y, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    reduce_columns_kernel<T><<<blocks_for(cols), kThreads, 0, stream()>>>(
        op == ReduceOp::Mean, static_cast<const T*>(x), static_cast<T*>(y), rows, cols);
  });
  VC_CUDA_LAUNCH("reduce_columns");
}

void reduce(ReduceOp op, DType t, const void* x, void* y, int64_t* arg, int64_t outer,
            int64_t inner, double correction) {
  if (outer <= 0) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    reduce_kernel<T><<<row_blocks(outer), kRowThreads, 0, stream()>>>(
        op, static_cast<const T*>(x), static_cast<T*>(y), arg, outer, inner, correction);
  });
  VC_CUDA_LAUNCH("reduce");
}

}  // namespace vc::cuda_kernels
