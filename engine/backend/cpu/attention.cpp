// CPU attention kernels: softmax(scale · Q Kᵀ + bias) V in the flash-attention style.
//
// The score matrix is never held whole. Queries are cut into tiles of kTileQ rows, keys into
// tiles of kTileK columns; each (query tile, key tile) pair is classified once per call from
// the mask alone (blocked / partial / full). Blocked tiles are skipped: no scores, no exp.
//   forward:  per query tile, an online softmax over its key tiles (running row max m, row
//             sum l, unnormalised output acc); saves lse = m + log(l) per row.
//   backward: recomputes P = exp(S - lse) per tile; D = rowsum(dO ∘ O); dS = P ∘ (dP - D).
//             dQ sums over key tiles in order, dK, dV and the per-key bias over query tiles
//             in order; with enough (b, h) for the threads one owner per (b, h) recomputes
//             each tile once, otherwise dQ is owned by query tiles and dK/dV by key tiles
//             (each tile recomputed twice). Both schedules add the same terms in the same order.
// Every output element has one owner that sums in a fixed order: no atomics, and the bits do
// not depend on the thread count. The tile products are our own small register-blocked loops
// (see small_gemm): Eigen's GEMM costs more in dispatch and packing than the tiny models'
// 17 x 17 x 32 tiles take to multiply.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"
#include "engine/backend/cpu/fast_exp.h"
#include "engine/core/threads.h"

namespace vc::cpu_kernels {

namespace {

constexpr int64_t kTileQ = 64, kTileK = 64;
enum TileClass : uint8_t { kBlocked = 0, kPartial = 1, kFull = 2 };

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Scratch through the backend allocator, so the memory counters see it.
struct Scratch {
  explicit Scratch(size_t bytes) : n(std::max<size_t>(bytes, 1)), p(alloc(n)) {}
  ~Scratch() { free(p, n); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <class T> T* as(size_t offset_elems = 0) const { return static_cast<T*>(p) + offset_elems; }
  size_t n;
  void* p;
};

// The mask of one call. Every (query tile, key tile) pair is classified once, from the
// frame/token patterns (2-d prefix sums of each token pattern), never from scores; the 0/1
// visibility of each partial tile is built once here and shared by all (batch, head).
class MaskPlan {
 public:
  explicit MaskPlan(const AttentionDesc& a) : a_(a) {
    nqt = ceil_div(a.Nq, kTileQ);
    nkt_main = ceil_div(a.n_main, kTileK);
    nkt = nkt_main + ceil_div(a.Nk - a.n_main, kTileK);
    if (a.mask == AttnMaskKind::Kron) build_prefix();
    cls_.assign(size_t(nqt * nkt), kFull);
    slot_.assign(size_t(nqt * nkt), -1);
    int64_t n_partial = 0;
    for (int64_t qt = 0; qt < nqt; ++qt)
      for (int64_t kt = 0; kt < nkt_main; ++kt) {
        uint8_t c = classify(qt, kt);
        cls_[qt * nkt + kt] = c;
        if (c == kPartial) slot_[qt * nkt + kt] = n_partial++;
      }
    masks_ = std::make_unique<Scratch>(size_t(n_partial * kTileQ * kTileK));
    for (int64_t qt = 0; qt < nqt; ++qt)
      for (int64_t kt = 0; kt < nkt_main; ++kt)
        if (tile(qt, kt) == kPartial) fill_tile_mask(qt, kt);
  }

