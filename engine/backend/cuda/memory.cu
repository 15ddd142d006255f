// CUDA memory: a caching allocator with counters, host <-> device copies, strided copies,
// fills and casts. VERBCLIP_NO_CACHING=1 returns every block to the driver at once (for
// compute-sanitizer, which then sees each use after free).
//
// Blocks are cached by rounded size and reused on the one stream, so a block freed while a
// kernel still reads it is only handed out to work queued after that kernel.
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

struct Cache {
  std::mutex mu;
  std::multimap<size_t, void*> free_blocks;  // rounded size -> block
  AllocStats stats;
  bool caching = [] {
    const char* v = std::getenv("VERBCLIP_NO_CACHING");
    return !(v && *v && std::string(v) != "0");
  }();
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors may outlive static destructors
  return *c;
}

// 512-byte granules below 1 MiB, then 64 KiB granules: few distinct sizes, little waste.
size_t round_up(size_t n) {
  if (n <= 512) return 512;
  if (n <= (1u << 20)) return (n + 511) / 512 * 512;
  return (n + 65535) / 65536 * 65536;
}

void release_locked(Cache& c) {
  for (auto& kv : c.free_blocks) cudaFree(kv.second);
  c.free_blocks.clear();
  c.stats.cached_bytes = 0;
}

}  // namespace

void* alloc(size_t bytes) {
  Cache& c = cache();
  size_t n = round_up(bytes);
  std::lock_guard<std::mutex> lock(c.mu);
  void* p = nullptr;
  auto it = c.free_blocks.find(n);
  if (it != c.free_blocks.end()) {
    p = it->second;
    c.free_blocks.erase(it);
    c.stats.cached_bytes -= int64_t(n);
  } else {
    cudaError_t e = cudaMalloc(&p, n);
    if (e == cudaErrorMemoryAllocation && !c.free_blocks.empty()) {
      (void)cudaGetLastError();
      release_locked(c);  // give the cache back and try once more
      e = cudaMalloc(&p, n);
    }
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      fail("cuda alloc: out of memory allocating ", bytes, " bytes (live ", c.stats.live_bytes,
           ", cached ", c.stats.cached_bytes, "): ", cudaGetErrorString(e));
    }
  }
  c.stats.live_bytes += int64_t(n);
  c.stats.allocations += 1;
  if (c.stats.live_bytes > c.stats.peak_bytes) c.stats.peak_bytes = c.stats.live_bytes;
  return p;
}

void free(void* p, size_t bytes) {
  if (!p) return;
  Cache& c = cache();
  size_t n = round_up(bytes);
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.live_bytes -= int64_t(n);
  if (c.caching) {
    c.free_blocks.emplace(n, p);
    c.stats.cached_bytes += int64_t(n);
  } else {
    cudaFree(p);  // synchronises the device: nothing still reads the block
  }
}

AllocStats stats() {
  std::lock_guard<std::mutex> lock(cache().mu);
  return cache().stats;
}

void reset_peak() {
  std::lock_guard<std::mutex> lock(cache().mu);
  cache().stats.peak_bytes = cache().stats.live_bytes;
}

void release_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  release_locked(c);
}

void to_host(void* host_dst, const void* src, size_t bytes) {
  if (bytes) VC_CUDA(cudaMemcpy(host_dst, src, bytes, cudaMemcpyDeviceToHost));
}

void from_host(void* dst, const void* host_src, size_t bytes) {
  if (bytes) VC_CUDA(cudaMemcpy(dst, host_src, bytes, cudaMemcpyHostToDevice));
}

namespace {

template <class E>
__global__ void copy_strided_kernel(const E* src, StridedDesc s, E* dst, StridedDesc d,
                                    int64_t n) {
  VC_GRID_LOOP(i, n) {
    int64_t so = s.offset, dof = d.offset, rem = i;
    for (int k = s.ndim - 1; k >= 0; --k) {
      int64_t c = rem % s.shape[k];
      rem /= s.shape[k];
      so += c * s.strides[k];
      dof += c * d.strides[k];
    }
    dst[dof] = src[so];
  }
}

template <class E> __global__ void fill_kernel(E* p, int64_t n, E v) {
  VC_GRID_LOOP(i, n) p[i] = v;
}

template <class S, class D> __global__ void cast_kernel(const S* s, D* d, int64_t n) {
  VC_GRID_LOOP(i, n) d[i] = D(s[i]);
}

template <class E>
void copy_strided_t(const void* src, const StridedDesc& s, void* dst, const StridedDesc& d) {
  int64_t n = 1;
  for (int i = 0; i < s.ndim; ++i) n *= s.shape[i];
  if (n == 0) return;
  copy_strided_kernel<E><<<blocks_for(n), kThreads, 0, stream()>>>(
      static_cast<const E*>(src), s, static_cast<E*>(dst), d, n);
  VC_CUDA_LAUNCH("copy_strided");
}

template <class E> void fill_t(void* dst, int64_t n, E v) {
  if (n <= 0) return;
  fill_kernel<E><<<blocks_for(n), kThreads, 0, stream()>>>(static_cast<E*>(dst), n, v);
  VC_CUDA_LAUNCH("fill");
}

template <class S> void cast_from(const S* s, DType to, void* dst, int64_t n) {
  unsigned g = blocks_for(n);
  switch (to) {
    case DType::F32: cast_kernel<<<g, kThreads, 0, stream()>>>(s, (float*)dst, n); break;
    case DType::F64: cast_kernel<<<g, kThreads, 0, stream()>>>(s, (double*)dst, n); break;
    case DType::I64: cast_kernel<<<g, kThreads, 0, stream()>>>(s, (int64_t*)dst, n); break;
    case DType::U8: cast_kernel<<<g, kThreads, 0, stream()>>>(s, (uint8_t*)dst, n); break;
  }
  VC_CUDA_LAUNCH("cast");
}

}  // namespace

void copy_strided(DType t, const void* src, const StridedDesc& s, void* dst,
                  const StridedDesc& d) {
  switch (dtype_size(t)) {
    case 1: return copy_strided_t<uint8_t>(src, s, dst, d);
    case 4: return copy_strided_t<uint32_t>(src, s, dst, d);
    case 8: return copy_strided_t<uint64_t>(src, s, dst, d);
  }
}

void fill(DType t, void* dst, int64_t n, double v) {
  switch (t) {
    case DType::F32: return fill_t<float>(dst, n, float(v));
    case DType::F64: return fill_t<double>(dst, n, v);
    case DType::I64: return fill_t<int64_t>(dst, n, int64_t(v));
    case DType::U8: return fill_t<uint8_t>(dst, n, uint8_t(v));
  }
}

void cast(DType from, const void* src, DType to, void* dst, int64_t n) {
  if (n <= 0) return;
  switch (from) {
    case DType::F32: return cast_from((const float*)src, to, dst, n);
    case DType::F64: return cast_from((const double*)src, to, dst, n);
    case DType::I64: return cast_from((const int64_t*)src, to, dst, n);
    case DType::U8: return cast_from((const uint8_t*)src, to, dst, n);
  }
}

}  // namespace vc::cuda_kernels
