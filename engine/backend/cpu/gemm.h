// verbclip's own float32 GEMM (gemm.cpp): packed panels and register-blocked FMA micro-kernels
// for AVX-512, AVX2+FMA and plain C++, chosen at run time, all giving the same bits.
#pragma once
#include <cstdint>

namespace vc::cpu_kernels {

// The K block: every C element is the in-order sum of one FMA chain per block of kGemmKC
// products. A constant of the arithmetic, the same on every CPU and path (see gemm.cpp).
constexpr int64_t kGemmKC = 256;

enum class GemmIsa { Scalar, Avx2, Avx512 };

const char* gemm_isa_name(GemmIsa isa);
bool gemm_isa_supported(GemmIsa isa);
// The path in use: the best this CPU has, or VERBCLIP_GEMM_ISA=avx512|avx2|scalar (read at
// the first GEMM; an unknown or unsupported name throws vc::Error).
GemmIsa gemm_isa();
// Forces a path (tests, benchmarks); throws vc::Error when the CPU lacks it.
void set_gemm_isa(GemmIsa isa);

// C[b] = alpha * op(A[b]) op(B[b]) + beta * C[b] for b < batch, row-major, op(A) [M, K] and
// op(B) [K, N]; A is stored [K, M] when ta, B [N, K] when tb; sa, sb, sc are batch strides
// in elements. beta == 0 never reads C.
void sgemm(bool ta, bool tb, int64_t batch, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t sa, const float* B, int64_t sb, float beta, float* C,
           int64_t sc);

}  // namespace vc::cpu_kernels
