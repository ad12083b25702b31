// Parameter sweeps over a simulated chip: the grid, the plan that orders points for reuse of
// work, the execution of one work unit, per-point statistics and the results file.
//
// Work reuse follows the pipeline (docs/architecture.md): points that differ only in converter-side
// settings (p_in, p_out, b_in, noise, GDC, accumulator, per-layer precision, calibration) and
// inference time share one programmed chip per trial; each inference time is snapshotted once
// and that snapshot serves every converter setting (one ProgrammedChip, one ChipSnapshot per time,
// one ConverterSetup + ChipForward per converter setting). A work unit is
// (trial, programming setting, a set of converter settings); its result does not depend on which
// process computes it or in which order: every random stream derives from (seed, layer, slice,
// trial, time) and the tile-forward draws from the global sample index and position.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cost/cost_params.h"
#include "nets/network.h"
#include "nets/simulation.h"

namespace pcmsim::nets {

// What a swept setting changes, hence what can be reused when it changes: a new programmed
// chip, the same chip with other converters / digital unit / GDC, or another snapshot. It is
// the `affects` of the setting's field list (core/settings.h); t_inference is the time axis.
using AxisKind = core::Affects;

// Every setting of SimulationConfig is an axis, and t_inference. Names as in the field lists,
// with '_' or '-' ("p_in", "p-in", "g_max_uS"). Throws std::invalid_argument
// "[nets::sweep] unknown axis 'x' (sweepable: ...)".
AxisKind axis_kind(const std::string& name);
// The axis' name as files record it: the setting's external name ("p-in" -> "p_in").
std::string axis_name(const std::string& name);

struct SweepAxis {
  std::string name;                 // setting name, e.g. "p_in"
  // As text, in order. A list-valued setting separates its items with ';' here (',' separates
  // the sweep's values): digital_layers "first;last", layer_precision "fc1:4:4;fc2:6:6";
  // "none" is the empty list.
  std::vector<std::string> values;
};

// The full grid: the Cartesian product of the axes; the last axis varies fastest in the point
// index. Point i has coordinates coords(i) (one value index per axis).
// The most points a grid may have: each point holds its whole configuration in memory and in
// the results file, so a grid beyond this is a typo, not a sweep (10^7 points already need
// several GB).
constexpr std::int64_t kMaxSweepPoints = 10'000'000;

struct SweepGrid {
  std::vector<SweepAxis> axes;
  // Throws on an unknown or repeated axis, an axis without values, a repeated value, more than
  // kMaxSweepPoints points.
  void validate() const;
  // Number of points (1 for no axes). Throws std::invalid_argument, naming the axes' sizes,
  // when the product exceeds kMaxSweepPoints (so it never overflows).
  std::int64_t size() const;
  std::vector<int> coords(std::int64_t point) const;
  // The setting of each axis at a point: {name, value}.
  std::vector<std::pair<std::string, std::string>> settings(std::int64_t point) const;
};

// A point made concrete by the caller (the CLI turns settings into a SimulationConfig).
struct SweepPoint {
  std::int64_t index = 0;
  SimulationConfig config;
  double t_inference = 0;
  // Points with equal programming_group share programming; with equal converter_group too, they
  // share the converter set-up (calibration, GDC reference) and differ only in time.
  std::string programming_group;
  std::string converter_group;
};

// Sets one setting of `config` from a sweep value (the ';' list convention above).
void apply_sweep_setting(SimulationConfig& config, const std::string& name,
                         const std::string& value);
// The points of a grid over `base`: each point's config is base with the point's settings
// applied (values parsed by the settings themselves; no strings are re-parsed later).
std::vector<SweepPoint> make_points(const SweepGrid& grid, const SimulationConfig& base,
                                    double default_t_inference);
// "name=value" lines of every setting of a config (the recorded configuration of a point).
std::string config_text(const SimulationConfig& config);

// Builds the SweepPoints of a grid; `make_config` turns one point's settings into its config.
// The groups are the values of the grid's programming / converter axes.
std::vector<SweepPoint> make_points(
    const SweepGrid& grid, double default_t_inference,
    const std::function<SimulationConfig(const std::vector<std::pair<std::string, std::string>>&)>&
        make_config);

// One unit of work: one trial of a list of points with the same programming, ordered by
// converter group then time (so each converter set-up is made once and each time snapshotted
// once per chunk of converter settings).
struct WorkUnit {
  int trial = 0;
  std::vector<std::int64_t> points;
};

struct PlanOptions {
  int trials = 1;
  // Split units (by converter groups, then by times) until there are at least this many, so
  // that N processes have work to share; splitting costs one extra programming per split.
  int min_units = 1;
};

// The units still to compute: every (point, trial) not in `done`, grouped for reuse. The plan is
// a pure function of its arguments.
std::vector<WorkUnit> plan_sweep(const std::vector<SweepPoint>& points, const PlanOptions& options,
                                 const std::set<std::pair<std::int64_t, int>>& done);

// Accuracy of one point in one trial.
struct TrialRecord {
  std::int64_t point = 0;
  int trial = 0;
  double accuracy = 0;
};

struct EvalData {
  const Network* net = nullptr;
  const MatrixF* images = nullptr;       // normalised
  const std::vector<int>* labels = nullptr;
  const MatrixF* calibration = nullptr;  // normalised (first N images), used when calibrating
  Index batch_size = 256;
};

struct UnitOptions {
  bool reuse = true;     // false: a fresh chip per (point, trial), for benchmarks and checks
  int max_chips = 8;     // converter settings held at once (memory: one tile set each)
};

// Counters of the expensive stages, to show (and test) the reuse.
struct UnitStats {
  int programmings = 0;   // chips programmed
  int snapshots = 0;      // snapshots drawn (ProgrammedChip::at)
  int shared_snapshots = 0;  // further converter settings evaluated on a drawn snapshot
  int evaluations = 0;
};

// Computes a unit. `on_point(point index)` is called before each evaluation (progress).
std::vector<TrialRecord> run_unit(const WorkUnit& unit, const std::vector<SweepPoint>& points,
                                  const EvalData& data, const UnitOptions& options = {},
                                  UnitStats* stats = nullptr,
                                  const std::function<void(std::int64_t)>& on_point = {});

// Two-sided 95 % quantile of Student's t with `dof` degrees of freedom (dof >= 1).
double student_t_975(int dof);
// One-sided 95 % quantile of Student's t with `dof` degrees of freedom (dof >= 1).
double student_t_95(int dof);

struct PointSummary {
  double mean = 0;
  double std = 0;        // sample standard deviation (0 for one trial)
  double ci_low = 0;     // 95 % confidence interval of the mean, mean -+ t * std / sqrt(n)
  double ci_high = 0;    // (equal to the mean for one trial: no spread can be estimated)
};
PointSummary summarize(const std::vector<double>& accuracy);

// ---- Results file -------------------------------------------------------------------------
//
// HDF5 "pcmsim-sweep" (docs/sweeps.md): attributes describe the sweep; /axes/<name> the values;
// /records the finished (point, trial) accuracies; /points the finished points (all trials done)
// with their settings, configuration, seed and statistics. Written whole to FILE.partial, fsynced
// and renamed over FILE, so FILE is always a complete file. A journal FILE.journal holds the
// records finished since the last rewrite (one fsynced line each), so nothing finished is lost.

struct SweepMeta {
  std::string fingerprint;  // what the sweep computes; resume refuses a different one
  std::string git_revision;
  std::uint64_t seed = 0;
  std::string model;
  std::string data;
  std::int64_t images = 0;
  int trials = 1;
  double fp32_accuracy = -1;
  std::vector<std::string> options;  // base "name=value" lines
};

class SweepStore {
 public:
  SweepStore(std::string path, SweepMeta meta, SweepGrid grid,
             std::vector<std::string> point_configs, std::vector<std::uint64_t> point_seeds);

