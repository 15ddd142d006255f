// Kernels of the attention family (filled in by its issue).
#pragma once
#include <cstdint>
#include "engine/core/dtype.h"

namespace vc {

struct AttentionKernels {
  int unused = 0;
};

}  // namespace vc
