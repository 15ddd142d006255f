// Kernels of the optim family (filled in by its issue).
#pragma once
#include <cstdint>
#include "engine/core/dtype.h"

namespace vc {

struct OptimKernels {
  int unused = 0;
};

}  // namespace vc
