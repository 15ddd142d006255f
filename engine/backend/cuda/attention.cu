// CUDA attention kernels: softmax(scale · Q Kᵀ + bias) V, fused and tiled with an online
// softmax (engine/backend/cpu/attention.cpp is the reference; same tiles, same mask plan).
//
// Queries are cut into tiles of kTile rows and keys into tiles of kTile columns, exactly as
// on the CPU. Each (query tile, key tile) pair is classified once per call on the host from
// the mask alone (blocked / partial / full, the CPU's MaskPlan); the classes and the 0/1
// visibility of the partial tiles are uploaded, and blocked tiles are skipped by every
// kernel: no scores, no exp, no memory traffic. The score matrix never exists whole.
//
//   forward:  one block per (b, h, query tile); an online softmax over its key tiles
//             (running row max m, row sum l, unnormalised output acc in shared memory);
//             saves lse = m + log(l) per row (-inf and an output of 0 for a row that sees
//             no key).
//   backward: D = rowsum(dO ∘ O) (one thread per row); P = exp(S - lse) recomputed per tile;
//             dS = P ∘ (dO Vᵀ - D).
//             dQ and the dense-bias gradient: owner = (b, h, query tile), key tiles in order.
//             dK, dV and the per-key bias gradient: owner = (b, h, key tile), query tiles in
//             order.
// Every output element has one owner that sums in a fixed order, and warp reductions use a
// fixed butterfly read from one lane: no atomics, the same bits on every run.
//
// Block: 256 threads as 16 × 16; each thread owns a 4 × 4 patch of the 64 × 64 score tile
// (rows ty + 16 i, columns tx + 16 j). Operands stream through shared memory in chunks of
// kChunk columns of the head dimension, so any d and dv fit (the accumulators, 64 × dv in
// the forward, 64 × (d + dv) in the key-side backward, live in shared memory).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

constexpr int64_t kTile = 64;  // = the CPU's kTileQ = kTileK
constexpr int kChunk = 32, kPitch = kChunk + 1, kAttnThreads = 256;
enum TileClass : uint8_t { kBlocked = 0, kPartial = 1, kFull = 2 };

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- the mask plan (host), the CPU's MaskPlan line for line -------------------------------

struct HostPlan {
  int64_t nqt = 0, nkt = 0, nkt_main = 0;
  std::vector<uint8_t> cls;     // [nqt, nkt]
  std::vector<int32_t> slot;    // [nqt, nkt], index of a partial tile's mask, -1 otherwise
  std::vector<uint8_t> masks;   // [n_partial, kTile, kTile], 1 = visible

  explicit HostPlan(const AttentionDesc& a) : a_(a) {
    nqt = ceil_div(a.Nq, kTile);
    nkt_main = ceil_div(a.n_main, kTile);
    nkt = nkt_main + ceil_div(a.Nk - a.n_main, kTile);
    if (a.mask == AttnMaskKind::Kron) build_prefix();
    cls.assign(size_t(nqt * nkt), kFull);
    slot.assign(size_t(nqt * nkt), -1);
    int32_t n_partial = 0;
    for (int64_t qt = 0; qt < nqt; ++qt)
      for (int64_t kt = 0; kt < nkt_main; ++kt) {
        uint8_t c = classify(qt, kt);
        cls[qt * nkt + kt] = c;
        if (c == kPartial) slot[qt * nkt + kt] = n_partial++;
      }
    masks.assign(size_t(n_partial) * kTile * kTile, 0);
    for (int64_t qt = 0; qt < nqt; ++qt)
      for (int64_t kt = 0; kt < nkt_main; ++kt)
        if (cls[qt * nkt + kt] == kPartial) fill_tile_mask(qt, kt);
  }

  void key_tile(int64_t kt, int64_t& j0, int64_t& rk) const {
    if (kt < nkt_main) {
      j0 = kt * kTile;
      rk = std::min(kTile, a_.n_main - j0);
    } else {
      j0 = a_.n_main + (kt - nkt_main) * kTile;
      rk = std::min(kTile, a_.Nk - j0);
    }
  }

