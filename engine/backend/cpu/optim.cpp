// CPU kernels of the optim family (filled in by its issue).
#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

OptimKernels optim_kernels() { return {}; }

}  // namespace vc::cpu_kernels
