#include "devices/tabulated_model.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "h5/hdf5_io.h"
#include "core/types.h"
#include "devices/pcm_model.h"

namespace pcmsim::devices {
namespace {

constexpr const char* kTableWhere = "devices::DeviceTable";
constexpr const char* kCsvWhere = "devices::read_device_table_csv";
constexpr const char* kHdf5Where = "devices::read_device_table_hdf5";

enum Column { kGTarget = 0, kProgMean, kProgStd, kNuMean, kNuStd, kReadQ, kColumns };
// Columns whose file values are in µS.
constexpr bool kInMicro[kColumns] = {true, true, true, false, false, false};

template <class Table>
auto& column_of(Table& t, int c) {
  switch (c) {
    case kGTarget: return t.g_target;
    case kProgMean: return t.prog_mean;
    case kProgStd: return t.prog_std;
    case kNuMean: return t.nu_mean;
    case kNuStd: return t.nu_std;
    default: return t.read_noise_q;
  }
}

std::string known_columns() {
  std::string s;
  for (const auto& n : device_table_columns()) s += (s.empty() ? "" : ", ") + n;
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields;
  std::string field;
  std::stringstream in(line);
  while (std::getline(in, field, ',')) fields.push_back(trim(field));
  if (!line.empty() && line.back() == ',') fields.push_back("");  // getline drops it
  return fields;
}

// "file.csv:7" or "file.csv row 3" (in-code tables: "row 3").
std::string row_name(const DeviceTable& t, std::size_t i) {
  const std::string src = t.source.empty() ? std::string("table") : t.source;
  if (i < t.line.size()) return core::concat(src, ":", t.line[i]);
  return core::concat(src, " row ", i);
}

// The value as the file writes it (µS for conductances).
double file_value(int c, double v) { return kInMicro[c] ? core::uS_from_siemens(v) : v; }

}  // namespace

void DeviceTable::validate() const {
  const auto& names = device_table_columns();
  const std::size_t n = g_target.size();
  const std::string src = source.empty() ? std::string("table") : source;
  if (n < 2)
    core::throw_invalid(kTableWhere, core::concat(src, ": ", n,
                                                  " rows: a device table needs at least 2"));
  for (int c = 0; c < kColumns; ++c) {
    const auto& col = column_of(*this, c);
    if (c == kReadQ && col.empty()) continue;
    if (col.size() != n)
      core::throw_invalid(kTableWhere, core::concat(src, ": column '", names[c], "' has ",
                                                    col.size(), " values, '", names[kGTarget],
                                                    "' has ", n));
    // Upper bounds: conductances up to 1 S (= g_max_uS's bound, and representable as the
    // floats targets arrive in), drift exponents and relative read noise up to 10 (measured
    // values are below 1; larger ones are unit mistakes and overflow the statistics).
    const double limit = kInMicro[c] ? 1.0 : 10.0;
    for (std::size_t i = 0; i < n; ++i) {
      const double v = col[i];
      const bool may_be_negative = c == kNuMean;
      if (!std::isfinite(v) || (!may_be_negative && v < 0) || std::fabs(v) > limit)
        core::throw_invalid(kTableWhere,
                            core::concat(row_name(*this, i), ": ", names[c], " = ",
                                         file_value(c, v), ": must be finite, ",
                                         may_be_negative ? ">= -" : ">= 0 and <= ",
                                         may_be_negative ? core::concat(limit, " and <= ") : "",
                                         file_value(c, limit)));
    }
  }
  for (std::size_t i = 1; i < n; ++i) {
    // Strictly increasing, also once rounded to float (the precision targets arrive in).
    if (!(g_target[i] > g_target[i - 1]) ||
        !(static_cast<float>(g_target[i]) > static_cast<float>(g_target[i - 1])))
      core::throw_invalid(
          kTableWhere,
          core::concat(row_name(*this, i), ": g_target_uS = ",
                       core::uS_from_siemens(g_target[i]),
                       ": conductances must be strictly increasing (previous row: ",
                       core::uS_from_siemens(g_target[i - 1]), ")"));
  }
}

DeviceTable read_device_table_csv(const std::string& path) {
  core::require_path(kCsvWhere, "device table", path);
  if (std::filesystem::is_directory(path))
    core::throw_io(kCsvWhere, core::concat(path, ": is a folder, not a device table"));
  std::ifstream in(path, std::ios::binary);
  if (!in) core::throw_io(kCsvWhere, core::concat(path, ": cannot open (", std::strerror(errno), ")"));
  DeviceTable table;
  table.source = path;
  std::vector<int> column_at;  // file column -> Column (or -1: never, unknown names throw)
  std::size_t header_line = 0;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    const auto fields = split_fields(text);
    if (header_line == 0) {
      header_line = line_no;
      bool seen[kColumns] = {};
      const auto& names = device_table_columns();
      for (std::size_t k = 0; k < fields.size(); ++k) {
        const auto it = std::find(names.begin(), names.end(), fields[k]);
        if (it == names.end())
          core::throw_io(kCsvWhere, core::concat(path, ":", line_no, ", column ", k + 1, ": '",
                                                 fields[k], "' is not a known column (known: ",
                                                 known_columns(), ")"));
        const int c = static_cast<int>(it - names.begin());
        if (seen[c])
          core::throw_io(kCsvWhere, core::concat(path, ":", line_no, ": column '", fields[k],
                                                 "' appears twice"));
        seen[c] = true;
        column_at.push_back(c);
      }
      for (int c = 0; c < kReadQ; ++c)
        if (!seen[c])
          core::throw_io(kCsvWhere, core::concat(path, ":", line_no, ": missing column '",
                                                 names[c], "' (header: ", text, ")"));
      continue;
    }
    if (fields.size() != column_at.size())
      core::throw_io(kCsvWhere,
                     core::concat(path, ":", line_no, ": ", fields.size(), " fields, expected ",
                                  column_at.size(), " as in the header (ragged or truncated row)"));
    for (std::size_t k = 0; k < fields.size(); ++k) {
      const int c = column_at[k];
      const std::string& f = fields[k];
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(f.c_str(), &end);
      if (f.empty() || end != f.c_str() + f.size() || errno == ERANGE || !std::isfinite(v))
        core::throw_io(kCsvWhere,
                       core::concat(path, ":", line_no, ", column ", k + 1, " (",
                                    device_table_columns()[c], "): '", f,
                                    "' is not a finite number"));
      column_of(table, c).push_back(kInMicro[c] ? core::siemens_from_uS(v) : v);
    }
    table.line.push_back(line_no);
  }
  if (in.bad()) core::throw_io(kCsvWhere, core::concat(path, ": read error"));
  if (header_line == 0)
    core::throw_io(kCsvWhere, core::concat(path, ": empty file (expected a header line: ",
                                           known_columns(), ")"));
  table.validate();
  return table;
}