 private:
  bool visible(int64_t i, int64_t j) const {
    switch (a_.mask) {
      case AttnMaskKind::None: return true;
      case AttnMaskKind::Causal: return j <= i;
      case AttnMaskKind::Kron: {
        const KronMaskDesc& m = a_.kron;
        int64_t t = i / m.L, l = i % m.L, t2 = j / m.L, l2 = j % m.L;
        for (int64_t k = 0; k < m.n_terms; ++k)
          if (m.frame[(k * m.T + t) * m.T + t2] && m.token[(k * m.L + l) * m.L + l2]) return true;
        return false;
      }
    }
    return true;
  }
  void fill_tile_mask(int64_t qt, int64_t kt) {
    uint8_t* vis = masks.data() + size_t(slot[qt * nkt + kt]) * kTile * kTile;
    int64_t i0 = qt * kTile, rq = std::min(kTile, a_.Nq - i0), j0, rk;
    key_tile(kt, j0, rk);
    for (int64_t r = 0; r < rq; ++r)
      for (int64_t j = 0; j < rk; ++j) vis[r * kTile + j] = visible(i0 + r, j0 + j);
  }
  void build_prefix() {
    const KronMaskDesc& m = a_.kron;
    int64_t L1 = m.L + 1;
    prefix_.assign(size_t(m.n_terms * L1 * L1), 0);
    for (int64_t k = 0; k < m.n_terms; ++k) {
      int32_t* p = prefix_.data() + k * L1 * L1;
      const uint8_t* g = m.token + k * m.L * m.L;
      for (int64_t l = 0; l < m.L; ++l)
        for (int64_t l2 = 0; l2 < m.L; ++l2)
          p[(l + 1) * L1 + l2 + 1] = p[l * L1 + l2 + 1] + p[(l + 1) * L1 + l2] -
                                     p[l * L1 + l2] + (g[l * m.L + l2] ? 1 : 0);
    }
  }
  int64_t rect(int64_t k, int64_t la, int64_t lb, int64_t ca, int64_t cb) const {
    int64_t L1 = a_.kron.L + 1;
    const int32_t* p = prefix_.data() + k * L1 * L1;
    return p[lb * L1 + cb] - p[la * L1 + cb] - p[lb * L1 + ca] + p[la * L1 + ca];
  }
  uint8_t classify(int64_t qt, int64_t kt) const {
    int64_t i0 = qt * kTile, i1 = std::min(a_.Nq, i0 + kTile), j0, rk;
    key_tile(kt, j0, rk);
    int64_t j1 = j0 + rk;
    switch (a_.mask) {
      case AttnMaskKind::None: return kFull;
      case AttnMaskKind::Causal:
        if (j0 > i1 - 1) return kBlocked;
        return j1 - 1 <= i0 ? kFull : kPartial;
      case AttnMaskKind::Kron: break;
    }
    const KronMaskDesc& m = a_.kron;
    bool any = false, full = true;
    for (int64_t t = i0 / m.L; t <= (i1 - 1) / m.L; ++t) {
      int64_t la = std::max(i0 - t * m.L, int64_t(0)), lb = std::min(i1 - t * m.L, m.L);
      for (int64_t t2 = j0 / m.L; t2 <= (j1 - 1) / m.L; ++t2) {
        int64_t ca = std::max(j0 - t2 * m.L, int64_t(0)), cb = std::min(j1 - t2 * m.L, m.L);
        int64_t area = (lb - la) * (cb - ca);
        bool seg_any = false, seg_full = false;
        for (int64_t k = 0; k < m.n_terms; ++k) {
          if (!m.frame[(k * m.T + t) * m.T + t2]) continue;
          int64_t c = rect(k, la, lb, ca, cb);
          seg_any |= c > 0;
          seg_full |= c == area;
        }
        any |= seg_any;
        full &= seg_full;
      }
    }
    return !any ? kBlocked : full ? kFull : kPartial;
  }

  const AttentionDesc& a_;
  std::vector<int32_t> prefix_;
};

// ---- device side ----------------------------------------------------------------------------

template <class T> struct AttnArgs {
  const T *q, *k, *v;
  int64_t B, H, Nq, Nk, n_main, d, dv;
  T scale;
  const T* bias;
  int64_t bs0, bs1, bs2, bs3;
  const T* key_bias;
  int64_t kb_sb, kb_sh;
  const uint8_t* cls;
  const int32_t* slot;
  const uint8_t* masks;
  int64_t nqt, nkt, nkt_main;
  // forward outputs / backward inputs and outputs
  T *out, *lse;
  const T *gout, *D;
  T *gq, *gk, *gv, *gbias, *gkey_bias;
};

