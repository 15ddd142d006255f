// 2-D convolution, direct (the tiny CLIP's 3x3 stem, issue 13; composed from views, copies and
// a GEMM with K = 27 it took a fifth of every video model's step). Each output row (b, i)
// gathers its own im2col rows [C·k·k, Wo] into a small buffer and every later loop runs along
// the row's Wo columns, so the vector width never decides which terms are added together:
// AVX-512, AVX2 and scalar code give the same bits, and so does any thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"
#include "engine/core/eigen.h"
#include "engine/core/threads.h"

namespace vc::cpu_kernels {

namespace {

// Columns are handled kLanes at a time, each lane in a fixed-size array that the compiler keeps
// in a vector register (one vector of floats); rows are padded with zeros to a multiple of kLanes.
constexpr int64_t kLanes = kVectorBytes / 4, kFwdOuts = kVectorBytes / 8, kFwdCols = 2;
int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }
// Scratch rows aligned as wide as the vectors (Eigen's alignment for the target ISA): a vector
// load that straddles two cache lines costs two (the weight gradient: 14-15.5 -> 10.4 ms).
template <class T> using Scratch = std::vector<T, Eigen::aligned_allocator<T>>;

// A short copy, vectorised in place (std::copy's memmove per row: a fifth of the stem on AVX2).
template <class T> inline void copy_short(const T* src, int64_t n, T* dst) {
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
}

// rows[tap, j] = x[c, i·s + ky - p, j·s + kx - p] for tap = (c, ky, kx), 0 outside the image
// and for j >= Wo; row stride Wp >= Wo.
template <class T> void gather_rows(const T* x, const ConvShape& g, int64_t i, T* rows, int64_t Wp) {
  const int64_t k = g.k;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t ky = 0; ky < k; ++ky) {
      const int64_t yy = i * g.s + ky - g.p;
      for (int64_t kx = 0; kx < k; ++kx) {
        T* r = rows + ((c * k + ky) * k + kx) * Wp;
        std::fill(r, r + Wp, T(0));
        if (yy < 0 || yy >= g.H) continue;
        // the columns j with 0 <= j·s + kx - p < W
        const int64_t off = kx - g.p;
        const int64_t j_lo = off >= 0 ? 0 : (-off + g.s - 1) / g.s;
        const int64_t j_hi = std::min(g.Wo, (g.W - 1 - off) / g.s + 1);
        const T* src = x + (c * g.H + yy) * g.W + off;
        if (g.s == 1)
          copy_short(src + j_lo, j_hi - j_lo, r + j_lo);
        else
          for (int64_t j = j_lo; j < j_hi; ++j) r[j] = src[j * g.s];
      }
    }
}

// Forward: kFwdOuts output channels times kFwdCols·kLanes columns per block, accumulated in
// registers (each lane its own chain from the bias through the taps, in tap order; 2·kFwdOuts
// vectors in flight hide the latency of the multiply-add, where 4 left it latency-bound). The
// weights are regrouped as [O / kFwdOuts, taps, kFwdOuts], zero past O. Rows are padded to
// kFwdCols x kLanes columns: a narrower map computes a block of zeros (the stems here are 32).

