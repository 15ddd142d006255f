// Random tensors from the counter-based Philox generator (engine/rng/philox.h). Element i of
// a call keyed by (seed, stream) is the same number on every backend and for any thread
// count; a run draws a fresh stream per call from its Generator.
#pragma once
#include <cstdint>

#include "engine/core/tensor.h"

namespace vc {

// The run's source of streams: (seed, next stream). Its two numbers are the whole RNG
// state a checkpoint needs to save.
struct Generator {
  uint64_t seed = 0;
  uint64_t next_stream = 0;
  uint64_t stream() { return next_stream++; }
};

Tensor rand_uniform(const Shape& shape, uint64_t seed, uint64_t stream, double lo = 0,
                    double hi = 1, DType dtype = DType::F32, Device device = {});
Tensor rand_normal(const Shape& shape, uint64_t seed, uint64_t stream, double mean = 0,
                   double std = 1, DType dtype = DType::F32, Device device = {});
// Standard Gumbel noise -log(-log(u)) with u kept inside (0, 1).
Tensor rand_gumbel(const Shape& shape, uint64_t seed, uint64_t stream, DType dtype = DType::F32,
                   Device device = {});

}  // namespace vc