  // Key tile kt covers keys [j0, j0 + rk); main tiles never straddle n_main.
  void key_tile(int64_t kt, int64_t& j0, int64_t& rk) const {
    if (kt < nkt_main) {
      j0 = kt * kTileK;
      rk = std::min(kTileK, a_.n_main - j0);
    } else {
      j0 = a_.n_main + (kt - nkt_main) * kTileK;
      rk = std::min(kTileK, a_.Nk - j0);
    }
  }
  uint8_t tile(int64_t qt, int64_t kt) const { return cls_[size_t(qt * nkt + kt)]; }
  // The visibility of a partial tile: [kTileQ, kTileK] bytes, 1 = visible; null otherwise.
  const uint8_t* tile_mask(int64_t qt, int64_t kt) const {
    int64_t s = slot_[size_t(qt * nkt + kt)];
    return s < 0 ? nullptr : masks_->as<uint8_t>(size_t(s * kTileQ * kTileK));
  }

  int64_t nqt = 0, nkt = 0, nkt_main = 0;

 private:
  // The spec's index rules, entry by entry (only used to fill partial tiles).
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
    uint8_t* vis = masks_->as<uint8_t>(size_t(slot_[qt * nkt + kt] * kTileQ * kTileK));
    int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a_.Nq - i0), j0, rk;
    key_tile(kt, j0, rk);
    for (int64_t r = 0; r < rq; ++r)
      for (int64_t j = 0; j < rk; ++j) vis[r * kTileK + j] = visible(i0 + r, j0 + j);
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
  // Visible entries of token pattern k in rows [la, lb) x columns [ca, cb).
  int64_t rect(int64_t k, int64_t la, int64_t lb, int64_t ca, int64_t cb) const {
    int64_t L1 = a_.kron.L + 1;
    const int32_t* p = prefix_.data() + k * L1 * L1;
    return p[lb * L1 + cb] - p[la * L1 + cb] - p[lb * L1 + ca] + p[la * L1 + ca];
  }

  uint8_t classify(int64_t qt, int64_t kt) const {
    int64_t i0 = qt * kTileQ, i1 = std::min(a_.Nq, i0 + kTileQ), j0, rk;
    key_tile(kt, j0, rk);
    int64_t j1 = j0 + rk;
    switch (a_.mask) {
      case AttnMaskKind::None: return kFull;
      case AttnMaskKind::Causal:
        if (j0 > i1 - 1) return kBlocked;
        return j1 - 1 <= i0 ? kFull : kPartial;
      case AttnMaskKind::Kron: break;
    }
    // Split the tile into (query frame segment) x (key frame segment) blocks; in each block
    // term k contributes frame[k][t][t'] times its token pattern restricted to the block.
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
          seg_full |= c == area;  // conservative: a union of partial terms stays "partial"
        }
        any |= seg_any;
        full &= seg_full;
      }
    }
    return !any ? kBlocked : full ? kFull : kPartial;
  }

  const AttentionDesc& a_;
  std::vector<uint8_t> cls_;
  std::vector<int64_t> slot_;      // index of a partial tile's mask, -1 otherwise
  std::vector<int32_t> prefix_;
  std::unique_ptr<Scratch> masks_;  // partial tiles' visibility
};

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// ---- small products ---------------------------------------------------------------------
//
// The tiles are small (the tiny models: 17 x 17 scores, head dim 32), where a general GEMM's
// packing and dispatch cost more than the arithmetic. One register-blocked loop nest serves
// every product: C[i][j] (+)= Σ_p A(i, p) · B[p][j], with A(i, p) = A[i·ars + p·aps] (so A
// may be read transposed) and B, C row-major. Each C element is one chain over p = 0, 1, ...
// in order, started from 0 (then times alpha) or from C's old value. The vectors are GCC
// vector types of a fixed width in the source (64 or 32 bytes; the compiler splits them
// for a narrower ISA): lanes only ever span independent j, and the build does not contract
// a·b + c into an FMA, so the bits depend on neither the ISA nor the thread count.
// Vectors move through memcpy, never as function arguments or results: without AVX those
// change the ABI (GCC's -Wpsabi, an error under VERBCLIP_WERROR in a -DVERBCLIP_NATIVE=OFF build).
template <class T, int Bytes> struct Vec {
  typedef T type __attribute__((vector_size(Bytes)));
  static constexpr int n = Bytes / int(sizeof(T));
};

