#include "engine/ops/random.h"

#include "engine/ops/op.h"

namespace vc {

namespace {
Tensor fill(Distribution d, const Shape& shape, uint64_t seed, uint64_t stream, double a,
            double b, DType dtype, Device device) {
  VC_CHECK(is_floating(dtype), "random: ", dtype_name(dtype), " is not a float type");
  Tensor t = make_tensor(shape, dtype, device);
  backend_for(device).random.fill_random(d, dtype, t.raw(), t.numel(), seed, stream, a, b);
  return t;
}
}  // namespace

Tensor rand_uniform(const Shape& shape, uint64_t seed, uint64_t stream, double lo, double hi,
                    DType dtype, Device device) {
  return fill(Distribution::Uniform, shape, seed, stream, lo, hi, dtype, device);
}

Tensor rand_normal(const Shape& shape, uint64_t seed, uint64_t stream, double mean, double std,
                   DType dtype, Device device) {
  return fill(Distribution::Normal, shape, seed, stream, mean, std, dtype, device);
}

Tensor rand_gumbel(const Shape& shape, uint64_t seed, uint64_t stream, DType dtype,
                   Device device) {
  return fill(Distribution::Gumbel, shape, seed, stream, 0, 1, dtype, device);
}

}  // namespace vc
