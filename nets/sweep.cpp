#include "nets/sweep.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "h5/hdf5_io.h"
#include "nets/evaluation.h"
#include "nets/results.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::sweep";
using core::concat;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// fsync a file or folder by path; failures are errors (a sweep must not believe data is safe).
void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) core::throw_io(kTag, concat("cannot open '", path, "' to sync it"));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0 && !directory) core::throw_io(kTag, concat("fsync of '", path, "' failed"));
}

std::string folder_of(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::absolute(path).parent_path();
  return dir.string();
}

}  // namespace

namespace {
const core::Setting<SimulationConfig>& axis_setting(const std::string& name) {
  if (const auto* s = core::find_setting<SimulationConfig>(name)) return *s;
  std::string names;
  for (const auto& s : core::settings<SimulationConfig>()) names += s.option_name() + ", ";
  core::throw_invalid(kTag, concat("unknown axis '", name, "' (sweepable: ", names,
                                   "t-inference)"));
}
}  // namespace

AxisKind axis_kind(const std::string& name) {
  if (core::canonical_setting_name(name) == "t_inference") return AxisKind::time;
  return axis_setting(name).info.affects;
}

std::string axis_name(const std::string& name) {
  if (core::canonical_setting_name(name) == "t_inference") return "t_inference";
  return axis_setting(name).info.external_name();
}

void apply_sweep_setting(SimulationConfig& config, const std::string& name,
                         const std::string& value) {
  const auto& s = axis_setting(name);
  std::string text = value;
  if (s.type == core::ValueType::text_list || s.type == core::ValueType::real_list) {
    if (text == "none") text.clear();
    std::replace(text.begin(), text.end(), ';', ',');
  }
  s.set_text(config, text);
}

std::vector<SweepPoint> make_points(const SweepGrid& grid, const SimulationConfig& base,
                                    double default_t_inference) {
  return make_points(grid, default_t_inference, [&](const auto& settings) {
    SimulationConfig config = base;
    std::string point;
    for (const auto& [name, value] : settings) point += " " + name + "=" + value;
    try {
      for (const auto& [name, value] : settings)
        if (axis_kind(name) != AxisKind::time) apply_sweep_setting(config, name, value);
      config.validate();
    } catch (const std::invalid_argument& e) {
      core::throw_invalid(kTag, concat("point", point, ": ", e.what()));
    }
    return config;
  });
}

std::string config_text(const SimulationConfig& config) {
  std::string text;
  for (const auto& s : core::settings<SimulationConfig>())
    if (!s.shortcut) text += std::string(s.info.external_name()) + "=" + s.text(config) + "\n";
  return text;
}

void SweepGrid::validate() const {
  std::set<std::string> seen;
  for (const SweepAxis& axis : axes) {
    axis_kind(axis.name);
    if (!seen.insert(axis_name(axis.name)).second)
      core::throw_invalid(kTag, concat("axis '", axis.name, "' given twice"));
    if (axis.values.empty())
      core::throw_invalid(kTag, concat("axis '", axis.name, "' has no values: empty grid"));
    std::set<std::string> values;
    for (const std::string& v : axis.values)
      if (!values.insert(v).second)
        core::throw_invalid(kTag, concat("axis '", axis.name, "' lists '", v, "' twice"));
  }
}

std::int64_t SweepGrid::size() const {
  std::int64_t n = 1;
  for (const SweepAxis& axis : axes) n *= static_cast<std::int64_t>(axis.values.size());
  return n;
}

std::vector<int> SweepGrid::coords(std::int64_t point) const {
  if (point < 0 || point >= size())
    core::throw_invalid(kTag, concat("point ", point, " outside the grid of ", size()));
  std::vector<int> c(axes.size());
  for (std::size_t a = axes.size(); a-- > 0;) {
    const auto n = static_cast<std::int64_t>(axes[a].values.size());
    c[a] = static_cast<int>(point % n);
    point /= n;
  }
  return c;
}

std::vector<std::pair<std::string, std::string>> SweepGrid::settings(std::int64_t point) const {
  const std::vector<int> c = coords(point);
  std::vector<std::pair<std::string, std::string>> s;
  for (std::size_t a = 0; a < axes.size(); ++a) s.emplace_back(axes[a].name, axes[a].values[c[a]]);
  return s;
}

