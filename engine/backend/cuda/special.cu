// CUDA kernels of the special family: the table. The kernels live in special_merge.cu
// (bipartite matching, token merge), special_shift.cu (temporal channel shift) and
// special_topk.cu (top-k / argsort), mirroring engine/backend/cpu/special*.cpp.
#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

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

}  // namespace vc::cuda_kernels
