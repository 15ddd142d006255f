// verbclip's float32 GEMM: BLIS-style packing and register-blocked FMA micro-kernels.
//
// Why our own: Eigen's product reached 0.6-0.8x OpenBLAS here, and its edge kernels sum in
// another order than its main kernel. This one fixes the arithmetic first and then makes it
// fast, so its results are the same bits on every CPU, path and thread count:
//
//   For each C element and each K block kb of kGemmKC products (the last one shorter),
//     acc_kb = fma(a_k, b_k, ... fma(a_k0, b_k0, 0))          k in order inside the block
//   C = ((acc_0 + acc_1) + acc_2) + ...                        blocks in order
//   then C = fma(beta, C, alpha * sum), the same scalar code for every path (alpha = 1,
//   beta = 0: C as is).
//
// Each SIMD lane holds one C element, so a lane's chain is the scalar chain: the AVX-512
// (12 x 32 tile), AVX2 (6 x 16) and plain C++ (4 x 16, std::fma) kernels give equal bits.
// Edge tiles run the same kernel on zero-padded panels, writing back only the valid part.
// Every FMA is written out, and no a * b + c is left for the compiler to contract or not.
//
// Blocking: op(B) of one batch entry is packed once into NR-wide panels per K block, shared
// by all threads; each task (a fixed tile of rows x columns) runs the micro-kernel over its
// MR-row panels, with a B micro-panel (kGemmKC x NR, in L1) reused across all of them. op(A)
// is read where it lies, not packed: the kernel broadcasts one A element per row and k
// either way, and with this project's K of 64-256 packing A cost 40% of the kernel's time
// (perf, the tiny CLIP's step). Rows past the edge re-read the last valid row; their sums
// are never written.
//
// Threads: tasks have fixed sizes, whatever the thread count, and each writes its own
// outputs, so the split never touches the arithmetic. When the output is a few tiles and K
// is long (weight gradients: 128 x 384 outputs, K = 2176), K blocks become separate tasks
// writing their acc_kb to separate buffers, then summed in block order: the same bits as
// the serial loop. Small GEMMs stay on one thread.
#include "engine/backend/cpu/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/core/error.h"

namespace vc::cpu_kernels {

namespace {

constexpr int64_t KC = kGemmKC;

// ---------------------------------------------------------------------------------------
// Micro-kernels. op(A)[i][k] of the tile is a[i * ar + k * ak] for i < m (rows from m on
// read row m - 1); b: kc x NR packed (b[k * NR + j]). Writes the m x n valid corner of the
// tile to c (row stride ldc): c = acc when `first`, else c = c + acc.

template <int MR>
inline void rows_of(const float* a, int64_t ar, int m, const float** rows) {
  for (int i = 0; i < MR; ++i) rows[i] = a + std::min(i, m - 1) * ar;
}

template <int MR, int NR>
inline void write_edge(const float* acc, float* c, int64_t ldc, int m, int n, bool first) {
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) c[i * ldc + j] = first ? acc[i * NR + j] : c[i * ldc + j] + acc[i * NR + j];
}

template <int MR, int NR>
void micro_scalar(int64_t kc, const float* a, int64_t ar, int64_t ak, const float* b, float* c,
                  int64_t ldc, int m, int n, bool first) {
  float acc[MR * NR] = {};
  const float* rows[MR];
  rows_of<MR>(a, ar, m, rows);
  for (int64_t k = 0; k < kc; ++k, b += NR)
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i * NR + j] = std::fma(rows[i][k * ak], b[j], acc[i * NR + j]);
  write_edge<MR, NR>(acc, c, ldc, m, n, first);
}