// R rows x NV vectors of C.
template <class T, int Bytes, int R, int NV>
inline void block(int64_t k, const T* A, int64_t ars, int64_t aps, const T* B, int64_t ldb,
                  T* C, int64_t ldc, bool accumulate, T alpha) {
  using V = Vec<T, Bytes>;
  typename V::type c[R][NV];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v)
      if (accumulate) std::memcpy(&c[r][v], C + r * ldc + v * V::n, sizeof c[r][v]);
      else c[r][v] = typename V::type{};
  for (int64_t p = 0; p < k; ++p) {
    typename V::type b[NV];
    for (int v = 0; v < NV; ++v) std::memcpy(&b[v], B + p * ldb + v * V::n, sizeof b[v]);
    for (int r = 0; r < R; ++r) {
      T av = A[r * ars + p * aps];
      for (int v = 0; v < NV; ++v) c[r][v] += av * b[v];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < NV; ++v) {
      if (!accumulate) c[r][v] = alpha * c[r][v];
      std::memcpy(C + r * ldc + v * V::n, &c[r][v], sizeof c[r][v]);
    }
}

// The last columns (fewer than one 32-byte vector), the same chains one column at a time.
template <class T, int R>
inline void block_tail(int64_t n, int64_t k, const T* A, int64_t ars, int64_t aps, const T* B,
                       int64_t ldb, T* C, int64_t ldc, bool accumulate, T alpha) {
  for (int64_t w = 0; w < n; ++w) {
    T c[R];
    for (int r = 0; r < R; ++r) c[r] = accumulate ? C[r * ldc + w] : T(0);
    for (int64_t p = 0; p < k; ++p)
      for (int r = 0; r < R; ++r) c[r] += A[r * ars + p * aps] * B[p * ldb + w];
    for (int r = 0; r < R; ++r) C[r * ldc + w] = accumulate ? c[r] : alpha * c[r];
  }
}

template <class T, int R>
inline void row_block(int64_t n, int64_t k, const T* A, int64_t ars, int64_t aps, const T* B,
                      int64_t ldb, T* C, int64_t ldc, bool accumulate, T alpha) {
  constexpr int wide = Vec<T, kVectorBytes>::n, w32 = Vec<T, 32>::n;
  int64_t j = 0;
  for (; j + 2 * wide <= n; j += 2 * wide)
    block<T, kVectorBytes, R, 2>(k, A, ars, aps, B + j, ldb, C + j, ldc, accumulate, alpha);
  for (; j + wide <= n; j += wide)
    block<T, kVectorBytes, R, 1>(k, A, ars, aps, B + j, ldb, C + j, ldc, accumulate, alpha);
  for (; j + w32 <= n; j += w32)
    block<T, 32, R, 1>(k, A, ars, aps, B + j, ldb, C + j, ldc, accumulate, alpha);
  if (j < n) block_tail<T, R>(n - j, k, A, ars, aps, B + j, ldb, C + j, ldc, accumulate, alpha);
}

// C[m, n] = alpha · A B (accumulate = false) or C += A B (accumulate = true; alpha unused).
template <class T>
void small_gemm(int64_t m, int64_t n, int64_t k, const T* A, int64_t ars, int64_t aps,
                const T* B, int64_t ldb, T* C, int64_t ldc, bool accumulate, T alpha = T(1)) {
  int64_t i = 0;
  for (; i + 4 <= m; i += 4)
    row_block<T, 4>(n, k, A + i * ars, ars, aps, B, ldb, C + i * ldc, ldc, accumulate, alpha);
  for (; i < m; ++i)
    row_block<T, 1>(n, k, A + i * ars, ars, aps, B, ldb, C + i * ldc, ldc, accumulate, alpha);
}

// dst[c, r] = src[r, c] for an [rows, cols] block with row stride lds; dst row stride ldd.
template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, int64_t lds, T* dst, int64_t ldd) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * ldd + r] = src[r * lds + c];
}

