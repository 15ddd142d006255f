// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011):
// a counter-based generator. Output = f(key, counter) with no state, so element i of a
// random tensor is computed independently on any thread or device. Usable from CUDA.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define VC_HOST_DEVICE __host__ __device__
#else
#define VC_HOST_DEVICE
#endif

namespace vc {

struct Philox4 {
  uint32_t v[4];
};

VC_HOST_DEVICE inline void mulhilo32(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  hi = uint32_t(p >> 32);
  lo = uint32_t(p);
}

// Ten rounds on counter (c0..c3) with key (k0, k1).
VC_HOST_DEVICE inline Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                         uint32_t k0, uint32_t k1) {
  const uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo32(M0, c0, hi0, lo0);
    mulhilo32(M1, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 += W0, k1 += W1;
  }
  return {{c0, c1, c2, c3}};
}

// The four words for element `index` of stream `stream` under `seed`.
VC_HOST_DEVICE inline Philox4 philox_at(uint64_t seed, uint64_t stream, uint64_t index) {
  return philox4x32(uint32_t(index), uint32_t(index >> 32), uint32_t(stream),
                    uint32_t(stream >> 32), uint32_t(seed), uint32_t(seed >> 32));
}

// A 32-bit word to a double strictly inside (0, 1): never 0 or 1, so log() is safe.
VC_HOST_DEVICE inline double unit_open(uint32_t w) { return (double(w) + 0.5) / 4294967296.0; }

VC_HOST_DEVICE inline double philox_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
  return unit_open(philox_at(seed, stream, i).v[0]);
}

// Box-Muller on words 0 and 1.
VC_HOST_DEVICE inline double philox_normal(uint64_t seed, uint64_t stream, uint64_t i) {
  Philox4 r = philox_at(seed, stream, i);
  double u1 = unit_open(r.v[0]), u2 = unit_open(r.v[1]);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

VC_HOST_DEVICE inline double philox_gumbel(uint64_t seed, uint64_t stream, uint64_t i) {
  return -std::log(-std::log(philox_uniform(seed, stream, i)));
}

}  // namespace vc
