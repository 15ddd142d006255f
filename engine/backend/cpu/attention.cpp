// CPU kernels of the attention family (filled in by its issue).
#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

AttentionKernels attention_kernels() { return {}; }

}  // namespace vc::cpu_kernels
