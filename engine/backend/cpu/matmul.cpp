// GEMM: float32 through our own packed kernel (gemm.cpp: same bits on every CPU, path and
// thread count); float64, used by gradient checks, through Eigen::Map of row-major matrices,
// threaded by us over fixed output tiles.
//
// Why not Eigen's own threading: it splits the output at boundaries that depend on the
// thread count, and its kernels for a block's edge rows sum the K products in another
// order than its main kernel, so results change bits with the thread count. Here the tiles
// have a fixed size whatever the thread count, and each tile is one single-threaded Eigen
// product: every output element is summed in the same order on 1 or 16 threads (tested).
#include <algorithm>
#include <type_traits>

#include "engine/core/eigen.h"

#include "engine/backend/cpu/cpu_kernels.h"
#include "engine/backend/cpu/gemm.h"

namespace vc::cpu_kernels {

namespace {

// Multiples of the register blocks of Eigen's kernels (rows: 3 packets of 8 or 16 floats,
// columns: 4). Each tile packs its own operands, so tiles are large enough that packing
// stays a few percent of the FLOPs; 1024^3 still makes 12 tiles for the threads.
constexpr int64_t kTileRows = 192, kTileCols = 512;

template <class T>
void gemm_t(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha,
            const T* A, int64_t sa, const T* B, int64_t sb, T beta, T* C, int64_t sc) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Stride = Eigen::OuterStride<>;
  using In = Eigen::Map<const Mat, 0, Stride>;
  using Out = Eigen::Map<Mat, 0, Stride>;
  // Eigen must never start threads of its own inside a tile (see the top of the file).
  static const bool eigen_single = (Eigen::setNbThreads(1), true);
  (void)eigen_single;
  int64_t row_tiles = (M + kTileRows - 1) / kTileRows, col_tiles = (N + kTileCols - 1) / kTileCols;
  int64_t tiles = batch * row_tiles * col_tiles;
  double flops = 2.0 * double(batch) * double(M) * double(N) * double(K);
#pragma omp parallel for schedule(static) if (tiles > 1 && flops > 1e6)
  for (int64_t t = 0; t < tiles; ++t) {
    int64_t b = t / (row_tiles * col_tiles);
    int64_t r0 = (t / col_tiles) % row_tiles * kTileRows, c0 = t % col_tiles * kTileCols;
    int64_t m = std::min(kTileRows, M - r0), n = std::min(kTileCols, N - c0);
    Out c(C + b * sc + r0 * N + c0, m, n, Stride(N));
    if (beta == T(0)) c.setZero();
    else if (beta != T(1)) c *= beta;
    if (K == 0) continue;
    // Rows r0.. of op(A): a row block of A [M, K], or a column block of A stored as [K, M].
    In a = ta ? In(A + b * sa + r0, K, m, Stride(M)) : In(A + b * sa + r0 * K, m, K, Stride(K));
    // Columns c0.. of op(B): a column block of B [K, N], or a row block of B stored as [N, K].
    In bm = tb ? In(B + b * sb + c0 * K, n, K, Stride(K)) : In(B + b * sb + c0, K, n, Stride(N));
    if (!ta && !tb) c.noalias() += alpha * a * bm;
    else if (ta && !tb) c.noalias() += alpha * a.transpose() * bm;
    else if (!ta && tb) c.noalias() += alpha * a * bm.transpose();
    else c.noalias() += alpha * a.transpose() * bm.transpose();
  }
}

}  // namespace

void gemm(DType t, bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K,
          double alpha, const void* A, int64_t sa, const void* B, int64_t sb, double beta,
          void* C, int64_t sc) {
  dispatch_floating(t, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, float>)
      sgemm(ta, tb, batch, M, N, K, float(alpha), static_cast<const float*>(A), sa,
            static_cast<const float*>(B), sb, float(beta), static_cast<float*>(C), sc);
    else
      gemm_t<T>(ta, tb, batch, M, N, K, T(alpha), static_cast<const T*>(A), sa,
                static_cast<const T*>(B), sb, T(beta), static_cast<T*>(C), sc);
  });
}

}  // namespace vc::cpu_kernels