DeviceTable read_device_table_hdf5(const std::string& path) {
  const auto file = pcmsim::h5::File::open_read(path);
  DeviceTable table;
  table.source = path;
  const auto& names = device_table_columns();
  for (int c = 0; c < kColumns; ++c) {
    if (!file.has_dataset(names[c])) {
      if (c == kReadQ) continue;
      core::throw_io(kHdf5Where, core::concat(path, ": missing dataset '/", names[c],
                                              "' (a device table has 1-D datasets ",
                                              known_columns(), ")"));
    }
    const auto array = file.read_dataset<double>(names[c]);
    if (array.shape.size() != 1)
      core::throw_io(kHdf5Where, core::concat(file.where(names[c]), ": ", array.shape.size(),
                                              "-D dataset, expected 1-D"));
    auto& col = column_of(table, c);
    for (std::size_t i = 0; i < array.data.size(); ++i) {
      const double v = array.data[i];
      if (!std::isfinite(v))
        core::throw_io(kHdf5Where, core::concat(file.where(names[c]), "[", i, "] = ", v,
                                                ": not a finite number"));
      col.push_back(kInMicro[c] ? core::siemens_from_uS(v) : v);
    }
  }
  table.validate();
  return table;
}

DeviceTable read_device_table(const std::string& path) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  char head[8] = {};
  core::require_path("devices::read_device_table", "device table", path);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    core::throw_io("devices::read_device_table",
                   core::concat(path, ": cannot open (", std::strerror(errno), ")"));
  in.read(head, 8);
  const bool is_hdf5 = in.gcount() == 8 && std::memcmp(head, kSignature, 8) == 0;
  in.close();
  return is_hdf5 ? read_device_table_hdf5(path) : read_device_table_csv(path);
}