// Tile buffers (S, P, dS) hold rows of kLd = kTileK entries, whatever the tile's width.
constexpr int64_t kLd = kTileK;

template <class T> struct Ctx {
  const AttentionDesc& a;
  const MaskPlan& plan;
  const T *q, *k, *v;
  const T* qh(int64_t b, int64_t h) const { return q + (b * a.H + h) * a.Nq * a.d; }
  const T* kh(int64_t b, int64_t h) const { return k + (b * a.H + h) * a.Nk * a.d; }
  const T* vh(int64_t b, int64_t h) const { return v + (b * a.H + h) * a.Nk * a.dv; }
};

// S[rq, rk] = scale · Q[i0.., :] K[j0.., :]ᵀ + dense bias + key bias, then -inf where the
// partial tile's visibility `vis` (row stride kTileK; null for a full tile) hides an entry.
// KT is scratch for the key tile transposed ([d, kLd]). The forward and the backward call it
// on the same tiles, so P recomputed in the backward is bit for bit the forward's.
template <class T>
void scores(const Ctx<T>& c, int64_t b, int64_t h, int64_t i0, int64_t rq, int64_t j0,
            int64_t rk, const uint8_t* vis, T* S, T* KT) {
  const AttentionDesc& a = c.a;
  transpose(c.kh(b, h) + j0 * a.d, rk, a.d, a.d, KT, kLd);
  small_gemm<T>(rq, rk, a.d, c.qh(b, h) + i0 * a.d, a.d, 1, KT, kLd, S, kLd, false, T(a.scale));
  if (a.bias && j0 < a.n_main) {
    const int64_t* st = a.bias_strides;
    const T* bp = static_cast<const T*>(a.bias) + b * st[0] + h * st[1];
    for (int64_t r = 0; r < rq; ++r) {
      const T* br = bp + (i0 + r) * st[2] + j0 * st[3];
      T* sr = S + r * kLd;
      for (int64_t j = 0; j < rk; ++j) sr[j] += br[j * st[3]];
    }
  }
  if (a.key_bias) {
    const T* kb = static_cast<const T*>(a.key_bias) + b * a.key_bias_sb + h * a.key_bias_sh + j0;
    for (int64_t r = 0; r < rq; ++r) {
      T* sr = S + r * kLd;
      for (int64_t j = 0; j < rk; ++j) sr[j] += kb[j];
    }
  }
  if (vis)
    for (int64_t r = 0; r < rq; ++r)
      for (int64_t j = 0; j < rk; ++j)
        S[r * kLd + j] = vis[r * kTileK + j] ? S[r * kLd + j] : T(kNegInf);
}

// P = exp(S - shift) row by row, exactly 0 where S is -inf and on rows whose shift is -inf
// (nothing visible); fast_exp's bits are the same in every lane of any width (Eigen's exp,
// used before, sent the row's tail to std::exp, and where the tail began depended on the ISA).
template <class T>
void exp_rows(const T* S, int64_t lds, const T* shift, int64_t rq, int64_t rk, T* P, int64_t ldp) {
  for (int64_t r = 0; r < rq; ++r) {
    const T* sr = S + r * lds;
    T* pr = P + r * ldp;
    if (shift[r] == T(kNegInf)) {
      std::fill(pr, pr + rk, T(0));
      continue;
    }
    const T sh = shift[r];
#pragma omp simd  // without it GCC 12 left the loop scalar
    for (int64_t j = 0; j < rk; ++j) pr[j] = sr[j] == T(kNegInf) ? T(0) : fast_exp(sr[j] - sh);
  }
}

// Small problems run on the calling thread alone. The rule depends on sizes only.
bool worth_threads(const AttentionDesc& a) {
  return a.B * a.H * a.Nq * a.Nk * std::max(a.d, a.dv) >= 100000;
}

