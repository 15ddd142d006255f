// Shared helpers of the CUDA kernels (included by the .cu files of this folder only):
// error checks, launch sizes, device scratch through the caching allocator, and the
// device-side index check that lets ops fail cleanly on bad indices.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/backend/cuda/cuda_kernels.h"
#include "engine/core/error.h"

namespace vc::cuda_kernels {

// Throws vc::Error naming the call and CUDA's message.
void check_cuda(cudaError_t e, const char* what);
#define VC_CUDA(call) ::vc::cuda_kernels::check_cuda((call), #call)
// After a kernel launch: reports a bad launch configuration at once.
#define VC_CUDA_LAUNCH(what) ::vc::cuda_kernels::check_cuda(cudaGetLastError(), what)

// The one stream every kernel, copy and cuBLAS call runs on.
inline cudaStream_t stream() { return 0; }

constexpr int kThreads = 256;
inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > 1048576) b = 1048576;  // kernels loop with a grid stride past this
  return unsigned(b);
}

// Grid-stride loop over [0, n).
#define VC_GRID_LOOP(i, n)                                                     \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

// Device scratch from the caching allocator (so the counters see it); freed on scope exit.
// Freeing is stream-ordered: the block is only reused by later work on the same stream.
struct DeviceScratch {
  explicit DeviceScratch(size_t bytes) : n(bytes ? bytes : 1), p(alloc(n)) {}
  ~DeviceScratch() { free(p, n); }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  template <class T> T* as() const { return static_cast<T*>(p); }
  size_t n;
  void* p;
};

// Uploads a host vector into fresh scratch.
template <class T> struct Upload : DeviceScratch {
  explicit Upload(const std::vector<T>& v) : DeviceScratch(v.size() * sizeof(T)) {
    if (!v.empty())
      VC_CUDA(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  T* get() const { return as<T>(); }
};

// Checks on the device that every idx[i] (i < n) lies in [0, bound) (or equals `ignore` when
// allow_ignore), and throws "op: index v at position i is out of range [0, bound)" naming
// the first bad position, like the CPU op layer does. Synchronises the stream.
void check_indices_on_device(const char* op, const int64_t* idx, int64_t n, int64_t bound,
                             bool allow_ignore = false, int64_t ignore = 0);

template <class F> void dispatch_float(DType t, F&& f) {
  if (t == DType::F64) f(double{});
  else f(float{});
}

}  // namespace vc::cuda_kernels

namespace vc::cuda_kernels {

// One block per row: a fixed reduction tree over shared memory (blockDim.x a power of two),
// so a row's sum has the same bits on every run. Every thread gets the result.
__device__ inline double block_sum(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

__device__ inline double block_max(double v, double* sh) {
  sh[threadIdx.x] = v;
  __syncthreads();
  for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sh[threadIdx.x] = fmax(sh[threadIdx.x], sh[threadIdx.x + s]);
    __syncthreads();
  }
  double r = sh[0];
  __syncthreads();
  return r;
}

// Row-block launches: one block of kRowThreads per row (grid-stride over rows past 2^20).
constexpr int kRowThreads = 256;
inline unsigned row_blocks(int64_t rows) { return blocks_for(rows, 1); }

}  // namespace vc::cuda_kernels