template <int MR>
__attribute__((target("avx2,fma"))) void micro_avx2(int64_t kc, const float* a, int64_t ar,
                                                    int64_t ak, const float* b, float* c,
                                                    int64_t ldc, int m, int n, bool first) {
  constexpr int NR = 16;
  __m256 acc[MR][2];
  const float* rows[MR];
  rows_of<MR>(a, ar, m, rows);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, b += NR) {
    __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      __m256 ai = _mm256_broadcast_ss(rows[i] + k * ak);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  if (m == MR && n == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      if (!first) {
        acc[i][0] = _mm256_add_ps(_mm256_loadu_ps(ci), acc[i][0]);
        acc[i][1] = _mm256_add_ps(_mm256_loadu_ps(ci + 8), acc[i][1]);
      }
      _mm256_storeu_ps(ci, acc[i][0]);
      _mm256_storeu_ps(ci + 8, acc[i][1]);
    }
    return;
  }
  alignas(32) float buf[MR * NR];
#pragma GCC unroll 16  // a loop indexing acc[i] kept acc in memory: a store per FMA, 2.8x slower
  for (int i = 0; i < MR; ++i) {
    _mm256_store_ps(buf + i * NR, acc[i][0]);
    _mm256_store_ps(buf + i * NR + 8, acc[i][1]);
  }
  write_edge<MR, NR>(buf, c, ldc, m, n, first);
}

template <int MR>
__attribute__((target("avx512f"))) void micro_avx512(int64_t kc, const float* a, int64_t ar,
                                                     int64_t ak, const float* b, float* c,
                                                     int64_t ldc, int m, int n, bool first) {
  constexpr int NR = 32;
  __m512 acc[MR][2];
  const float* rows[MR];
  rows_of<MR>(a, ar, m, rows);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k, b += NR) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      __m512 ai = _mm512_set1_ps(rows[i][k * ak]);
      acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
    }
  }
  if (m == MR && n == NR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      if (!first) {
        acc[i][0] = _mm512_add_ps(_mm512_loadu_ps(ci), acc[i][0]);
        acc[i][1] = _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc[i][1]);
      }
      _mm512_storeu_ps(ci, acc[i][0]);
      _mm512_storeu_ps(ci + 16, acc[i][1]);
    }
    return;
  }
  alignas(64) float buf[MR * NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm512_store_ps(buf + i * NR, acc[i][0]);
    _mm512_store_ps(buf + i * NR + 16, acc[i][1]);
  }
  write_edge<MR, NR>(buf, c, ldc, m, n, first);
}

// ---------------------------------------------------------------------------------------
// Packing (no arithmetic). op(B)[k][j] is B[k * ldb + j], or B[j * ldb + k] when tb.
// Columns past the edge are zeros.

