#include "core/quantiser.h"

#include <cmath>

#include "core/error.h"

namespace pcmsim::core {

// min/max as plain comparisons: std::fmin/fmax honour NaN and compile to libm calls that
// block vectorisation; inputs here are finite (validated).
static inline float fmin_fast(float a, float b) { return b < a ? b : a; }
static inline float fmax_fast(float a, float b) { return a < b ? b : a; }
static inline double fmin_fast(double a, double b) { return b < a ? b : a; }
static inline double fmax_fast(double a, double b) { return a < b ? b : a; }

// The converter level of a value already multiplied by 1/step: clipped one level beyond the
// range first (so huge values cannot overflow the level arithmetic), rounded to the nearest
// level (ties away from zero) or stochastically with the uniform u, then clipped to +-kmax.
template <class T>
static inline T nearest_level(T scaled, T kmax) {
  const T t = fmin_fast(fmax_fast(scaled, -kmax - T(1)), kmax + T(1));
  return fmin_fast(fmax_fast(round_ties_away(t), -kmax), kmax);
}
template <class T>
static inline T stochastic_level(T scaled, T u, T kmax) {
  const T t = fmin_fast(fmax_fast(scaled, -kmax - T(1)), kmax + T(1));
  return fmin_fast(fmax_fast(std::floor(t + u), -kmax), kmax);
}


void QuantiserSpec::validate(const char* where, const char* what) const {
  if (bits != 0 && (bits < 2 || bits > 16))
    throw_invalid(where, concat(what, " bits = ", bits, ": must be 0 (off) or in [2, 16]"));
  if (std::isnan(bound) || !(bound > 0))
    throw_invalid(where, concat(what, " bound = ", bound, ": must be > 0"));
  if (std::isinf(bound) && bits != 0)
    throw_invalid(where, concat(what, " bound = ", bound, ": must be finite when quantising"));
}

void quantise_nearest(const QuantiserSpec& q, const float* in, float* out, std::size_t n) {
  const float bound = static_cast<float>(q.bound);
  if (q.bits == 0) {
    for (std::size_t i = 0; i < n; ++i) out[i] = fmin_fast(fmax_fast(in[i], -bound), bound);
    return;
  }
  const float step = static_cast<float>(q.step());
  const float kmax = static_cast<float>(q.max_level());
  const float inv_step = static_cast<float>(q.inv_step());
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = nearest_level(in[i] * inv_step, kmax) * step;
  }
}

void quantise_nearest_divided(const QuantiserSpec& q, const float* in, float divisor, float* out,
                              std::size_t n) {
  const float bound = static_cast<float>(q.bound);
  if (q.bits == 0) {
    for (std::size_t i = 0; i < n; ++i) out[i] = fmin_fast(fmax_fast(in[i] / divisor, -bound), bound);
    return;
  }
  const float step = static_cast<float>(q.step());
  const float kmax = static_cast<float>(q.max_level());
  const float inv_step = static_cast<float>(q.inv_step());
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = nearest_level((in[i] / divisor) * inv_step, kmax) * step;
  }
}

void quantise_stochastic(const QuantiserSpec& q, const float* in, const float* u, float* out,
                         std::size_t n) {
  const float bound = static_cast<float>(q.bound);
  if (q.bits == 0) {
    for (std::size_t i = 0; i < n; ++i) out[i] = fmin_fast(fmax_fast(in[i], -bound), bound);
    return;
  }
  const float step = static_cast<float>(q.step());
  const float kmax = static_cast<float>(q.max_level());
  const float inv_step = static_cast<float>(q.inv_step());
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = stochastic_level(in[i] * inv_step, u[i], kmax) * step;
  }
}

void quantise_levels_nearest(const QuantiserSpec& q, const float* in, std::int32_t* k_out,
                             std::size_t n) {
  const float kmax = static_cast<float>(q.max_level());
  const float inv_step = static_cast<float>(q.inv_step());
  for (std::size_t i = 0; i < n; ++i) {
    k_out[i] = static_cast<std::int32_t>(nearest_level(in[i] * inv_step, kmax));
  }
}

void quantise_levels_stochastic(const QuantiserSpec& q, const float* in, const float* u,
                                std::int32_t* k_out, std::size_t n) {
  const float kmax = static_cast<float>(q.max_level());
  const float inv_step = static_cast<float>(q.inv_step());
  for (std::size_t i = 0; i < n; ++i) {
    k_out[i] = static_cast<std::int32_t>(stochastic_level(in[i] * inv_step, u[i], kmax));
  }
}

double quantise_nearest(const QuantiserSpec& q, double v) {
  if (q.bits == 0) return fmin_fast(fmax_fast(v, -q.bound), q.bound);
  const double step = q.step();
  const double kmax = q.max_level();
  return nearest_level(v * q.inv_step(), kmax) * step;
}

double quantise_stochastic(const QuantiserSpec& q, double v, double u) {
  if (q.bits == 0) return fmin_fast(fmax_fast(v, -q.bound), q.bound);
  const double step = q.step();
  const double kmax = q.max_level();
  return stochastic_level(v * q.inv_step(), u, kmax) * step;
}

}  // namespace pcmsim::core