template <class T> __device__ void key_tile(const AttnArgs<T>& A, int64_t kt, int64_t& j0, int64_t& rk) {
  if (kt < A.nkt_main) {
    j0 = kt * kTile;
    rk = min(kTile, A.n_main - j0);
  } else {
    j0 = A.n_main + (kt - A.nkt_main) * kTile;
    rk = min(kTile, A.Nk - j0);
  }
}

template <class T> __device__ const uint8_t* tile_vis(const AttnArgs<T>& A, int64_t qt, int64_t kt) {
  int32_t s = A.slot[qt * A.nkt + kt];
  return s < 0 ? nullptr : A.masks + int64_t(s) * kTile * kTile;
}

// acc[i][j] (this thread's 4 × 4 patch) = sum over c of X[i0 + r][c] · Y[j0 + j][c], X rows
// of width w_x (rq valid rows), Y rows of width w_x (rk valid rows): streamed through the
// shared chunks Xc, Yc. Rows past rq / rk read as 0.
template <class T>
__device__ void tile_dot(const T* X, const T* Y, int64_t width, int64_t rq, int64_t rk, T* Xc,
                         T* Yc, T (&acc)[4][4]) {
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  for (int64_t c0 = 0; c0 < width; c0 += kChunk) {
    int64_t w = min(int64_t(kChunk), width - c0);
    for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kAttnThreads) {
      int r = idx / kChunk, cc = idx % kChunk;
      Xc[r * kPitch + cc] = (r < rq && cc < w) ? X[r * width + c0 + cc] : T(0);
      Yc[r * kPitch + cc] = (r < rk && cc < w) ? Y[r * width + c0 + cc] : T(0);
    }
    __syncthreads();
    for (int cc = 0; cc < w; ++cc) {
      T y[4];
#pragma unroll
      for (int j = 0; j < 4; ++j) y[j] = Yc[(tx + 16 * j) * kPitch + cc];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        T x = Xc[(ty + 16 * i) * kPitch + cc];
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += x * y[j];
      }
    }
    __syncthreads();
  }
}

// The scores of this thread's patch: scale · q kᵀ + dense bias (main tiles) + key bias, -inf
// where the partial tile's visibility hides an entry and outside the tile.
template <class T>
__device__ void tile_scores(const AttnArgs<T>& A, int64_t b, int64_t h, int64_t i0, int64_t rq,
                            int64_t j0, int64_t rk, bool main_tile, const uint8_t* vis, T* Xc,
                            T* Yc, T (&s)[4][4]) {
  const int64_t bh = b * A.H + h;
  tile_dot(A.q + (bh * A.Nq + i0) * A.d, A.k + (bh * A.Nk + j0) * A.d, A.d, rq, rk, Xc, Yc, s);
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  const T neg_inf = T(-INFINITY);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int r = ty + 16 * i, c = tx + 16 * j;
      if (r >= rq || c >= rk) {
        s[i][j] = neg_inf;
        continue;
      }
      T v = A.scale * s[i][j];
      if (A.bias && main_tile)
        v += A.bias[b * A.bs0 + h * A.bs1 + (i0 + r) * A.bs2 + (j0 + c) * A.bs3];
      if (A.key_bias) v += A.key_bias[b * A.kb_sb + h * A.kb_sh + j0 + c];
      if (vis && !vis[r * kTile + c]) v = neg_inf;
      s[i][j] = v;
    }
}