std::vector<SweepPoint> make_points(
    const SweepGrid& grid, double default_t_inference,
    const std::function<SimulationConfig(const std::vector<std::pair<std::string, std::string>>&)>&
        make_config) {
  grid.validate();
  std::vector<SweepPoint> points(static_cast<std::size_t>(grid.size()));
  for (std::int64_t i = 0; i < grid.size(); ++i) {
    SweepPoint& p = points[i];
    p.index = i;
    const auto settings = grid.settings(i);
    p.config = make_config(settings);
    p.t_inference = default_t_inference;
    for (const auto& [name, value] : settings) {
      const AxisKind kind = axis_kind(name);
      if (kind == AxisKind::time) {
        char* end = nullptr;
        p.t_inference = std::strtod(value.c_str(), &end);
        if (end == value.c_str() || *end != '\0' || !std::isfinite(p.t_inference) ||
            p.t_inference < 0)
          core::throw_invalid(kTag, concat("t_inference = '", value,
                                           "': must be a finite number of seconds >= 0"));
      } else {
        std::string& key = kind == AxisKind::programming ? p.programming_group : p.converter_group;
        key += name + "=" + value + "\n";
      }
    }
  }
  return points;
}

std::vector<WorkUnit> plan_sweep(const std::vector<SweepPoint>& points, const PlanOptions& options,
                                 const std::set<std::pair<std::int64_t, int>>& done) {
  if (options.trials < 1)
    core::throw_invalid(kTag, concat("trials = ", options.trials, ": must be >= 1"));
  // Programming groups and, inside each, converter groups in order of first appearance.
  std::vector<std::string> group_order;
  std::map<std::string, std::vector<std::string>> conv_order;
  std::map<std::string, std::map<std::string, std::vector<std::int64_t>>> members;
  for (const SweepPoint& p : points) {
    auto& by_conv = members[p.programming_group];
    if (by_conv.empty()) group_order.push_back(p.programming_group);
    auto& list = by_conv[p.converter_group];
    if (list.empty()) conv_order[p.programming_group].push_back(p.converter_group);
    list.push_back(p.index);
  }
  // A unit: one trial of one programming group, split in runs of converter groups.
  struct Draft {
    int trial;
    std::vector<std::vector<std::int64_t>> conv;  // points per converter group, time-ordered
  };
  std::vector<Draft> drafts;
  for (const std::string& g : group_order) {
    for (int trial = 0; trial < options.trials; ++trial) {
      Draft d{trial, {}};
      for (const std::string& c : conv_order[g]) {
        std::vector<std::int64_t> list;
        for (std::int64_t i : members[g][c])
          if (!done.count({i, trial})) list.push_back(i);
        std::stable_sort(list.begin(), list.end(), [&](std::int64_t a, std::int64_t b) {
          return points[a].t_inference < points[b].t_inference;
        });
        if (!list.empty()) d.conv.push_back(std::move(list));
      }
      if (!d.conv.empty()) drafts.push_back(std::move(d));
    }
  }
  // Split the unit with the most converter groups in two until there are enough units.
  while (static_cast<int>(drafts.size()) < options.min_units) {
    std::size_t best = drafts.size();
    for (std::size_t u = 0; u < drafts.size(); ++u)
      if (drafts[u].conv.size() > 1 &&
          (best == drafts.size() || drafts[u].conv.size() > drafts[best].conv.size()))
        best = u;
    if (best == drafts.size()) {
      // Only single-setting units left: split the longest by time (each half programs its own
      // chip, identically), so that a time-only sweep still spreads over processes.
      for (std::size_t u = 0; u < drafts.size(); ++u)
        if (drafts[u].conv.front().size() > 1 &&
            (best == drafts.size() ||
             drafts[u].conv.front().size() > drafts[best].conv.front().size()))
          best = u;
      if (best == drafts.size()) break;
      Draft& d = drafts[best];
      std::vector<std::int64_t>& list = d.conv.front();
      const std::size_t half = list.size() / 2;
      Draft tail{d.trial, {std::vector<std::int64_t>(list.begin() + half, list.end())}};
      list.resize(half);
      drafts.insert(drafts.begin() + best + 1, std::move(tail));
      continue;
    }
    Draft& d = drafts[best];
    const std::size_t half = d.conv.size() / 2;
    Draft tail{d.trial, {}};
    tail.conv.assign(d.conv.begin() + half, d.conv.end());
    d.conv.resize(half);
    drafts.insert(drafts.begin() + best + 1, std::move(tail));
  }
  std::vector<WorkUnit> units;
  for (const Draft& d : drafts) {
    WorkUnit u;
    u.trial = d.trial;
    for (const auto& list : d.conv) u.points.insert(u.points.end(), list.begin(), list.end());
    units.push_back(std::move(u));
  }
  return units;
}

