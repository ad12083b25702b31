#include "nets/sweep.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>

#include "core/error.h"
#include "nets/evaluation.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::sweep";
using core::concat;

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
  size();  // at most kMaxSweepPoints
}

std::int64_t SweepGrid::size() const {
  for (const SweepAxis& axis : axes)
    if (axis.values.empty()) return 0;
  std::int64_t n = 1;
  for (const SweepAxis& axis : axes) {
    // n <= kMaxSweepPoints before each step, so the division decides without overflowing.
    const auto k = static_cast<std::int64_t>(axis.values.size());
    if (k > kMaxSweepPoints / n) {
      std::string sizes;
      for (const SweepAxis& a : axes)
        sizes += concat(sizes.empty() ? "" : " x ", a.values.size(), " (", a.name, ")");
      core::throw_invalid(kTag, concat("the grid of ", sizes, " has more than ", kMaxSweepPoints,
                                       " points"));
    }
    n *= k;
  }
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

  auto converters_for = [&](const ProgrammedChip& chip, const SimulationConfig& config) {
    if (config.calibrate && (!data.calibration || data.calibration->rows() == 0))
      core::throw_invalid(kTag, "calibration is on but no calibration images were given");
    return std::make_unique<ConverterSetup>(chip, config, data.calibration);
  };
  auto evaluate_point = [&](ChipForward& chip_forward, std::int64_t i) {
    if (on_point) on_point(i);
    const double acc =
        accuracy_of(*data.net, *data.images, *data.labels, chip_forward, data.batch_size);
    ++st.evaluations;
    records.push_back({i, unit.trial, acc});
  };

  if (!options.reuse) {
    for (std::int64_t i : unit.points) {
      const ProgrammedChip chip(*data.net, points[i].config, unit.trial);
      ++st.programmings;
      const auto converters = converters_for(chip, points[i].config);
      ChipForward chip_forward(chip, *converters, chip.at(points[i].t_inference));
      ++st.snapshots;
      evaluate_point(chip_forward, i);
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

  // One programming per unit; at most max_chips converter set-ups (and their tiles) at once;
  // one snapshot per time, read by every converter set-up of the chunk.
  const ProgrammedChip chip(*data.net, first.config, unit.trial);
  ++st.programmings;
  for (std::size_t g0 = 0; g0 < groups.size(); g0 += options.max_chips) {
    const std::size_t g1 = std::min(groups.size(), g0 + options.max_chips);
    std::vector<std::unique_ptr<ConverterSetup>> converters;
    for (std::size_t g = g0; g < g1; ++g)
      converters.push_back(converters_for(chip, points[groups[g].front()].config));
    std::vector<std::unique_ptr<ChipForward>> forwards(g1 - g0);
    // Times of this chunk in increasing order.
    std::vector<double> times;
    for (std::size_t g = g0; g < g1; ++g)
      for (std::int64_t i : groups[g]) times.push_back(points[i].t_inference);
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());
    for (double t : times) {
      const ChipSnapshot snapshot = chip.at(t);
      bool drawn = false;
      for (std::size_t g = g0; g < g1; ++g) {
        for (std::int64_t i : groups[g]) {
          if (points[i].t_inference != t) continue;
          auto& chip_forward = forwards[g - g0];
          if (chip_forward)
            chip_forward->set_snapshot(snapshot);
          else
            chip_forward = std::make_unique<ChipForward>(chip, *converters[g - g0], snapshot);
          ++(drawn ? st.shared_snapshots : st.snapshots);
          drawn = true;
          evaluate_point(*chip_forward, i);
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

namespace {

// Upper quantile of Student's t with `dof` degrees of freedom: tabulated to dof 30, then the
// Cornish-Fisher expansion around the normal quantile z (error < 1e-5 beyond 30).
double student_t_upper(int dof, const double (&table)[30], double z, const char* name) {
  if (dof < 1) core::throw_invalid(kTag, concat(name, ": dof = ", dof, ": must be >= 1"));
  if (dof <= 30) return table[dof - 1];
  const double v = dof;
  const double z3 = z * z * z, z5 = z3 * z * z, z7 = z5 * z * z;
  return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v) +
         (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v);
}

}  // namespace

double student_t_975(int dof) {
  static const double table[30] = {
      12.7062047, 4.30265273, 3.18244631, 2.77644511, 2.57058184, 2.44691185, 2.36462425,
      2.30600414, 2.26215716, 2.22813885, 2.20098516, 2.17881283, 2.16036866, 2.14478669,
      2.13144955, 2.11990530, 2.10981558, 2.10092204, 2.09302405, 2.08596345, 2.07961384,
      2.07387307, 2.06865761, 2.06389856, 2.05953855, 2.05552944, 2.05183052, 2.04840714,
      2.04522964, 2.04227246};
  return student_t_upper(dof, table, 1.959963984540054, "student_t_975");
}

double student_t_95(int dof) {
  static const double table[30] = {
      6.31375151, 2.91998558, 2.35336343, 2.13184679, 2.01504837, 1.94318028, 1.89457861,
      1.85954804, 1.83311293, 1.81246112, 1.79588482, 1.78228756, 1.77093340, 1.76131014,
      1.75305036, 1.74588368, 1.73960673, 1.73406361, 1.72913281, 1.72471824, 1.72074290,
      1.71714437, 1.71387153, 1.71088208, 1.70814076, 1.70561792, 1.70328845, 1.70113093,
      1.69912703, 1.69726089};
  return student_t_upper(dof, table, 1.6448536269514722, "student_t_95");
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

}  // namespace pcmsim::nets
