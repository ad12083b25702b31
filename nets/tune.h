// Mixed-precision search (`pcmsim tune`, docs/tune.md): per-layer converter precision (p_in,
// p_out of each analog layer, from a candidate set) that minimises the energy per inference of
// the cost model while the accuracy at one inference time stays within a budget of FP32, with
// Monte Carlo trials and a confidence bound.
//
// The search runs on validation images (drawn from the training set by the caller); the final
// assignment and the uniform points are then measured on test images and reported separately.
// Every trial programs one chip and draws one snapshot at t_inference, shared by every candidate
// (converter settings do not reprogram: one ConverterSetup + ChipForward per candidate).
// Results are a pure function of (configuration, assignment, trial), so a journal of evaluated
// (assignment, trial) accuracies makes the search resumable: the lookup callback answers what
// was computed before and the search takes the same path without recomputing it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "cost/cost_params.h"
#include "nets/evaluation.h"
#include "nets/network.h"
#include "nets/simulation.h"
#include "nets/sweep.h"

namespace pcmsim::nets {

struct TuneOptions {
  double budget = 1.0;  // percentage points below the FP32 accuracy
  std::vector<double> candidate_bits{8, 6, 5, 4, 3};  // bits p_in and p_out may take
  std::vector<double> uniform_bits{8, 6, 4};          // uniform reference points
  std::vector<std::string> tune_layers;               // empty: every analog matrix layer
  Index validation_images = 1000;                     // last N images of the validation data
  bool allow_digital = true;  // may keep tuned layers digital when even the baseline misses
  // Throws std::invalid_argument naming the field and value.
  void validate() const;

