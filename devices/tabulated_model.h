// The tabulated (measured) device model of docs/physics.md §3: a device researcher's own chip,
// described per target conductance by the programming mean/std and the drift-exponent
// mean/std (optionally the read-noise amplitude Q_s), linearly interpolated in g_T.
//
// File formats (column / dataset names; conductances in µS):
//   CSV:  a header line naming the columns, then one row per target conductance, e.g.
//           g_target_uS,prog_mean_uS,prog_std_uS,nu_mean,nu_std,read_noise_q
//           0,0.105,0.26,0.1,0.045,0.2
//           25,24.9,1.06,0.049,0.008,0.0088
//         Columns may come in any order; read_noise_q is optional; blank lines and lines
//         starting with '#' are ignored. An unknown column name is an error (catches typos).
//   HDF5: 1-D datasets of the same names and equal lengths at the file's root.
// Unit cells program the "off" device of a pair at 0, so a table meant for network inference
// should start at g_target_uS = 0 (a target outside the table is an error, never clamped).
// prog_mean/prog_std describe the normal a device is programmed from, before the clip at 0
// (far from 0 simply the measured mean and std; near 0 the measured, clipped values are not).
// Model, per device with target g_T inside the table's range [g_target_0, g_target_last]:
//   g_prog = max(0, g_T + prog_noise_scale * ((prog_mean(g_T) - g_T) + prog_std(g_T) * xi_1))
//     (the scale multiplies the whole programming error, bias included, so that all scales 0
//      give exactly the targets)
//   nu     = drift_scale * |nu_mean(g_T) + nu_std(g_T) * xi_2|
//   Q_s    = read_noise_scale * read_noise_q(g_T), or the PCM law Q_s(g_T / g_max) of
//            docs/physics.md §2 when the table has no read_noise_q column;
// then the PCM drift and read-noise snapshot (devices/pcm_model.h, drift_and_read_noise).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "devices/device_model.h"

namespace pcmsim::devices {

// A device table in SI units, one entry per row.
struct DeviceTable {
  std::string source;                // file it was read from, for messages ("" if built in code)
  std::vector<std::size_t> line;     // CSV line number of each row (empty if not from CSV)
  std::vector<double> g_target;      // siemens, >= 0, strictly increasing (also as floats)
  std::vector<double> prog_mean;     // siemens, >= 0
  std::vector<double> prog_std;      // siemens, >= 0
  std::vector<double> nu_mean;       // finite
  std::vector<double> nu_std;        // >= 0
  std::vector<double> read_noise_q;  // >= 0; empty: the PCM law is used instead

  std::size_t rows() const { return g_target.size(); }
  bool has_read_noise_q() const { return !read_noise_q.empty(); }
  // Throws std::invalid_argument naming the source, the row (CSV line), the column and the
  // value: fewer than 2 rows, columns of unequal length, NaN/inf, a negative conductance or
  // std, conductances not strictly increasing.
  void validate() const;
};

// Column names of the file formats (conductances in µS in files).
inline const std::vector<std::string>& device_table_columns() {
  static const std::vector<std::string> names = {"g_target_uS", "prog_mean_uS", "prog_std_uS",
                                                 "nu_mean",     "nu_std",       "read_noise_q"};
  return names;
}

// Readers. A missing/unreadable file or malformed content (bad number, missing or unknown
// column, ragged or truncated row) throws std::runtime_error naming the file, the line and
// the column; the result is validated (std::invalid_argument, see validate()).
DeviceTable read_device_table_csv(const std::string& path);
DeviceTable read_device_table_hdf5(const std::string& path);
// HDF5 when the file starts with the HDF5 signature, CSV otherwise.
DeviceTable read_device_table(const std::string& path);

struct TabulatedParams {
  std::string table_path;   // CSV or HDF5 device table (used by make_device_model)
  double g_max = 0.0;       // siemens; 0: the table's largest g_target. Must not exceed it.
  double t0 = 20.0;         // seconds; drift reference time
  double t_read = 250e-9;   // seconds; read duration in the 1/f noise integral
  double prog_noise_scale = 1.0;  // multiplies the programming error (bias and std)
  double drift_scale = 1.0;       // multiplies nu
  double read_noise_scale = 1.0;  // multiplies Q_s
  void validate() const;          // the numbers only (the table is checked when read)
};

class TabulatedModel final : public DeviceModel {
 public:
  // Validates params and table; throws when g_max is above the table's range.
  TabulatedModel(DeviceTable table, TabulatedParams params = {});

  std::string name() const override { return "tabulated"; }
  double g_max() const override { return g_max_; }
  const DeviceTable& table() const { return table_; }
  const TabulatedParams& params() const { return params_; }

  // The interpolated table at one target conductance (siemens), in SI units; throws
  // std::invalid_argument when g_target lies outside the table's range.
  struct Point {
    double prog_mean, prog_std, nu_mean, nu_std, read_noise_q;
  };
  Point at(float g_target) const;

  void program(const float* g_target, std::size_t n, const core::RngKey& key,
               std::uint64_t first_index, DeviceStateView out) const override;
  void read(ConstDeviceStateView state, std::size_t n, double t_inference,
            const core::RngKey& key, std::uint64_t first_index, float* g_out) const override;

 private:
  Point interpolate(float g_target, std::uint64_t index) const;
  DeviceTable table_;
  TabulatedParams params_;
  double g_max_;
  std::vector<float> node_;  // g_target as floats: targets arrive as floats, so nodes are
                             // compared in float and a target equal to a node is exact there
};

}  // namespace pcmsim::devices
