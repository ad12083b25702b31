// Monte Carlo statistics of a device model: the numbers behind `pcmsim device`.
//
// For each target conductance, `samples` devices are programmed once; then, for each inference
// time, a snapshot of the same programmed devices is taken ("program once, drift many") and
// the mean and std of their conductance reported, with the mean and std of their drift
// exponents nu. Work is split into fixed chunks of devices (independent of the thread count),
// each chunk's partial statistics are kept in double and combined in chunk order, and every
// random number is drawn by device index: the result is bit-identical for any number of
// OpenMP threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "devices/device_model.h"

namespace pcmsim::devices {

struct DeviceReportConfig {
  std::vector<double> g_targets = {1e-6, 5e-6, 12.5e-6, 25e-6};    // siemens, in [0, g_max]
  std::vector<double> t_inference = {0.0, 3600.0, 86400.0, 31536000.0};  // seconds, >= 0
  std::size_t samples = 100000;  // devices per target conductance, >= 1
  std::uint64_t seed = 7;
  // Throws std::invalid_argument naming the value: empty lists, a target outside
  // [0, g_max] or NaN, a negative or non-finite time, zero samples.
  void validate(double g_max) const;
};

struct DeviceReportRow {
  std::string model;      // the model's name()
  double g_target;        // siemens
  double t_inference;     // seconds
  std::size_t samples;
  double mean;            // siemens, mean conductance at t_inference
  double std;             // siemens, sample standard deviation (n - 1)
  double nu_mean;         // mean drift exponent of the programmed devices
  double nu_std;          // its sample standard deviation
};

// One row per (target, time), targets outer, in the order given.
std::vector<DeviceReportRow> device_report(const DeviceModel& model,
                                           const DeviceReportConfig& config);

// Columns of both formats:
//   model,g_target_uS,t_inference_s,samples,mean_uS,std_uS,nu_mean,nu_std
std::string device_report_csv(const std::vector<DeviceReportRow>& rows);
// The same columns as an aligned, human-readable table.
std::string device_report_table(const std::vector<DeviceReportRow>& rows);

}  // namespace pcmsim::devices
