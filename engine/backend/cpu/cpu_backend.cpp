// The CPU backend's kernel table.
#include "engine/backend/cpu/cpu_kernels.h"

namespace vc {

const Backend& cpu_backend() {
  static const Backend table = {
      "cpu",
      {cpu_kernels::alloc, cpu_kernels::free, cpu_kernels::stats, cpu_kernels::reset_peak, cpu_kernels::release_cache,
       cpu_kernels::copy_strided, cpu_kernels::fill, cpu_kernels::cast, cpu_kernels::host_copy, cpu_kernels::host_copy},
      {cpu_kernels::unary, cpu_kernels::unary_backward, cpu_kernels::binary, cpu_kernels::where},
      {cpu_kernels::reduce, cpu_kernels::reduce_columns},
      {cpu_kernels::gemm},
      {cpu_kernels::index_select, cpu_kernels::index_add, cpu_kernels::gather, cpu_kernels::scatter_add},
      {cpu_kernels::softmax, cpu_kernels::softmax_backward, cpu_kernels::layernorm, cpu_kernels::layernorm_backward,
       cpu_kernels::cross_entropy, cpu_kernels::cross_entropy_backward},
      {cpu_kernels::conv2d, cpu_kernels::conv2d_backward},
      {cpu_kernels::fill_random},
      cpu_kernels::attention_kernels(),
      cpu_kernels::special_kernels(),
      cpu_kernels::optim_kernels(),
  };
  return table;
}

}  // namespace vc