std::vector<TrialRecord> run_unit(const WorkUnit& unit, const std::vector<SweepPoint>& points,
                                  const EvalData& data, const UnitOptions& options,
                                  UnitStats* stats, const std::function<void(std::int64_t)>& on_point) {
  if (!data.net || !data.images || !data.labels)
    core::throw_invalid(kTag, "run_unit: network, images and labels are required");
  if (options.max_chips < 1)
    core::throw_invalid(kTag, concat("max_chips = ", options.max_chips, ": must be >= 1"));
  UnitStats local;
  UnitStats& st = stats ? *stats : local;
  std::vector<TrialRecord> records;
  if (unit.points.empty()) return records;
  for (std::int64_t i : unit.points)
    if (i < 0 || i >= static_cast<std::int64_t>(points.size()))
      core::throw_invalid(kTag, concat("run_unit: point ", i, " is not in the sweep"));

  auto calibrate = [&](AnalogChip& chip) {
    if (!chip.config().calibrate) return;
    if (!data.calibration || data.calibration->rows() == 0)
      core::throw_invalid(kTag, "calibration is on but no calibration images were given");
    chip.calibrate(*data.calibration);
  };
  auto evaluate_point = [&](AnalogChip& chip, std::int64_t i) {
    if (on_point) on_point(i);
    const double acc =
        accuracy_of(*data.net, *data.images, *data.labels, chip.provider(), data.batch_size);
    ++st.evaluations;
    records.push_back({i, unit.trial, acc});
  };

  if (!options.reuse) {
    for (std::int64_t i : unit.points) {
      AnalogChip chip(*data.net, points[i].config, unit.trial);
      ++st.programmings;
      calibrate(chip);
      chip.set_time(points[i].t_inference);
      ++st.snapshots;
      evaluate_point(chip, i);
    }
    return records;
  }

  // Converter groups in unit order (the plan keeps each group's points together, time-ordered).
  std::vector<std::vector<std::int64_t>> groups;
  for (std::int64_t i : unit.points) {
    if (groups.empty() || points[groups.back().front()].converter_group != points[i].converter_group)
      groups.emplace_back();
    groups.back().push_back(i);
  }
  const SweepPoint& first = points[unit.points.front()];
  for (std::int64_t i : unit.points)
    if (points[i].programming_group != first.programming_group)
      core::throw_invalid(kTag, "run_unit: a unit's points must share their programming");

  auto programmed = std::make_unique<AnalogChip>(*data.net, first.config, unit.trial);
  ++st.programmings;
  bool programmed_used = false;
  for (std::size_t g0 = 0; g0 < groups.size(); g0 += options.max_chips) {
    const std::size_t g1 = std::min(groups.size(), g0 + options.max_chips);
    std::vector<std::unique_ptr<AnalogChip>> owned;
    std::vector<AnalogChip*> chips;
    for (std::size_t g = g0; g < g1; ++g) {
      const SimulationConfig& config = points[groups[g].front()].config;
      if (!programmed_used && g == 0) {
        programmed_used = true;  // the programmed chip itself serves the first group
        chips.push_back(programmed.get());
      } else {
        owned.push_back(std::make_unique<AnalogChip>(*programmed, config));
        chips.push_back(owned.back().get());
      }
      calibrate(*chips.back());
    }
    // Times of this chunk in increasing order; one snapshot each, shared by every chip.
    std::vector<double> times;
    for (std::size_t g = g0; g < g1; ++g)
      for (std::int64_t i : groups[g]) times.push_back(points[i].t_inference);
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());
    for (double t : times) {
      AnalogChip* lead = nullptr;
      for (std::size_t g = g0; g < g1; ++g) {
        for (std::int64_t i : groups[g]) {
          if (points[i].t_inference != t) continue;
          AnalogChip& chip = *chips[g - g0];
          if (!lead) {
            chip.set_time(t);
            ++st.snapshots;
            lead = &chip;
          } else {
            chip.set_time_from(*lead);
            ++st.shared_snapshots;
          }
          evaluate_point(chip, i);
        }
      }
    }
  }
  // Records in unit order, whatever order they were computed in.
  std::map<std::int64_t, double> by_point;
  for (const TrialRecord& r : records) by_point[r.point] = r.accuracy;
  records.clear();
  for (std::int64_t i : unit.points) records.push_back({i, unit.trial, by_point.at(i)});
  return records;
}

