// ToMe bipartite soft matching and the size-weighted token merge on the GPU
// (engine/backend/cpu/special_merge.cpp is the reference, and these kernels repeat its
// arithmetic operation for operation). CMake compiles this file with --fmad=false: no
// multiply-add is fused, so the unit rows, the 8-lane dot products, the merged rows and
// their gradients have the CPU's bits, and the matching plan is the CPU's plan.
//
//   1. unit rows: one thread per token row, the squared norm summed in double in order;
//   2. scores: one thread per (A token, B token) pair, dots8's lanes and fixed tree;
//   3. best partner per A token: scan b upwards, replace only on a strictly larger score;
//   4. ranking: the rank of a = the number of a' with a larger best score, or an equal one
//      and a smaller index — a stable descending sort, computed without sorting.
// The merge is owner-computes: each output element is written by one thread, which adds
// its sources in increasing A index (no atomics). The plan's CSR (sources per B token) is
// built on the host from the small plan arrays, as on the CPU.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

template <class T>
__global__ void unit_rows_kernel(const T* m, T* unit, int64_t rows, int64_t c) {
  VC_GRID_LOOP(row, rows) {
    const T* in = m + row * c;
    double ss = 0;
    for (int64_t k = 0; k < c; ++k) ss += double(in[k]) * double(in[k]);
    T inv = T(1.0 / fmax(sqrt(ss), 1e-12));
    for (int64_t k = 0; k < c; ++k) unit[row * c + k] = in[k] * inv;
  }
}

// score[bi, a, b] = dots8(unit[2a], unit[2b + 1]).
template <class T>
__global__ void scores_kernel(const T* unit, T* score, int64_t batch, int64_t n, int64_t c,
                              int64_t nA, int64_t nB) {
  VC_GRID_LOOP(at, batch * nA * nB) {
    int64_t b = at % nB, a = (at / nB) % nA, bi = at / (nA * nB);
    const T* x = unit + (bi * n + 2 * a) * c;
    const T* y = unit + (bi * n + 2 * b + 1) * c;
    T v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t k = 0;
    for (; k + 8 <= c; k += 8)
      for (int l = 0; l < 8; ++l) v[l] += x[k + l] * y[k + l];
    for (int l = 0; k < c; ++k, ++l) v[l] += x[k] * y[k];
    score[at] = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
  }
}

template <class T>
__global__ void best_kernel(const T* score, double* best, int64_t* arg, int64_t batch,
                            int64_t nA, int64_t nB, bool protect_first) {
  VC_GRID_LOOP(ba, batch * nA) {
    const T* s = score + ba * nB;
    double top = -INFINITY;
    int64_t at = 0;
    for (int64_t b = 0; b < nB; ++b)
      if (double(s[b]) > top) top = s[b], at = b;
    bool is_protected = protect_first && ba % nA == 0;  // never a source
    best[ba] = is_protected ? -INFINITY : top;
    arg[ba] = is_protected ? 0 : at;
  }
}

__global__ void rank_kernel(const double* best, const int64_t* arg, int64_t* rank, int64_t batch,
                            int64_t nA, int64_t r, bool unm_by_position, int64_t* unm,
                            int64_t* src, int64_t* dst) {
  VC_GRID_LOOP(ba, batch * nA) {
    int64_t bi = ba / nA, a = ba % nA;
    const double* bs = best + bi * nA;
    double mine = bs[a];
    int64_t k = 0;
    for (int64_t x = 0; x < nA; ++x) k += bs[x] > mine || (bs[x] == mine && x < a);
    rank[ba] = k;
    if (k < r) {
      src[bi * r + k] = a;
      dst[bi * r + k] = arg[ba];
    } else if (!unm_by_position) {
      unm[bi * (nA - r) + k - r] = a;
    }
  }
}

// With unm_by_position: the unmerged A tokens in increasing a.
__global__ void unm_position_kernel(const int64_t* rank, int64_t batch, int64_t nA, int64_t r,
                                    int64_t* unm) {
  VC_GRID_LOOP(ba, batch * nA) {
    int64_t bi = ba / nA, a = ba % nA;
    if (rank[ba] < r) continue;
    int64_t pos = 0;
    for (int64_t x = 0; x < a; ++x) pos += rank[bi * nA + x] >= r;
    unm[bi * (nA - r) + pos] = a;
  }
}

// Per batch row, one block of int64: slot_a [nA], merged_a [nA], first [nB + 1], list [r]
// (see PlanMaps in the CPU file).
struct PlanLayout {
  int64_t nA, nB, nU, r, stride;
  PlanLayout(int64_t n, int64_t r_) : nA((n + 1) / 2), nB(n / 2), nU(nA - r_), r(r_) {
    stride = 2 * nA + nB + 1 + r;
  }
};