template <class T>
void conv2d_t(const T* x, const T* w, const T* bias, T* y, const ConvShape& g) {
  const int64_t taps = g.C * g.k * g.k, Wo = g.Wo;
  const int64_t Wp = round_up(Wo, kFwdCols * kLanes);
  const int64_t oblocks = (g.O + kFwdOuts - 1) / kFwdOuts;
  std::vector<T> wg(size_t(oblocks * taps * kFwdOuts), T(0)), bg(size_t(oblocks * kFwdOuts), T(0));
  for (int64_t o = 0; o < g.O; ++o) {
    for (int64_t t = 0; t < taps; ++t) wg[size_t(((o / kFwdOuts) * taps + t) * kFwdOuts + o % kFwdOuts)] = w[o * taps + t];
    if (bias) bg[size_t(o)] = bias[o];
  }
#pragma omp parallel if (g.B * g.Ho * g.O * Wo * taps > 65536)
  {
    Scratch<T> rows(size_t(taps * Wp));
#pragma omp for schedule(static)
    for (int64_t bi = 0; bi < g.B * g.Ho; ++bi) {
      const int64_t b = bi / g.Ho, i = bi % g.Ho;
      gather_rows(x + b * g.C * g.H * g.W, g, i, rows.data(), Wp);
      for (int64_t ob = 0; ob < oblocks; ++ob)
        for (int64_t j0 = 0; j0 < Wo; j0 += kFwdCols * kLanes) {
          T a[kFwdOuts][kFwdCols][kLanes];
          const T* bq = bg.data() + ob * kFwdOuts;
          for (int64_t q = 0; q < kFwdOuts; ++q)
            for (int64_t c = 0; c < kFwdCols; ++c)
              for (int64_t l = 0; l < kLanes; ++l) a[q][c][l] = bq[q];
          const T* wt = wg.data() + ob * taps * kFwdOuts;
          for (int64_t t = 0; t < taps; ++t, wt += kFwdOuts) {
            const T* r = rows.data() + t * Wp + j0;
            for (int64_t q = 0; q < kFwdOuts; ++q)
              for (int64_t c = 0; c < kFwdCols; ++c)
#pragma omp simd  // without it GCC 12 unrolls the lanes into 256 scalar FMAs (6.5x slower)
                for (int64_t l = 0; l < kLanes; ++l) a[q][c][l] = std::fma(wt[q], r[c * kLanes + l], a[q][c][l]);
          }
          // a[q]: the row's next n columns; whole blocks by a fixed-length vector loop (copy_short
          // measured slower there; element by element was 40% of the forward on AVX2)
          const int64_t n = std::min(kFwdCols * kLanes, Wo - j0);
          for (int64_t q = 0; q < std::min(kFwdOuts, g.O - ob * kFwdOuts); ++q) {
            T* out = y + ((b * g.O + ob * kFwdOuts + q) * g.Ho + i) * Wo + j0;
            if (n == kFwdCols * kLanes)
              for (int64_t c = 0; c < kFwdCols; ++c)
#pragma omp simd
                for (int64_t l = 0; l < kLanes; ++l) out[c * kLanes + l] = a[q][c][l];
            else
              copy_short(&a[q][0][0], n, out);
          }
        }
    }
  }
}

// gx: one owner per image, adding in (i, tap, j) order.
template <class T>
void conv2d_grad_input(const T* w, const T* gy, T* gx, const ConvShape& g) {
  const int64_t taps = g.C * g.k * g.k, Wo = g.Wo, k = g.k;
#pragma omp parallel if (g.B * g.Ho * g.O * Wo * taps > 65536)
  {
    Scratch<T> d(size_t(taps * Wo));
#pragma omp for schedule(static)
    for (int64_t b = 0; b < g.B; ++b) {
      T* gxb = gx + b * g.C * g.H * g.W;
      std::fill(gxb, gxb + g.C * g.H * g.W, T(0));
      for (int64_t i = 0; i < g.Ho; ++i) {
        // d[tap, j] = sum over o of w[o, tap] · gy[b, o, i, j]
        std::fill(d.begin(), d.end(), T(0));
        for (int64_t o = 0; o < g.O; ++o) {
          const T* gr = gy + ((b * g.O + o) * g.Ho + i) * Wo;
          for (int64_t t = 0; t < taps; ++t) {
            const T wv = w[o * taps + t];
            T* dr = d.data() + t * Wo;
            for (int64_t j = 0; j < Wo; ++j) dr[j] = std::fma(wv, gr[j], dr[j]);
          }
        }
        for (int64_t c = 0; c < g.C; ++c)
          for (int64_t ky = 0; ky < k; ++ky) {
            const int64_t yy = i * g.s + ky - g.p;
            if (yy < 0 || yy >= g.H) continue;
            T* dst = gxb + (c * g.H + yy) * g.W;
            for (int64_t kx = 0; kx < k; ++kx) {
              const T* dr = d.data() + ((c * k + ky) * k + kx) * Wo;
              for (int64_t j = 0; j < Wo; ++j) {
                const int64_t xx = j * g.s + kx - g.p;
                if (xx >= 0 && xx < g.W) dst[xx] += dr[j];
              }
            }
          }
      }
    }
  }
}

