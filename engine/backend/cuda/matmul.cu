// GEMM through cuBLAS: sgemm / dgemm, strided-batched for batches.
//
// Row-major C = op(A) op(B) is column-major Cᵀ = op(B)ᵀ op(A)ᵀ, and a row-major matrix read
// as column-major is its transpose: so cuBLAS gets B first, A second, and N, M swapped (the
// "swap trick"), with no copies.
//
// Reproducibility: TF32 is off by default (CUBLAS_DEFAULT_MATH for float32 never uses tensor
// cores' reduced precision); VERBCLIP_CUDA_TF32=1 allows TF32, VERBCLIP_CUDA_PEDANTIC=1
// selects CUBLAS_PEDANTIC_MATH. cuBLAS gets one fixed workspace (cublasSetWorkspace) on the
// one stream, so it picks the same algorithm and split on every run.
#include <cublas_v2.h>

#include <climits>
#include <cstdlib>
#include <mutex>
#include <string>

#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

namespace {

constexpr size_t kWorkspaceBytes = size_t(32) << 20;  // 32 MiB, cuBLAS's own recommendation for Hopper

bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string(v) != "0";
}

void check_cublas(cublasStatus_t s, const char* what) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  fail("cublas: ", what, " failed with status ", int(s));
}

cublasHandle_t handle() {
  static cublasHandle_t h = [] {
    cublasHandle_t hh = nullptr;
    check_cublas(cublasCreate(&hh), "cublasCreate");
    check_cublas(cublasSetStream(hh, stream()), "cublasSetStream");
    cublasMath_t mode = CUBLAS_DEFAULT_MATH;
    if (env_on("VERBCLIP_CUDA_TF32")) mode = CUBLAS_TF32_TENSOR_OP_MATH;
    if (env_on("VERBCLIP_CUDA_PEDANTIC")) mode = CUBLAS_PEDANTIC_MATH;
    check_cublas(cublasSetMathMode(hh, mode), "cublasSetMathMode");
    void* ws = nullptr;  // lives as long as the process, outside the counted cache
    VC_CUDA(cudaMalloc(&ws, kWorkspaceBytes));
    check_cublas(cublasSetWorkspace(hh, ws, kWorkspaceBytes), "cublasSetWorkspace");
    return hh;
  }();
  return h;
}

template <class T> __global__ void scale_kernel(T* c, int64_t n, T beta) {
  VC_GRID_LOOP(i, n) c[i] = beta == T(0) ? T(0) : beta * c[i];
}

int as_int(int64_t v, const char* what) {
  VC_CHECK(v >= 0 && v <= INT_MAX, "gemm: ", what, " = ", v, " exceeds cuBLAS's int range");
  return int(v);
}

}  // namespace

void gemm(DType t, bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K,
          double alpha, const void* A, int64_t sa, const void* B, int64_t sb, double beta,
          void* C, int64_t sc) {
  if (batch <= 0 || M <= 0 || N <= 0) return;
  if (K == 0) {  // C = beta C, with beta == 0 overwriting whatever C held (NaN included)
    dispatch_float(t, [&](auto zero) {
      using T = decltype(zero);
      for (int64_t b = 0; b < batch; ++b)
        scale_kernel<T><<<blocks_for(M * N), kThreads, 0, stream()>>>(
            static_cast<T*>(C) + b * sc, M * N, T(beta));
    });
    VC_CUDA_LAUNCH("gemm (K = 0)");
    return;
  }
  int m = as_int(M, "M"), n = as_int(N, "N"), k = as_int(K, "K"), nb = as_int(batch, "batch");
  cublasOperation_t op_a = ta ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  int lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
  cublasHandle_t h = handle();
  if (t == DType::F64) {
    const double al = alpha, be = beta;
    if (nb == 1)
      check_cublas(cublasDgemm(h, op_b, op_a, n, m, k, &al, static_cast<const double*>(B), ldb,
                               static_cast<const double*>(A), lda, &be, static_cast<double*>(C),
                               ldc),
                   "cublasDgemm");
    else
      check_cublas(cublasDgemmStridedBatched(h, op_b, op_a, n, m, k, &al,
                                             static_cast<const double*>(B), ldb, sb,
                                             static_cast<const double*>(A), lda, sa, &be,
                                             static_cast<double*>(C), ldc, sc, nb),
                   "cublasDgemmStridedBatched");
  } else {
    const float al = float(alpha), be = float(beta);
    if (nb == 1)
      check_cublas(cublasSgemm(h, op_b, op_a, n, m, k, &al, static_cast<const float*>(B), ldb,
                               static_cast<const float*>(A), lda, &be, static_cast<float*>(C),
                               ldc),
                   "cublasSgemm");
    else
      check_cublas(cublasSgemmStridedBatched(h, op_b, op_a, n, m, k, &al,
                                             static_cast<const float*>(B), ldb, sb,
                                             static_cast<const float*>(A), lda, sa, &be,
                                             static_cast<float*>(C), ldc, sc, nb),
                   "cublasSgemmStridedBatched");
  }
}

}  // namespace vc::cuda_kernels
