// Index kernels. Sums into shared destinations are done by the destination's owner, which
// adds its sources in increasing source order (no atomics). index_select, gather and
// scatter_add check their indices on the device first and throw like the CPU op layer
// (which only checks CPU tensors itself).
#include <vector>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

template <class E>
__global__ void index_select_kernel(const E* x, const int64_t* idx, E* y, int64_t n_src,
                                    int64_t n_idx, int64_t inner, int64_t total) {
  VC_GRID_LOOP(at, total) {
    int64_t k = at % inner, oi = at / inner, o = oi / n_idx, i = oi % n_idx;
    y[at] = x[(o * n_src + idx[i]) * inner + k];
  }
}

// y[o, j, k] = sum over s in start[j]..start[j+1] of x[o, src[s], k], s increasing.
template <class T>
__global__ void index_add_kernel(const T* x, const int64_t* start, const int64_t* src, T* y,
                                 int64_t n_idx, int64_t n_dst, int64_t inner, int64_t total) {
  VC_GRID_LOOP(at, total) {
    int64_t k = at % inner, oj = at / inner, o = oj / n_dst, j = oj % n_dst;
    T acc = T(0);
    for (int64_t s = start[j]; s < start[j + 1]; ++s) acc += x[(o * n_idx + src[s]) * inner + k];
    y[at] = acc;
  }
}

template <class E>
__global__ void gather_kernel(const E* x, const int64_t* idx, E* y, int64_t n_src,
                              int64_t n_idx, int64_t inner, int64_t total) {
  VC_GRID_LOOP(at, total) {
    int64_t k = at % inner, o = at / inner / n_idx;
    y[at] = x[(o * n_src + idx[at]) * inner + k];
  }
}

// Each (o, k) column owns its n_dst destinations and adds its sources in increasing i.
template <class T>
__global__ void scatter_add_kernel(const T* x, const int64_t* idx, T* y, int64_t n_idx,
                                   int64_t n_dst, int64_t inner, int64_t columns) {
  VC_GRID_LOOP(ok, columns) {
    int64_t o = ok / inner, k = ok % inner;
    for (int64_t i = 0; i < n_idx; ++i) {
      int64_t at = (o * n_idx + i) * inner + k;
      y[(o * n_dst + idx[at]) * inner + k] += x[at];
    }
  }
}

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
  int64_t total = outer * n_idx * inner;
  if (total <= 0) return;
  check_indices_on_device("index_select", idx, n_idx, n_src);
  by_elem_size(t, [&](auto zero) {
    using E = decltype(zero);
    index_select_kernel<E><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const E*>(x), idx, static_cast<E*>(y), n_src, n_idx, inner, total);
  });
  VC_CUDA_LAUNCH("index_select");
}

void index_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_idx,
               int64_t n_dst, int64_t inner) {
  int64_t total = outer * n_dst * inner;
  if (total <= 0) return;
  // CSR of destination -> sources, built on the host from the (small) index vector with the
  // CPU's stable counting sort: sources in increasing order.
  std::vector<int64_t> h_idx(size_t(n_idx > 0 ? n_idx : 0));
  if (n_idx > 0) to_host(h_idx.data(), idx, size_t(n_idx) * sizeof(int64_t));
  std::vector<int64_t> start(size_t(n_dst + 1), 0), src(size_t(n_idx > 0 ? n_idx : 0));
  for (int64_t i = 0; i < n_idx; ++i) {
    VC_CHECK(h_idx[i] >= 0 && h_idx[i] < n_dst, "index_add: index ", h_idx[i], " at position ",
             i, " is out of range [0, ", n_dst, ")");
    ++start[h_idx[i] + 1];
  }
  for (int64_t j = 0; j < n_dst; ++j) start[j + 1] += start[j];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t i = 0; i < n_idx; ++i) src[fill[h_idx[i]]++] = i;
  Upload<int64_t> d_start(start), d_src(src);
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    index_add_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x), d_start.get(), d_src.get(), static_cast<T*>(y), n_idx, n_dst,
        inner, total);
  });
  VC_CUDA_LAUNCH("index_add");
}

void gather(DType t, const void* x, const int64_t* idx, void* y, int64_t outer, int64_t n_src,
            int64_t n_idx, int64_t inner) {
  int64_t total = outer * n_idx * inner;
  if (total <= 0) return;
  check_indices_on_device("gather", idx, total, n_src);
  by_elem_size(t, [&](auto zero) {
    using E = decltype(zero);
    gather_kernel<E><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const E*>(x), idx, static_cast<E*>(y), n_src, n_idx, inner, total);
  });
  VC_CUDA_LAUNCH("gather");
}

void scatter_add(DType t, const void* x, const int64_t* idx, void* y, int64_t outer,
                 int64_t n_idx, int64_t n_dst, int64_t inner) {
  int64_t columns = outer * inner;
  if (columns <= 0 || n_idx <= 0) return;
  check_indices_on_device("scatter_add", idx, outer * n_idx * inner, n_dst);
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    scatter_add_kernel<T><<<blocks_for(columns), kThreads, 0, stream()>>>(
        static_cast<const T*>(x), idx, static_cast<T*>(y), n_idx, n_dst, inner, columns);
  });
  VC_CUDA_LAUNCH("scatter_add");
}

}  // namespace vc::cuda_kernels
