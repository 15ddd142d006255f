// 2-D convolution, direct (the tiny CLIP's 3x3 stem, issue 13). Composed from engine ops
// (pad by concat, k·k shifted views stacked, a transposed copy into im2col rows, one GEMM with
// K = C·k·k = 27, a bias add and a transposed copy back to NCHW) the stem's forward and
// backward took about a fifth of every video model's training step, mostly in copies of 8 M
// elements and in a GEMM too thin to be fast. Here each output row (b, i) gathers its own
// im2col rows [C·k·k, Wo] into a small buffer and every later loop runs along the row's Wo
// columns, so the vector width never decides which terms are added together: AVX-512, AVX2
// and scalar code give the same bits, and so does any thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

namespace {

// Columns are handled kLanes at a time, each lane in a fixed-size array that the compiler keeps
// in a vector register; rows are padded with zeros to a multiple of kLanes.
constexpr int64_t kLanes = 16;
int64_t padded(int64_t Wo) { return (Wo + kLanes - 1) / kLanes * kLanes; }

// rows[tap, j] = x[c, i·s + ky - p, j·s + kx - p] for tap = (c, ky, kx), 0 outside the image
// and for j >= Wo; row stride padded(Wo).
template <class T> void gather_rows(const T* x, const ConvShape& g, int64_t i, T* rows) {
  const int64_t k = g.k, Wp = padded(g.Wo);
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
          std::copy(src + j_lo, src + std::max(j_lo, j_hi), r + j_lo);
        else
          for (int64_t j = j_lo; j < j_hi; ++j) r[j] = src[j * g.s];
      }
    }
}

// Forward: kOuts output channels times kLanes columns per block, accumulated in registers
// (each lane its own chain from the bias through the taps; kOuts chains in flight hide the
// latency of the multiply-add). The weights are regrouped as [O / kOuts, taps, kOuts], zero
// past O.
constexpr int64_t kOuts = 4;  // the four accumulators a0..a3 below