  template <class V>
  static void fields(V& v) {
    using S = TuneOptions;
    const core::Affects c = core::Affects::converter;
    v.field({"budget", "points", ">= 0, finite",
             "largest allowed accuracy loss below FP32: the one-sided 95 % upper confidence "
             "bound of the mean drop (over trials and the sample of validation images) must "
             "stay within it", c},
            [](S& s) -> auto& { return s.budget; });
    v.field({"candidate_bits", "bits", "integers 2..16, at least one",
             "converter bits each tuned layer's p_in and p_out may take", c},
            [](S& s) -> auto& { return s.candidate_bits; });
    v.field({"uniform_bits", "bits", "integers 2..16",
             "uniform precisions (p_in = p_out on every layer) evaluated beside the search", c},
            [](S& s) -> auto& { return s.uniform_bits; });
    v.field({"tune_layers", "", "layer names; empty = every analog matrix layer",
             "layers whose precision is searched (the others keep p_in/p_out)", c},
            [](S& s) -> auto& { return s.tune_layers; });
    v.field({"validation_images", "", ">= 1",
             "images of the validation data the search uses (the last N: calibration takes the "
             "first)", c},
            [](S& s) -> auto& { return s.validation_images; });
    v.field({"allow_digital", "", "on, off",
             "when even the baseline (every tuned layer at the largest candidate) misses the "
             "budget, keep tuned layers digital (FP32 in the digital unit), most accuracy per "
             "added energy first, until it is met; the search then goes on from there", c},
            [](S& s) -> auto& { return s.allow_digital; });
  }
};

// One evaluated (assignment, trial) on a set of images: its accuracy and its discordance with
// FP32, the fraction of images that one of the two classifies correctly and the other not (the
// per-image paired difference is -1, 0 or +1; its second moment is the discordance).
struct TuneRecord {
  double accuracy = 0;
  double discordance = 0;
};

// The accuracy drop below FP32 of one assignment over n trials on N images, in points, with
// both sources of uncertainty (docs/tune.md): the chip-to-chip spread over trials
// (se_trials^2 = var(drop_t) / n) and the sampling of N images (per image the paired difference
// of FP32 and analog correctness; se_images^2 = mean_t(discordance_t - drop_t^2) / (N - 1), an
// upper bound for the trial-averaged difference). The quantiles are Student t with the
// Welch-Satterthwaite degrees of freedom of the two terms.
struct DropStatistics {
  double mean = 0;        // FP32 - mean accuracy
  double se_trials = 0;   // standard error from the trials
  double se_images = 0;   // standard error from the finite image sample
  double dof = 0;         // effective degrees of freedom (0: no spread at all)
  double upper95 = 0;     // one-sided 95 % upper confidence bound of the mean drop
  double ci95_low = 0, ci95_high = 0;  // two-sided 95 % interval
};
// Throws std::invalid_argument on empty or unequal lists, or fewer than one image.
DropStatistics drop_statistics(const std::vector<double>& accuracy,
                               const std::vector<double>& discordance, double fp32_accuracy,
                               Index images);

// A per-layer assignment as text: "NAME:P_IN:P_OUT" items joined by ';' (its items are
// `--layer-precision` values), then ";digital:A,B" when layers are kept digital (the journal's
// key).
std::string assignment_key(const std::map<std::string, LayerPrecision>& assignment,
                           const std::vector<std::string>& digital_layers = {});

// What was evaluated: one candidate assignment on the validation images.
struct TuneCandidate {
  std::string phase;  // "baseline", "sensitivity", "greedy", "uniform"
  std::string label;  // e.g. "fc1 p_out 4", "uniform 6"
  std::map<std::string, LayerPrecision> assignment;  // the analog layers' converter bits
  std::vector<std::string> digital_layers;  // tuned layers kept digital (beside the config's)
  double energy = 0;             // J per inference (cost model)
  std::vector<double> accuracy;     // per trial, in [0, 1]
  std::vector<double> discordance;  // per trial, with FP32 (TuneRecord)
  PointSummary summary;          // mean, std, 95 % CI of the mean over trials (Student t)
  DropStatistics drop;           // points below FP32, trials and image sampling
  bool within_budget = false;    // drop.upper95 <= budget
  bool accepted = false;         // a greedy step kept (and the baseline when within budget)
  bool pareto = false;           // on the Pareto front of (energy, mean accuracy)
};

// A measurement on the test images.
struct TuneTestPoint {
  std::string label;  // "tuned", "uniform 8", ...
  std::map<std::string, LayerPrecision> assignment;
  std::vector<std::string> digital_layers;
  double energy = 0;
  std::vector<double> accuracy;  // per trial
  std::vector<double> discordance;
  PointSummary summary;
  DropStatistics drop;                   // points below FP32 (test), trials and image sampling
};

struct TuneResult {
  double fp32_validation = 0;  // in [0, 1]
  double fp32_test = -1;       // -1 without test images
  Index validation_images = 0, test_images = 0;
  std::vector<TuneCandidate> candidates;  // in evaluation order, one per assignment
  std::size_t best = 0;                   // index of the chosen assignment in candidates
  // The baseline (every tuned layer at the largest candidate), or with allow_digital the
  // baseline with some layers kept digital, is within the budget; otherwise `best` is the
  // baseline and nothing is saved.
  bool feasible = false;
  std::vector<TuneTestPoint> test;  // "tuned" first, then the uniform points
  // The chosen assignment as `pcmsim run` options (layer_precision_option, with the
  // configuration's digital layers repeated when the search keeps more digital).
  std::string run_options;
  int evaluations = 0;              // (assignment, trial) accuracies computed in this call
  int programmings = 0;             // chips programmed in this call
};

struct TuneData {
  const Network* net = nullptr;
  const MatrixF* validation_images = nullptr;  // normalised
  const std::vector<int>* validation_labels = nullptr;
  const MatrixF* test_images = nullptr;        // normalised; null: no test phase
  const std::vector<int>* test_labels = nullptr;
  const MatrixF* calibration = nullptr;        // normalised, when config.calibrate
};

// A cache of records, keyed by (set "v"/"t", assignment key, trial): the journal of a
// resumable search. `lookup` answers what is known, `record` is told what was computed.
struct TuneCache {
  std::function<std::optional<TuneRecord>(const std::string& set, const std::string& key,
                                          int trial)>
      lookup;
  std::function<void(const std::string& set, const std::string& key, int trial,
                     const TuneRecord& record)>
      record;
};

// The tuned layers: options.tune_layers, or every matrix layer the mapper keeps analog.
// Throws std::invalid_argument naming an unknown or digital layer.
std::vector<std::string> tuned_layers(const Network& net, const SimulationConfig& config,
                                      const TuneOptions& options);

// How the search shares its work among processes (`mpirun -np N pcmsim tune`): every rank runs
// the same search; the accuracies each step needs are dealt round-robin, and `sum` (an
// element-wise sum over the ranks, each contributing zeros where it computed nothing) gives every
// rank all of them, so all take the same path and the result is the same for any rank count.
// Only rank 0's cache is used. The default is one process.
struct TuneWorld {
  int rank = 0;
  int size = 1;
  std::function<void(std::vector<double>&)> sum;  // required when size > 1
};

// Energy per inference (J) of `config` with `assignment` as its layer_precision and
// `digital_layers` added to the digital ones.
double assignment_energy(const Network& net, const SimulationConfig& config,
                         const cost::CostParams& params,
                         const std::map<std::string, LayerPrecision>& assignment,
                         const std::vector<std::string>& digital_layers = {});

// The search (docs/tune.md). `evaluation`: trials, batch size, calibration images and exactly
// one inference time. Throws std::invalid_argument for bad options, data or names.
TuneResult tune(const TuneData& data, const SimulationConfig& config,
                const EvaluationOptions& evaluation, const TuneOptions& options,
                const cost::CostParams& cost_params, const TuneCache& cache = {},
                const ProgressCallback& progress = {}, const TuneWorld& world = {});

// The assignment as `pcmsim run` options: "--layer-precision a:8:6,b:4:4", preceded by
// "--digital-layers c,d " when layers are kept digital (`config_digital`: those the
// configuration keeps digital already, which the option must repeat).
std::string layer_precision_option(const std::map<std::string, LayerPrecision>& assignment,
                                   const std::vector<std::string>& digital_layers = {},
                                   const std::vector<std::string>& config_digital = {});

// ---- Results file (HDF5 "pcmsim-tune", docs/tune.md) with its journal and CSV view ----------

struct TuneMeta {
  std::string fingerprint;  // what determines the accuracies; resume refuses another
  std::string git_revision;
  std::string model, validation_data, test_data;
};

class TuneStore {
 public:
  TuneStore(std::string path, TuneMeta meta);
  void check_writable() const;
  void lock();  // exclusive, for the store's lifetime (a second tune on FILE is refused)
  // Reads FILE's /records and FILE.journal; throws if they belong to another search.
  void load_existing();
  bool exists() const;  // FILE or its journal exists
  TuneCache cache();    // lookup in the records; record = journal line (fsynced) + memory
  std::size_t records() const { return records_.size(); }
  // Writes FILE atomically (and its CSV view) with the records and the result; clears the journal.
  void write(const TuneResult& result, const SimulationConfig& config,
             const EvaluationOptions& evaluation, const TuneOptions& options,
             const cost::CostParams& cost_params);

 private:
  std::string path_;
  TuneMeta meta_;
  std::map<std::tuple<std::string, std::string, int>, TuneRecord> records_;
  std::shared_ptr<void> lock_;
};

// The CSV view: one row per validation candidate (set "validation") and per test point ("test").
std::string tune_csv(const TuneResult& result);

}  // namespace pcmsim::nets