template <class T> __device__ T warp_max(T v) {
  for (int off = 16; off > 0; off >>= 1) v = max(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}
template <class T> __device__ T warp_sum(T v) {  // a fixed butterfly; lane 0's value is used
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

template <class T>
__global__ void __launch_bounds__(kAttnThreads) attn_forward_kernel(AttnArgs<T> A) {
  extern __shared__ double smem_d[];
  T* Xc = reinterpret_cast<T*>(smem_d);
  T* Yc = Xc + kTile * kPitch;
  T* P = Yc + kTile * kPitch;
  T* acc = P + kTile * kTile;
  T* m_s = acc + kTile * A.dv;
  T* l_s = m_s + kTile;
  T* al_s = l_s + kTile;
  const T neg_inf = T(-INFINITY);
  const int64_t qt = blockIdx.x % A.nqt, bh = blockIdx.x / A.nqt, b = bh / A.H, h = bh % A.H;
  const int64_t i0 = qt * kTile, rq = min(kTile, A.Nq - i0);
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16, warp = threadIdx.x / 32,
            lane = threadIdx.x % 32;
  if (threadIdx.x < kTile) {
    m_s[threadIdx.x] = neg_inf;
    l_s[threadIdx.x] = T(0);
    al_s[threadIdx.x] = T(1);
  }
  for (int64_t idx = threadIdx.x; idx < kTile * A.dv; idx += kAttnThreads) acc[idx] = T(0);
  __syncthreads();
  for (int64_t kt = 0; kt < A.nkt; ++kt) {
    uint8_t cls = A.cls[qt * A.nkt + kt];
    if (cls == kBlocked) continue;  // the mask hides the whole tile: never computed
    int64_t j0, rk;
    key_tile(A, kt, j0, rk);
    T s[4][4];
    tile_scores(A, b, h, i0, rq, j0, rk, kt < A.nkt_main, tile_vis(A, qt, kt), Xc, Yc, s);
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) P[(ty + 16 * i) * kTile + tx + 16 * j] = s[i][j];
    __syncthreads();
    // Online softmax: warp w owns rows 8w .. 8w + 7, two columns per lane.
    for (int rr = 0; rr < kTile / 8; ++rr) {
      int r = warp * (kTile / 8) + rr;
      T v0 = P[r * kTile + lane], v1 = P[r * kTile + lane + 32];
      T mold = m_s[r];
      T mnew = max(mold, warp_max(max(v0, v1)));
      if (mnew == neg_inf) {  // nothing visible yet: P row is 0, nothing changes
        P[r * kTile + lane] = T(0);
        P[r * kTile + lane + 32] = T(0);
        if (lane == 0) al_s[r] = T(1);
        continue;
      }
      T p0 = v0 == neg_inf ? T(0) : exp(v0 - mnew);
      T p1 = v1 == neg_inf ? T(0) : exp(v1 - mnew);
      T sum = warp_sum(p0 + p1);
      T alpha = mold == neg_inf ? T(0) : exp(mold - mnew);
      P[r * kTile + lane] = p0;
      P[r * kTile + lane + 32] = p1;
      __syncwarp();
      if (lane == 0) {
        l_s[r] = l_s[r] * alpha + sum;
        m_s[r] = mnew;
        al_s[r] = alpha;
      }
    }
    __syncthreads();
    // acc = acc · alpha + P V, V streamed in chunks of kChunk columns.
    const T* vh = A.v + (bh * A.Nk + j0) * A.dv;
    for (int64_t e0 = 0; e0 < A.dv; e0 += kChunk) {
      int64_t w = min(int64_t(kChunk), A.dv - e0);
      for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kAttnThreads) {
        int j = idx / kChunk, ee = idx % kChunk;
        Yc[j * kPitch + ee] = (j < rk && ee < w) ? vh[j * A.dv + e0 + ee] : T(0);
      }
      __syncthreads();
      for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kAttnThreads) {
        int r = idx / kChunk, ee = idx % kChunk;
        if (ee >= w) continue;
        T pv = T(0);
        for (int j = 0; j < kTile; ++j) pv += P[r * kTile + j] * Yc[j * kPitch + ee];
        T& a = acc[r * A.dv + e0 + ee];
        a = a * al_s[r] + pv;
      }
      __syncthreads();
    }
  }
  T* o = A.out + (bh * A.Nq + i0) * A.dv;
  for (int64_t idx = threadIdx.x; idx < rq * A.dv; idx += kAttnThreads) {
    int64_t r = idx / A.dv;
    bool dead = l_s[r] == T(0);  // every key masked: output 0, lse -inf
    o[idx] = dead ? T(0) : acc[idx] / l_s[r];
  }
  if (threadIdx.x < rq) {
    T l = l_s[threadIdx.x];
    A.lse[bh * A.Nq + i0 + threadIdx.x] = l == T(0) ? neg_inf : m_s[threadIdx.x] + log(l);
  }
}

