// CPU attention kernels: softmax(scale · Q Kᵀ + bias) V in the flash-attention style.
//
// The score matrix is never held whole. Queries are cut into tiles of kTileQ rows, keys into
// tiles of kTileK columns; each (query tile, key tile) pair is classified once per call from
// the mask alone (blocked / partial / full). Blocked tiles are skipped: no scores, no exp.
//   forward:  per query tile, an online softmax over its key tiles (running row max m, row
//             sum l, unnormalised output acc); saves lse = m + log(l) per row.
//   backward: recomputes P = exp(S - lse) per tile; D = rowsum(dO ∘ O); dS = P ∘ (dP - D).
//             dQ: owner = query tile, loops over key tiles in order.
//             dK, dV, per-key bias: owner = key tile, loops over query tiles in order.
// Every output element has one owner that sums in a fixed order: no atomics, and the bits do
// not depend on the thread count (Eigen runs single-threaded inside an OpenMP region).
#include "engine/core/eigen.h"
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"

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

template <class T> using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MapM = Eigen::Map<Mat<T>>;
template <class T> using CMapM = Eigen::Map<const Mat<T>>;
template <class T> using RowArr = Eigen::Map<Eigen::Array<T, 1, Eigen::Dynamic>>;
template <class T> using CRowArr = Eigen::Map<const Eigen::Array<T, 1, Eigen::Dynamic>>;

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

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
// The forward and both backward passes call it on the same tiles, so P recomputed in the
// backward is bit for bit the forward's.
template <class T>
void scores(const Ctx<T>& c, int64_t b, int64_t h, int64_t i0, int64_t rq, int64_t j0,
            int64_t rk, const uint8_t* vis, T* S) {
  const AttentionDesc& a = c.a;
  MapM<T> s(S, rq, rk);
  CMapM<T> qm(c.qh(b, h) + i0 * a.d, rq, a.d), km(c.kh(b, h) + j0 * a.d, rk, a.d);
  s.noalias() = T(a.scale) * qm * km.transpose();
  if (a.bias && j0 < a.n_main) {
    const int64_t* st = a.bias_strides;
    const T* bp = static_cast<const T*>(a.bias) + b * st[0] + h * st[1];
    for (int64_t r = 0; r < rq; ++r) {
      const T* br = bp + (i0 + r) * st[2] + j0 * st[3];
      T* sr = S + r * rk;
      for (int64_t j = 0; j < rk; ++j) sr[j] += br[j * st[3]];
    }
  }
  if (a.key_bias) {
    const T* kb = static_cast<const T*>(a.key_bias) + b * a.key_bias_sb + h * a.key_bias_sh + j0;
    for (int64_t r = 0; r < rq; ++r) {
      T* sr = S + r * rk;
      for (int64_t j = 0; j < rk; ++j) sr[j] += kb[j];
    }
  }
  if (vis)
    for (int64_t r = 0; r < rq; ++r)
      for (int64_t j = 0; j < rk; ++j)
        S[r * rk + j] = vis[r * kTileK + j] ? S[r * rk + j] : T(kNegInf);
}

// P = exp(S - shift) row by row, exactly 0 where S is -inf (Eigen's vector exp does not
// return an exact 0 for -inf) and on rows whose shift is -inf (nothing visible).
template <class T> void exp_rows(const T* S, const T* shift, int64_t rq, int64_t rk, T* P) {
  for (int64_t r = 0; r < rq; ++r) {
    const T* sr = S + r * rk;
    T* pr = P + r * rk;
    if (shift[r] == T(kNegInf)) {
      std::fill(pr, pr + rk, T(0));
      continue;
    }
    RowArr<T>(pr, rk) = (CRowArr<T>(sr, rk) - shift[r]).exp();
    for (int64_t j = 0; j < rk; ++j) pr[j] = sr[j] == T(kNegInf) ? T(0) : pr[j];
  }
}

// Small problems run on the calling thread alone. The rule depends on sizes only, and below
// it every tile product is under Eigen's own threading threshold (work < 2 · 50000), so Eigen
// stays single-threaded on both paths and the bits never depend on the thread count.
bool worth_threads(const AttentionDesc& a) {
  return a.B * a.H * a.Nq * a.Nk * std::max(a.d, a.dv) >= 100000;
}

