#include "engine/core/threads.h"

#include <omp.h>

#include <Eigen/Core>

namespace vc {

void set_num_threads(int n) {
  if (n < 1) n = 1;
  omp_set_num_threads(n);
  Eigen::setNbThreads(n);
}

int num_threads() { return omp_get_max_threads(); }

}  // namespace vc