// probs[b, h, rr, j] = exp(S[row] - lse[row]) for the requested rows (one block per row).
template <class T>
__global__ void attn_probs_kernel(AttnArgs<T> A, const int64_t* rows, int64_t n_rows, T* probs) {
  const T neg_inf = T(-INFINITY);
  for (int64_t task = blockIdx.x; task < A.B * A.H * n_rows; task += gridDim.x) {
    int64_t rr = task % n_rows, bh = task / n_rows, b = bh / A.H, h = bh % A.H;
    int64_t i = rows[rr], qt = i / kTile;
    T shift = A.lse[bh * A.Nq + i];
    const T* qi = A.q + (bh * A.Nq + i) * A.d;
    for (int64_t j = threadIdx.x; j < A.Nk; j += blockDim.x) {
      bool main_key = j < A.n_main;
      int64_t kt = main_key ? j / kTile : A.nkt_main + (j - A.n_main) / kTile;
      int64_t c = main_key ? j % kTile : (j - A.n_main) % kTile;
      T p = T(0);
      if (A.cls[qt * A.nkt + kt] != kBlocked && shift != neg_inf) {
        const uint8_t* vis = tile_vis(A, qt, kt);
        const T* kj = A.k + (bh * A.Nk + j) * A.d;
        T s = T(0);
        for (int64_t e = 0; e < A.d; ++e) s += qi[e] * kj[e];
        T v = A.scale * s;
        if (A.bias && main_key) v += A.bias[b * A.bs0 + h * A.bs1 + i * A.bs2 + j * A.bs3];
        if (A.key_bias) v += A.key_bias[b * A.kb_sb + h * A.kb_sh + j];
        if (vis && !vis[(i - qt * kTile) * kTile + c]) v = neg_inf;
        p = v == neg_inf ? T(0) : exp(v - shift);
      }
      probs[task * A.Nk + j] = p;
    }
  }
}

// D[row] = sum_e dO[row, e] O[row, e], one owner per row, in order.
template <class T>
__global__ void attn_rowdot_kernel(const T* gout, const T* out, T* D, int64_t rows, int64_t dv) {
  VC_GRID_LOOP(r, rows) {
    T s = 0;
    for (int64_t e = 0; e < dv; ++e) s += gout[r * dv + e] * out[r * dv + e];
    D[r] = s;
  }
}

// P and dS of one tile into shared memory (rows i0.., keys j0..): P = exp(S - lse),
// dS = P ∘ (dO Vᵀ - D). lse_s and D_s hold the tile's rows.
template <class T>
__device__ void tile_grad(const AttnArgs<T>& A, int64_t b, int64_t h, int64_t qt, int64_t kt,
                          int64_t i0, int64_t rq, int64_t j0, int64_t rk, const T* lse_s,
                          const T* D_s, T* Xc, T* Yc, T* P, T* dS) {
  const T neg_inf = T(-INFINITY);
  const int ty = threadIdx.x / 16, tx = threadIdx.x % 16;
  const int64_t bh = b * A.H + h;
  T s[4][4];
  tile_scores(A, b, h, i0, rq, j0, rk, kt < A.nkt_main, tile_vis(A, qt, kt), Xc, Yc, s);
  T p[4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      T l = lse_s[ty + 16 * i];
      p[i][j] = (s[i][j] == neg_inf || l == neg_inf) ? T(0) : exp(s[i][j] - l);
    }
  T dp[4][4];
  tile_dot(A.gout + (bh * A.Nq + i0) * A.dv, A.v + (bh * A.Nk + j0) * A.dv, A.dv, rq, rk, Xc, Yc,
           dp);
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int r = ty + 16 * i, c = tx + 16 * j;
      P[r * kTile + c] = p[i][j];
      dS[r * kTile + c] = p[i][j] * (dp[i][j] - D_s[r]);
    }
  __syncthreads();
}