// ---- forward ----------------------------------------------------------------------------

template <class T>
void forward_query_tile(const Ctx<T>& c, int64_t b, int64_t h, int64_t qt, T* out, T* lse,
                        T* buf) {
  const AttentionDesc& a = c.a;
  int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a.Nq - i0);
  T *S = buf, *P = S + kTileQ * kLd, *m = P + kTileQ * kLd, *l = m + kTileQ,
    *mnew = l + kTileQ, *acc = mnew + kTileQ, *KT = acc + kTileQ * a.dv;
  std::fill(m, m + rq, T(kNegInf));
  std::fill(l, l + rq, T(0));
  std::fill(acc, acc + rq * a.dv, T(0));
  for (int64_t kt = 0; kt < c.plan.nkt; ++kt) {
    uint8_t cls = c.plan.tile(qt, kt);
    if (cls == kBlocked) continue;  // the mask hides the whole tile: never computed
    int64_t j0, rk;
    c.plan.key_tile(kt, j0, rk);
    scores(c, b, h, i0, rq, j0, rk, c.plan.tile_mask(qt, kt), S, KT);
    // Online softmax: new running max, rescale what was accumulated under the old one.
    for (int64_t r = 0; r < rq; ++r) {
      mnew[r] = m[r];
      for (int64_t j = 0; j < rk; ++j) mnew[r] = std::max(mnew[r], S[r * kLd + j]);
    }
    exp_rows(S, kLd, mnew, rq, rk, P, kLd);
    for (int64_t r = 0; r < rq; ++r) {
      if (mnew[r] == T(kNegInf)) continue;  // nothing visible yet: P row is 0
      T alpha = m[r] == T(kNegInf) ? T(0) : std::exp(m[r] - mnew[r]);
      T sum = 0;  // in j order (Eigen's sum, used before, added in an order set by the vector width)
      for (int64_t j = 0; j < rk; ++j) sum += P[r * kLd + j];
      l[r] = l[r] * alpha + sum;
      for (int64_t e = 0; e < a.dv; ++e) acc[r * a.dv + e] *= alpha;
      m[r] = mnew[r];
    }
    small_gemm<T>(rq, a.dv, rk, P, kLd, 1, c.vh(b, h) + j0 * a.dv, a.dv, acc, a.dv, true);
  }
  T* o = out + ((b * a.H + h) * a.Nq + i0) * a.dv;
  T* ls = lse + (b * a.H + h) * a.Nq + i0;
  for (int64_t r = 0; r < rq; ++r) {
    bool dead = l[r] == T(0);  // every key masked: output 0, lse -inf
    for (int64_t e = 0; e < a.dv; ++e) o[r * a.dv + e] = dead ? T(0) : acc[r * a.dv + e] / l[r];
    ls[r] = dead ? T(kNegInf) : m[r] + std::log(l[r]);
  }
}

// probs[b, h, rr, :] = exp(S[row] - lse[row]) for the requested rows, one row at a time.
template <class T>
void probs_row(const Ctx<T>& c, int64_t b, int64_t h, int64_t i, const T* lse, T* dst, T* S,
               T* KT) {
  const AttentionDesc& a = c.a;
  T shift = lse[(b * a.H + h) * a.Nq + i];
  for (int64_t kt = 0; kt < c.plan.nkt; ++kt) {
    int64_t j0, rk;
    c.plan.key_tile(kt, j0, rk);
    int64_t qt = i / kTileQ;
    if (c.plan.tile(qt, kt) == kBlocked) {
      std::fill(dst + j0, dst + j0 + rk, T(0));
      continue;
    }
    const uint8_t* vis = c.plan.tile_mask(qt, kt);
    scores(c, b, h, i, 1, j0, rk, vis ? vis + (i - qt * kTileQ) * kTileK : nullptr, S, KT);
    exp_rows(S, kLd, &shift, 1, rk, dst + j0, rk);
  }
}

