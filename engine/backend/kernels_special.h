// Kernels of the special family (filled in by its issue).
#pragma once
#include <cstdint>
#include "engine/core/dtype.h"

namespace vc {

struct SpecialKernels {
  int unused = 0;
};

}  // namespace vc
