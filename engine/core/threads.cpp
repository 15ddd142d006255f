#include "engine/core/threads.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/core/eigen.h"

namespace vc {

void set_num_threads(int n) {
  if (n < 1) n = 1;
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
  // The GEMM kernel runs its own OpenMP loop over fixed tiles (backend/cpu/matmul.cpp);
  // Eigen threading inside would make results depend on the thread count.
  Eigen::setNbThreads(1);
}

#ifdef _OPENMP
int num_threads() { return omp_get_max_threads(); }
#else
int num_threads() { return 1; }  // VERBCLIP_OPENMP=OFF: every kernel runs serially
#endif

}  // namespace vc
