// The engine's thread count (OpenMP; the GEMM tiles run on the same threads). Results never
// depend on it.
#pragma once

namespace vc {

void set_num_threads(int n);
int num_threads();

}  // namespace vc