double student_t_975(int dof) {
  if (dof < 1) core::throw_invalid(kTag, concat("student_t_975: dof = ", dof, ": must be >= 1"));
  static const double table[30] = {
      12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425,
      2.30600414, 2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669,
      2.13144955, 2.11990530, 2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384,
      2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052, 2.04840714,
      2.04522964, 2.04227246};
  if (dof <= 30) return table[dof - 1];
  // Cornish-Fisher expansion around the normal quantile (error < 1e-6 for dof > 30).
  const double z = 1.959963984540054, v = dof;
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v);
}

PointSummary summarize(const std::vector<double>& accuracy) {
  if (accuracy.empty()) core::throw_invalid(kTag, "summarize: no trials");
  PointSummary s;
  double sum = 0;
  for (double a : accuracy) sum += a;
  const double n = static_cast<double>(accuracy.size());
  s.mean = sum / n;
  double squares = 0;
  for (double a : accuracy) squares += (a - s.mean) * (a - s.mean);
  s.std = accuracy.size() > 1 ? std::sqrt(squares / (n - 1)) : 0.0;
  const double half =
      accuracy.size() > 1 ? student_t_975(static_cast<int>(accuracy.size()) - 1) * s.std /
                                std::sqrt(n)
                          : 0.0;
  s.ci_low = s.mean - half;
  s.ci_high = s.mean + half;
  return s;
}

// ---- SweepStore ---------------------------------------------------------------------------

SweepStore::SweepStore(std::string path, SweepMeta meta, SweepGrid grid,
                       std::vector<std::string> point_configs,
                       std::vector<std::uint64_t> point_seeds)
    : path_(std::move(path)),
      meta_(std::move(meta)),
      grid_(std::move(grid)),
      point_configs_(std::move(point_configs)),
      point_seeds_(std::move(point_seeds)) {
  if (path_.empty()) core::throw_invalid(kTag, "results file: empty path");
  if (static_cast<std::int64_t>(point_configs_.size()) != grid_.size() ||
      point_seeds_.size() != point_configs_.size())
    core::throw_invalid(kTag, "SweepStore: one configuration and seed per point are required");
  if (meta_.trials < 1) core::throw_invalid(kTag, concat("trials = ", meta_.trials, ": must be >= 1"));
}

void SweepStore::check_writable() const { check_results_path(path_, kTag); }

void SweepStore::load_existing() {
  records_.clear();
  if (std::filesystem::exists(path_)) {
    const pcmsim::h5::File file = pcmsim::h5::File::open_read(path_);
    if (!file.has_attribute("format") || file.read_string_attribute("format") != "pcmsim-sweep")
      core::throw_invalid(kTag, concat("'", path_, "' is not a pcmsim-sweep results file"));
    if (file.read_string_attribute("fingerprint") != meta_.fingerprint)
      core::throw_invalid(kTag, concat("'", path_, "' holds another sweep (other grid, model, "
                                       "data, trials or options); resume needs the same command"));
    if (file.has_group("records")) {
      const auto pt = file.read_dataset<std::int64_t>("records/point");
      const auto tr = file.read_dataset<std::int64_t>("records/trial");
      const auto acc = file.read_dataset<double>("records/accuracy");
      if (pt.size() != tr.size() || pt.size() != acc.size())
        core::throw_invalid(kTag, concat("'", path_, "': /records datasets differ in length"));
      for (std::size_t k = 0; k < pt.size(); ++k) {
        if (pt.data[k] < 0 || pt.data[k] >= grid_.size() || tr.data[k] < 0 ||
            tr.data[k] >= meta_.trials)
          core::throw_invalid(kTag, concat("'", path_, "': record ", k, " is outside the sweep"));
        records_[{pt.data[k], static_cast<int>(tr.data[k])}] = acc.data[k];
      }
    }
  }
  const std::string journal = path_ + ".journal";
  if (std::filesystem::exists(journal)) {
    std::ifstream in(journal, std::ios::binary);
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::size_t pos = 0;
    bool header = true;
    while (pos < content.size()) {
      const std::size_t end = content.find('\n', pos);
      if (end == std::string::npos) break;  // torn last line (killed while appending)
      const std::string line = content.substr(pos, end - pos);
      pos = end + 1;
      if (header) {
        header = false;
        char expect[64];
        std::snprintf(expect, sizeof expect, "pcmsim-sweep-journal %016llx",
                      static_cast<unsigned long long>(fnv1a(meta_.fingerprint)));
        if (line != expect)
          core::throw_invalid(kTag, concat("'", journal, "' belongs to another sweep"));
        continue;
      }
      long long point = 0;
      int trial = 0;
      double acc = 0;
      char tail = 0;
      if (std::sscanf(line.c_str(), "r %lld %d %la%c", &point, &trial, &acc, &tail) != 3 ||
          point < 0 || point >= grid_.size() || trial < 0 || trial >= meta_.trials)
        core::throw_invalid(kTag, concat("'", journal, "': malformed line '", line, "'"));
      records_[{point, trial}] = acc;
    }
  }
}

