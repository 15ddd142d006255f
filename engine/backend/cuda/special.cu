// CUDA kernels of the special family: the table. The kernels live in special_merge.cu
// (bipartite matching, token merge), special_shift.cu (temporal channel shift) and
// special_topk.cu (top-k / argsort), mirroring engine/backend/cpu/special*.cpp.
#include "engine/backend/cuda/cuda_common.cuh"

namespace vc::cuda_kernels {

// special_merge.cu
void bipartite_match(DType t, const void* metric, int64_t batch, int64_t n, int64_t c, int64_t r,
                     bool protect_first, bool unm_by_position, int64_t* unm, int64_t* src,
                     int64_t* dst);
void token_merge(DType t, const void* x, const void* sizes, const int64_t* unm,
                 const int64_t* src, const int64_t* dst, void* y, void* new_sizes, int64_t batch,
                 int64_t n, int64_t r, int64_t c);
void token_merge_backward(DType t, const void* gy, const void* sizes, const void* new_sizes,
                          const int64_t* unm, const int64_t* src, const int64_t* dst, void* gx,
                          int64_t batch, int64_t n, int64_t r, int64_t c);
// special_shift.cu
void channel_shift(DType t, const void* x, const int64_t* table, void* y, int64_t outer,
                   int64_t frames, int64_t rows, int64_t c, int64_t table_c, bool keep_first_row);
void channel_shift_backward(DType t, const void* gy, const int64_t* table, void* gx,
                            int64_t outer, int64_t frames, int64_t rows, int64_t c,
                            int64_t table_c, bool keep_first_row);
// special_topk.cu
void topk(DType t, const void* x, void* values, int64_t* idx, int64_t rows, int64_t n, int64_t k,
          bool largest);

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