template <class T>
void forward_t(const AttentionDesc& a, const T* q, const T* k, const T* v, T* out, T* lse,
               const int64_t* prob_rows, int64_t n_prob_rows, T* probs) {
  MaskPlan plan(a);
  Ctx<T> c{a, plan, q, k, v};
  int64_t tasks = a.B * a.H * plan.nqt;
  size_t per_thread = size_t(2 * kTileQ * kLd + 3 * kTileQ + kTileQ * a.dv + a.d * kLd);
#pragma omp parallel if (worth_threads(a))
  {
    Scratch buf(per_thread * sizeof(T));
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      // Last query tiles first: under causal-like masks they see the most keys, and handing
      // out the big tasks first evens the threads out (the result does not depend on it).
      int64_t qt = plan.nqt - 1 - task % plan.nqt, bh = task / plan.nqt;
      forward_query_tile(c, bh / a.H, bh % a.H, qt, out, lse, buf.as<T>());
    }
#pragma omp for schedule(static)
    for (int64_t task = 0; task < a.B * a.H * n_prob_rows; ++task) {
      int64_t rr = task % n_prob_rows, bh = task / n_prob_rows;
      probs_row(c, bh / a.H, bh % a.H, prob_rows[rr], lse, probs + task * a.Nk, buf.as<T>(),
                buf.as<T>(size_t(kTileQ * kLd)));
    }
  }
}

// ---- backward ---------------------------------------------------------------------------
//
// Per visible tile (query tile qt, key tile kt) of one (b, h):
//   S, P recomputed; dP = dO Vᵀ; dS = P ∘ (dP - D);
//   dQ[qt] += dS K[kt]        (over kt in order)
//   dK[kt] += dSᵀ Q[qt], dV[kt] += Pᵀ dO[qt], key-bias column sums   (over qt in order)
// and dQ, dK are scaled at the end. Two schedules give the same bits, because every output
// element sums the same terms in the same order:
//   fused:   owner = (b, h); qt outer, kt inner; each tile is recomputed once.
//   split:   dQ owned by (b, h, qt), dK/dV by (b, h, kt); each tile is recomputed twice,
//            for more tasks when B·H is small next to the thread count.

template <class T> struct BackCtx {
  const Ctx<T>& c;
  const T *lse, *D, *gout;
  T *gq, *gk, *gv, *gbias, *gkey_bias;
};

// S, P, dS of one tile; KT and VT are [d, kLd] and [dv, kLd] scratch.
template <class T>
void tile_grad(const BackCtx<T>& g, int64_t b, int64_t h, int64_t i0, int64_t rq, int64_t j0,
               int64_t rk, const uint8_t* vis, T* S, T* P, T* dS, T* KT, T* VT) {
  const AttentionDesc& a = g.c.a;
  int64_t row0 = (b * a.H + h) * a.Nq + i0;
  scores(g.c, b, h, i0, rq, j0, rk, vis, S, KT);
  exp_rows(S, kLd, g.lse + row0, rq, rk, P, kLd);
  transpose(g.c.vh(b, h) + j0 * a.dv, rk, a.dv, a.dv, VT, kLd);
  small_gemm<T>(rq, rk, a.dv, g.gout + row0 * a.dv, a.dv, 1, VT, kLd, dS, kLd, false);
  for (int64_t r = 0; r < rq; ++r)
    for (int64_t j = 0; j < rk; ++j)
      dS[r * kLd + j] = P[r * kLd + j] * (dS[r * kLd + j] - g.D[row0 + r]);
}

