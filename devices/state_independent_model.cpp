#include "devices/state_independent_model.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/types.h"
#include "devices/pcm_model.h"

namespace pcmsim::devices {

void StateIndependentParams::validate() const {
  constexpr const char* where = "devices::StateIndependentParams";
  if (!(g_max > 0) || !(g_max <= 1.0))
    core::throw_invalid(where, core::concat("g_max_uS = ", core::uS_from_siemens(g_max),
                                            ": must be > 0 and <= 1e6"));
  if (!(prog_noise_std >= 0) || !(prog_noise_std <= 1.0))
    core::throw_invalid(where, core::concat("prog_noise_std_uS = ",
                                            core::uS_from_siemens(prog_noise_std),
                                            ": must be >= 0 and <= 1e6"));
  core::require_finite(where, "nu_mean", nu_mean);
  core::require_non_negative(where, "nu_std", nu_std);
  core::require_non_negative(where, "read_noise_q", read_noise_q);
  require_times_and_scales(where, t0, t_read, prog_noise_scale, drift_scale, read_noise_scale);
}

StateIndependentModel::StateIndependentModel(StateIndependentParams params) : params_(params) {
  params_.validate();
}

void StateIndependentModel::program(const float* g_target, std::size_t n, const core::RngKey& key,
                                    std::uint64_t first_index, DeviceStateView out) const {
  check_targets("devices::StateIndependentModel::program", g_target, n, params_.g_max,
                first_index);
  const float sigma = static_cast<float>(params_.prog_noise_scale * params_.prog_noise_std);
  const float mu = static_cast<float>(params_.nu_mean);
  const float sd = static_cast<float>(params_.nu_std);
  const float drift_scale = static_cast<float>(params_.drift_scale);
  const float q = static_cast<float>(params_.read_noise_scale * params_.read_noise_q);
  for_each_programming_chunk(key, first_index, n, [&](std::size_t start, std::size_t m,
                                                      const float* xi_prog, const float* xi_nu) {
    const float* gt = g_target + start;
    float* gp = out.g_prog + start;
    float* nu = out.nu + start;
    float* qs = out.read_noise_q + start;
    for (std::size_t i = 0; i < m; ++i) {
      const float g = gt[i] + sigma * xi_prog[i];
      gp[i] = g > 0.0f ? g : 0.0f;
      nu[i] = drift_scale * std::fabs(mu + sd * xi_nu[i]);
      qs[i] = q;
    }
  });
}

void StateIndependentModel::read(ConstDeviceStateView state, std::size_t n, double t_inference,
                                 const core::RngKey& key, std::uint64_t first_index,
                                 float* g_out) const {
  drift_and_read_noise(state, n, t_inference, params_.t0, params_.t_read, key, first_index,
                       g_out);
}

}  // namespace pcmsim::devices