// ---- forward ----------------------------------------------------------------------------

template <class T>
void forward_query_tile(const Ctx<T>& c, int64_t b, int64_t h, int64_t qt, T* out, T* lse,
                        T* buf) {
  const AttentionDesc& a = c.a;
  int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a.Nq - i0);
  T *S = buf, *P = S + kTileQ * kTileK, *m = P + kTileQ * kTileK, *l = m + kTileQ,
    *mnew = l + kTileQ, *acc = mnew + kTileQ;
  std::fill(m, m + rq, T(kNegInf));
  std::fill(l, l + rq, T(0));
  MapM<T> accm(acc, rq, a.dv);
  accm.setZero();
  for (int64_t kt = 0; kt < c.plan.nkt; ++kt) {
    uint8_t cls = c.plan.tile(qt, kt);
    if (cls == kBlocked) continue;  // the mask hides the whole tile: never computed
    int64_t j0, rk;
    c.plan.key_tile(kt, j0, rk);
    scores(c, b, h, i0, rq, j0, rk, c.plan.tile_mask(qt, kt), S);
    // Online softmax: new running max, rescale what was accumulated under the old one.
    for (int64_t r = 0; r < rq; ++r)
      mnew[r] = std::max(m[r], CRowArr<T>(S + r * rk, rk).maxCoeff());
    exp_rows(S, mnew, rq, rk, P);
    for (int64_t r = 0; r < rq; ++r) {
      if (mnew[r] == T(kNegInf)) continue;  // nothing visible yet: P row is 0
      T alpha = m[r] == T(kNegInf) ? T(0) : std::exp(m[r] - mnew[r]);
      l[r] = l[r] * alpha + RowArr<T>(P + r * rk, rk).sum();
      accm.row(r) *= alpha;
      m[r] = mnew[r];
    }
    accm.noalias() += CMapM<T>(P, rq, rk) * CMapM<T>(c.vh(b, h) + j0 * a.dv, rk, a.dv);
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
void probs_row(const Ctx<T>& c, int64_t b, int64_t h, int64_t i, const T* lse, T* dst, T* S) {
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
    scores(c, b, h, i, 1, j0, rk, vis ? vis + (i - qt * kTileQ) * kTileK : nullptr, S);
    exp_rows(S, &shift, 1, rk, dst + j0);
  }
}

template <class T>
void forward_t(const AttentionDesc& a, const T* q, const T* k, const T* v, T* out, T* lse,
               const int64_t* prob_rows, int64_t n_prob_rows, T* probs) {
  MaskPlan plan(a);
  Ctx<T> c{a, plan, q, k, v};
  int64_t tasks = a.B * a.H * plan.nqt;
  size_t per_thread = size_t(2 * kTileQ * kTileK + 3 * kTileQ + kTileQ * a.dv);
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
      probs_row(c, bh / a.H, bh % a.H, prob_rows[rr], lse, probs + task * a.Nk, buf.as<T>());
    }
  }
}

// ---- backward ---------------------------------------------------------------------------

// The part of the backward both owners share: recompute S and P for one tile, then
// dP = dO Vᵀ and dS = P ∘ (dP - D).
template <class T>
void tile_grad(const Ctx<T>& c, int64_t b, int64_t h, int64_t i0, int64_t rq, int64_t j0,
               int64_t rk, const uint8_t* vis, const T* lse, const T* D, const T* gout, T* S, T* P,
               T* dS) {
  const AttentionDesc& a = c.a;
  int64_t row0 = (b * a.H + h) * a.Nq + i0;
  scores(c, b, h, i0, rq, j0, rk, vis, S);
  exp_rows(S, lse + row0, rq, rk, P);
  MapM<T> ds(dS, rq, rk);
  ds.noalias() = CMapM<T>(gout + row0 * a.dv, rq, a.dv) *
                 CMapM<T>(c.vh(b, h) + j0 * a.dv, rk, a.dv).transpose();
  for (int64_t r = 0; r < rq; ++r)
    for (int64_t j = 0; j < rk; ++j) dS[r * rk + j] = P[r * rk + j] * (dS[r * rk + j] - D[row0 + r]);
}