// The dQ half of a tile: dQ rows += dS K; the dense-bias gradient is dS itself.
template <class T>
void tile_dq(const BackCtx<T>& g, int64_t b, int64_t h, int64_t i0, int64_t rq, int64_t j0,
             int64_t rk, const T* dS) {
  const AttentionDesc& a = g.c.a;
  int64_t bh = b * a.H + h;
  small_gemm<T>(rq, a.d, rk, dS, kLd, 1, g.c.kh(b, h) + j0 * a.d, a.d,
                g.gq + (bh * a.Nq + i0) * a.d, a.d, true);
  if (g.gbias && j0 < a.n_main) {
    T* gb = g.gbias + (bh * a.Nq + i0) * a.n_main;
    for (int64_t r = 0; r < rq; ++r) std::copy(dS + r * kLd, dS + r * kLd + rk, gb + r * a.n_main + j0);
  }
}

// The dK/dV half of a tile: dV rows += Pᵀ dO, dK rows += dSᵀ Q, col += column sums of dS.
template <class T>
void tile_dkv(const BackCtx<T>& g, int64_t b, int64_t h, int64_t i0, int64_t rq, int64_t j0,
              int64_t rk, const T* P, const T* dS, T* col) {
  const AttentionDesc& a = g.c.a;
  int64_t bh = b * a.H + h;
  small_gemm<T>(rk, a.dv, rq, P, 1, kLd, g.gout + (bh * a.Nq + i0) * a.dv, a.dv,
                g.gv + (bh * a.Nk + j0) * a.dv, a.dv, true);
  small_gemm<T>(rk, a.d, rq, dS, 1, kLd, g.c.qh(b, h) + i0 * a.d, a.d,
                g.gk + (bh * a.Nk + j0) * a.d, a.d, true);
  if (col)
    for (int64_t r = 0; r < rq; ++r)
      for (int64_t j = 0; j < rk; ++j) col[j] += dS[r * kLd + j];
}

template <class T> void scale_rows(T* p, int64_t n, T s) {
  for (int64_t i = 0; i < n; ++i) p[i] = s * p[i];
}

template <class T>
void backward_t(const AttentionDesc& a, const T* q, const T* k, const T* v, const T* out,
                const T* lse, const T* gout, T* gq, T* gk, T* gv, T* gbias, T* gkey_bias) {
  MaskPlan plan(a);
  Ctx<T> c{a, plan, q, k, v};
  const int64_t rows = a.B * a.H * a.Nq, BH = a.B * a.H;
  Scratch Dbuf(size_t(rows) * sizeof(T));
  T* D = Dbuf.as<T>();
  BackCtx<T> g{c, lse, D, gout, gq, gk, gv, gbias, gkey_bias};
  const T scale = T(a.scale);
  // Fused when there are enough (b, h) for the threads; either way the same bits.
  const bool fused = BH >= 4 * int64_t(num_threads()) || (plan.nqt == 1 && plan.nkt == 1);
  size_t per_thread = size_t(3 * kTileQ * kLd + (a.d + a.dv) * kLd);
#pragma omp parallel if (worth_threads(a))
  {
    Scratch buf(per_thread * sizeof(T));
    T *S = buf.as<T>(), *P = S + kTileQ * kLd, *dS = P + kTileQ * kLd, *KT = dS + kTileQ * kLd,
      *VT = KT + a.d * kLd;
    // D = rowsum(dO ∘ O), one row per owner; the gradients start at 0 (skipped tiles stay 0).
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      T s = 0;
      for (int64_t e = 0; e < a.dv; ++e) s += gout[r * a.dv + e] * out[r * a.dv + e];
      D[r] = s;
      std::fill(gq + r * a.d, gq + (r + 1) * a.d, T(0));
      if (gbias) std::fill(gbias + r * a.n_main, gbias + (r + 1) * a.n_main, T(0));
    }
#pragma omp for schedule(static)
    for (int64_t r = 0; r < BH * a.Nk; ++r) {
      std::fill(gk + r * a.d, gk + (r + 1) * a.d, T(0));
      std::fill(gv + r * a.dv, gv + (r + 1) * a.dv, T(0));
      if (gkey_bias) gkey_bias[r] = 0;
    }
    if (fused) {
#pragma omp for schedule(dynamic, 1)
      for (int64_t bh = 0; bh < BH; ++bh) {
        int64_t b = bh / a.H, h = bh % a.H;
        for (int64_t qt = 0; qt < plan.nqt; ++qt) {
          int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a.Nq - i0);
          for (int64_t kt = 0; kt < plan.nkt; ++kt) {
            if (plan.tile(qt, kt) == kBlocked) continue;
            int64_t j0, rk;
            plan.key_tile(kt, j0, rk);
            tile_grad(g, b, h, i0, rq, j0, rk, plan.tile_mask(qt, kt), S, P, dS, KT, VT);
            tile_dq(g, b, h, i0, rq, j0, rk, dS);
            tile_dkv(g, b, h, i0, rq, j0, rk, P, dS, gkey_bias ? gkey_bias + bh * a.Nk + j0 : nullptr);
          }
        }
        scale_rows(gq + bh * a.Nq * a.d, a.Nq * a.d, scale);
        scale_rows(gk + bh * a.Nk * a.d, a.Nk * a.d, scale);
      }
    } else {
      // dQ (and the dense-bias gradient dS): owner = (b, h, query tile).
#pragma omp for schedule(dynamic, 1) nowait
      for (int64_t task = 0; task < BH * plan.nqt; ++task) {
        int64_t qt = plan.nqt - 1 - task % plan.nqt, bh = task / plan.nqt, b = bh / a.H,
                h = bh % a.H;  // big tasks first, as in the forward
        int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a.Nq - i0);
        for (int64_t kt = 0; kt < plan.nkt; ++kt) {
          if (plan.tile(qt, kt) == kBlocked) continue;
          int64_t j0, rk;
          plan.key_tile(kt, j0, rk);
          tile_grad(g, b, h, i0, rq, j0, rk, plan.tile_mask(qt, kt), S, P, dS, KT, VT);
          tile_dq(g, b, h, i0, rq, j0, rk, dS);
        }
        scale_rows(gq + (bh * a.Nq + i0) * a.d, rq * a.d, scale);
      }
      // dK, dV, per-key bias: owner = (b, h, key tile), query tiles visited in order.
