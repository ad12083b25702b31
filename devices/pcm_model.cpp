#include "devices/pcm_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "core/fastmath.h"
#include "core/types.h"

namespace pcmsim::devices {
namespace {

constexpr const char* kWhere = "devices::PcmParams";

// Coefficients of docs/physics.md §2.
constexpr double kProgC0 = 0.26348, kProgC1 = 1.9650, kProgC2 = -1.1731;  // uS at g_max=25uS
constexpr double kNuMeanA = -0.0155, kNuMeanB = 0.0244, kNuMeanLo = 0.049, kNuMeanHi = 0.1;
constexpr double kNuStdA = -0.0125, kNuStdB = -0.0059, kNuStdLo = 0.008, kNuStdHi = 0.045;
constexpr double kXFloor = 1e-7;  // x' = max(x, 1e-7) before the logarithm
constexpr double kQNum = 0.0088, kQExp = 0.65, kQDenFloor = 1e-3, kQMax = 0.2;

// std::clamp's value, by value: std::clamp returns a reference, and the load through the
// selected address keeps GCC from vectorising the loop.
inline float clamp_value(float v, float lo, float hi) { return v < lo ? lo : (hi < v ? hi : v); }

struct ProgramCoefficients {
  float inv_g_max, c0, c1, c2, drift_scale, q_scale, x_floor;
};

// One chunk of PcmModel::program, vectorised (restrict pointers, no std::clamp): the scalar
// loop took 43 ns per device, half the cost of a training step's programming.
template <bool QFromProgrammed>
void program_chunk(const ProgramCoefficients& k, std::size_t m, const float* __restrict gt,
                   const float* __restrict xi_prog, const float* __restrict xi_nu,
                   float* __restrict gp, float* __restrict nu, float* __restrict q) {
  const float inv_g_max = k.inv_g_max, c0 = k.c0, c1 = k.c1, c2 = k.c2;
  const float drift_scale = k.drift_scale, q_scale = k.q_scale, x_floor = k.x_floor;
  for (std::size_t i = 0; i < m; ++i) {
    const float x = gt[i] * inv_g_max;
    const float sigma = c0 + c1 * x + c2 * x * x;
    const float g = gt[i] + sigma * xi_prog[i];
    const float g_prog = g > 0.0f ? g : 0.0f;
    gp[i] = g_prog;

    const float log_x = core::fast_log(x > x_floor ? x : x_floor);
    const float mu = clamp_value(static_cast<float>(kNuMeanA) * log_x +
                                     static_cast<float>(kNuMeanB),
                                 static_cast<float>(kNuMeanLo), static_cast<float>(kNuMeanHi));
    const float sd = clamp_value(static_cast<float>(kNuStdA) * log_x +
                                     static_cast<float>(kNuStdB),
                                 static_cast<float>(kNuStdLo), static_cast<float>(kNuStdHi));
    nu[i] = drift_scale * std::fabs(mu + sd * xi_nu[i]);

    // Q_s = min(0.0088 / max(x_ref^0.65, 1e-3), 0.2). Flooring x_ref at 1e-7 before the log
    // changes nothing: Q_s already saturates at 0.2 below x_ref ~ 0.008.
    const float x_prog = g_prog * inv_g_max;
    const float log_ref =
        QFromProgrammed ? core::fast_log(x_prog > x_floor ? x_prog : x_floor) : log_x;
    const float xp = core::fast_exp(static_cast<float>(kQExp) * log_ref);
    const float den = xp > static_cast<float>(kQDenFloor) ? xp : static_cast<float>(kQDenFloor);
    const float qs = static_cast<float>(kQNum) / den;
    q[i] = q_scale * (qs < static_cast<float>(kQMax) ? qs : static_cast<float>(kQMax));
  }
}

}  // namespace

std::string format_uS(double g) {
  // 9 significant digits: every float distinct, so a target a hair above g_max shows as such.
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", core::uS_from_siemens(g));
  return buf;
}

std::string to_string(ReadNoiseReference r) {
  return r == ReadNoiseReference::target ? "target" : "programmed";
}

ReadNoiseReference read_noise_reference_from_string(const std::string& text) {
  if (text == "target") return ReadNoiseReference::target;
  if (text == "programmed") return ReadNoiseReference::programmed;
  core::throw_invalid(kWhere, core::concat("read_noise_reference = '", text,
                                           "': must be 'target' or 'programmed'"));
}

void PcmParams::validate() const {
  // g_max bounded so that x and sigma stay normal floats; 1 S is far above any PCM device.
  if (!(g_max > 0) || !(g_max <= 1.0))
    core::throw_invalid(kWhere, core::concat("g_max_uS = ", core::uS_from_siemens(g_max),
                                             ": must be > 0 and <= 1e6"));
  require_times_and_scales(kWhere, t0, t_read, prog_noise_scale, drift_scale, read_noise_scale);
  if (read_noise_reference != ReadNoiseReference::target &&
      read_noise_reference != ReadNoiseReference::programmed)
    core::throw_invalid(kWhere, core::concat("read_noise_reference = ",
                                             static_cast<int>(read_noise_reference),
                                             ": not a ReadNoiseReference"));
}

double pcm_prog_noise_std(double x, double g_max) {
  // (g_max / 25 uS) * poly(x) uS = g_max * poly(x) / 25 siemens.
  return g_max * (kProgC0 + kProgC1 * x + kProgC2 * x * x) / 25.0;
}

double pcm_nu_mean(double x) {
  return std::clamp(kNuMeanA * std::log(std::max(x, kXFloor)) + kNuMeanB, kNuMeanLo, kNuMeanHi);
}

double pcm_nu_std(double x) {
  return std::clamp(kNuStdA * std::log(std::max(x, kXFloor)) + kNuStdB, kNuStdLo, kNuStdHi);
}

double pcm_read_noise_q(double x) {
  const double xp = x > 0 ? std::pow(x, kQExp) : 0.0;
  return std::min(kQNum / std::max(xp, kQDenFloor), kQMax);
}

double read_noise_time_factor(double t_inference, double t0, double t_read) {
  const double t = t_inference + t0;
  return std::sqrt(std::log((t + t_read) / (2.0 * t_read)));
}

double drift_factor(double t_inference, double t0, double nu) {
  return std::pow((t_inference + t0) / t0, -nu);
}

void require_times_and_scales(const char* where, double t0, double t_read,
                              double prog_noise_scale, double drift_scale,
                              double read_noise_scale) {
  core::require_positive(where, "t0", t0);
  core::require_positive(where, "t_read", t_read);
  core::require_non_negative(where, "prog_noise_scale", prog_noise_scale);
  core::require_non_negative(where, "drift_scale", drift_scale);
  core::require_non_negative(where, "read_noise_scale", read_noise_scale);
}

void check_targets(const char* where, const float* g_target, std::size_t n, double g_max,
                   std::uint64_t first_index) {
  const float hi = static_cast<float>(g_max);
  // Branch-free scan (vectorises); the slow search only runs when something is wrong.
  int bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad |= !(g_target[i] >= 0.0f && g_target[i] <= hi);
  if (!bad) return;
  for (std::size_t i = 0; i < n; ++i) {
    if (!(g_target[i] >= 0.0f && g_target[i] <= hi))
      core::throw_invalid(where, core::concat("g_target[", first_index + i, "] = ",
                                              format_uS(g_target[i]), " uS: must be in [0, ",
                                              format_uS(g_max), "] uS"));
  }
}

void drift_and_read_noise(ConstDeviceStateView state, std::size_t n, double t_inference,
                          double t0, double t_read, const core::RngKey& key,
                          std::uint64_t first_index, float* g_out) {
  if (!(t_inference >= 0) || !std::isfinite(t_inference))
    core::throw_invalid("devices::read", core::concat("t_inference = ", t_inference,
                                                      " s: must be finite and >= 0"));
  if (n == 0) return;
  if (t_inference == 0) {  // the programmed state itself
    std::memcpy(g_out, state.g_prog, n * sizeof(float));
    return;
  }
  // Per-call constants in double; per device: one Gaussian, one exp, a few products.
  const float log_t = static_cast<float>(std::log((t_inference + t0) / t0));
  const float time_factor = static_cast<float>(read_noise_time_factor(t_inference, t0, t_read));
  alignas(64) float xi[kDeviceChunk];
  for (std::size_t start = 0; start < n; start += kDeviceChunk) {
    const std::size_t m = std::min(kDeviceChunk, n - start);
    core::fill_normal(key, kDrawReadNoise, first_index + start, m, xi);
    const float* gp = state.g_prog + start;
    const float* nu = state.nu + start;
    const float* q = state.read_noise_q + start;
    float* out = g_out + start;
    for (std::size_t i = 0; i < m; ++i) {
      const float gd = gp[i] * core::fast_exp(-nu[i] * log_t);
      const float g = gd + std::fabs(gd) * (q[i] * time_factor) * xi[i];
      out[i] = g > 0.0f ? g : 0.0f;
    }
  }
}

PcmModel::PcmModel(PcmParams params) : params_(params) { params_.validate(); }

void PcmModel::program(const float* g_target, std::size_t n, const core::RngKey& key,
                       std::uint64_t first_index, DeviceStateView out) const {
  check_targets("devices::PcmModel::program", g_target, n, params_.g_max, first_index);
  const float inv_g_max = static_cast<float>(1.0 / params_.g_max);
  // sigma_prog = prog_scale * g_max * poly(x) / 25 (siemens), folded into the coefficients.
  const double s = params_.prog_noise_scale * params_.g_max / 25.0;
  const float c0 = static_cast<float>(s * kProgC0), c1 = static_cast<float>(s * kProgC1),
              c2 = static_cast<float>(s * kProgC2);
  const float drift_scale = static_cast<float>(params_.drift_scale);
  const float q_scale = static_cast<float>(params_.read_noise_scale);
  const bool q_from_prog = params_.read_noise_reference == ReadNoiseReference::programmed;
  const float x_floor = static_cast<float>(kXFloor);

  const ProgramCoefficients k{inv_g_max, c0, c1, c2, drift_scale, q_scale, x_floor};
  for_each_programming_chunk(key, first_index, n, [&](std::size_t start, std::size_t m,
                                                      const float* xi_prog, const float* xi_nu) {
    // The reference of Q_s as a template argument: an invariant select stops the vectoriser.
    (q_from_prog ? program_chunk<true> : program_chunk<false>)(
        k, m, g_target + start, xi_prog, xi_nu, out.g_prog + start, out.nu + start,
        out.read_noise_q + start);
  });
}

void PcmModel::read(ConstDeviceStateView state, std::size_t n, double t_inference,
                    const core::RngKey& key, std::uint64_t first_index, float* g_out) const {
  drift_and_read_noise(state, n, t_inference, params_.t0, params_.t_read, key, first_index,
                       g_out);
}

}  // namespace pcmsim::devices
