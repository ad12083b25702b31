// Results of `pcmsim run` / nets::evaluate as a file: HDF5 "pcmsim-run" (format_version 2) with
// the configuration as the structs themselves (/config/simulation, /config/evaluation: one
// typed attribute per setting, h5/settings_io.h), the model and data it ran on, seeds, git
// revision and accuracies; and a CSV view beside it whose columns are the settings' names
// (the same names as the sweep CSV's). Written by the CLI and by Python alike.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cost/cost_model.h"
#include "h5/hdf5_io.h"

#include "nets/evaluation.h"
#include "nets/simulation.h"

namespace pcmsim::nets {

struct RunRecord {
  std::string model;        // path of the network file
  std::string model_name;   // the network's own name (or the path)
  std::string data;         // data set spec, e.g. "fashion-mnist:t10k"
  std::string calibration_data;
  std::int64_t limit = 0;   // first N images (0 = all)
  std::string git_revision;
  SimulationConfig config;
  EvaluationOptions evaluation;
  EvaluationResult result;
  // The cost model's constants (recorded as /config/cost) and what one inference costs on the
  // configured chip (/cost: per-layer datasets and total attributes; CSV: total columns and a
  // per-layer view FILE.cost.csv). Empty when the converters are ideal (p_in or p_out 0), which
  // have no defined cost.
  cost::CostParams cost_params;
  std::optional<cost::CostReport> cost;
};

// Checks before any work that `path` can take a results file: it does not exist or is a regular
// file (not a device or folder), and its folder exists and is writable (a probe file is created
// and removed). Throws std::invalid_argument "[where] results file 'path': ...".
void check_results_path(const std::string& path, const char* where);
// Writes a text file via FILE.partial, checked, and an atomic rename, so a reader never sees a
// half-written file and a failing write leaves the old file. Throws std::runtime_error "[where]".
void write_text_file(const std::string& path, const std::string& content, const char* where);
// Writes an HDF5 file atomically: `fill` writes FILE.partial, which then replaces FILE, fsynced
// (journal::commit). On any error the partial file goes and FILE is unchanged.
void write_hdf5_file(const std::string& path, const char* where,
                     const std::function<void(h5::File&)>& fill);
// The CSV view's path beside a results file: the extension replaced by .csv.
std::string csv_view_path(const std::string& path);

// The CSV view: one row per inference time.
std::string run_results_csv(const RunRecord& run);
// The cost totals of result tables (run and sweep CSV views, sweep points): names and values
// (NaN without a cost).
const std::vector<std::string>& cost_total_names();
std::vector<double> cost_totals(const std::optional<cost::CostReport>& cost);
// The per-layer cost view beside a results file: FILE.cost.csv; its text (header only when
// the run has no cost).
std::string cost_view_path(const std::string& path);
std::string run_cost_csv(const RunRecord& run);
// Writes FILE (HDF5), FILE's .csv view and its .cost.csv view, each via FILE.partial and a rename, the CSV first, so
// an interrupted write leaves the previous pair or a new CSV beside the old HDF5, never a torn
// file. Throws std::runtime_error naming the path.
void write_run_results(const std::string& path, const RunRecord& run);
// Reads a pcmsim-run file (format_version 1 files carry no structs: their configuration is
// left at the defaults and only the accuracies are read). Throws std::runtime_error naming the
// file and the field.
RunRecord read_run_results(const std::string& path);
// The configuration of a results file (run or sweep point 0 not supported): for re-running.
void read_run_config(const std::string& path, SimulationConfig& config,
                     EvaluationOptions& evaluation, RunRecord* record = nullptr);

}  // namespace pcmsim::nets