// Columns j0..j0+n of op(B), products k0..k0+kc: panels of NR columns, each kc x NR.
template <int NR>
void pack_b(const float* B, int64_t ldb, bool tb, int64_t k0, int64_t kc, int64_t j0,
            int64_t n, float* out) {
  for (int64_t p = 0; p < n; p += NR, out += NR * kc) {
    int cols = int(std::min<int64_t>(NR, n - p));
    if (!tb) {
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = B + (k0 + k) * ldb + j0 + p;
        for (int j = 0; j < cols; ++j) out[k * NR + j] = src[j];
        for (int j = cols; j < NR; ++j) out[k * NR + j] = 0;
      }
    } else {
      for (int j = 0; j < cols; ++j) {
        const float* src = B + (j0 + p + j) * ldb + k0;
        for (int64_t k = 0; k < kc; ++k) out[k * NR + j] = src[k];
      }
      for (int j = cols; j < NR; ++j)
        for (int64_t k = 0; k < kc; ++k) out[k * NR + j] = 0;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Paths.

using MicroFn = void (*)(int64_t, const float*, int64_t, int64_t, const float*, float*, int64_t,
                         int, int, bool);
using PackBFn = void (*)(const float*, int64_t, bool, int64_t, int64_t, int64_t, int64_t, float*);

struct Path {
  int64_t mr, nr;
  int64_t mc, nc;  // a task's rows and columns: multiples of mr and nr
  MicroFn micro;
  PackBFn pack_b;
};

const Path& path_of(GemmIsa isa) {
  static const Path avx512{12, 32, 96, 1024, micro_avx512<12>, pack_b<32>};
  static const Path avx2{6, 16, 96, 1024, micro_avx2<6>, pack_b<16>};
  static const Path scalar{4, 16, 96, 1024, micro_scalar<4, 16>, pack_b<16>};
  return isa == GemmIsa::Avx512 ? avx512 : isa == GemmIsa::Avx2 ? avx2 : scalar;
}

GemmIsa best_isa() {
  if (gemm_isa_supported(GemmIsa::Avx512)) return GemmIsa::Avx512;
  if (gemm_isa_supported(GemmIsa::Avx2)) return GemmIsa::Avx2;
  return GemmIsa::Scalar;
}

GemmIsa isa_from_env() {
  const char* env = std::getenv("VERBCLIP_GEMM_ISA");
  if (!env || !*env) return best_isa();
  std::string s = env;
  for (GemmIsa isa : {GemmIsa::Avx512, GemmIsa::Avx2, GemmIsa::Scalar}) {
    if (s != gemm_isa_name(isa)) continue;
    VC_CHECK(gemm_isa_supported(isa), "VERBCLIP_GEMM_ISA=", s, ": this CPU lacks ", s);
    return isa;
  }
  fail("VERBCLIP_GEMM_ISA=", s, ": expected avx512, avx2 or scalar");
}

std::atomic<int>& current_isa() {
  static std::atomic<int> isa{int(isa_from_env())};
  return isa;
}

// ---------------------------------------------------------------------------------------
// Buffers, 64-byte aligned, grown on demand, one set per calling thread.

struct Buffer {
  std::unique_ptr<float, decltype(&std::free)> p{nullptr, &std::free};
  size_t size = 0;
  float* get(size_t n) {
    if (n > size) {
      size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
      p.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      VC_CHECK(p, "gemm: out of memory for a ", n, "-float packing buffer");
      size = n;
    }
    return p.get();
  }
};

// Below this many FLOPs a GEMM stays on the calling thread: waking the other threads costs
// more than they save. Measured (2-core AMD EPYC, OMP_WAIT_POLICY=PASSIVE): a wake-up costs
// about 15 us, what one thread does in about 5 MFLOP.
constexpr double kParallelFlops = 4e6;
// K blocks become separate tasks when the output has fewer tiles than this (fixed: the
// choice depends on the shape only, and the result on neither).
constexpr int64_t kSplitKBelowTiles = 4;
// Panels of op(B) packed per task of the packing loop.
constexpr int64_t kPackPanels = 8;

struct Problem {
  bool ta, tb;
  int64_t M, N, K;
  int64_t lda, ldb;
  int64_t kblocks, npad;     // K blocks; N rounded up to whole panels
  int64_t row_tiles, col_tiles;
  bool split_k;
  int64_t tasks;             // row_tiles * col_tiles * (split_k ? kblocks : 1)
};

Problem plan(const Path& path, bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
  Problem p{ta, tb, M, N, K, ta ? M : K, tb ? K : N, (K + KC - 1) / KC, 0, 0, 0, false, 0};
  p.npad = (N + path.nr - 1) / path.nr * path.nr;
  p.row_tiles = (M + path.mc - 1) / path.mc;
  p.col_tiles = (N + path.nc - 1) / path.nc;
  p.split_k = p.kblocks > 1 && p.row_tiles * p.col_tiles < kSplitKBelowTiles;
  p.tasks = p.row_tiles * p.col_tiles * (p.split_k ? p.kblocks : 1);
  return p;
}

// Packed op(B) of one entry: block kb at kb * KC * npad, its panel q at q * nr * kc.
template <class T> T* b_block(T* bp, const Problem& p, int64_t kb) { return bp + kb * KC * p.npad; }
inline int64_t kc_of(const Problem& p, int64_t kb) { return std::min(KC, p.K - kb * KC); }

void pack_b_chunk(const Path& path, const Problem& p, const float* B, float* bp, int64_t chunk) {
  int64_t panels = p.npad / path.nr, per_block = (panels + kPackPanels - 1) / kPackPanels;
  int64_t kb = chunk / per_block, q0 = chunk % per_block * kPackPanels;
  int64_t kc = kc_of(p, kb);
  int64_t j0 = q0 * path.nr, n = std::min(kPackPanels * path.nr, p.N - j0);
  path.pack_b(B, p.ldb, p.tb, kb * KC, kc, j0, n, b_block(bp, p, kb) + q0 * path.nr * kc);
}
int64_t pack_b_chunks(const Path& path, const Problem& p) {
  int64_t panels = p.npad / path.nr;
  return p.kblocks * ((panels + kPackPanels - 1) / kPackPanels);
}

// One task: a tile of rows x columns, over all K blocks (C = acc_0, then + acc_1, ...) or,
// with split_k, over one block kb, whose acc goes to C (kb = 0) or to partial[kb - 1].
void run_task(const Path& path, const Problem& p, const float* A, const float* bp, float* C,
              float* partial, int64_t t) {
  int64_t tile = p.split_k ? t / p.kblocks : t;
  int64_t i0 = tile / p.col_tiles * path.mc, j0 = tile % p.col_tiles * path.nc;
  int64_t m = std::min(path.mc, p.M - i0), n = std::min(path.nc, p.N - j0);
  int64_t kb_begin = p.split_k ? t % p.kblocks : 0;
  int64_t kb_end = p.split_k ? kb_begin + 1 : p.kblocks;
  int64_t ar = p.ta ? 1 : p.lda, ak = p.ta ? p.lda : 1;  // op(A)[i][k] = A[i * ar + k * ak]
  for (int64_t kb = kb_begin; kb < kb_end; ++kb) {
    int64_t kc = kc_of(p, kb);
    float* dst = (p.split_k && kb > 0) ? partial + (kb - 1) * p.M * p.N : C;
    bool first = p.split_k || kb == 0;
    const float* bblock = b_block(bp, p, kb);
    for (int64_t jr = 0; jr < n; jr += path.nr) {
      const float* bpanel = bblock + (j0 + jr) * kc;
      int nn = int(std::min(path.nr, n - jr));
      for (int64_t ir = 0; ir < m; ir += path.mr) {
        path.micro(kc, A + (i0 + ir) * ar + kb * KC * ak, ar, ak, bpanel,
                   dst + (i0 + ir) * p.N + j0 + jr, p.N, int(std::min(path.mr, m - ir)), nn, first);
      }
    }
  }
}

// With split_k: C = ((acc_0 + acc_1) + acc_2) + ..., rows r0..r1.
void reduce_rows(const Problem& p, float* C, const float* partial, int64_t r0, int64_t r1) {
  int64_t mn = p.M * p.N;
  for (int64_t kb = 1; kb < p.kblocks; ++kb) {
    const float* src = partial + (kb - 1) * mn;
    for (int64_t e = r0 * p.N; e < r1 * p.N; ++e) C[e] = C[e] + src[e];
  }
}

// alpha = 1, beta = 0, M, N, K > 0.
void sgemm_plain(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K,
                 const float* A, int64_t sa, const float* B, int64_t sb, float* C, int64_t sc) {
  const Path& path = path_of(gemm_isa());
  Problem p = plan(path, ta, tb, M, N, K);
  double flops = 2.0 * double(batch) * double(M) * double(N) * double(K);
  bool parallel = flops > kParallelFlops;
  size_t bsize = size_t(K) * size_t(p.npad);
  size_t psize = p.split_k ? size_t(p.kblocks - 1) * size_t(M) * size_t(N) : 0;
  static thread_local Buffer b_buf, partial_buf;

  // Many small entries (attention heads): one entry per task, each on one thread.
  if (parallel && batch > 1 && flops / double(batch) < 2 * kParallelFlops) {
#pragma omp parallel for schedule(dynamic)
    for (int64_t b = 0; b < batch; ++b) {
      float* bp = b_buf.get(bsize);
      float* part = partial_buf.get(psize);
      for (int64_t c = 0, chunks = pack_b_chunks(path, p); c < chunks; ++c)
        pack_b_chunk(path, p, B + b * sb, bp, c);
      for (int64_t t = 0; t < p.tasks; ++t) run_task(path, p, A + b * sa, bp, C + b * sc, part, t);
      if (p.split_k) reduce_rows(p, C + b * sc, part, 0, M);
    }
    return;
  }

  // Otherwise entry by entry, all threads on each: pack op(B), run the tasks, reduce.
  float* bp = b_buf.get(bsize);
  float* part = partial_buf.get(psize);
  int64_t chunks = pack_b_chunks(path, p);
  constexpr int64_t kReduceRows = 16;
#pragma omp parallel if (parallel)
  {
    for (int64_t b = 0; b < batch; ++b) {
#pragma omp for schedule(static)
      for (int64_t c = 0; c < chunks; ++c) pack_b_chunk(path, p, B + b * sb, bp, c);
#pragma omp for schedule(dynamic)
      for (int64_t t = 0; t < p.tasks; ++t) run_task(path, p, A + b * sa, bp, C + b * sc, part, t);
      if (p.split_k) {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < M; r += kReduceRows)
          reduce_rows(p, C + b * sc, part, r, std::min(M, r + kReduceRows));
      }
    }
  }
}

}  // namespace

