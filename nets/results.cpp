#include "nets/results.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "h5/settings_io.h"
#include "nets/journal.h"
#include "nets/sweep.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::results";
using core::concat;

void move_into_place(const std::string& partial, const std::string& path, const char* where) {
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    core::throw_io(where, concat("cannot move the finished file to '", path, "'"));
  }
}

std::string csv_field(std::string text) {
  if (text.find_first_of(",\"\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

}  // namespace

void check_results_path(const std::string& path, const char* where) {
  namespace fs = std::filesystem;
  const auto bad = [&](const std::string& why) {
    core::throw_invalid(where, concat("results file '", path, "': ", why));
  };
  core::require_path(where, "results file", path);
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::exists(status) && !fs::is_regular_file(status)) bad("exists and is not a regular file");
  const std::string dir = fs::absolute(path).parent_path().string();
  if (!fs::is_directory(dir)) bad(concat("folder '", dir, "' does not exist"));
  const std::string probe = path + ".probe";
  {
    std::ofstream out(probe, std::ios::binary | std::ios::trunc);
    if (!out) bad(concat("folder '", dir, "' is not writable"));
  }
  std::remove(probe.c_str());
}

void write_text_file(const std::string& path, const std::string& content, const char* where) {
  core::require_path(where, "text file", path);
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) core::throw_io(where, concat("cannot write '", path, "'"));
    out << content;
    out.flush();
    if (!out) {
      std::remove(partial.c_str());
      core::throw_io(where, concat("writing '", path, "' failed (disk full?)"));
    }
  }
  move_into_place(partial, path, where);
}

void write_hdf5_file(const std::string& path, const char* where,
                     const std::function<void(h5::File&)>& fill) {
  const std::string partial = path + ".partial";
  try {
    h5::File file = h5::File::create(partial);
    fill(file);
    file.flush();
    file.close();
  } catch (...) {
    std::remove(partial.c_str());
    throw;
  }
  journal::commit(partial, path, where);
}

std::string csv_view_path(const std::string& path) {
  std::filesystem::path csv_path(path);
  csv_path.replace_extension(".csv");
  return csv_path.string();
}

std::string cost_view_path(const std::string& path) {
  std::filesystem::path p(path);
  p.replace_extension(".cost.csv");
  return p.string();
}

const std::vector<std::string>& cost_total_names() {
  static const std::vector<std::string> names = {"energy_per_inference_J", "latency_s",
                                                 "inferences_per_s", "area_mm2"};
  return names;
}

std::vector<double> cost_totals(const std::optional<cost::CostReport>& cost) {
  std::vector<double> out(cost_total_names().size(), std::numeric_limits<double>::quiet_NaN());
  if (!cost) return out;
  for (const auto& [total, value] : cost::total_columns(*cost))
    for (std::size_t i = 0; i < out.size(); ++i)
      if (total == cost_total_names()[i]) out[i] = value;
  return out;
}

std::string run_cost_csv(const RunRecord& run) {
  std::ostringstream out;
  out.precision(10);
  const cost::CostReport empty;
  const auto columns = cost::layer_columns(run.cost ? *run.cost : empty);
  out << "layer";
  for (const auto& column : columns) out << ',' << column.first;
  out << '\n';
  if (!run.cost) return out.str();
  for (std::size_t i = 0; i < run.cost->layers.size(); ++i) {
    out << csv_field(run.cost->layers[i].name);
    for (const auto& column : columns) out << ',' << column.second[i];
    out << '\n';
  }
  return out.str();
}

std::string run_results_csv(const RunRecord& run) {
  std::ostringstream out;
  out.precision(10);
  out << "model";
  for (const auto& s : core::settings<SimulationConfig>())
    if (!s.shortcut) out << ',' << s.info.external_name();
  for (const auto& name : cost_total_names()) out << ',' << name;
  out << ",t_inference,trials,acc_mean,acc_std,ci95_low,ci95_high,fp32_acc\n";
  for (const auto& t : run.result.times) {
    out << csv_field(run.model_name);
    for (const auto& s : core::settings<SimulationConfig>())
      if (!s.shortcut) out << ',' << csv_field(s.text(run.config));
    for (double value : cost_totals(run.cost)) {  // empty cells without a cost
      out << ',';
      if (run.cost) out << value;
    }
    const PointSummary summary = summarize(t.accuracy);
    out << ',' << t.t_inference << ',' << t.accuracy.size() << ',' << t.mean << ',' << t.std
        << ',' << summary.ci_low << ',' << summary.ci_high << ',' << run.result.fp32_accuracy
        << '\n';
  }
  return out.str();
}

