// Branch-free float approximations of log, exp and sin/cos written so that GCC vectorises the
// loops that call them (the standard library's versions are scalar calls). Relative error is a
// few ulp, far below any device noise, and each function is exact where the physics needs it
// to be: fast_exp(0) == 1 exactly, so a zero drift exponent leaves conductances unchanged.
#pragma once

#include <cstdint>
#include <cstring>

namespace pcmsim::core {

inline float bits_to_float(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline std::uint32_t float_to_bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// Natural log of a positive normal float (Cephes logf polynomial).
inline float fast_log(float x) {
  const std::uint32_t bits = float_to_bits(x);
  int exponent = static_cast<int>((bits >> 23) & 0xffu) - 126;  // x = m * 2^e, m in [0.5, 1)
  float m = bits_to_float((bits & 0x007fffffu) | 0x3f000000u);
  const bool below = m < 0.707106781186547524f;
  exponent -= below ? 1 : 0;
  m = below ? (m + m - 1.0f) : (m - 1.0f);
  const float z = m * m;
  float y = 7.0376836292e-2f;
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  const float e = static_cast<float>(exponent);
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return m + y + 0.693359375f * e;
}

// e^x for x in about [-87, 88] (clamped there); fast_exp(0) == 1 exactly.
inline float fast_exp(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // x = n ln2 + r, |r| <= ln2/2; ln2 split in two for an exact product n*ln2_hi.
  const float n = static_cast<float>(static_cast<int>(x * 1.44269504088896341f +
                                                      (x >= 0.0f ? 0.5f : -0.5f)));
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const std::uint32_t scale = static_cast<std::uint32_t>(static_cast<int>(n) + 127) << 23;
  return p * bits_to_float(scale);
}

// x^y for x > 0.
inline float fast_pow(float x, float y) { return fast_exp(y * fast_log(x)); }

// cos(2*pi*u) and sin(2*pi*u) for u in [0, 1): quadrant reduction, then Taylor polynomials on
// [0, pi/2] (truncation error below 4e-8).
inline void fast_sincos_2pi(float u, float& s, float& c) {
  const float v = u * 4.0f;
  const int quadrant = static_cast<int>(v);  // 0..3
  const float a = (v - static_cast<float>(quadrant)) * 1.57079632679489662f;
  const float a2 = a * a;
  float sp = -2.5052108385e-8f;
  sp = sp * a2 + 2.7557319224e-6f;
  sp = sp * a2 - 1.9841269841e-4f;
  sp = sp * a2 + 8.3333333333e-3f;
  sp = sp * a2 - 1.6666666667e-1f;
  const float sin_a = a + a * a2 * sp;
  float cp = 2.0876756988e-9f;
  cp = cp * a2 - 2.7557319224e-7f;
  cp = cp * a2 + 2.4801587302e-5f;
  cp = cp * a2 - 1.3888888889e-3f;
  cp = cp * a2 + 4.1666666667e-2f;
  cp = cp * a2 - 0.5f;
  const float cos_a = 1.0f + a2 * cp;
  // Rotate by quadrant * 90 degrees.
  const bool odd = (quadrant & 1) != 0;
  const bool negate_cos = quadrant == 1 || quadrant == 2;
  const bool negate_sin = quadrant >= 2;
  const float c0 = odd ? sin_a : cos_a;
  const float s0 = odd ? cos_a : sin_a;
  c = negate_cos ? -c0 : c0;
  s = negate_sin ? -s0 : s0;
}

}  // namespace pcmsim::core
