// GEMM through Eigen::Map of row-major matrices. Eigen splits the output, never the inner
// dimension, between threads, so results are the same for any thread count (tested).
#include <Eigen/Core>

#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

namespace {

template <class T>
void gemm_t(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, T alpha,
            const T* A, int64_t sa, const T* B, int64_t sb, T beta, T* C, int64_t sc) {
  using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using CMap = Eigen::Map<const Mat>;
  for (int64_t b = 0; b < batch; ++b) {
    Eigen::Map<Mat> c(C + b * sc, M, N);
    if (beta == T(0)) c.setZero();
    else if (beta != T(1)) c *= beta;
    if (K == 0 || M == 0 || N == 0) continue;
    // A stored transposed is a [K, M] row-major matrix; take its transpose as a view.
    CMap a(A + b * sa, ta ? K : M, ta ? M : K);
    CMap bm(B + b * sb, tb ? N : K, tb ? K : N);
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
    gemm_t<T>(ta, tb, batch, M, N, K, T(alpha), static_cast<const T*>(A), sa,
              static_cast<const T*>(B), sb, T(beta), static_cast<T*>(C), sc);
  });
}

}  // namespace vc::cpu_kernels