std::vector<int64_t> plan_maps_host(const int64_t* unm, const int64_t* src, const int64_t* dst,
                                    int64_t batch, const PlanLayout& L) {
  std::vector<int64_t> h_unm(size_t(batch * L.nU)), h_src(size_t(batch * L.r)),
      h_dst(size_t(batch * L.r));
  to_host(h_unm.data(), unm, h_unm.size() * sizeof(int64_t));
  to_host(h_src.data(), src, h_src.size() * sizeof(int64_t));
  to_host(h_dst.data(), dst, h_dst.size() * sizeof(int64_t));
  std::vector<int64_t> maps(size_t(batch * L.stride), 0);
  for (int64_t bi = 0; bi < batch; ++bi) {
    int64_t* slot_a = maps.data() + bi * L.stride;
    int64_t* merged_a = slot_a + L.nA;
    int64_t* first = merged_a + L.nA;
    int64_t* list = first + L.nB + 1;
    const int64_t *u = h_unm.data() + bi * L.nU, *s = h_src.data() + bi * L.r,
                  *d = h_dst.data() + bi * L.r;
    std::fill(slot_a, slot_a + L.nA, -1);
    std::vector<int64_t> dst_of(size_t(L.nA), -1);
    for (int64_t i = 0; i < L.nU; ++i) slot_a[u[i]] = i;
    for (int64_t i = 0; i < L.r; ++i) {
      dst_of[s[i]] = d[i];
      slot_a[s[i]] = L.nU + d[i];
      merged_a[s[i]] = 1;
    }
    // Counting sort of sources by destination, visiting a in increasing order (stable).
    for (int64_t a = 0; a < L.nA; ++a)
      if (dst_of[a] >= 0) ++first[dst_of[a] + 1];
    for (int64_t b = 0; b < L.nB; ++b) first[b + 1] += first[b];
    std::vector<int64_t> fill(first, first + L.nB);
    for (int64_t a = 0; a < L.nA; ++a)
      if (dst_of[a] >= 0) list[fill[dst_of[a]]++] = a;
  }
  return maps;
}

template <class T>
__global__ void token_merge_kernel(const T* x, const T* sizes, const int64_t* unm,
                                   const int64_t* maps, T* y, T* new_sizes, int64_t batch,
                                   int64_t n, int64_t c, PlanLayout L) {
  int64_t n_out = n - L.r;
  VC_GRID_LOOP(at, batch * n_out * c) {
    int64_t k = at % c, bo = at / c, bi = bo / n_out, o = bo % n_out;
    const int64_t* first = maps + bi * L.stride + 2 * L.nA;
    const int64_t* list = first + L.nB + 1;
    const T* xb = x + bi * n * c;
    // The input position this slot starts from: a kept A token or B token o - nU.
    int64_t own = o < L.nU ? 2 * unm[bi * L.nU + o] : 2 * (o - L.nU) + 1;
    int64_t f0 = o < L.nU ? 0 : first[o - L.nU], f1 = o < L.nU ? 0 : first[o - L.nU + 1];
    if (f0 == f1) {  // nothing merges here: an exact copy
      y[at] = xb[own * c + k];
      if (sizes && k == 0) new_sizes[bo] = sizes[bi * n + own];
      continue;
    }
    if (!sizes) {  // plain sum (the adjoint of unmerge)
      T acc = xb[own * c + k];
      for (int64_t s = f0; s < f1; ++s) acc += xb[2 * list[s] * c + k];
      y[at] = acc;
      continue;
    }
    const T* sb = sizes + bi * n;
    T total = sb[own];
    T acc = sb[own] * xb[own * c + k];
    for (int64_t s = f0; s < f1; ++s) {
      int64_t pos = 2 * list[s];
      T w = sb[pos];
      total += w;
      acc += w * xb[pos * c + k];
    }
    y[at] = acc / total;
    if (k == 0) new_sizes[bo] = total;
  }
}