template <class T>
__global__ void __launch_bounds__(kAttnThreads) attn_backward_q_kernel(AttnArgs<T> A) {
  extern __shared__ double smem_d[];
  T* Xc = reinterpret_cast<T*>(smem_d);
  T* Yc = Xc + kTile * kPitch;
  T* P = Yc + kTile * kPitch;
  T* dS = P + kTile * kTile;
  T* dq = dS + kTile * kTile;
  T* lse_s = dq + kTile * A.d;
  T* D_s = lse_s + kTile;
  const T neg_inf = T(-INFINITY);
  const int64_t qt = blockIdx.x % A.nqt, bh = blockIdx.x / A.nqt, b = bh / A.H, h = bh % A.H;
  const int64_t i0 = qt * kTile, rq = min(kTile, A.Nq - i0);
  if (threadIdx.x < kTile) {
    bool in = threadIdx.x < rq;
    lse_s[threadIdx.x] = in ? A.lse[bh * A.Nq + i0 + threadIdx.x] : neg_inf;
    D_s[threadIdx.x] = in ? A.D[bh * A.Nq + i0 + threadIdx.x] : T(0);
  }
  for (int64_t idx = threadIdx.x; idx < kTile * A.d; idx += kAttnThreads) dq[idx] = T(0);
  T* gb = A.gbias ? A.gbias + (bh * A.Nq + i0) * A.n_main : nullptr;
  if (gb)  // skipped tiles stay 0
    for (int64_t idx = threadIdx.x; idx < rq * A.n_main; idx += kAttnThreads) gb[idx] = T(0);
  __syncthreads();
  for (int64_t kt = 0; kt < A.nkt; ++kt) {
    if (A.cls[qt * A.nkt + kt] == kBlocked) continue;
    int64_t j0, rk;
    key_tile(A, kt, j0, rk);
    tile_grad(A, b, h, qt, kt, i0, rq, j0, rk, lse_s, D_s, Xc, Yc, P, dS);
    if (gb && kt < A.nkt_main)
      for (int idx = threadIdx.x; idx < kTile * kTile; idx += kAttnThreads) {
        int r = idx / kTile, c = idx % kTile;
        if (r < rq && c < rk) gb[r * A.n_main + j0 + c] = dS[idx];
      }
    // dq[r][c] += sum_j dS[r][j] K[j][c], K streamed in chunks.
    const T* kh = A.k + (bh * A.Nk + j0) * A.d;
    for (int64_t c0 = 0; c0 < A.d; c0 += kChunk) {
      int64_t w = min(int64_t(kChunk), A.d - c0);
      for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kAttnThreads) {
        int j = idx / kChunk, cc = idx % kChunk;
        Yc[j * kPitch + cc] = (j < rk && cc < w) ? kh[j * A.d + c0 + cc] : T(0);
      }
      __syncthreads();
      for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kAttnThreads) {
        int r = idx / kChunk, cc = idx % kChunk;
        if (cc >= w) continue;
        T s = T(0);
        for (int j = 0; j < kTile; ++j) s += dS[r * kTile + j] * Yc[j * kPitch + cc];
        dq[r * A.d + c0 + cc] += s;
      }
      __syncthreads();
    }
  }
  T* g = A.gq + (bh * A.Nq + i0) * A.d;
  for (int64_t idx = threadIdx.x; idx < rq * A.d; idx += kAttnThreads) g[idx] = A.scale * dq[idx];
}

