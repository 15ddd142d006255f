// ToMe bipartite soft matching and the size-weighted token merge (alt.md §2.2, tcclip.md §2.5).
// The matching is discrete: every step is a fixed loop order with explicit tie rules, so the
// plan is the same for any thread count. The merge is owner-computes: each output row is
// written by one thread, which adds its sources in increasing index (no atomics).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

namespace {

// Dot products of R rows a[i] with one row b, each with 8 fixed lanes (lane = k mod 8)
// combined in a fixed tree: vectorisable without -ffast-math, and each dot is the same sum
// whatever R is (R only shares the loads of b), so the CUDA kernel can use the same lanes.
template <int R, class T> void dots8(const T* const* a, const T* b, int64_t c, T* out) {
  T acc[R][8] = {};
  int64_t k = 0;
  for (; k + 8 <= c; k += 8)
    for (int i = 0; i < R; ++i)
      for (int l = 0; l < 8; ++l) acc[i][l] += a[i][k + l] * b[k + l];
  for (int l = 0; k < c; ++k, ++l)
    for (int i = 0; i < R; ++i) acc[i][l] += a[i][k] * b[k];
  for (int i = 0; i < R; ++i) {
    const T* v = acc[i];
    out[i] = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
  }
}

// Where each token of a plan goes. For A-index a: slot_a[a] is its output slot and
// merged_a[a] whether it was merged into a B token. B token b always lands at slot nU + b.
// For B token b, sources a (increasing) are first[b] .. first[b + 1] in list.
struct PlanMaps {
  std::vector<int64_t> slot_a, first, list;
  std::vector<char> merged_a;
};

PlanMaps plan_maps(const int64_t* unm, const int64_t* src, const int64_t* dst, int64_t nA,
                   int64_t nB, int64_t r) {
  PlanMaps p;
  int64_t nU = nA - r;
  p.slot_a.assign(nA, -1);
  p.merged_a.assign(nA, 0);
  for (int64_t i = 0; i < nU; ++i) p.slot_a[unm[i]] = i;
  std::vector<int64_t> dst_of(nA, -1);
  for (int64_t i = 0; i < r; ++i) {
    dst_of[src[i]] = dst[i];
    p.slot_a[src[i]] = nU + dst[i];
    p.merged_a[src[i]] = 1;
  }
  // Counting sort of sources by destination, visiting a in increasing order (stable).
  p.first.assign(nB + 1, 0);
  for (int64_t a = 0; a < nA; ++a)
    if (dst_of[a] >= 0) ++p.first[dst_of[a] + 1];
  for (int64_t b = 0; b < nB; ++b) p.first[b + 1] += p.first[b];
  std::vector<int64_t> fill(p.first.begin(), p.first.end() - 1);
  p.list.resize(r);
  for (int64_t a = 0; a < nA; ++a)
    if (dst_of[a] >= 0) p.list[fill[dst_of[a]]++] = a;
  return p;
}

std::vector<PlanMaps> all_plan_maps(const int64_t* unm, const int64_t* src, const int64_t* dst,
                                    int64_t batch, int64_t n, int64_t r) {
  int64_t nA = (n + 1) / 2, nB = n / 2, nU = nA - r;
  std::vector<PlanMaps> maps(batch);
#pragma omp parallel for schedule(static) if (batch > 4)
  for (int64_t b = 0; b < batch; ++b)
    maps[b] = plan_maps(unm + b * nU, src + b * r, dst + b * r, nA, nB, r);
  return maps;
}

}  // namespace

void bipartite_match(DType t, const void* metric, int64_t batch, int64_t n, int64_t c, int64_t r,
                     bool protect_first, bool unm_by_position, int64_t* unm, int64_t* src,
                     int64_t* dst) {
  int64_t nA = (n + 1) / 2, nB = n / 2, nU = nA - r;
  std::vector<double> best(size_t(batch * nA));
  std::vector<int64_t> arg(size_t(batch * nA));
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* m = static_cast<const T*>(metric);
    // 1. Unit rows m / max(||m||, 1e-12): an all-zero row scores 0, never NaN.
    std::vector<T> unit(size_t(batch * n * c));
#pragma omp parallel for schedule(static) if (batch * n * c > 32768)
    for (int64_t row = 0; row < batch * n; ++row) {
      const T* in = m + row * c;
      double ss = 0;
      for (int64_t k = 0; k < c; ++k) ss += double(in[k]) * double(in[k]);
      T inv = T(1.0 / std::max(std::sqrt(ss), 1e-12));
      for (int64_t k = 0; k < c; ++k) unit[row * c + k] = in[k] * inv;
    }
    // 2. Each A token's best B partner: scan b upwards, replace only on a strictly larger
    //    score, so ties go to the smallest b. Four A rows at a time share each B row's loads.
    constexpr int R = 4;
    int64_t blocks = (nA + R - 1) / R;
#pragma omp parallel for schedule(static) if (batch * nA * nB * c > 65536)
    for (int64_t blk = 0; blk < batch * blocks; ++blk) {
      int64_t bi = blk / blocks, a0 = (blk % blocks) * R;
      const T* rows[R];
      double top[R];
      int64_t at[R] = {};
      for (int i = 0; i < R; ++i) {
        int64_t a = std::min(a0 + i, nA - 1);  // a short last block repeats its last row
        rows[i] = unit.data() + (bi * n + 2 * a) * c;
        top[i] = -std::numeric_limits<double>::infinity();
      }
      T s[R];
      for (int64_t b = 0; b < nB; ++b) {
        dots8<R>(rows, unit.data() + (bi * n + 2 * b + 1) * c, c, s);
        for (int i = 0; i < R; ++i)
          if (double(s[i]) > top[i]) top[i] = s[i], at[i] = b;
      }
      for (int i = 0; i < R && a0 + i < nA; ++i) {
        bool is_protected = protect_first && a0 + i == 0;  // never a source
        best[bi * nA + a0 + i] = is_protected ? -std::numeric_limits<double>::infinity() : top[i];
        arg[bi * nA + a0 + i] = is_protected ? 0 : at[i];
      }
    }
  });
  // 3. Rank A by best score, descending, stable (ties: smaller a first). The protected
  //    class token scores -inf and ranks last, so it is never among the first r.
