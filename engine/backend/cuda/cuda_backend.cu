// The CUDA backend's kernel table, and how it reaches backend_for().
//
// engine/backend/backend.cpp calls vc::cuda_backend_init() the first time a CUDA device is
// asked for (the call is what makes the linker keep this object from the static library).
// It returns null when no device is usable, and backend_for() then throws naming the device.
#include <mutex>
#include <string>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

void check_cuda(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return;
  fail("cuda: ", what, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

int device_count() {
  static int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky "no driver / no device" error
      return 0;
    }
    return n;
  }();
  return count;
}

void synchronize() { VC_CUDA(cudaDeviceSynchronize()); }

namespace {

// Finds the first position whose index is out of range: atomicMin on an integer (not a
// float), so the reported position is the same on every run.
__global__ void find_bad_index(const int64_t* idx, int64_t n, int64_t bound, bool allow_ignore,
                               int64_t ignore, unsigned long long* first_bad) {
  VC_GRID_LOOP(i, n) {
    int64_t v = idx[i];
    bool ok = (v >= 0 && v < bound) || (allow_ignore && v == ignore);
    if (!ok) atomicMin(first_bad, (unsigned long long)i);
  }
}

}  // namespace

void check_indices_on_device(const char* op, const int64_t* idx, int64_t n, int64_t bound,
                             bool allow_ignore, int64_t ignore) {
  if (n <= 0) return;
  DeviceScratch flag(sizeof(unsigned long long));
  VC_CUDA(cudaMemsetAsync(flag.p, 0xff, sizeof(unsigned long long), stream()));
  find_bad_index<<<blocks_for(n), kThreads, 0, stream()>>>(idx, n, bound, allow_ignore, ignore,
                                                           flag.as<unsigned long long>());
  VC_CUDA_LAUNCH("find_bad_index");
  unsigned long long first = 0;
  VC_CUDA(cudaMemcpy(&first, flag.p, sizeof(first), cudaMemcpyDeviceToHost));
  if (first == ~0ull) return;
  int64_t value = 0;
  VC_CUDA(cudaMemcpy(&value, idx + first, sizeof(value), cudaMemcpyDeviceToHost));
  fail(op, ": index ", value, " at position ", first, " is out of range [0, ", bound, ")");
}

}  // namespace vc::cuda_kernels

namespace vc {

const Backend* cuda_backend_init() {
  using namespace cuda_kernels;
  static const Backend* table = []() -> const Backend* {
    if (device_count() <= 0) return nullptr;
    VC_CUDA(cudaSetDevice(0));
    static const Backend t = {
        "cuda",
        {cuda_kernels::alloc, cuda_kernels::free, cuda_kernels::stats, cuda_kernels::reset_peak,
         cuda_kernels::release_cache, cuda_kernels::copy_strided, cuda_kernels::fill,
         cuda_kernels::cast, cuda_kernels::to_host, cuda_kernels::from_host},
        {cuda_kernels::unary, cuda_kernels::unary_backward, cuda_kernels::binary,
         cuda_kernels::where},
        {cuda_kernels::reduce, cuda_kernels::reduce_columns},
        {cuda_kernels::gemm},
        {cuda_kernels::index_select, cuda_kernels::index_add, cuda_kernels::gather,
         cuda_kernels::scatter_add},
        {cuda_kernels::softmax, cuda_kernels::softmax_backward, cuda_kernels::layernorm,
         cuda_kernels::layernorm_backward, cuda_kernels::cross_entropy,
         cuda_kernels::cross_entropy_backward},
        {cuda_kernels::conv2d, cuda_kernels::conv2d_backward},
        {cuda_kernels::fill_random},
        cuda_kernels::attention_kernels(),
        cuda_kernels::special_kernels(),
        cuda_kernels::optim_kernels(),
    };
    return &t;
  }();
  return table;
}

}  // namespace vc
