// CPU memory: a caching allocator with counters, strided copies, fills and casts.
// VERBCLIP_NO_CACHING=1 returns every block to the system at once (for sanitizers).
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"
#include "engine/core/error.h"

namespace vc::cpu_kernels {

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

size_t round_up(size_t n) { return n <= 64 ? 64 : (n + 4095) / 4096 * 4096; }

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
    p = std::aligned_alloc(64, n);
    VC_CHECK(p != nullptr, "cpu alloc: out of memory allocating ", bytes, " bytes");
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
    std::free(p);
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
  for (auto& kv : c.free_blocks) std::free(kv.second);
  c.free_blocks.clear();
  c.stats.cached_bytes = 0;
}

namespace {
template <class T>
void copy_strided_t(const T* src, const StridedDesc& s, T* dst, const StridedDesc& d) {
  int64_t n = 1;
  for (int i = 0; i < s.ndim; ++i) n *= s.shape[i];
  if (n == 0) return;
  int last = s.ndim - 1;
  int64_t inner = s.ndim ? s.shape[last] : 1;
  int64_t rows = n / inner;
  int64_t ss = s.ndim ? s.strides[last] : 1, ds = s.ndim ? d.strides[last] : 1;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t r = 0; r < rows; ++r) {
    // Unravel the row index over all but the last axis.
    int64_t so = s.offset, dof = d.offset, rem = r;
    for (int i = last - 1; i >= 0; --i) {
      int64_t k = rem % s.shape[i];
      rem /= s.shape[i];
      so += k * s.strides[i];
      dof += k * d.strides[i];
    }
    const T* sp = src + so;
    T* dp = dst + dof;
    if (ss == 1 && ds == 1) {
      std::memcpy(dp, sp, size_t(inner) * sizeof(T));
    } else {
      for (int64_t j = 0; j < inner; ++j) dp[j * ds] = sp[j * ss];
    }
  }
}
}  // namespace

void copy_strided(DType t, const void* src, const StridedDesc& s, void* dst,
                  const StridedDesc& d) {
  switch (dtype_size(t)) {
    case 1: return copy_strided_t((const uint8_t*)src, s, (uint8_t*)dst, d);
    case 4: return copy_strided_t((const uint32_t*)src, s, (uint32_t*)dst, d);
    case 8: return copy_strided_t((const uint64_t*)src, s, (uint64_t*)dst, d);
  }
}

void fill(DType t, void* dst, int64_t n, double v) {
  auto run = [&](auto* p, auto value) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) p[i] = value;
  };
  switch (t) {
    case DType::F32: return run((float*)dst, float(v));
    case DType::F64: return run((double*)dst, v);
    case DType::I64: return run((int64_t*)dst, int64_t(v));
    case DType::U8: return run((uint8_t*)dst, uint8_t(v));
  }
}

void cast(DType from, const void* src, DType to, void* dst, int64_t n) {
  auto run_to = [&](const auto* s) {
    auto go = [&](auto* d) {
      using D = std::remove_pointer_t<decltype(d)>;
      for (int64_t i = 0; i < n; ++i) d[i] = D(s[i]);
    };
    switch (to) {
      case DType::F32: return go((float*)dst);
      case DType::F64: return go((double*)dst);
      case DType::I64: return go((int64_t*)dst);
      case DType::U8: return go((uint8_t*)dst);
    }
  };
  switch (from) {
    case DType::F32: return run_to((const float*)src);
    case DType::F64: return run_to((const double*)src);
    case DType::I64: return run_to((const int64_t*)src);
    case DType::U8: return run_to((const uint8_t*)src);
  }
}

void host_copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }

}  // namespace vc::cpu_kernels