template <class T>
__global__ void __launch_bounds__(kAttnThreads) attn_backward_kv_kernel(AttnArgs<T> A) {
  extern __shared__ double smem_d[];
  T* Xc = reinterpret_cast<T*>(smem_d);
  T* Yc = Xc + kTile * kPitch;
  T* P = Yc + kTile * kPitch;
  T* dS = P + kTile * kTile;
  T* dk = dS + kTile * kTile;
  T* dv = dk + kTile * A.d;
  T* col = dv + kTile * A.dv;
  T* lse_s = col + kTile;
  T* D_s = lse_s + kTile;
  const T neg_inf = T(-INFINITY);
  const int64_t kt = blockIdx.x % A.nkt, bh = blockIdx.x / A.nkt, b = bh / A.H, h = bh % A.H;
  int64_t j0, rk;
  key_tile(A, kt, j0, rk);
  for (int64_t idx = threadIdx.x; idx < kTile * A.d; idx += kAttnThreads) dk[idx] = T(0);
  for (int64_t idx = threadIdx.x; idx < kTile * A.dv; idx += kAttnThreads) dv[idx] = T(0);
  if (threadIdx.x < kTile) col[threadIdx.x] = T(0);
  for (int64_t qt = 0; qt < A.nqt; ++qt) {
    if (A.cls[qt * A.nkt + kt] == kBlocked) continue;
    int64_t i0 = qt * kTile, rq = min(kTile, A.Nq - i0);
    __syncthreads();  // the previous tile's readers of lse_s / D_s are done
    if (threadIdx.x < kTile) {
      bool in = threadIdx.x < rq;
      lse_s[threadIdx.x] = in ? A.lse[bh * A.Nq + i0 + threadIdx.x] : neg_inf;
      D_s[threadIdx.x] = in ? A.D[bh * A.Nq + i0 + threadIdx.x] : T(0);
    }
    __syncthreads();
    tile_grad(A, b, h, qt, kt, i0, rq, j0, rk, lse_s, D_s, Xc, Yc, P, dS);
    if (threadIdx.x < kTile) {  // per-key bias: column sums of dS, rows in order
      T s = T(0);
      for (int r = 0; r < kTile; ++r) s += dS[r * kTile + threadIdx.x];
      col[threadIdx.x] += s;
    }
    // dv[j][e] += sum_r P[r][j] dO[r][e];  dk[j][c] += sum_r dS[r][j] Q[r][c].
    for (int pass = 0; pass < 2; ++pass) {
      const T* src = pass == 0 ? A.gout + (bh * A.Nq + i0) * A.dv : A.q + (bh * A.Nq + i0) * A.d;
      const T* coef = pass == 0 ? P : dS;
      int64_t width = pass == 0 ? A.dv : A.d;
      T* dst = pass == 0 ? dv : dk;
      for (int64_t c0 = 0; c0 < width; c0 += kChunk) {
        int64_t w = min(int64_t(kChunk), width - c0);
        for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kAttnThreads) {
          int r = idx / kChunk, cc = idx % kChunk;
          Xc[r * kPitch + cc] = (r < rq && cc < w) ? src[r * width + c0 + cc] : T(0);
        }
        __syncthreads();
        for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kAttnThreads) {
          int j = idx / kChunk, cc = idx % kChunk;
          if (cc >= w) continue;
          T s = T(0);
          for (int r = 0; r < kTile; ++r) s += coef[r * kTile + j] * Xc[r * kPitch + cc];
          dst[j * width + c0 + cc] += s;
        }
        __syncthreads();
      }
    }
  }
  __syncthreads();
  T* gk = A.gk + (bh * A.Nk + j0) * A.d;
  T* gv = A.gv + (bh * A.Nk + j0) * A.dv;
  for (int64_t idx = threadIdx.x; idx < rk * A.d; idx += kAttnThreads) gk[idx] = A.scale * dk[idx];
  for (int64_t idx = threadIdx.x; idx < rk * A.dv; idx += kAttnThreads) gv[idx] = dv[idx];
  if (A.gkey_bias && threadIdx.x < rk) A.gkey_bias[bh * A.Nk + j0 + threadIdx.x] = col[threadIdx.x];
}

// ---- host side ------------------------------------------------------------------------------

template <class T> AttnArgs<T> make_args(const AttentionDesc& a, const HostPlan& plan) {
  AttnArgs<T> A{};
  A.B = a.B, A.H = a.H, A.Nq = a.Nq, A.Nk = a.Nk, A.n_main = a.n_main, A.d = a.d, A.dv = a.dv;
  A.scale = T(a.scale);
  A.bias = static_cast<const T*>(a.bias);
  A.bs0 = a.bias_strides[0], A.bs1 = a.bias_strides[1], A.bs2 = a.bias_strides[2],
  A.bs3 = a.bias_strides[3];
  A.key_bias = static_cast<const T*>(a.key_bias);
  A.kb_sb = a.key_bias_sb, A.kb_sh = a.key_bias_sh;
  A.nqt = plan.nqt, A.nkt = plan.nkt, A.nkt_main = plan.nkt_main;
  return A;
}

