#include "devices/ideal_model.h"

#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/types.h"
#include "devices/pcm_model.h"

namespace pcmsim::devices {

void IdealParams::validate() const {
  if (!(g_max > 0) || !(g_max <= 1.0))
    core::throw_invalid("devices::IdealParams",
                        core::concat("g_max_uS = ", core::uS_from_siemens(g_max),
                                     ": must be > 0 and <= 1e6"));
}

IdealModel::IdealModel(IdealParams params) : params_(params) { params_.validate(); }

void IdealModel::program(const float* g_target, std::size_t n, const core::RngKey&,
                         std::uint64_t first_index, DeviceStateView out) const {
  check_targets("devices::IdealModel::program", g_target, n, params_.g_max, first_index);
  if (n == 0) return;
  std::memcpy(out.g_prog, g_target, n * sizeof(float));
  std::memset(out.nu, 0, n * sizeof(float));            // all-zero bits = 0.0f
  std::memset(out.read_noise_q, 0, n * sizeof(float));
}

void IdealModel::read(ConstDeviceStateView state, std::size_t n, double t_inference,
                      const core::RngKey&, std::uint64_t, float* g_out) const {
  if (!(t_inference >= 0) || !std::isfinite(t_inference))
    core::throw_invalid("devices::IdealModel::read",
                        core::concat("t_inference = ", t_inference, " s: must be finite and >= 0"));
  if (n > 0) std::memcpy(g_out, state.g_prog, n * sizeof(float));
}

}  // namespace pcmsim::devices