std::set<std::pair<std::int64_t, int>> SweepStore::done() const {
  std::set<std::pair<std::int64_t, int>> d;
  for (const auto& entry : records_) d.insert(entry.first);
  return d;
}

std::int64_t SweepStore::finished_points() const {
  std::map<std::int64_t, int> count;
  for (const auto& entry : records_) ++count[entry.first.first];
  std::int64_t n = 0;
  for (const auto& entry : count) n += entry.second == meta_.trials;
  return n;
}

void SweepStore::append_journal(const std::vector<TrialRecord>& records) {
  const std::string journal = path_ + ".journal";
  const bool fresh = !std::filesystem::exists(journal);
  std::string text;
  if (fresh) {
    char header[64];
    std::snprintf(header, sizeof header, "pcmsim-sweep-journal %016llx\n",
                  static_cast<unsigned long long>(fnv1a(meta_.fingerprint)));
    text = header;
  }
  for (const TrialRecord& r : records) {
    char line[96];
    std::snprintf(line, sizeof line, "r %lld %d %a\n", static_cast<long long>(r.point), r.trial,
                  r.accuracy);
    text += line;
  }
  const int fd = ::open(journal.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd < 0) core::throw_io(kTag, concat("cannot open the journal '", journal, "'"));
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n <= 0) {
      ::close(fd);
      core::throw_io(kTag, concat("writing the journal '", journal, "' failed"));
    }
    written += static_cast<std::size_t>(n);
  }
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) core::throw_io(kTag, concat("fsync of the journal '", journal, "' failed"));
  if (fresh) fsync_path(folder_of(journal), true);
}

void SweepStore::add(const std::vector<TrialRecord>& records) {
  if (records.empty()) return;
  for (const TrialRecord& r : records) {
    if (r.point < 0 || r.point >= grid_.size() || r.trial < 0 || r.trial >= meta_.trials)
      core::throw_invalid(kTag, concat("record (point ", r.point, ", trial ", r.trial,
                                       ") is outside the sweep"));
  }
  append_journal(records);
  for (const TrialRecord& r : records) records_[{r.point, r.trial}] = r.accuracy;
  dirty_ = true;
  const double interval = min_interval_ >= 0 ? min_interval_ : std::max(2.0, 10 * last_write_cost_);
  if (now_seconds() - last_write_time_ >= interval) write_file();
}

std::string SweepStore::csv() const {
  std::ostringstream out;
  out.precision(10);
  out << "point";
  for (const SweepAxis& axis : grid_.axes) out << ',' << axis_name(axis.name);
  out << ",seed,trials,acc_mean,acc_std,ci95_low,ci95_high\n";
  std::map<std::int64_t, std::vector<double>> per_point;
  for (const auto& entry : records_) per_point[entry.first.first].push_back(entry.second);
  for (const auto& [point, acc] : per_point) {
    if (static_cast<int>(acc.size()) != meta_.trials) continue;
    const PointSummary s = summarize(acc);
    out << point;
    for (const auto& setting : grid_.settings(point)) {
      std::string v = setting.second;
      std::replace(v.begin(), v.end(), ',', ';');
      out << ',' << v;
    }
    out << ',' << point_seeds_[point] << ',' << acc.size() << ',' << s.mean << ',' << s.std << ','
        << s.ci_low << ',' << s.ci_high << '\n';
  }
  return out.str();
}