#pragma omp parallel for schedule(static) if (batch > 4)
  for (int64_t bi = 0; bi < batch; ++bi) {
    const double* bs = best.data() + bi * nA;
    std::vector<int64_t> order(nA);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t x, int64_t y) { return bs[x] > bs[y]; });
    for (int64_t i = 0; i < r; ++i) {
      src[bi * r + i] = order[i];
      dst[bi * r + i] = arg[bi * nA + order[i]];
    }
    if (unm_by_position) std::sort(order.begin() + r, order.end());
    std::copy(order.begin() + r, order.end(), unm + bi * nU);
  }
}

void token_merge(DType t, const void* x, const void* sizes, const int64_t* unm,
                 const int64_t* src, const int64_t* dst, void* y, void* new_sizes, int64_t batch,
                 int64_t n, int64_t r, int64_t c) {
  int64_t nA = (n + 1) / 2, nB = n / 2, nU = nA - r, n_out = n - r;
  std::vector<PlanMaps> maps = all_plan_maps(unm, src, dst, batch, n, r);
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* xp = static_cast<const T*>(x);
    const T* sp = static_cast<const T*>(sizes);
    T* yp = static_cast<T*>(y);
    T* nsp = static_cast<T*>(new_sizes);
#pragma omp parallel for schedule(static) if (batch * n_out * c > 32768)
    for (int64_t bo = 0; bo < batch * n_out; ++bo) {
      int64_t bi = bo / n_out, o = bo % n_out;
      const PlanMaps& p = maps[bi];
      const T* xb = xp + bi * n * c;
      T* out = yp + bo * c;
      // The input position this slot starts from: a kept A token or B token o - nU.
      int64_t own = o < nU ? 2 * unm[bi * nU + o] : 2 * (o - nU) + 1;
      int64_t first = o < nU ? 0 : p.first[o - nU], last = o < nU ? 0 : p.first[o - nU + 1];
      if (first == last) {  // nothing merges here: an exact copy
        std::memcpy(out, xb + own * c, size_t(c) * sizeof(T));
        if (sp) nsp[bo] = sp[bi * n + own];
        continue;
      }
      if (!sp) {  // plain sum (the adjoint of unmerge)
        for (int64_t k = 0; k < c; ++k) out[k] = xb[own * c + k];
        for (int64_t s = first; s < last; ++s) {
          const T* row = xb + 2 * p.list[s] * c;
          for (int64_t k = 0; k < c; ++k) out[k] += row[k];
        }
        continue;
      }
      const T* sb = sp + bi * n;
      T total = sb[own];
      for (int64_t k = 0; k < c; ++k) out[k] = sb[own] * xb[own * c + k];
      for (int64_t s = first; s < last; ++s) {
        int64_t pos = 2 * p.list[s];
        T w = sb[pos];
        total += w;
        const T* row = xb + pos * c;
        for (int64_t k = 0; k < c; ++k) out[k] += w * row[k];
      }
      for (int64_t k = 0; k < c; ++k) out[k] /= total;
      nsp[bo] = total;
    }
  });
  (void)nB;
}

void token_merge_backward(DType t, const void* gy, const void* sizes, const void* new_sizes,
                          const int64_t* unm, const int64_t* src, const int64_t* dst, void* gx,
                          int64_t batch, int64_t n, int64_t r, int64_t c) {
  int64_t nA = (n + 1) / 2, nU = nA - r, n_out = n - r;
  std::vector<PlanMaps> maps = all_plan_maps(unm, src, dst, batch, n, r);
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    const T* gyp = static_cast<const T*>(gy);
    const T* sp = static_cast<const T*>(sizes);
    const T* nsp = static_cast<const T*>(new_sizes);
    T* gxp = static_cast<T*>(gx);
#pragma omp parallel for schedule(static) if (batch * n * c > 32768)
    for (int64_t bp = 0; bp < batch * n; ++bp) {
      int64_t bi = bp / n, pos = bp % n;
      const PlanMaps& p = maps[bi];
      int64_t slot;
      bool weighted;  // the slot averaged several tokens
      if (pos % 2 == 0) {
        slot = p.slot_a[pos / 2];
        weighted = p.merged_a[pos / 2];
      } else {
        int64_t b = (pos - 1) / 2;
        slot = nU + b;
        weighted = p.first[b + 1] > p.first[b];
      }
      const T* g = gyp + (bi * n_out + slot) * c;
      T* out = gxp + bp * c;
      if (!sp || !weighted) {
        std::memcpy(out, g, size_t(c) * sizeof(T));
        continue;
      }
      T w = sp[bp] / nsp[bi * n_out + slot];
      for (int64_t k = 0; k < c; ++k) out[k] = w * g[k];
    }
  });
}

}  // namespace vc::cpu_kernels
