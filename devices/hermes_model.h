// The PCM statistics measured on IBM's HERMES chip (64 cores of 256x256 PCM unit cells, 14 nm;
// Le Gallo et al., Nature Electronics 2023; Khaddam-Aljameh et al., JSSC 2022), fitted with the
// methodology of Nandakumar et al. 2019 (docs/physics.md §3.4). Two programming schemes were
// characterised: one device per weight, and two devices per weight programmed with the
// multi-device scheme of Vasilopoulos et al. 2023 (higher programming accuracy, less drift
// variability). With x = g / g_max:
//   g_prog = max(0, g_T + prog_noise_scale * sigma_prog(x_T) * xi_1),   sigma_prog a cubic in x_T
//   nu     = drift_scale * |mu_nu(x_T) + sigma_nu(x_T) * xi_2|,          piecewise fits
//   Q_s    = read_noise_scale * Q_s(x_prog)                              (from the programmed g)
// and the snapshot law of devices/pcm_model.h (drift_and_read_noise). The random draws are the
// PCM model's (for_each_programming_chunk), so the two models stay comparable device by device.
#pragma once

#include <string>

#include "devices/device_model.h"

namespace pcmsim::devices {

struct HermesParams {
  int hermes_devices = 2;  // devices per weight in the characterisation: 1 or 2
  // siemens; 0: the characterised maximum (20.7 uS for 2 devices, 10.35 uS for 1). Must not
  // exceed it: the fits say nothing above.
  double g_max = 0.0;
  double t0 = 0.0;         // seconds; 0: the characterised first read (300 s for 2, 200 s for 1)
  double t_read = 512e-9;  // seconds; read duration in the 1/f noise integral
  double prog_noise_scale = 1.0;
  double drift_scale = 1.0;
  double read_noise_scale = 1.0;

  // Throws std::invalid_argument "[devices::HermesParams] <name> = <value>: ..." on a bad value.
  void validate() const;
  // The values in use: g_max and t0 with 0 replaced by the characterised ones.
  double effective_g_max() const;
  double effective_t0() const;
};

// The fits in double precision, unscaled, x = g / g_max; for tests and reports.
double hermes_characterised_g_max(int hermes_devices);            // siemens
double hermes_characterised_t0(int hermes_devices);               // seconds
double hermes_prog_noise_std(double x, double g_max, int hermes_devices);  // siemens
double hermes_nu_mean(double x);
double hermes_nu_std(double x, int hermes_devices);
double hermes_read_noise_q(double x, int hermes_devices);

class HermesModel final : public DeviceModel {
 public:
  explicit HermesModel(HermesParams params = {});  // validates

  std::string name() const override { return "hermes"; }
  double g_max() const override { return g_max_; }
  const HermesParams& params() const { return params_; }
  double t0() const { return t0_; }

  void program(const float* g_target, std::size_t n, const core::RngKey& key,
               std::uint64_t first_index, DeviceStateView out) const override;
  void read(ConstDeviceStateView state, std::size_t n, double t_inference,
            const core::RngKey& key, std::uint64_t first_index, float* g_out) const override;

 private:
  HermesParams params_;
  double g_max_;
  double t0_;
};

}  // namespace pcmsim::devices
