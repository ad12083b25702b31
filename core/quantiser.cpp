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
    const float t = fmin_fast(fmax_fast(in[i] * inv_step, -kmax - 1.0f), kmax + 1.0f);
    float k = round_ties_away(t);
    k = fmin_fast(fmax_fast(k, -kmax), kmax);
    out[i] = k * step;
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
    const float t = fmin_fast(fmax_fast((in[i] / divisor) * inv_step, -kmax - 1.0f), kmax + 1.0f);
    float k = round_ties_away(t);
    k = fmin_fast(fmax_fast(k, -kmax), kmax);
    out[i] = k * step;
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
    // Clip first so that huge values cannot overflow the level arithmetic.
    const float t = fmin_fast(fmax_fast(in[i] * inv_step, -kmax - 1.0f), kmax + 1.0f);
    float k = std::floor(t + u[i]);
    k = fmin_fast(fmax_fast(k, -kmax), kmax);
    out[i] = k * step;
  }
}

void quantise_levels_nearest(const QuantiserSpec& q, const float* in, std::int32_t* k_out,
                             std::size_t n) {
  const float kmax = static_cast<float>(q.max_level());
  const float inv_step = static_cast<float>(q.inv_step());
  for (std::size_t i = 0; i < n; ++i) {
    const float t = fmin_fast(fmax_fast(in[i] * inv_step, -kmax - 1.0f), kmax + 1.0f);
    float k = round_ties_away(t);
    k = fmin_fast(fmax_fast(k, -kmax), kmax);
    k_out[i] = static_cast<std::int32_t>(k);
  }
}

void quantise_levels_stochastic(const QuantiserSpec& q, const float* in, const float* u,
                                std::int32_t* k_out, std::size_t n) {
  const float kmax = static_cast<float>(q.max_level());
  const float inv_step = static_cast<float>(q.inv_step());
  for (std::size_t i = 0; i < n; ++i) {
    const float t = fmin_fast(fmax_fast(in[i] * inv_step, -kmax - 1.0f), kmax + 1.0f);
    float k = std::floor(t + u[i]);
    k = fmin_fast(fmax_fast(k, -kmax), kmax);
    k_out[i] = static_cast<std::int32_t>(k);
  }
}

double quantise_nearest(const QuantiserSpec& q, double v) {
  if (q.bits == 0) return fmin_fast(fmax_fast(v, -q.bound), q.bound);
  const double step = q.step();
  const double kmax = q.max_level();
  const double t = fmin_fast(fmax_fast(v * q.inv_step(), -kmax - 1.0), kmax + 1.0);
  double k = round_ties_away(t);
  k = fmin_fast(fmax_fast(k, -kmax), kmax);
  return k * step;
}

double quantise_stochastic(const QuantiserSpec& q, double v, double u) {
  if (q.bits == 0) return fmin_fast(fmax_fast(v, -q.bound), q.bound);
  const double step = q.step();
  const double kmax = q.max_level();
  const double t = fmin_fast(fmax_fast(v * q.inv_step(), -kmax - 1.0), kmax + 1.0);
  double k = std::floor(t + u);
  k = fmin_fast(fmax_fast(k, -kmax), kmax);
  return k * step;
}

}  // namespace pcmsim::core