// Dynamic shared memory above 48 KiB must be opted into, per kernel.
template <class K> void prepare_smem(K kernel, size_t bytes, const char* what) {
  int dev = 0, optin = 0;
  VC_CUDA(cudaGetDevice(&dev));
  VC_CUDA(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  VC_CHECK(bytes <= size_t(optin), "attention (cuda): ", what, " needs ", bytes,
           " bytes of shared memory, the device allows ", optin,
           " (head dims too large for this kernel)");
  VC_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// The uploaded plan of one call.
struct DevicePlan {
  Upload<uint8_t> cls;
  Upload<int32_t> slot;
  Upload<uint8_t> masks;
  explicit DevicePlan(const HostPlan& p) : cls(p.cls), slot(p.slot), masks(p.masks) {}
};

template <class T> void set_plan(AttnArgs<T>& A, const DevicePlan& d) {
  A.cls = d.cls.get();
  A.slot = d.slot.get();
  A.masks = d.masks.get();
}

template <class T>
void forward_t(const AttentionDesc& a, const T* q, const T* k, const T* v, T* out, T* lse,
               const int64_t* prob_rows, int64_t n_prob_rows, T* probs) {
  if (a.B * a.H * a.Nq == 0) return;
  HostPlan plan(a);
  DevicePlan dplan(plan);
  AttnArgs<T> A = make_args<T>(a, plan);
  set_plan(A, dplan);
  A.q = q, A.k = k, A.v = v, A.out = out, A.lse = lse;
  size_t smem = size_t(2 * kTile * kPitch + kTile * kTile + kTile * a.dv + 3 * kTile) * sizeof(T);
  prepare_smem(attn_forward_kernel<T>, smem, "forward");
  attn_forward_kernel<T><<<unsigned(a.B * a.H * plan.nqt), kAttnThreads, smem, stream()>>>(A);
  VC_CUDA_LAUNCH("attention forward");
  if (n_prob_rows > 0 && a.Nk > 0) {
    Upload<int64_t> rows(std::vector<int64_t>(prob_rows, prob_rows + n_prob_rows));
    attn_probs_kernel<T><<<blocks_for(a.B * a.H * n_prob_rows, 1), 128, 0, stream()>>>(
        A, rows.get(), n_prob_rows, probs);
    VC_CUDA_LAUNCH("attention probs");
  }
}

template <class T>
void backward_t(const AttentionDesc& a, const T* q, const T* k, const T* v, const T* out,
                const T* lse, const T* gout, T* gq, T* gk, T* gv, T* gbias, T* gkey_bias) {
  int64_t rows = a.B * a.H * a.Nq;
  HostPlan plan(a);
  DevicePlan dplan(plan);
  AttnArgs<T> A = make_args<T>(a, plan);
  set_plan(A, dplan);
  DeviceScratch Dbuf(size_t(std::max<int64_t>(rows, 1)) * sizeof(T));
  A.q = q, A.k = k, A.v = v, A.lse = const_cast<T*>(lse), A.gout = gout, A.D = Dbuf.as<T>();
  A.gq = gq, A.gk = gk, A.gv = gv, A.gbias = gbias, A.gkey_bias = gkey_bias;
  if (rows > 0) {
    attn_rowdot_kernel<T><<<blocks_for(rows), kThreads, 0, stream()>>>(gout, out, Dbuf.as<T>(),
                                                                         rows, a.dv);
    VC_CUDA_LAUNCH("attention backward: D");
    size_t smem = size_t(2 * kTile * kPitch + 2 * kTile * kTile + kTile * a.d + 2 * kTile) * sizeof(T);
    prepare_smem(attn_backward_q_kernel<T>, smem, "backward (queries)");
    attn_backward_q_kernel<T><<<unsigned(a.B * a.H * plan.nqt), kAttnThreads, smem, stream()>>>(A);
    VC_CUDA_LAUNCH("attention backward: dQ");
  }
  if (a.B * a.H * plan.nkt > 0) {
    size_t smem = size_t(2 * kTile * kPitch + 2 * kTile * kTile + kTile * (a.d + a.dv) + 3 * kTile) *
                  sizeof(T);
    prepare_smem(attn_backward_kv_kernel<T>, smem, "backward (keys)");
    attn_backward_kv_kernel<T><<<unsigned(a.B * a.H * plan.nkt), kAttnThreads, smem, stream()>>>(A);
    VC_CUDA_LAUNCH("attention backward: dK dV");
  }
}

void forward(const AttentionDesc& a, const void* q, const void* k, const void* v, void* out,
             void* lse, const int64_t* prob_rows, int64_t n_prob_rows, void* probs) {
  dispatch_float(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    forward_t<T>(a, static_cast<const T*>(q), static_cast<const T*>(k),
                 static_cast<const T*>(v), static_cast<T*>(out), static_cast<T*>(lse), prob_rows,
                 n_prob_rows, static_cast<T*>(probs));
  });
}

void backward(const AttentionDesc& a, const void* q, const void* k, const void* v,
              const void* out, const void* lse, const void* gout, void* gq, void* gk, void* gv,
              void* gbias, void* gkey_bias) {
  dispatch_float(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    backward_t<T>(a, static_cast<const T*>(q), static_cast<const T*>(k),
                  static_cast<const T*>(v), static_cast<const T*>(out),
                  static_cast<const T*>(lse), static_cast<const T*>(gout), static_cast<T*>(gq),
                  static_cast<T*>(gk), static_cast<T*>(gv), static_cast<T*>(gbias),
                  static_cast<T*>(gkey_bias));
  });
}

}  // namespace

AttentionKernels attention_kernels() { return {forward, backward}; }

}  // namespace vc::cuda_kernels
