#include "devices/hermes_model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/fastmath.h"
#include "core/types.h"
#include "devices/pcm_model.h"

namespace pcmsim::devices {
namespace {

constexpr const char* kWhere = "devices::HermesParams";

// The published fits (docs/physics.md §3b), per characterisation: index 0 = one device per
// weight, 1 = two devices per weight.
struct Fit {
  double g_max_uS;      // largest characterised conductance
  double t0;            // seconds; first read after programming
  double prog[4];       // sigma_prog in uS at g_max = g_max_uS: sum_i prog[i] x^i
  double nu_std_knee;   // sigma_nu: below the knee a clamped log law, above a quadratic
  double nu_std_log[2], nu_std_lo, nu_std_hi, nu_std_quad[3];
  double q_knee;        // Q_s: below the knee a clamped log law, above a cubic
  double q_log[2], q_lo, q_hi, q_cubic[4];
};
constexpr Fit kFits[2] = {
    {10.35, 200.0, {0.15781817, 2.32443916, -2.16310839, 0.68841818},
     0.3039, {-0.0120, -0.0023}, 0.0124, 0.04, {-0.0165, 0.0116, 0.0104},
     0.1591, {-0.0078, 0.0038}, 0.0179, 0.04, {0.0664, -0.1352, 0.0768, 0.0088}},
    {20.7, 300.0, {0.16603222, 4.71806468, -8.48101252, 4.68961419},
     0.3055, {-0.0117, -0.0057}, 0.0091, 0.04, {-0.0118, 0.0093, 0.0073},
     0.16, {-0.0117, -0.0069}, 0.015, 0.04, {0.0069, -0.0280, 0.0211, 0.0123}},
};
// mu_nu, the same for both: below the knee a clamped log law, above a quadratic.
constexpr double kNuMeanKnee = 0.0945, kNuMeanLog[2] = {-0.0387, -0.0182}, kNuMeanLo = 0.072,
                 kNuMeanHi = 0.13, kNuMeanQuad[3] = {-0.0436, -0.0126, 0.0736};
constexpr double kXFloor = 1e-7;  // x floored before the logarithm (the fits' own clip)

const Fit& fit(int hermes_devices) { return kFits[hermes_devices == 1 ? 0 : 1]; }

// a*log(x) + b clamped to [lo, hi] below the knee, the polynomial c (highest power first) above.
template <class T>
T piecewise(T x, T log_x, double knee, const double (&ab)[2], double lo, double hi,
            const double* c, int degree) {
  // Both branches computed and one selected by value (no std::clamp reference), so that the
  // programming loop vectorises.
  const T a = static_cast<T>(ab[0]) * log_x + static_cast<T>(ab[1]);
  const T below = a < static_cast<T>(lo) ? static_cast<T>(lo)
                                         : (static_cast<T>(hi) < a ? static_cast<T>(hi) : a);
  T p = static_cast<T>(c[0]);
  for (int i = 1; i <= degree; ++i) p = p * x + static_cast<T>(c[i]);
  return x < static_cast<T>(knee) ? below : p;
}


struct ProgramCoefficients {
  float inv_g_max, c0, c1, c2, c3, drift_scale, q_scale, x_floor;
};

// One chunk of HermesModel::program: a free function with restrict pointers, so that GCC
// vectorises it (inside the lambda the captured references might alias the outputs).
void program_chunk(const Fit& f, const ProgramCoefficients& k, std::size_t m,
                   const float* __restrict gt, const float* __restrict xi_prog,
                   const float* __restrict xi_nu, float* __restrict gp, float* __restrict nu,
                   float* __restrict q) {
  const float inv_g_max = k.inv_g_max, c0 = k.c0, c1 = k.c1, c2 = k.c2, c3 = k.c3;
  const float drift_scale = k.drift_scale, q_scale = k.q_scale, x_floor = k.x_floor;
  for (std::size_t i = 0; i < m; ++i) {
    const float x = gt[i] * inv_g_max;
    const float sigma = c0 + x * (c1 + x * (c2 + x * c3));
    const float g = gt[i] + sigma * xi_prog[i];
    const float g_prog = g > 0.0f ? g : 0.0f;
    gp[i] = g_prog;

    const float xt = x > x_floor ? x : x_floor;
    const float log_xt = core::fast_log(xt);
    const float mu = piecewise(xt, log_xt, kNuMeanKnee, kNuMeanLog, kNuMeanLo, kNuMeanHi,
                               kNuMeanQuad, 2);
    const float sd = piecewise(xt, log_xt, f.nu_std_knee, f.nu_std_log, f.nu_std_lo,
                               f.nu_std_hi, f.nu_std_quad, 2);
    nu[i] = drift_scale * std::fabs(mu + sd * xi_nu[i]);

    const float xp = g_prog * inv_g_max > x_floor ? g_prog * inv_g_max : x_floor;
    q[i] = q_scale * piecewise(xp, core::fast_log(xp), f.q_knee, f.q_log, f.q_lo, f.q_hi,
                               f.q_cubic, 3);
  }
}
}  // namespace

double hermes_characterised_g_max(int d) { return fit(d).g_max_uS * 1e-6; }
double hermes_characterised_t0(int d) { return fit(d).t0; }

void HermesParams::validate() const {
  if (hermes_devices != 1 && hermes_devices != 2)
    core::throw_invalid(kWhere, core::concat("hermes_devices = ", hermes_devices,
                                             ": must be 1 or 2 (the characterised schemes)"));
  const double g_hi = hermes_characterised_g_max(hermes_devices);
  if (!(g_max >= 0) || !(g_max <= g_hi))
    core::throw_invalid(kWhere, core::concat("g_max_uS = ", core::uS_from_siemens(g_max),
                                             ": must be in [0, ", core::uS_from_siemens(g_hi),
                                             "] for hermes_devices = ", hermes_devices,
                                             " (0: that maximum)"));
  core::require_non_negative(kWhere, "t0", t0);
  require_times_and_scales(kWhere, effective_t0(), t_read, prog_noise_scale, drift_scale,
                           read_noise_scale);
}

double HermesParams::effective_g_max() const {
  return g_max > 0 ? g_max : hermes_characterised_g_max(hermes_devices);
}
double HermesParams::effective_t0() const {
  return t0 > 0 ? t0 : hermes_characterised_t0(hermes_devices);
}

double hermes_prog_noise_std(double x, double g_max, int d) {
  const Fit& f = fit(d);
  const double poly = f.prog[0] + x * (f.prog[1] + x * (f.prog[2] + x * f.prog[3]));
  return poly * 1e-6 * (g_max / (f.g_max_uS * 1e-6));  // the fit scales with g_max
}

double hermes_nu_mean(double x) {
  const double xf = std::max(x, kXFloor);
  return piecewise(xf, std::log(xf), kNuMeanKnee, kNuMeanLog, kNuMeanLo, kNuMeanHi, kNuMeanQuad,
                   2);
}

double hermes_nu_std(double x, int d) {
  const Fit& f = fit(d);
  const double xf = std::max(x, kXFloor);
  return piecewise(xf, std::log(xf), f.nu_std_knee, f.nu_std_log, f.nu_std_lo, f.nu_std_hi,
                   f.nu_std_quad, 2);
}

double hermes_read_noise_q(double x, int d) {
  const Fit& f = fit(d);
  const double xf = std::max(x, kXFloor);
  return piecewise(xf, std::log(xf), f.q_knee, f.q_log, f.q_lo, f.q_hi, f.q_cubic, 3);
}

HermesModel::HermesModel(HermesParams params) : params_(params) {
  params_.validate();
  g_max_ = params_.effective_g_max();
  t0_ = params_.effective_t0();
}

void HermesModel::program(const float* g_target, std::size_t n, const core::RngKey& key,
                          std::uint64_t first_index, DeviceStateView out) const {
  check_targets("devices::HermesModel::program", g_target, n, g_max_, first_index);
  const Fit& f = fit(params_.hermes_devices);
  const float inv_g_max = static_cast<float>(1.0 / g_max_);
  // sigma_prog (siemens) = prog_noise_scale * g_max / g_ref * poly(x) uS, folded into the
  // coefficients.
  const double s = params_.prog_noise_scale * 1e-6 * g_max_ / (f.g_max_uS * 1e-6);
  const float c0 = static_cast<float>(s * f.prog[0]), c1 = static_cast<float>(s * f.prog[1]),
              c2 = static_cast<float>(s * f.prog[2]), c3 = static_cast<float>(s * f.prog[3]);
  const float drift_scale = static_cast<float>(params_.drift_scale);
  const float q_scale = static_cast<float>(params_.read_noise_scale);
  const float x_floor = static_cast<float>(kXFloor);

  const ProgramCoefficients k{inv_g_max, c0, c1, c2, c3, drift_scale, q_scale, x_floor};
  for_each_programming_chunk(key, first_index, n, [&](std::size_t start, std::size_t m,
                                                      const float* xi_prog, const float* xi_nu) {
    program_chunk(f, k, m, g_target + start, xi_prog, xi_nu, out.g_prog + start,
                  out.nu + start, out.read_noise_q + start);
  });
}

void HermesModel::read(ConstDeviceStateView state, std::size_t n, double t_inference,
                       const core::RngKey& key, std::uint64_t first_index, float* g_out) const {
  drift_and_read_noise(state, n, t_inference, t0_, params_.t_read, key, first_index, g_out);
}

}  // namespace pcmsim::devices
