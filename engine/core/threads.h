// The engine's thread count (OpenMP and Eigen's GEMM share it). Results never depend on it.
#pragma once

namespace vc {

void set_num_threads(int n);
int num_threads();

}  // namespace vc