// gw and gb: blocks of output channels, each block one owner. Lane j of acc[o, tap, j] sums
// gy[b, o, i, j] · rows[tap, j] over (b, i) in order; then the lanes are summed in j order.
// No sum ever spans two blocks, so the split may follow the thread count without changing a
// bit: one block per thread, since every block gathers every image row again. The rows come
// kRows at a time, so that each group of kOuts x kTaps accumulators stays in registers over
// kRows rows instead of a load and a store per product.
template <class T>
void conv2d_grad_weight(const T* x, const T* gy, T* gw, T* gb, const ConvShape& g) {
  constexpr int64_t kOuts = 4, kRows = 8, kTaps = 3;
  const int64_t taps = g.C * g.k * g.k, Wo = g.Wo, Wp = round_up(Wo, kLanes);
  const int64_t tpad = round_up(taps, kTaps);  // zero rows past taps
  const int64_t groups = (g.O + kOuts - 1) / kOuts;
  const int64_t blocks = std::min<int64_t>(groups, num_threads());
  const int64_t out_block = (groups + blocks - 1) / blocks * kOuts;  // channels per block
#pragma omp parallel if (g.B * g.Ho * g.O * Wo * taps > 65536)
  {
    Scratch<T> rows(size_t(kRows * tpad * Wp), T(0)), grow(size_t(kRows * out_block * Wp), T(0)),
        acc(size_t(out_block * tpad * Wp)), accb(size_t(out_block * Wp));
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t o0 = blk * out_block, o1 = std::min(g.O, o0 + out_block);
      std::fill(acc.begin(), acc.end(), T(0));
      std::fill(accb.begin(), accb.end(), T(0));
      for (int64_t b = 0; b < g.B; ++b)
        for (int64_t i0 = 0; i0 < g.Ho; i0 += kRows) {
          const int64_t nr = std::min(kRows, g.Ho - i0);
          // rows and gy (zero past o1 and Wo) of rows i0 .. i0 + nr, gy channel by channel (its
          // nr rows lie together); the bias sums row by row
          for (int64_t r = 0; r < nr && gw; ++r)
            gather_rows(x + b * g.C * g.H * g.W, g, i0 + r, rows.data() + r * tpad * Wp, Wp);
          for (int64_t q = 0; q < out_block; ++q)
            for (int64_t r = 0; r < nr; ++r) {
              T* dst = grow.data() + (r * out_block + q) * Wp;
              if (o0 + q < o1) copy_short(gy + ((b * g.O + o0 + q) * g.Ho + i0 + r) * Wo, Wo, dst);
              else std::fill(dst, dst + Wo, T(0));
              T* ab = accb.data() + q * Wp;
              for (int64_t j = 0; j < Wp; ++j) ab[j] += dst[j];
            }
          if (!gw) continue;
          for (int64_t q0 = 0; q0 < out_block; q0 += kOuts)
            for (int64_t j0 = 0; j0 < Wp; j0 += kLanes)
              for (int64_t t0 = 0; t0 < tpad; t0 += kTaps) {
                // a[q][t][l] = acc[q0 + q, t0 + t, j0 + l], in registers over the nr rows
                T a[kOuts][kTaps][kLanes];
                T* at = acc.data() + (q0 * tpad + t0) * Wp + j0;  // a[q][t] at at[(q·tpad + t)·Wp]
                for (int64_t q = 0; q < kOuts; ++q)
                  for (int64_t t = 0; t < kTaps; ++t)
                    for (int64_t l = 0; l < kLanes; ++l) a[q][t][l] = at[(q * tpad + t) * Wp + l];
                for (int64_t r = 0; r < nr; ++r) {
                  const T* gr = grow.data() + (r * out_block + q0) * Wp + j0;
                  const T* xr = rows.data() + (r * tpad + t0) * Wp + j0;
                  for (int64_t q = 0; q < kOuts; ++q)
                    for (int64_t t = 0; t < kTaps; ++t)
#pragma omp simd  // keeps a in registers (without it GCC 12 kept a on the stack)
                      for (int64_t l = 0; l < kLanes; ++l)
                        a[q][t][l] = std::fma(gr[q * Wp + l], xr[t * Wp + l], a[q][t][l]);
                }
                for (int64_t q = 0; q < kOuts; ++q)
                  for (int64_t t = 0; t < kTaps; ++t)
                    for (int64_t l = 0; l < kLanes; ++l) at[(q * tpad + t) * Wp + l] = a[q][t][l];
              }
        }
      for (int64_t o = o0; o < o1; ++o) {
        if (gw)
          for (int64_t t = 0; t < taps; ++t) {
            const T* at = acc.data() + ((o - o0) * tpad + t) * Wp;
            T s = 0;
            for (int64_t j = 0; j < Wo; ++j) s += at[j];
            gw[o * taps + t] = s;
          }
        if (gb) {
          const T* ab = accb.data() + (o - o0) * Wp;
          T s = 0;
          for (int64_t j = 0; j < Wo; ++j) s += ab[j];
          gb[o] = s;
        }
      }
    }
  }
}

}  // namespace

void conv2d(DType t, const void* x, const void* w, const void* bias, void* y, const ConvShape& g) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    conv2d_t(static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
             static_cast<T*>(y), g);
  });
}

void conv2d_backward(DType t, const void* x, const void* w, const void* gy, void* gx, void* gw,
                     void* gb, const ConvShape& g) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if (gx) conv2d_grad_input(static_cast<const T*>(w), static_cast<const T*>(gy), static_cast<T*>(gx), g);
    if (gw || gb)
      conv2d_grad_weight(static_cast<const T*>(x), static_cast<const T*>(gy), static_cast<T*>(gw),
                         static_cast<T*>(gb), g);
  });
}

}  // namespace vc::cpu_kernels