void SweepStore::write_file() {
  const double start = now_seconds();
  const std::string partial = path_ + ".partial";
  try {
    pcmsim::h5::File file = pcmsim::h5::File::create(partial);
    file.write_attribute("format", std::string("pcmsim-sweep"));
    file.write_attribute("format_version", std::int64_t{1});
    file.write_attribute("fingerprint", meta_.fingerprint);
    file.write_attribute("git_revision", meta_.git_revision);
    file.write_attribute("seed", static_cast<std::int64_t>(meta_.seed));
    file.write_attribute("model", meta_.model);
    file.write_attribute("data", meta_.data);
    file.write_attribute("images", meta_.images);
    file.write_attribute("trials", static_cast<std::int64_t>(meta_.trials));
    file.write_attribute("fp32_accuracy", meta_.fp32_accuracy);
    if (!meta_.options.empty()) file.write_attribute("options", meta_.options);
    std::vector<std::string> axis_names;
    for (const SweepAxis& axis : grid_.axes) axis_names.push_back(axis.name);
    if (!axis_names.empty()) file.write_attribute("axes", axis_names);
    file.write_attribute("total_points", grid_.size());
    pcmsim::h5::Group axes = file.create_group("axes");
    for (const SweepAxis& axis : grid_.axes) axes.write_string_dataset(axis.name, axis.values);

    if (!records_.empty()) {
      std::vector<std::int64_t> pt, tr;
      std::vector<double> acc;
      for (const auto& entry : records_) {
        pt.push_back(entry.first.first);
        tr.push_back(entry.first.second);
        acc.push_back(entry.second);
      }
      pcmsim::h5::Group rec = file.create_group("records");
      rec.write_dataset("point", pt, {pt.size()});
      rec.write_dataset("trial", tr, {tr.size()});
      rec.write_dataset("accuracy", acc, {acc.size()});
    }

    // Finished points (every trial recorded), by point index.
    std::map<std::int64_t, std::vector<double>> per_point;
    for (const auto& entry : records_) per_point[entry.first.first].push_back(entry.second);
    std::vector<std::int64_t> index, seeds;
    std::vector<std::int32_t> coords;
    std::vector<double> accuracy, mean, stdev, lo, hi, times;
    std::vector<std::string> configs;
    std::vector<std::vector<std::string>> values(grid_.axes.size());
    for (const auto& [point, acc] : per_point) {
      if (static_cast<int>(acc.size()) != meta_.trials) continue;
      const PointSummary s = summarize(acc);
      index.push_back(point);
      seeds.push_back(static_cast<std::int64_t>(point_seeds_[point]));
      const std::vector<int> c = grid_.coords(point);
      for (std::size_t a = 0; a < c.size(); ++a) {
        coords.push_back(c[a]);
        values[a].push_back(grid_.axes[a].values[c[a]]);
      }
      accuracy.insert(accuracy.end(), acc.begin(), acc.end());
      mean.push_back(s.mean);
      stdev.push_back(s.std);
      lo.push_back(s.ci_low);
      hi.push_back(s.ci_high);
      configs.push_back(point_configs_[point]);
    }
    file.write_attribute("finished_points", static_cast<std::int64_t>(index.size()));
    if (!index.empty()) {
      const std::size_t n = index.size();
      pcmsim::h5::Group pts = file.create_group("points");
      pts.write_dataset("index", index, {n});
      if (!grid_.axes.empty()) pts.write_dataset("coords", coords, {n, grid_.axes.size()});
      if (!grid_.axes.empty()) {
        pcmsim::h5::Group axis_values = pts.create_group("axis");
        for (std::size_t a = 0; a < grid_.axes.size(); ++a)
          axis_values.write_string_dataset(grid_.axes[a].name, values[a]);
      }
      pts.write_dataset("seed", seeds, {n});
      pts.write_dataset("accuracy", accuracy, {n, static_cast<std::size_t>(meta_.trials)});
      pts.write_dataset("acc_mean", mean, {n});
      pts.write_dataset("acc_std", stdev, {n});
      pts.write_dataset("ci95_low", lo, {n});
      pts.write_dataset("ci95_high", hi, {n});
      pts.write_string_dataset("config", configs);
    }
    file.flush();
    file.close();
    fsync_path(partial, false);
  } catch (...) {
    std::remove(partial.c_str());
    throw;
  }
  if (std::rename(partial.c_str(), path_.c_str()) != 0) {
    std::remove(partial.c_str());
    core::throw_io(kTag, concat("cannot move the finished file to '", path_, "'"));
  }
  fsync_path(folder_of(path_), true);
  // FILE now holds every record: the journal can start again.
  std::remove((path_ + ".journal").c_str());

  // The CSV view beside it (atomic too; derived, so not synced).
  write_text_file(csv_view_path(path_), csv(), kTag);
  dirty_ = false;
  last_write_time_ = now_seconds();
  last_write_cost_ = last_write_time_ - start;
}

}  // namespace pcmsim::nets
