// The interface every device model implements (PCM, ideal, state_independent, tabulated).
//
// A model works on flat arrays of devices so that one virtual call covers a whole chunk and
// the inner loops vectorise. Device i of a call draws its random numbers from element index
// (first_index + i) of the given key, so any split of a block into chunks (threads,
// processes) gives bit-identical results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/rng.h"

namespace pcmsim::devices {

// The frozen state of programmed devices ("program once, drift many"), one entry per device,
// structure of arrays. Views into storage owned by the caller.
struct DeviceStateView {
  float* g_prog;        // programmed conductance at t_inference = 0, siemens
  float* nu;            // drift exponent
  float* read_noise_q;  // Q_s of the accumulated 1/f read noise (dimensionless)
};
struct ConstDeviceStateView {
  const float* g_prog;
  const float* nu;
  const float* read_noise_q;
};

class DeviceModel {
 public:
  virtual ~DeviceModel() = default;

  // Short name used on the command line and in result files ("pcm", "ideal", ...).
  virtual std::string name() const = 0;
  // Largest target conductance, siemens. Unit cells map the largest |weight| onto it.
  virtual double g_max() const = 0;

  // Programs n devices towards g_target[i] (siemens, in [0, g_max]); writes their state.
  // Throws std::invalid_argument naming the value when a target is out of range or NaN.
  virtual void program(const float* g_target, std::size_t n, const core::RngKey& key,
                       std::uint64_t first_index, DeviceStateView out) const = 0;

  // Conductance at t_inference seconds after programming (drift + accumulated read noise),
  // for n devices of a programmed state. t_inference = 0 returns g_prog exactly.
  virtual void read(ConstDeviceStateView state, std::size_t n, double t_inference,
                    const core::RngKey& key, std::uint64_t first_index, float* g_out) const = 0;
};

}  // namespace pcmsim::devices
