// The sweep results file (nets/sweep.h, "Results file"): HDF5 rewritten atomically, a
// journal of the records finished since, and the CSV view.
#include "nets/sweep.h"

#include <fcntl.h>
#include <sys/file.h>
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
#include "h5/settings_io.h"
#include "nets/evaluation.h"
#include "nets/journal.h"
#include "nets/results.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::sweep";
using core::concat;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

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

void SweepStore::lock() { lock_ = journal::lock_results(path_, "sweep", kTag); }

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
  const std::string journal_path = path_ + ".journal";
  for (const std::string& line :
       journal::read(journal_path, journal::header("pcmsim-sweep-journal", meta_.fingerprint),
                     "sweep", kTag)) {
    long long point = 0;
    int trial = 0;
    double acc = 0;
    char tail = 0;
    if (std::sscanf(line.c_str(), "r %lld %d %la%c", &point, &trial, &acc, &tail) != 3 ||
        point < 0 || point >= grid_.size() || trial < 0 || trial >= meta_.trials)
      core::throw_invalid(kTag, concat("'", journal_path, "': malformed line '", line, "'"));
    records_[{point, trial}] = acc;
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
  std::string text;
  for (const TrialRecord& r : records) {
    char line[96];
    std::snprintf(line, sizeof line, "r %lld %d %a\n", static_cast<long long>(r.point), r.trial,
                  r.accuracy);
    text += line;
  }
  journal::append(path_ + ".journal", journal::header("pcmsim-sweep-journal", meta_.fingerprint),
                  text, kTag);
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

void SweepStore::set_point_costs(const cost::CostParams& params,
                                 std::vector<std::vector<double>> costs) {
  if (costs.size() != static_cast<std::size_t>(grid_.size()))
    core::throw_invalid(kTag, concat("set_point_costs: ", costs.size(), " points of cost for a "
                                     "sweep of ", grid_.size()));
  for (const auto& c : costs)
    if (c.size() != cost_total_names().size())
      core::throw_invalid(kTag, "set_point_costs: a point without every cost total");
  cost_params_ = params;
  point_costs_ = std::move(costs);
}

std::string SweepStore::csv() const {
  std::ostringstream out;
  out.precision(10);
  out << "point";
  for (const SweepAxis& axis : grid_.axes) out << ',' << axis_name(axis.name);
  if (!point_costs_.empty())
    for (const auto& name : cost_total_names()) out << ',' << name;
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
    if (!point_costs_.empty())
      for (double value : point_costs_[point]) {  // empty cells without a cost
        out << ',';
        if (std::isfinite(value)) out << value;
      }
    out << ',' << point_seeds_[point] << ',' << acc.size() << ',' << s.mean << ',' << s.std << ','
        << s.ci_low << ',' << s.ci_high << '\n';
  }
  return out.str();
}

void SweepStore::write_file() {
  const double start = now_seconds();
  write_hdf5_file(path_, kTag, [&](h5::File& file) {
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
    if (!point_costs_.empty()) {
      pcmsim::h5::Group cost_config = file.create_group("config/cost");
      pcmsim::h5::write_settings(cost_config, cost_params_);
    }
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
      if (!point_costs_.empty())
        for (std::size_t c = 0; c < cost_total_names().size(); ++c) {
          std::vector<double> column;
          for (std::int64_t point : index) column.push_back(point_costs_[point][c]);
          pts.write_dataset(cost_total_names()[c], column, {n});
        }
    }
  });
  // FILE now holds every record: the journal can start again.
  std::remove((path_ + ".journal").c_str());

  // The CSV view beside it (atomic too; derived, so not synced).
  write_text_file(csv_view_path(path_), csv(), kTag);
  dirty_ = false;
  last_write_time_ = now_seconds();
  last_write_cost_ = last_write_time_ - start;
}

}  // namespace pcmsim::nets