template <class T>
__global__ void token_merge_backward_kernel(const T* gy, const T* sizes, const T* new_sizes,
                                            const int64_t* maps, T* gx, int64_t batch, int64_t n,
                                            int64_t c, PlanLayout L) {
  int64_t n_out = n - L.r;
  VC_GRID_LOOP(at, batch * n * c) {
    int64_t k = at % c, bp = at / c, bi = bp / n, pos = bp % n;
    const int64_t* slot_a = maps + bi * L.stride;
    const int64_t* merged_a = slot_a + L.nA;
    const int64_t* first = merged_a + L.nA;
    int64_t slot;
    bool weighted;  // the slot averaged several tokens
    if (pos % 2 == 0) {
      slot = slot_a[pos / 2];
      weighted = merged_a[pos / 2] != 0;
    } else {
      int64_t b = (pos - 1) / 2;
      slot = L.nU + b;
      weighted = first[b + 1] > first[b];
    }
    T g = gy[(bi * n_out + slot) * c + k];
    if (!sizes || !weighted) {
      gx[at] = g;
      continue;
    }
    T w = sizes[bp] / new_sizes[bi * n_out + slot];
    gx[at] = w * g;
  }
}

}  // namespace

void bipartite_match(DType t, const void* metric, int64_t batch, int64_t n, int64_t c, int64_t r,
                     bool protect_first, bool unm_by_position, int64_t* unm, int64_t* src,
                     int64_t* dst) {
  int64_t nA = (n + 1) / 2, nB = n / 2;
  if (batch <= 0 || nA <= 0) return;
  DeviceScratch best(size_t(batch * nA) * sizeof(double)), arg(size_t(batch * nA) * sizeof(int64_t)),
      rank(size_t(batch * nA) * sizeof(int64_t));
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    DeviceScratch unit(size_t(batch * n * c) * sizeof(T)), score(size_t(batch * nA * nB) * sizeof(T));
    if (batch * n * c > 0) {
      unit_rows_kernel<T><<<blocks_for(batch * n), kThreads, 0, stream()>>>(
          static_cast<const T*>(metric), unit.as<T>(), batch * n, c);
      VC_CUDA_LAUNCH("bipartite_match: unit rows");
    }
    if (batch * nA * nB > 0) {
      scores_kernel<T><<<blocks_for(batch * nA * nB), kThreads, 0, stream()>>>(
          unit.as<T>(), score.as<T>(), batch, n, c, nA, nB);
      VC_CUDA_LAUNCH("bipartite_match: scores");
    }
    best_kernel<T><<<blocks_for(batch * nA), kThreads, 0, stream()>>>(
        score.as<T>(), best.as<double>(), arg.as<int64_t>(), batch, nA, nB, protect_first);
    VC_CUDA_LAUNCH("bipartite_match: best partner");
  });
  rank_kernel<<<blocks_for(batch * nA), kThreads, 0, stream()>>>(
      best.as<double>(), arg.as<int64_t>(), rank.as<int64_t>(), batch, nA, r, unm_by_position,
      unm, src, dst);
  VC_CUDA_LAUNCH("bipartite_match: ranking");
  if (unm_by_position) {
    unm_position_kernel<<<blocks_for(batch * nA), kThreads, 0, stream()>>>(
        rank.as<int64_t>(), batch, nA, r, unm);
    VC_CUDA_LAUNCH("bipartite_match: unmerged by position");
  }
}

void token_merge(DType t, const void* x, const void* sizes, const int64_t* unm,
                 const int64_t* src, const int64_t* dst, void* y, void* new_sizes, int64_t batch,
                 int64_t n, int64_t r, int64_t c) {
  PlanLayout L(n, r);
  int64_t total = batch * (n - r) * c;
  if (batch <= 0) return;
  Upload<int64_t> maps(plan_maps_host(unm, src, dst, batch, L));
  if (total <= 0 && !(sizes && batch * (n - r) > 0)) return;
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    token_merge_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(x), static_cast<const T*>(sizes), unm, maps.get(),
        static_cast<T*>(y), static_cast<T*>(new_sizes), batch, n, c, L);
  });
  VC_CUDA_LAUNCH("token_merge");
}

void token_merge_backward(DType t, const void* gy, const void* sizes, const void* new_sizes,
                          const int64_t* unm, const int64_t* src, const int64_t* dst, void* gx,
                          int64_t batch, int64_t n, int64_t r, int64_t c) {
  PlanLayout L(n, r);
  int64_t total = batch * n * c;
  if (total <= 0) return;
  Upload<int64_t> maps(plan_maps_host(unm, src, dst, batch, L));
  dispatch_float(t, [&](auto zero) {
    using T = decltype(zero);
    token_merge_backward_kernel<T><<<blocks_for(total), kThreads, 0, stream()>>>(
        static_cast<const T*>(gy), static_cast<const T*>(sizes),
        static_cast<const T*>(new_sizes), maps.get(), static_cast<T*>(gx), batch, n, c, L);
  });
  VC_CUDA_LAUNCH("token_merge_backward");
}

}  // namespace vc::cuda_kernels