void write_run_results(const std::string& path, const RunRecord& run) {
  const std::string csv_path = csv_view_path(path);
  if (csv_path == path)
    core::throw_invalid(kTag, concat("results path '", path, "' ends in .csv: give the HDF5 "
                                     "file (.h5); the CSV view is written beside it"));
  // The CSV views first: the HDF5 file, written last, is the record of a finished run.
  write_text_file(csv_path, run_results_csv(run), kTag);
  write_text_file(cost_view_path(path), run_cost_csv(run), kTag);
  write_hdf5_file(path, kTag, [&](h5::File& file) {
    file.write_attribute("format", std::string("pcmsim-run"));
    file.write_attribute("format_version", std::int64_t{2});
    file.write_attribute("git_revision", run.git_revision);
    file.write_attribute("model", run.model);
    file.write_attribute("model_name", run.model_name);
    file.write_attribute("data", run.data);
    file.write_attribute("calibration_data", run.calibration_data);
    file.write_attribute("limit", run.limit);
    file.write_attribute("csv", std::filesystem::path(csv_path).filename().string());
    file.write_attribute("seed", static_cast<std::int64_t>(run.config.seed));
    file.write_attribute("fp32_accuracy", run.result.fp32_accuracy);
    file.write_attribute("images", static_cast<std::int64_t>(run.result.images));
    h5::Group config = file.create_group("config");
    h5::Group simulation = config.create_group("simulation");
    h5::write_settings(simulation, run.config);
    h5::Group evaluation = config.create_group("evaluation");
    h5::write_settings(evaluation, run.evaluation);
    h5::Group cost_config = config.create_group("cost");
    h5::write_settings(cost_config, run.cost_params);
    if (run.cost) {
      h5::Group cost = file.create_group("cost");
      for (const auto& [name, value] : cost::total_columns(*run.cost))
        cost.write_attribute(name, value);
      std::vector<std::string> names;
      for (const auto& layer : run.cost->layers) names.push_back(layer.name);
      if (!names.empty()) {  // (HDF5 has no empty string list)
        cost.write_attribute("layers", names);
        for (const auto& [name, values] : cost::layer_columns(*run.cost))
          cost.write_dataset(name, values.data(), {values.size()});
      }
    }
    std::vector<double> times, mean, stdev, per_trial;
    for (const auto& t : run.result.times) {
      times.push_back(t.t_inference);
      mean.push_back(t.mean);
      stdev.push_back(t.std);
      per_trial.insert(per_trial.end(), t.accuracy.begin(), t.accuracy.end());
    }
    const std::size_t trials = run.result.times.empty() ? 0 : run.result.times[0].accuracy.size();
    file.write_dataset("t_inference", times.data(), {times.size()});
    file.write_dataset("acc_mean", mean.data(), {mean.size()});
    file.write_dataset("acc_std", stdev.data(), {stdev.size()});
    file.write_dataset("accuracy", per_trial.data(), {times.size(), trials});
  });
}

void read_run_config(const std::string& path, SimulationConfig& config,
                     EvaluationOptions& evaluation, RunRecord* record) {
  const h5::File file = h5::File::open_read(path);
  if (!file.has_attribute("format") || file.read_string_attribute("format") != "pcmsim-run")
    core::throw_io(kTag, concat(path, ": not a pcmsim-run results file (attribute 'format')"));
  const std::int64_t version = file.read_int_attribute("format_version");
  if (version < 2)
    core::throw_io(kTag, concat(path, ": format_version = ", version, " records no "
                                "configuration structs (written before format_version 2)"));
  if (version > 2)
    core::throw_io(kTag, concat(path, ": format_version = ", version, " is newer than this "
                                "pcmsim reads (2)"));
  const h5::Group group = file.open_group("config");
  h5::read_settings(group.open_group("simulation"), config);
  h5::read_settings(group.open_group("evaluation"), evaluation);
  if (record && group.has_group("cost")) h5::read_settings(group.open_group("cost"), record->cost_params);
  if (record) {
    record->model = file.read_string_attribute("model");
    record->model_name = file.read_string_attribute("model_name");
    record->data = file.read_string_attribute("data");
    record->calibration_data = file.read_string_attribute("calibration_data");
    record->limit = file.read_int_attribute("limit");
    record->git_revision = file.read_string_attribute("git_revision");
  }
}

RunRecord read_run_results(const std::string& path) {
  RunRecord run;
  read_run_config(path, run.config, run.evaluation, &run);
  const h5::File file = h5::File::open_read(path);
  run.result.fp32_accuracy = file.read_double_attribute("fp32_accuracy");
  run.result.images = file.read_int_attribute("images");
  const auto times = file.read_dataset<double>("t_inference");
  const auto accuracy = file.read_dataset<double>("accuracy");
  const auto mean = file.read_dataset<double>("acc_mean");
  const auto stdev = file.read_dataset<double>("acc_std");
  const std::size_t n = times.size();
  if (accuracy.shape.size() != 2 || accuracy.shape[0] != n || mean.size() != n ||
      stdev.size() != n)
    core::throw_io(kTag, concat(path, ": datasets t_inference, accuracy, acc_mean, acc_std "
                                "disagree in shape"));
  const std::size_t trials = accuracy.shape[1];
  for (std::size_t i = 0; i < n; ++i) {
    TimeSummary t;
    t.t_inference = times.data[i];
    t.mean = mean.data[i];
    t.std = stdev.data[i];
    t.accuracy.assign(accuracy.data.begin() + i * trials, accuracy.data.begin() + (i + 1) * trials);
    run.result.times.push_back(std::move(t));
  }
  if (file.has_group("cost")) {
    const h5::Group group = file.open_group("cost");
    cost::CostReport report;
    report.params = run.cost_params;
    for (const auto& [name, value] : cost::total_columns(report))
      set_total_column(report, name, group.read_double_attribute(name));
    if (group.has_attribute("layers"))
      for (const auto& name : group.read_string_list_attribute("layers")) {
        report.layers.emplace_back();
        report.layers.back().name = name;
      }
    for (const auto& [name, unused] : cost::layer_columns(report)) {
      if (report.layers.empty()) break;
      const auto values = group.read_dataset<double>(name);
      if (values.size() != report.layers.size())
        core::throw_io(kTag, concat(path, ": /cost/", name, " has ", values.size(),
                                    " values for ", report.layers.size(), " layers"));
      for (std::size_t i = 0; i < values.size(); ++i)
        set_layer_column(report.layers[i], name, values.data[i]);
    }
    run.cost = std::move(report);
  }
  return run;
}

}  // namespace pcmsim::nets
