// `pcmsim tune`: the mixed-precision search (docs/tune.md). Finds per-layer converter bits that
// minimise the energy per inference while the accuracy at one inference time stays within a
// budget of FP32 (lower 95 % confidence bound over Monte Carlo trials), on validation images
// from the training set; then measures the assignment and the uniform points on the test set.
// Resumable (--resume) through a journal of evaluated (assignment, trial) accuracies; shared over
// MPI ranks (`mpirun -np N pcmsim tune`, the same result for any N: nets::TuneWorld).
#include <exception>
#include <filesystem>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "cli/mpi_driver.h"
#include "cli/cost_options.h"
#include "cli/progress.h"
#include "cli/setting_options.h"
#include "cli/sim_options.h"
#include "cli/util.h"
#include "core/error.h"
#include "git_revision.h"  // generated at build time: PCMSIM_GIT_REVISION
#include "nets/cost_input.h"
#include "nets/dataset.h"
#include "nets/model_io.h"
#include "nets/onnx_import.h"
#include "nets/results.h"
#include "nets/sweep.h"
#include "nets/tune.h"

namespace pcmsim::cli {
namespace {

constexpr const char* kTag = "cli::tune";
using core::concat;

int tune_main(const std::vector<std::string>& args) {
  mpi::Session session;
  const bool root = session.rank() == 0;
  // Steps only rank 0 takes (the results file): an error there is reported by rank 0 once every
  // rank has reached the same point, so no rank waits for the others in vain.
  std::exception_ptr root_error;
  auto on_root = [&](const std::function<void()>& step) {
    if (!root || root_error) return;
    try {
      step();
    } catch (...) {
      if (session.size() == 1) throw;
      root_error = std::current_exception();
    }
  };
  po::options_description options("pcmsim tune [options]");
  options.add_options()
    ("help,h", "show this help")
    ("model", po::value<std::string>()->default_value(default_model_path()),
     "network file: HDF5 pcmsim-model, or ONNX (.onnx, docs/onnx.md)")
    ("validation-data", po::value<std::string>()->default_value("fashion-mnist:train"),
     "data the search runs on (its last --validation-images images; the training set, not the "
     "test set)")
    ("data", po::value<std::string>()->default_value("fashion-mnist:t10k"),
     "test data on which the chosen assignment and the uniform points are measured at the end")
    ("limit", po::value<long>()->default_value(0),
     "measure on the first N test images (0 = all)")
    ("calibration-data", po::value<std::string>()->default_value("fashion-mnist:train"),
     "data for --calibrate (its first --calibration-images images)")
    ("out", po::value<std::string>()->default_value("pcmsim_tune.h5"),
     "results file (HDF5); a CSV view is written beside it with the extension .csv")
    ("resume", po::bool_switch(),
     "continue the search in --out (same command): journalled accuracies are not recomputed");
  po::options_description search("search settings (docs/tune.md)");
  nets::TuneOptions tune_defaults;
  add_setting_options<nets::TuneOptions>(search, tune_defaults);
  nets::EvaluationOptions evaluation_defaults;
  evaluation_defaults.trials = 3;
  evaluation_defaults.t_inference = {86400.0};
  add_setting_options<nets::EvaluationOptions>(
      search, evaluation_defaults, {"t_inference", "trials", "batch_size", "calibration_images"});
  options.add(search);
  po::options_description settings("chip, converter and digital-unit settings (as in pcmsim run)");
  add_simulation_options(settings);
  add_setting_options<nets::ModelInputOptions>(settings);
  options.add(settings);
  po::options_description cost_settings("cost model (docs/cost.md)");
  add_cost_options(cost_settings);
  options.add(cost_settings);
  const po::variables_map vm = parse_options(args, options, kTag);
  if (vm.count("help")) {
    std::cout << options << "\n";
    return 0;
  }

  nets::TuneOptions tune_options = tune_defaults;
  apply_setting_options(vm, tune_options);
  tune_options.validate();
  nets::EvaluationOptions evaluation = evaluation_defaults;
  apply_setting_options(vm, evaluation);
  evaluation.validate();
  if (evaluation.t_inference.size() != 1)
    core::throw_invalid(kTag, concat("--t-inference: the search runs at one inference time, ",
                                     evaluation.t_inference.size(), " were given"));
  const nets::SimulationConfig config = simulation_config(vm);
  const cost::CostParams cost_constants = cost_params(vm);
  const long limit = vm["limit"].as<long>();
  if (limit < 0) core::throw_invalid(kTag, concat("--limit = ", limit, ": must be >= 0"));
  const std::string out_path = vm["out"].as<std::string>();
  const bool resume = vm["resume"].as<bool>();

  // The output location before any work.
  on_root([&] { check_output_path(out_path, "out"); });

  nets::ModelInputOptions input;
  const std::vector<std::string> input_given = apply_setting_options(vm, input);
  const std::string model_path = vm["model"].as<std::string>();
  const nets::Network net = nets::load_model(model_path, input);
  // Names only the network can check, before loading any data.
  nets::tuned_layers(net, config, tune_options);
  for (const auto& entry : config.layer_precision)
    if (net.find_layer(entry.first) < 0)
      core::throw_invalid(kTag, concat("--layer-precision names layer '", entry.first, "', which ",
                                       model_path, " does not have"));
  nets::cost_input(net, config);  // a configuration the cost model cannot take fails here
  if (config.io.p_in == 0 || config.io.p_out == 0)
    core::throw_invalid(kTag, "--p-in/--p-out 0 (ideal converters) have no cost to minimise");

  // What determines the accuracies (the journal's key); the budget and the candidate bits do
  // not: a search resumed with another budget reuses every accuracy it finds.
  std::ostringstream fingerprint;
  fingerprint << "model=" << model_path << "\nvalidation_data="
              << vm["validation-data"].as<std::string>() << "\nvalidation_images="
              << tune_options.validation_images << "\ndata=" << vm["data"].as<std::string>()
              << "\nlimit=" << limit << "\ntrials=" << evaluation.trials
              << "\nt_inference=" << core::format_value(evaluation.t_inference.front())
              << "\ncalibration_data=" << vm["calibration-data"].as<std::string>()
              << "\ncalibration_images=" << evaluation.calibration_images << "\n";
  for (const std::string& name : input_given)
    fingerprint << name << "=" << *given(vm, name == "input_mean" ? "input-mean" : "input-std")
                << "\n";
  {
    nets::SimulationConfig without = config;
    without.layer_precision.clear();
    fingerprint << nets::config_text(without);
  }
  nets::TuneMeta meta;
  meta.fingerprint = fingerprint.str();
  meta.git_revision = PCMSIM_GIT_REVISION;
  meta.model = model_path;
  meta.validation_data = vm["validation-data"].as<std::string>();
  meta.test_data = vm["data"].as<std::string>();
  nets::TuneStore store(out_path, meta);
  on_root([&] {
    store.check_writable();
    store.lock();
    if (store.exists() && !resume)
      core::throw_invalid(kTag, concat("--out = '", out_path, "' already exists: pass --resume "
                                       "to continue that search, or remove it"));
    if (resume) store.load_existing();
  });
  if (!session.all_ok(!root_error)) {
    if (root_error) std::rethrow_exception(root_error);
    return 2;  // rank 0 reports the error
  }

  // Validation: the last N images of the validation data (calibration takes the first).
  const nets::Dataset validation_all = nets::load_dataset(meta.validation_data, 0);
  nets::check_compatible(validation_all, net);
  if (tune_options.validation_images > validation_all.size())
    core::throw_invalid(kTag, concat("--validation-images = ", tune_options.validation_images,
                                     ": ", meta.validation_data, " has only ",
                                     validation_all.size(), " images"));
  const core::Index n_val = tune_options.validation_images;
  nets::Dataset validation;
  validation.name = validation_all.name;
  validation.channels = validation_all.channels;
  validation.height = validation_all.height;
  validation.width = validation_all.width;
  validation.images = validation_all.images.bottomRows(n_val);
  validation.labels.assign(validation_all.labels.end() - n_val, validation_all.labels.end());
  const core::MatrixF validation_images = nets::normalized_images(validation, net);
  const nets::Dataset test = nets::load_dataset(meta.test_data, limit);
  nets::check_compatible(test, net);
  const core::MatrixF test_images = nets::normalized_images(test, net);
  core::MatrixF calibration;
  if (config.calibrate) {
    const nets::Dataset cal = load_calibration_data(vm["calibration-data"].as<std::string>(),
                                                    evaluation.calibration_images);
    nets::check_compatible(cal, net);
    calibration = nets::normalized_images(cal, net);
  }

  const int threads = mpi::set_threads_per_rank(session);
  if (root) {
    std::cerr << "tune: " << model_path << ", " << n_val << " validation images ("
              << meta.validation_data << "), " << test.size() << " test images, "
              << evaluation.trials << " trials at t = " << evaluation.t_inference.front()
              << " s, budget " << tune_options.budget << " points"
              << (resume ? concat(", ", store.records(), " accuracies already journalled") : "")
              << "; over " << session.size() << " process(es) x " << threads << " thread(s)\n";
  }
  nets::TuneData data;
  data.net = &net;
  data.validation_images = &validation_images;
  data.validation_labels = &validation.labels;
  data.test_images = &test_images;
  data.test_labels = &test.labels;
  data.calibration = &calibration;
  ProgressLine progress;
  nets::TuneWorld world;
  world.rank = session.rank();
  world.size = session.size();
  world.sum = [&](std::vector<double>& values) { session.sum(values); };
  nets::TuneResult result;
  try {
    result = nets::tune(data, config, evaluation, tune_options, cost_constants,
                        root ? store.cache() : nets::TuneCache{},
                        [&](const nets::Progress& p) {
                          if (root) progress.update(p.done, p.total, p.what);
                        },
                        world);
  } catch (const std::exception& e) {
    if (session.size() > 1) {
      // The others may wait for this rank in a collective: end them all.
      std::cerr << "pcmsim tune (rank " << session.rank() << "): error: " << e.what() << "\n";
      session.abort(1);
    }
    throw;
  }
  if (!root) return 0;
  progress.finish();
  store.write(result, config, evaluation, tune_options, cost_constants);

  // Report.
  const nets::TuneCandidate& best = result.candidates[result.best];
  std::cout << std::fixed << std::setprecision(2);
  std::cout << "model " << model_path << ", t = " << evaluation.t_inference.front() << " s, "
            << evaluation.trials << " trials, budget " << tune_options.budget
            << " points below FP32 (one-sided 95 % upper confidence bound of the mean drop, over "
               "trials and the validation images)\n";
  std::cout << "validation: " << n_val << " images, FP32 " << 100 * result.fp32_validation
            << " %; " << result.candidates.size() << " assignments evaluated ("
            << result.evaluations << " accuracies computed, " << store.records()
            << " journalled)\n";
  if (!result.feasible)
    std::cout << "note: even the baseline (" << best.label
              << ") misses the budget on the validation images (drop bound " << best.drop.upper95
              << " points)" << (tune_options.allow_digital ? ", and keeping layers digital did "
                                                             "not meet it either" : "")
              << "; it is reported unchanged\n";
  std::cout << "\nchosen assignment (" << best.phase << ": " << best.label << "), validation "
            << 100 * best.summary.mean << " % [95 % CI " << 100 * best.summary.ci_low << ", "
            << 100 * best.summary.ci_high << "], drop bound " << best.drop.upper95 << " points\n";
  if (!best.digital_layers.empty())
    std::cout << "  (" << best.digital_layers.size() << " layer(s) kept digital: cheaper than "
              << "analog at any candidate precision, or needed to meet the budget; docs/tune.md)\n";
  std::cout << "  " << result.run_options << "\n\n";
  std::cout << std::left << std::setw(12) << "test set" << std::right << std::setw(14)
            << "energy (uJ)" << std::setw(12) << "saved (%)" << std::setw(14) << "accuracy (%)"
            << std::setw(30) << "drop vs FP32 (points, 95% CI)" << "\n";
  double e_tuned = result.test.empty() ? best.energy : result.test.front().energy;
  for (const nets::TuneTestPoint& p : result.test) {
    std::cout << std::left << std::setw(12) << p.label << std::right << std::setw(14)
              << std::setprecision(4) << p.energy * 1e6 << std::setw(12) << std::setprecision(2)
              << 100 * (1 - e_tuned / p.energy) << std::setw(14) << 100 * p.summary.mean
              << std::setw(14) << p.drop.mean << " [" << p.drop.ci95_low << ", " << p.drop.ci95_high
              << "]\n";
  }
  std::cout << "(saved: the chosen assignment's energy below each point's; FP32 on the test "
               "set "
            << 100 * result.fp32_test << " %)\n";
  std::cout << "\nresults: " << out_path << ", " << nets::csv_view_path(out_path) << "\n";
  return 0;
}

}  // namespace

PCMSIM_COMMAND("tune",
               "mixed-precision search: per-layer converter bits of least energy within an "
               "accuracy budget (resumable)",
               tune_main);

}  // namespace pcmsim::cli