#pragma omp for schedule(dynamic, 1)
      for (int64_t task = 0; task < BH * plan.nkt; ++task) {
        int64_t kt = task % plan.nkt, bh = task / plan.nkt, b = bh / a.H, h = bh % a.H;
        int64_t j0, rk;
        plan.key_tile(kt, j0, rk);
        for (int64_t qt = 0; qt < plan.nqt; ++qt) {
          if (plan.tile(qt, kt) == kBlocked) continue;
          int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a.Nq - i0);
          tile_grad(g, b, h, i0, rq, j0, rk, plan.tile_mask(qt, kt), S, P, dS, KT, VT);
          tile_dkv(g, b, h, i0, rq, j0, rk, P, dS, gkey_bias ? gkey_bias + bh * a.Nk + j0 : nullptr);
        }
        scale_rows(gk + (bh * a.Nk + j0) * a.d, rk * a.d, scale);
      }
    }
  }
}

void forward(const AttentionDesc& a, const void* q, const void* k, const void* v, void* out,
             void* lse, const int64_t* prob_rows, int64_t n_prob_rows, void* probs) {
  dispatch_floating(a.dtype, [&](auto zero) {
    using T = decltype(zero);
    forward_t<T>(a, static_cast<const T*>(q), static_cast<const T*>(k),
                 static_cast<const T*>(v), static_cast<T*>(out), static_cast<T*>(lse),
                 prob_rows, n_prob_rows, static_cast<T*>(probs));
  });
}

void backward(const AttentionDesc& a, const void* q, const void* k, const void* v,
              const void* out, const void* lse, const void* gout, void* gq, void* gk, void* gv,
              void* gbias, void* gkey_bias) {
  dispatch_floating(a.dtype, [&](auto zero) {
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

}  // namespace vc::cpu_kernels