template <class T>
void conv2d_t(const T* x, const T* w, const T* bias, T* y, const ConvShape& g) {
  const int64_t taps = g.C * g.k * g.k, Wo = g.Wo, Wp = padded(Wo);
  const int64_t oblocks = (g.O + kOuts - 1) / kOuts;
  std::vector<T> wg(size_t(oblocks * taps * kOuts), T(0)), bg(size_t(oblocks * kOuts), T(0));
  for (int64_t o = 0; o < g.O; ++o) {
    for (int64_t t = 0; t < taps; ++t) wg[size_t(((o / kOuts) * taps + t) * kOuts + o % kOuts)] = w[o * taps + t];
    if (bias) bg[size_t(o)] = bias[o];
  }
#pragma omp parallel if (g.B * g.Ho * g.O * Wo * taps > 65536)
  {
    std::vector<T> rows(size_t(taps * Wp));
#pragma omp for schedule(static)
    for (int64_t bi = 0; bi < g.B * g.Ho; ++bi) {
      const int64_t b = bi / g.Ho, i = bi % g.Ho;
      gather_rows(x + b * g.C * g.H * g.W, g, i, rows.data());
      for (int64_t ob = 0; ob < oblocks; ++ob)
        for (int64_t j0 = 0; j0 < Wo; j0 += kLanes) {
          // four accumulators written out, so that the lanes (not the channels) vectorise
          T a0[kLanes], a1[kLanes], a2[kLanes], a3[kLanes];
          const T* bq = bg.data() + ob * kOuts;
          for (int64_t l = 0; l < kLanes; ++l) a0[l] = bq[0], a1[l] = bq[1], a2[l] = bq[2], a3[l] = bq[3];
          const T* wt = wg.data() + ob * taps * kOuts;
          for (int64_t t = 0; t < taps; ++t, wt += kOuts) {
            const T* r = rows.data() + t * Wp + j0;
            const T w0 = wt[0], w1 = wt[1], w2 = wt[2], w3 = wt[3];
            for (int64_t l = 0; l < kLanes; ++l) {
              a0[l] = std::fma(w0, r[l], a0[l]);
              a1[l] = std::fma(w1, r[l], a1[l]);
              a2[l] = std::fma(w2, r[l], a2[l]);
              a3[l] = std::fma(w3, r[l], a3[l]);
            }
          }
          const T* a[kOuts] = {a0, a1, a2, a3};
          for (int64_t q = 0; q < std::min(kOuts, g.O - ob * kOuts); ++q) {
            T* out = y + ((b * g.O + ob * kOuts + q) * g.Ho + i) * Wo + j0;
            for (int64_t l = 0; l < std::min(kLanes, Wo - j0); ++l) out[l] = a[q][l];
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
    std::vector<T> d(size_t(taps * Wo));
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

// gw and gb: blocks of kOutBlock output channels, each block one owner. Lane j of
// acc[o, tap, j] sums gy[b, o, i, j] · rows[tap, j] over (b, i) in order; then the lanes are
// summed in j order. Fixed blocks: the partition never depends on the thread count.
template <class T>
void conv2d_grad_weight(const T* x, const T* gy, T* gw, T* gb, const ConvShape& g) {
  constexpr int64_t kOutBlock = 2 * kOuts;  // a multiple of kOuts: the groups below fill it
  const int64_t taps = g.C * g.k * g.k, Wo = g.Wo, Wp = padded(Wo);
  const int64_t blocks = (g.O + kOutBlock - 1) / kOutBlock;
#pragma omp parallel if (g.B * g.Ho * g.O * Wo * taps > 65536)
  {
    std::vector<T> rows(size_t(taps * Wp)), grow(size_t(kOuts * Wp), T(0)),
        acc(size_t(kOutBlock * taps * Wp)), accb(size_t(kOutBlock * Wp));
#pragma omp for schedule(static)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const int64_t o0 = blk * kOutBlock, o1 = std::min(g.O, o0 + kOutBlock);
      std::fill(acc.begin(), acc.end(), T(0));
      std::fill(accb.begin(), accb.end(), T(0));
      for (int64_t b = 0; b < g.B; ++b)
        for (int64_t i = 0; i < g.Ho; ++i) {
          if (gw) gather_rows(x + b * g.C * g.H * g.W, g, i, rows.data());
          // four channels at a time, written out so that the lanes vectorise (zero rows of
          // gy stand in past O)
          for (int64_t q0 = o0; q0 < o1; q0 += kOuts) {
            const T* gq[kOuts];
            for (int64_t q = 0; q < kOuts; ++q) {
              T* dst = grow.data() + q * Wp;
              if (q0 + q < o1) std::copy_n(gy + ((b * g.O + q0 + q) * g.Ho + i) * Wo, Wo, dst);
              else std::fill(dst, dst + Wo, T(0));
              gq[q] = dst;
              T* ab = accb.data() + (q0 - o0 + q) * Wp;
              for (int64_t j = 0; j < Wp; ++j) ab[j] += dst[j];
            }
            if (!gw) continue;
            T* a0 = acc.data() + (q0 - o0) * taps * Wp;
            T* a1 = a0 + taps * Wp;
            T* a2 = a1 + taps * Wp;
            T* a3 = a2 + taps * Wp;
            for (int64_t j0 = 0; j0 < Wp; j0 += kLanes) {
              T g0[kLanes], g1[kLanes], g2[kLanes], g3[kLanes];
              for (int64_t l = 0; l < kLanes; ++l)
                g0[l] = gq[0][j0 + l], g1[l] = gq[1][j0 + l], g2[l] = gq[2][j0 + l], g3[l] = gq[3][j0 + l];
              for (int64_t t = 0; t < taps; ++t) {
                const T* r = rows.data() + t * Wp + j0;
                const int64_t at = t * Wp + j0;
#pragma GCC ivdep  // a0..a3 and r never overlap: no run-time overlap checks in the loop
                for (int64_t l = 0; l < kLanes; ++l) {
                  a0[at + l] = std::fma(g0[l], r[l], a0[at + l]);
                  a1[at + l] = std::fma(g1[l], r[l], a1[at + l]);
                  a2[at + l] = std::fma(g2[l], r[l], a2[at + l]);
                  a3[at + l] = std::fma(g3[l], r[l], a3[at + l]);
                }
              }
            }
          }
        }
      for (int64_t o = o0; o < o1; ++o) {
        if (gw)
          for (int64_t t = 0; t < taps; ++t) {
            const T* at = acc.data() + ((o - o0) * taps + t) * Wp;
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
