// CPU kernels of the special family (filled in by its issue).
#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

SpecialKernels special_kernels() { return {}; }

}  // namespace vc::cpu_kernels