void TabulatedParams::validate() const {
  constexpr const char* where = "devices::TabulatedParams";
  if (!(g_max >= 0) || !(g_max <= 1.0))
    core::throw_invalid(where, core::concat("g_max_uS = ", core::uS_from_siemens(g_max),
                                            ": must be >= 0 (0: the table's largest) and <= 1e6"));
  require_times_and_scales(where, t0, t_read, prog_noise_scale, drift_scale, read_noise_scale);
}

TabulatedModel::TabulatedModel(DeviceTable table, TabulatedParams params)
    : table_(std::move(table)), params_(std::move(params)) {
  params_.validate();
  table_.validate();
  node_.assign(table_.g_target.begin(), table_.g_target.end());
  const double table_max = table_.g_target.back();
  g_max_ = params_.g_max > 0 ? params_.g_max : table_max;
  if (static_cast<float>(g_max_) > node_.back())
    core::throw_invalid("devices::TabulatedModel",
                        core::concat("g_max_uS = ", core::uS_from_siemens(g_max_),
                                     ": above the largest g_target_uS = ",
                                     core::uS_from_siemens(table_max), " of ",
                                     table_.source.empty() ? "the table" : table_.source));
}

TabulatedModel::Point TabulatedModel::interpolate(float g, std::uint64_t index) const {
  if (!(g >= node_.front() && g <= node_.back()))
    core::throw_invalid(
        "devices::TabulatedModel",
        core::concat("g_target[", index, "] = ", format_uS(g),
                     " uS: outside the table's range [", format_uS(table_.g_target.front()),
                     ", ", format_uS(table_.g_target.back()), "] uS of ",
                     table_.source.empty() ? "the table" : table_.source));
  // Interval [k, k+1] with node_[k] <= g <= node_[k+1].
  const std::size_t last = node_.size() - 1;
  std::size_t k = static_cast<std::size_t>(std::upper_bound(node_.begin(), node_.end(), g) -
                                           node_.begin());
  k = k == 0 ? 0 : std::min(k - 1, last - 1);
  const double lo = node_[k], hi = node_[k + 1];
  const double w = (static_cast<double>(g) - lo) / (hi - lo);  // 0 at node k, 1 at node k+1
  // (1-w)*a + w*b: exactly a at w = 0 and exactly b at w = 1.
  auto lerp = [&](const std::vector<double>& v) { return (1.0 - w) * v[k] + w * v[k + 1]; };
  Point p;
  p.prog_mean = lerp(table_.prog_mean);
  p.prog_std = lerp(table_.prog_std);
  p.nu_mean = lerp(table_.nu_mean);
  p.nu_std = lerp(table_.nu_std);
  p.read_noise_q = table_.has_read_noise_q()
                       ? lerp(table_.read_noise_q)
                       : pcm_read_noise_q(static_cast<double>(g) / g_max_);
  return p;
}

TabulatedModel::Point TabulatedModel::at(float g_target) const {
  return interpolate(g_target, 0);
}

void TabulatedModel::program(const float* g_target, std::size_t n, const core::RngKey& key,
                             std::uint64_t first_index, DeviceStateView out) const {
  check_targets("devices::TabulatedModel::program", g_target, n, g_max_, first_index);
  const double prog_scale = params_.prog_noise_scale;
  const double drift_scale = params_.drift_scale;
  const double q_scale = params_.read_noise_scale;
  for_each_programming_chunk(key, first_index, n, [&](std::size_t start, std::size_t m,
                                                      const float* xi_prog, const float* xi_nu) {
    for (std::size_t i = 0; i < m; ++i) {
      const float gt = g_target[start + i];
      const Point p = interpolate(gt, first_index + start + i);
      const double error = (p.prog_mean - gt) + p.prog_std * xi_prog[i];
      const float g = static_cast<float>(gt + prog_scale * error);
      out.g_prog[start + i] = g > 0.0f ? g : 0.0f;
      out.nu[start + i] = static_cast<float>(drift_scale * std::fabs(p.nu_mean + p.nu_std * xi_nu[i]));
      out.read_noise_q[start + i] = static_cast<float>(q_scale * p.read_noise_q);
    }
  });
}

void TabulatedModel::read(ConstDeviceStateView state, std::size_t n, double t_inference,
                          const core::RngKey& key, std::uint64_t first_index, float* g_out) const {
  drift_and_read_noise(state, n, t_inference, params_.t0, params_.t_read, key, first_index,
                       g_out);
}

}  // namespace pcmsim::devices
