// CPU memory: a caching allocator with counters, strided copies, fills and casts.
// VERBCLIP_NO_CACHING=1 returns every block to the system at once (for sanitizers).
#include <algorithm>
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
// Copies the nest (shape, ss, ds) where axis a is the input's contiguous one and the last axis
// the output's: for every index of the other axes, a [shape[a], shape[last]] block in 16 x 16
// tiles. Strips of 16 along axis a go to the threads.
template <class T>
void copy_transposed(const T* src, int64_t s_off, T* dst, int64_t d_off, int nd,
                     const int64_t* shape, const int64_t* ss, const int64_t* ds, int a) {
  constexpr int64_t kTile = 16;
  const int last = nd - 1;
  int64_t oshape[kMaxDims], oss[kMaxDims], ods[kMaxDims];
  int on = 0;
  int64_t outer = 1;
  for (int i = 0; i < last; ++i)
    if (i != a) oshape[on] = shape[i], oss[on] = ss[i], ods[on] = ds[i], outer *= shape[i], ++on;
  const int64_t na = shape[a], nl = shape[last], da = ds[a], sl = ss[last];
  const int64_t itiles = (na + kTile - 1) / kTile;
#pragma omp parallel for schedule(static) if (outer * na * nl > 65536)
  for (int64_t ot = 0; ot < outer * itiles; ++ot) {
    const int64_t o = ot / itiles, i0 = ot % itiles * kTile, i1 = std::min(na, i0 + kTile);
    int64_t so = s_off, dof = d_off, rem = o;
    for (int i = on - 1; i >= 0; --i) {
      const int64_t k = rem % oshape[i];
      rem /= oshape[i];
      so += k * oss[i], dof += k * ods[i];
    }
    const T* sp = src + so;
    T* dp = dst + dof;
    for (int64_t j0 = 0; j0 < nl; j0 += kTile) {
      const int64_t j1 = std::min(nl, j0 + kTile);
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) dp[i * da + j] = sp[i + j * sl];
    }
  }
}

// A strided copy as a loop nest over the output's order. Axes of length 1 are dropped and
// neighbouring axes merged where both sides are contiguous across them, so a view copies in as
// few and as long rows as its layout allows. Each chunk of rows unravels its first row once,
// then steps an odometer: a division per row was most of the time before (34 ms for the tiny
// CLIP's 8.4 M-element patchify of a 4-float row each, issue 13).
template <class T>
void copy_strided_t(const T* src, const StridedDesc& s, T* dst, const StridedDesc& d) {
  int nd = 0;
  int64_t shape[kMaxDims], ss[kMaxDims], ds[kMaxDims];
  int64_t n = 1;
  for (int i = 0; i < s.ndim; ++i) {
    n *= s.shape[i];
    if (s.shape[i] == 1) continue;
    if (nd > 0 && ss[nd - 1] == s.strides[i] * s.shape[i] &&
        ds[nd - 1] == d.strides[i] * s.shape[i]) {
      shape[nd - 1] *= s.shape[i];
      ss[nd - 1] = s.strides[i];
      ds[nd - 1] = d.strides[i];
    } else {
      shape[nd] = s.shape[i], ss[nd] = s.strides[i], ds[nd] = d.strides[i];
      ++nd;
    }
  }
  if (n == 0) return;
  if (nd == 0) {
    dst[d.offset] = src[s.offset];
    return;
  }
  const int last = nd - 1;
  if (nd >= 2 && ds[last] == 1 && ss[last] != 1) {
    // A transpose: the output runs along `last`, the input along another axis. Copy in square
    // tiles so that both sides stay in cache (a column read per element was 12 ms for the
    // stem's [256, 32, 1024] -> [256, 1024, 32]).
    for (int a = last - 1; a >= 0; --a)
      if (ss[a] == 1 && shape[a] >= 8) return copy_transposed(src, s.offset, dst, d.offset, nd, shape, ss, ds, a);
  }
  // A row is the last axis, or the last two when the last is short (the patchify's rows
  // of 4): the odometer then steps once per block instead of once per few elements.
  const int inner_axes = nd >= 2 && shape[last] < 16 ? 2 : 1;
  const int top = last - inner_axes;  // the odometer runs over axes 0..top
  const int64_t inner = shape[last], s_in = ss[last], d_in = ds[last];
  const int64_t mid = inner_axes == 2 ? shape[last - 1] : 1;
  const int64_t s_mid = inner_axes == 2 ? ss[last - 1] : 0, d_mid = inner_axes == 2 ? ds[last - 1] : 0;
  const int64_t rows = n / (inner * mid);
  constexpr int64_t kChunkElems = 16384;  // rows per chunk: about this many elements
  const int64_t chunk_rows = std::max<int64_t>(1, kChunkElems / (inner * mid));
  const int64_t chunks = (rows + chunk_rows - 1) / chunk_rows;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t r0 = c * chunk_rows, r1 = std::min(rows, r0 + chunk_rows);
    int64_t idx[kMaxDims];
    int64_t so = s.offset, dof = d.offset, rem = r0;
    for (int i = top; i >= 0; --i) {
      idx[i] = rem % shape[i];
      rem /= shape[i];
      so += idx[i] * ss[i];
      dof += idx[i] * ds[i];
    }
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t m = 0; m < mid; ++m) {
        const T* sp = src + so + m * s_mid;
        T* dp = dst + dof + m * d_mid;
        if (s_in == 1 && d_in == 1) {
          if (inner >= 64) std::memcpy(dp, sp, size_t(inner) * sizeof(T));
          else for (int64_t j = 0; j < inner; ++j) dp[j] = sp[j];
        } else {
          for (int64_t j = 0; j < inner; ++j) dp[j * d_in] = sp[j * s_in];
        }
      }
      for (int i = top; i >= 0; --i) {  // the next row
        so += ss[i], dof += ds[i];
        if (++idx[i] < shape[i]) break;
        so -= ss[i] * shape[i], dof -= ds[i] * shape[i], idx[i] = 0;
      }
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
