// The state_independent device (docs/physics.md §3): the same programming / drift / read-noise laws
// as PCM but with statistics that do not depend on the target conductance. Useful to tell
// which effects come from the conductance dependence of the PCM statistics.
//   g_prog = max(0, g_T + prog_noise_scale * prog_noise_std * xi_1)
//   nu     = drift_scale * |nu_mean + nu_std * xi_2|
//   Q_s    = read_noise_scale * read_noise_q
// and the snapshot of devices/pcm_model.h (drift_and_read_noise).
#pragma once

#include <string>

#include "devices/device_model.h"

namespace pcmsim::devices {

struct StateIndependentParams {
  double g_max = 25e-6;            // siemens; largest target conductance
  double prog_noise_std = 0.2e-6;  // siemens; constant programming-noise std (0.2 uS)
  double nu_mean = 0.1;            // mean of the normal that nu is folded from
  double nu_std = 0.05;            // its std
  // Constant Q_s of the 1/f read noise. Default: the PCM value at x = 0.5,
  // 0.0088 / 0.5^0.65 = 0.0138087, i.e. a mid-range PCM device.
  double read_noise_q = 0.0088 / 0.6372803136596311;
  double t0 = 20.0;                // seconds; drift reference time
  double t_read = 250e-9;          // seconds; read duration in the 1/f noise integral
  double prog_noise_scale = 1.0;   // multiplies prog_noise_std
  double drift_scale = 1.0;        // multiplies nu
  double read_noise_scale = 1.0;   // multiplies read_noise_q
  void validate() const;
};

class StateIndependentModel final : public DeviceModel {
 public:
  explicit StateIndependentModel(StateIndependentParams params = {});  // validates

  std::string name() const override { return "state_independent"; }
  double g_max() const override { return params_.g_max; }
  const StateIndependentParams& params() const { return params_; }

  void program(const float* g_target, std::size_t n, const core::RngKey& key,
               std::uint64_t first_index, DeviceStateView out) const override;
  void read(ConstDeviceStateView state, std::size_t n, double t_inference,
            const core::RngKey& key, std::uint64_t first_index, float* g_out) const override;

 private:
  StateIndependentParams params_;
};

}  // namespace pcmsim::devices
