#include "engine/core/threads.h"

#include <omp.h>

#include "engine/core/eigen.h"

namespace vc {

void set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  // The GEMM kernel runs its own OpenMP loop over fixed tiles (backend/cpu/matmul.cpp);
  // Eigen threading inside would make results depend on the thread count.
  Eigen::setNbThreads(1);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace vc
