// The ideal device (docs/physics.md §3): g = g_T at all times, no noise, no drift. The reference
// that isolates the tile and converter effects from the device physics.
#pragma once

#include <string>

#include "devices/device_model.h"

namespace pcmsim::devices {

struct IdealParams {
  double g_max = 25e-6;  // siemens; largest target conductance
  void validate() const;
};

class IdealModel final : public DeviceModel {
 public:
  explicit IdealModel(IdealParams params = {});  // validates

  std::string name() const override { return "ideal"; }
  double g_max() const override { return params_.g_max; }
  const IdealParams& params() const { return params_; }

  // g_prog = g_T exactly, nu = 0, read_noise_q = 0.
  void program(const float* g_target, std::size_t n, const core::RngKey& key,
               std::uint64_t first_index, DeviceStateView out) const override;
  // g = g_prog at every time (t_inference must still be finite and >= 0).
  void read(ConstDeviceStateView state, std::size_t n, double t_inference,
            const core::RngKey& key, std::uint64_t first_index, float* g_out) const override;

 private:
  IdealParams params_;
};

}  // namespace pcmsim::devices