  // Reads FILE (if it exists) and FILE.journal (if it exists; a torn last line is ignored) and
  // returns the records found. Throws if FILE is not a sweep of the same fingerprint.
  void load_existing();
  // Checks that FILE's folder exists and is writable (creates and removes a probe file).
  void check_writable() const;
  // Takes an exclusive lock (flock on FILE.lock, released by the kernel even on kill -9) for
  // the store's lifetime: a second sweep on the same FILE is refused with std::invalid_argument
  // naming it, instead of both writing the same files.
  void lock();

  // Appends records: journal line(s) fsynced now; the HDF5 file rewritten when `rewrite` (or
  // when the last rewrite is older than the throttle interval).
  void add(const std::vector<TrialRecord>& records);
  void write_file();  // atomic rewrite of FILE from everything recorded; clears the journal

  const std::map<std::pair<std::int64_t, int>, double>& records() const { return records_; }
  std::set<std::pair<std::int64_t, int>> done() const;
  std::int64_t finished_points() const;
  // Seconds between rewrites of FILE (the journal keeps every record meanwhile). Default: at
  // least 2 s and 10x the last rewrite time, so rewriting stays a small part of a long sweep.
  void set_min_rewrite_interval(double seconds) { min_interval_ = seconds; }
  std::string csv() const;  // one row per finished point
  // The cost model's constants and each point's cost totals (cost_total_names(), NaN without a
  // cost; nets/results.h): CSV columns before `seed`, /points datasets, /config/cost.
  void set_point_costs(const cost::CostParams& params, std::vector<std::vector<double>> costs);

 private:
  void append_journal(const std::vector<TrialRecord>& records);
  std::string path_;
  SweepMeta meta_;
  SweepGrid grid_;
  std::vector<std::string> point_configs_;
  std::vector<std::uint64_t> point_seeds_;
  std::map<std::pair<std::int64_t, int>, double> records_;
  cost::CostParams cost_params_;
  std::vector<std::vector<double>> point_costs_;  // empty: no cost columns
  double min_interval_ = -1;
  double last_write_cost_ = 0;
  double last_write_time_ = -1e300;
  bool dirty_ = false;
  std::shared_ptr<void> lock_;  // closes and removes FILE.lock when the last copy goes
};

}  // namespace pcmsim::nets
