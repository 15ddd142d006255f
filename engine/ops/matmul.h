// Matrix products through the backend's GEMM (Eigen on the CPU, cuBLAS on CUDA).
#pragma once
#include "engine/core/tensor.h"

namespace vc {

// a [..., M, K] @ b [..., K, N] -> [..., M, N], batch dims broadcast (NumPy rules); a 1-d
// operand is not accepted (reshape it). A transposed view of the last two dims is passed to
// the GEMM as a transposed operand, never copied.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace vc
