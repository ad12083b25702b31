// The statistical PCM device model of docs/physics.md §2 (doped GST; Nandakumar et al. 2019,
// Joshi et al. 2020), and the drift + accumulated 1/f read-noise law that the PCM-like models
// (PCM, state_independent, tabulated) share.
//
// Programming draws, per device, one programming-noise variate (draw kDrawProgramming) and
// one drift-exponent variate (draw kDrawDriftExponent) from the programming key; a snapshot
// draws one read-noise variate (draw kDrawReadNoise) from the snapshot key, so a different
// snapshot key gives a fresh read-noise draw of the same programmed chip.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/rng.h"
#include "core/settings.h"
#include "devices/device_model.h"

namespace pcmsim::devices {

// `draw` numbers of the device variates (core::fill_normal).
constexpr std::uint32_t kDrawProgramming = 0;    // programming noise xi
constexpr std::uint32_t kDrawDriftExponent = 1;  // drift-exponent noise
constexpr std::uint32_t kDrawReadNoise = 0;      // read noise of a snapshot (own key)

// Which conductance the read-noise amplitude Q_s is computed from.
enum class ReadNoiseReference {
  target,      // x = g_T / g_max (the published model; default)
  programmed,  // x = g_prog / g_max
};
std::string to_string(ReadNoiseReference r);
// "target" or "programmed"; anything else throws std::invalid_argument.
ReadNoiseReference read_noise_reference_from_string(const std::string& text);
PCMSIM_ENUM_TEXT(ReadNoiseReference, read_noise_reference_from_string, "target", "programmed");

struct PcmParams {
  double g_max = 25e-6;      // siemens; largest target conductance (x = g_T / g_max)
  double t0 = 20.0;          // seconds; drift reference time (t = t_inference + t0)
  double t_read = 250e-9;    // seconds; read duration in the 1/f noise integral
  double prog_noise_scale = 1.0;  // multiplies sigma_prog (0: no programming noise)
  double drift_scale = 1.0;       // multiplies the drift exponent nu (0: no drift)
  double read_noise_scale = 1.0;  // multiplies Q_s (0: no read noise)
  ReadNoiseReference read_noise_reference = ReadNoiseReference::target;

  // Throws std::invalid_argument "[devices::PcmParams] <name> = <value>: ..." on a bad value.
  void validate() const;
};

// The formulas of docs/physics.md §2 in double precision, unscaled (scale knobs = 1). For tests,
// reports and other models; the model's vectorised loops compute the same in float.
// x = g / g_max.
double pcm_prog_noise_std(double x, double g_max);  // sigma_prog, siemens
double pcm_nu_mean(double x);                       // mu_nu
double pcm_nu_std(double x);                        // sigma_nu
double pcm_read_noise_q(double x);                  // Q_s
// sqrt(ln((t + t_read) / (2 t_read))) with t = t_inference + t0.
double read_noise_time_factor(double t_inference, double t0, double t_read);
// (t / t0)^(-nu) with t = t_inference + t0.
double drift_factor(double t_inference, double t0, double nu);

// The snapshot law shared by the PCM-like models, for n devices of a programmed state:
//   t = t_inference + t0,  g_d = g_prog * (t/t0)^(-nu),
//   g = max(0, g_d + |g_d| * Q_s * sqrt(ln((t + t_read)/(2 t_read))) * xi),
// xi ~ N(0,1) from (key, kDrawReadNoise, first_index + i). t_inference = 0 copies g_prog
// exactly (no drift, no read noise: the published model's convention).
// Throws std::invalid_argument when t_inference is negative or not finite.
void drift_and_read_noise(ConstDeviceStateView state, std::size_t n, double t_inference,
                          double t0, double t_read, const core::RngKey& key,
                          std::uint64_t first_index, float* g_out);

// The checks every device model's params share, in this order: t0 > 0, t_read > 0 and
// prog_noise_scale, drift_scale, read_noise_scale >= 0 (std::invalid_argument naming the field).
void require_times_and_scales(const char* where, double t0, double t_read,
                              double prog_noise_scale, double drift_scale,
                              double read_noise_scale);

// Throws std::invalid_argument "[<where>] g_target[<first_index + i>] = <v> uS: must be in
// [0, <g_max> uS]" for the first target that is NaN or outside [0, g_max].
void check_targets(const char* where, const float* g_target, std::size_t n, double g_max,
                   std::uint64_t first_index);

// A conductance (siemens) in µS with 9 significant digits (float-exact), for messages.
std::string format_uS(double g);

// Devices are processed in chunks of this many (a multiple of 4: whole Philox blocks), with
// the random numbers of a chunk drawn into a stack buffer.
constexpr std::size_t kDeviceChunk = 1024;

// The programming draws of devices [first_index, first_index + n), chunk by chunk: calls
// body(start, m, xi_prog, xi_nu) with the programming-noise and drift-exponent normals of devices
// start .. start + m - 1 (every model draws the same two streams, so they stay comparable).
template <class Body>
void for_each_programming_chunk(const core::RngKey& key, std::uint64_t first_index, std::size_t n,
                                Body&& body) {
  alignas(64) float xi_prog[kDeviceChunk];
  alignas(64) float xi_nu[kDeviceChunk];
  for (std::size_t start = 0; start < n; start += kDeviceChunk) {
    const std::size_t m = n - start < kDeviceChunk ? n - start : kDeviceChunk;
    core::fill_normal(key, kDrawProgramming, first_index + start, m, xi_prog);
    core::fill_normal(key, kDrawDriftExponent, first_index + start, m, xi_nu);
    body(start, m, xi_prog, xi_nu);
  }
}

class PcmModel final : public DeviceModel {
 public:
  explicit PcmModel(PcmParams params = {});  // validates

  std::string name() const override { return "pcm"; }
  double g_max() const override { return params_.g_max; }
  const PcmParams& params() const { return params_; }

  // g_prog = max(0, g_T + sigma_prog(x) xi_1), nu = drift_scale |mu_nu(x) + sigma_nu(x) xi_2|,
  // read_noise_q = read_noise_scale * Q_s(x_ref), frozen here.
  void program(const float* g_target, std::size_t n, const core::RngKey& key,
               std::uint64_t first_index, DeviceStateView out) const override;
  void read(ConstDeviceStateView state, std::size_t n, double t_inference,
            const core::RngKey& key, std::uint64_t first_index, float* g_out) const override;

 private:
  PcmParams params_;
};

}  // namespace pcmsim::devices
