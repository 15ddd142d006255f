// A vectorisable exp shared by the CPU kernels that call it per element.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace vc::cpu_kernels {

// exp for the hot activations. float: Cephes' expf (range reduction by ln 2, a degree-6
// polynomial, scaling by 2^n through the exponent bits), within 2 ulp of std::exp and
// branch-free, so the compiler vectorises the loops that call it; every element goes through
// the same operations, so vector and scalar lanes give the same bits. double (gradient
// checks) keeps std::exp.
inline float fast_exp(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447504f;
  float xc = x > hi ? hi : (x < lo ? lo : x);
  float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float e = p * (r * r) + r + 1.0f;
  int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return x < lo ? 0.0f : e * scale;
}
inline double fast_exp(double x) { return std::exp(x); }

}  // namespace vc::cpu_kernels