const char* gemm_isa_name(GemmIsa isa) {
  return isa == GemmIsa::Avx512 ? "avx512" : isa == GemmIsa::Avx2 ? "avx2" : "scalar";
}

bool gemm_isa_supported(GemmIsa isa) {
  __builtin_cpu_init();  // may run before libgcc's constructor has (static initialisers)
  if (isa == GemmIsa::Avx512) return __builtin_cpu_supports("avx512f");
  if (isa == GemmIsa::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return true;
}

GemmIsa gemm_isa() { return GemmIsa(current_isa().load(std::memory_order_relaxed)); }

void set_gemm_isa(GemmIsa isa) {
  VC_CHECK(gemm_isa_supported(isa), "set_gemm_isa: this CPU lacks ", gemm_isa_name(isa));
  current_isa().store(int(isa), std::memory_order_relaxed);
}

void sgemm(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t sa, const float* B, int64_t sb, float beta, float* C,
           int64_t sc) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  int64_t mn = M * N;
  auto each_c = [&](auto f) {
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t e = 0; e < mn; ++e) f(C[b * sc + e], e, b);
  };
  if (K <= 0) {  // an empty sum: C = beta * C
    each_c([&](float& c, int64_t, int64_t) { c = beta == 0.f ? 0.f : beta * c; });
    return;
  }
  if (alpha == 1.f && beta == 0.f) {
    sgemm_plain(ta, tb, batch, M, N, K, A, sa, B, sb, C, sc);
    return;
  }
  // The sum into a scratch C, then C = fma(beta, C, alpha * sum) (beta = 0: C is not read).
  // Written as an explicit fma: GCC contracts a * b + c in C++ even with -std=c++17.
  std::unique_ptr<float[]> sum(new float[size_t(batch * mn)]);
  sgemm_plain(ta, tb, batch, M, N, K, A, sa, B, sb, sum.get(), mn);
  each_c([&](float& c, int64_t e, int64_t b) {
    float s = alpha * sum[b * mn + e];
    c = beta == 0.f ? s : std::fma(beta, c, s);
  });
}

}  // namespace vc::cpu_kernels
