// The signed p-bit converter of docs/physics.md §4, vectorised over arrays.
//
// Levels k*step, k in [-(2^(p-1)-1), 2^(p-1)-1], step = 2*bound/(2^p - 2): the top level is
// exactly +bound. Round to nearest (ties away from zero) or stochastically, then clip.
// p = 0 disables rounding (values are still clipped to [-bound, bound]; bound may be +inf).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace pcmsim::core {

struct QuantiserSpec {
  int bits = 8;        // 2..16, or 0 = off
  double bound = 1.0;  // > 0; +inf allowed only when bits == 0

  // Throws std::invalid_argument naming `what` (e.g. "p_out") and the value.
  void validate(const char* where, const char* what) const;
  // 2^(p-1) - 1 (0 when off).
  std::int32_t max_level() const { return bits == 0 ? 0 : (std::int32_t{1} << (bits - 1)) - 1; }
  // (2^(p-1)-1)/bound: values are scaled to levels by this multiplication, which is exact for
  // a power-of-two bound, so that e.g. x = 0.5 on [-1, 1] is an exact tie in float and double
  // alike (bound management produces such values: the largest input halved). 0 when off.
  double inv_step() const { return bits == 0 ? 0.0 : double(max_level()) / bound; }
  // 2*bound/(2^p - 2) (0 when off).
  double step() const {
    return bits == 0 ? 0.0 : 2.0 * bound / static_cast<double>((std::int64_t{1} << bits) - 2);
  }
};

// Rounding half away from zero written as trunc + compare: exact in float (no |t| + 0.5
// rounding error) and vectorisable (vroundps + blend).
inline float round_ties_away(float t) {
  const float a = std::fabs(t);
  float k = std::trunc(a);
  k += (a - k >= 0.5f) ? 1.0f : 0.0f;
  return std::copysign(k, t);
}
inline double round_ties_away(double t) {
  const double a = std::fabs(t);
  double k = std::trunc(a);
  k += (a - k >= 0.5) ? 1.0 : 0.0;
  return std::copysign(k, t);
}

// out[i] = Q(in[i]) with nearest rounding (ties away from zero). in == out allowed.
void quantise_nearest(const QuantiserSpec& q, const float* in, float* out, std::size_t n);
// out[i] = Q(in[i] / divisor), bit-identical to dividing first and then quantise_nearest, in
// one pass (the tile's noise management and DAC). divisor > 0.
void quantise_nearest_divided(const QuantiserSpec& q, const float* in, float divisor, float* out,
                              std::size_t n);
// Same with stochastic rounding: k = floor(v/step + u[i]), u[i] in [0, 1).
void quantise_stochastic(const QuantiserSpec& q, const float* in, const float* u, float* out,
                         std::size_t n);
// The integer level k of each value (nearest rounding, ties away from zero), clipped; n values.
// Used by bit-serial inputs. Off (bits = 0) is not allowed here.
void quantise_levels_nearest(const QuantiserSpec& q, const float* in, std::int32_t* k,
                             std::size_t n);
void quantise_levels_stochastic(const QuantiserSpec& q, const float* in, const float* u,
                                std::int32_t* k, std::size_t n);

// Scalar double versions (the reference oracle and tests).
double quantise_nearest(const QuantiserSpec& q, double v);
double quantise_stochastic(const QuantiserSpec& q, double v, double u);

}  // namespace pcmsim::core
