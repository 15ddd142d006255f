// Randomness of the data pipeline. Every draw is a pure function of (seed, epoch, rank,
// purpose, index, draw number) through Philox, so a sample's crop, flip or frame choice
// never depends on which worker made it or in what order.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/rng/philox.h"

namespace vc::data {

// What the numbers are for; each purpose is its own Philox stream.
enum class RngPurpose : uint32_t { Shuffle = 1, Sampling = 2, Transform = 3, Mixup = 4, Skip = 5 };

class SampleRng {
 public:
  // `index` is the dataset index (or the batch index for batch-level draws).
  SampleRng(uint64_t seed, uint64_t epoch, uint64_t rank, RngPurpose purpose, uint64_t index)
      : seed_(seed),
        // stream = epoch (32 bits) | rank (16 bits) | purpose (16 bits)
        stream_((epoch << 32) ^ ((rank & 0xFFFF) << 16) ^ uint64_t(purpose)),
        base_(index << 24) {}  // 2^24 draws per sample before two samples could meet

  uint32_t next_u32() { return philox_at(seed_, stream_, base_ + count_++).v[0]; }
  // Uniform in (0, 1).
  double uniform() { return unit_open(next_u32()); }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n >= 1 (numpy randint(n)).
  int64_t randint(int64_t n) {
    int64_t v = int64_t(uniform() * double(n));
    return v >= n ? n - 1 : v;
  }
  bool bernoulli(double p) { return uniform() < p; }
  double normal() {
    double u1 = uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  // Gamma(shape, 1) by Marsaglia-Tsang (boosted for shape < 1).
  double gamma(double shape) {
    if (shape < 1) return gamma(shape + 1) * std::pow(uniform(), 1.0 / shape);
    double d = shape - 1.0 / 3, c = 1 / std::sqrt(9 * d);
    while (true) {
      double x = normal(), v = 1 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      double u = uniform();
      if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) return d * v;
    }
  }
  double beta(double a, double b) {
    double x = gamma(a), y = gamma(b);
    return x / (x + y);
  }

 private:
  uint64_t seed_, stream_, base_;
  uint64_t count_ = 0;
};

}  // namespace vc::data
