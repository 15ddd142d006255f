// CPU kernels of the special family: the table. The kernels live in special_merge.cpp
// (bipartite matching, token merge), special_shift.cpp (temporal channel shift) and
// special_topk.cpp (top-k / argsort); engine/backend/kernel_declarations.h declares them.
#include "engine/backend/cpu/cpu_kernels.h"

namespace vc::cpu_kernels {

SpecialKernels special_kernels() {
  SpecialKernels k;
  k.bipartite_match = bipartite_match;
  k.token_merge = token_merge;
  k.token_merge_backward = token_merge_backward;
  k.channel_shift = channel_shift;
  k.channel_shift_backward = channel_shift_backward;
  k.topk = topk;
  return k;
}

}  // namespace vc::cpu_kernels