template <class T>
void backward_t(const AttentionDesc& a, const T* q, const T* k, const T* v, const T* out,
                const T* lse, const T* gout, T* gq, T* gk, T* gv, T* gbias, T* gkey_bias) {
  MaskPlan plan(a);
  Ctx<T> c{a, plan, q, k, v};
  int64_t rows = a.B * a.H * a.Nq;
  Scratch Dbuf(size_t(rows) * sizeof(T));
  T* D = Dbuf.as<T>();
  size_t per_thread = size_t(3 * kTileQ * kTileK + std::max(kTileQ, kTileK) * (a.d + a.dv) + kTileK);
#pragma omp parallel if (worth_threads(a))
  {
    Scratch buf(per_thread * sizeof(T));
    T *S = buf.as<T>(), *P = S + kTileQ * kTileK, *dS = P + kTileQ * kTileK,
      *acc = dS + kTileQ * kTileK;
    // D = rowsum(dO ∘ O), one row per owner.
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      T s = 0;
      for (int64_t e = 0; e < a.dv; ++e) s += gout[r * a.dv + e] * out[r * a.dv + e];
      D[r] = s;
    }
    // dQ (and the dense-bias gradient dS): owner = (b, h, query tile).
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < a.B * a.H * plan.nqt; ++task) {
      int64_t qt = plan.nqt - 1 - task % plan.nqt, bh = task / plan.nqt, b = bh / a.H,
              h = bh % a.H;  // big tasks first, as in the forward
      int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a.Nq - i0);
      MapM<T> dq(acc, rq, a.d);
      dq.setZero();
      T* gb = gbias ? gbias + (bh * a.Nq + i0) * a.n_main : nullptr;
      if (gb) std::fill(gb, gb + rq * a.n_main, T(0));  // skipped tiles stay 0
      for (int64_t kt = 0; kt < plan.nkt; ++kt) {
        if (plan.tile(qt, kt) == kBlocked) continue;
        int64_t j0, rk;
        plan.key_tile(kt, j0, rk);
        tile_grad(c, b, h, i0, rq, j0, rk, plan.tile_mask(qt, kt), lse, D, gout, S, P, dS);
        dq.noalias() += CMapM<T>(dS, rq, rk) * CMapM<T>(c.kh(b, h) + j0 * a.d, rk, a.d);
        if (gb && j0 < a.n_main)
          for (int64_t r = 0; r < rq; ++r) std::copy(dS + r * rk, dS + (r + 1) * rk, gb + r * a.n_main + j0);
      }
      MapM<T>(gq + (bh * a.Nq + i0) * a.d, rq, a.d) = T(a.scale) * dq;
    }
    // dK, dV, per-key bias: owner = (b, h, key tile), query tiles visited in order.
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < a.B * a.H * plan.nkt; ++task) {
      int64_t kt = task % plan.nkt, bh = task / plan.nkt, b = bh / a.H, h = bh % a.H;
      int64_t j0, rk;
      plan.key_tile(kt, j0, rk);
      MapM<T> dk(acc, rk, a.d), dv(acc + rk * a.d, rk, a.dv);
      T* col = acc + rk * (a.d + a.dv);
      dk.setZero();
      dv.setZero();
      std::fill(col, col + rk, T(0));
      for (int64_t qt = 0; qt < plan.nqt; ++qt) {
        if (plan.tile(qt, kt) == kBlocked) continue;
        int64_t i0 = qt * kTileQ, rq = std::min(kTileQ, a.Nq - i0);
        tile_grad(c, b, h, i0, rq, j0, rk, plan.tile_mask(qt, kt), lse, D, gout, S, P, dS);
        dv.noalias() += CMapM<T>(P, rq, rk).transpose() * CMapM<T>(gout + (bh * a.Nq + i0) * a.dv, rq, a.dv);
        dk.noalias() += CMapM<T>(dS, rq, rk).transpose() * CMapM<T>(c.qh(b, h) + i0 * a.d, rq, a.d);
        for (int64_t r = 0; r < rq; ++r)
          for (int64_t j = 0; j < rk; ++j) col[j] += dS[r * rk + j];
      }
      MapM<T>(gk + (bh * a.Nk + j0) * a.d, rk, a.d) = T(a.scale) * dk;
      MapM<T>(gv + (bh * a.Nk + j0) * a.dv, rk, a.dv) = dv;
      if (gkey_bias) std::copy(col, col + rk, gkey_bias + bh * a.Nk + j0);
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
