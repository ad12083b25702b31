// `pcmsim sweep`: accuracy over a grid of chip settings (converter precision, inference time,
// GDC, unit cell, tile size, noise scales, per-layer precision, digital layers, ...) with Monte
// Carlo trials per point. Resumable (--resume after a crash or kill -9), reusing programmed chips
// and snapshots across points, and distributed over MPI ranks (`mpirun -np N pcmsim sweep`).
// See docs/sweeps.md.
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "cli/command.h"
#include "cli/cost_options.h"
#include "git_revision.h"  // generated at build time: PCMSIM_GIT_REVISION
#include "cli/mpi_driver.h"
#include "cli/progress.h"
#include "cli/setting_options.h"
#include "cli/sim_options.h"
#include "cli/util.h"
#include "core/error.h"
#include "mapping/mapping_plan.h"
#include "nets/cost_input.h"
#include "nets/dataset.h"
#include "nets/evaluation.h"
#include "nets/model_io.h"
#include "nets/onnx_import.h"
#include "nets/results.h"
#include "nets/sweep.h"

namespace pcmsim::cli {
namespace {

constexpr const char* kTag = "cli::sweep";
using core::concat;

std::string trim(const std::string& text) {
  const auto begin = text.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  const auto end = text.find_last_not_of(" \t");
  return text.substr(begin, end - begin + 1);
}

// "4, 6,8" -> {"4", "6", "8"}; an empty list or an empty item is an error.
std::vector<std::string> split_values(const std::string& text, const std::string& option) {
  std::vector<std::string> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    item = trim(item);
    if (item.empty())
      core::throw_invalid(kTag, concat("--", option, " = '", text,
                                       "': empty value (axes are comma-separated lists)"));
    values.push_back(item);
  }
  if (values.empty())
    core::throw_invalid(kTag, concat("--", option, " has no values: empty grid"));
  return values;
}

std::string settings_text(const std::vector<std::pair<std::string, std::string>>& settings) {
  std::string text;
  for (const auto& [name, value] : settings) text += (text.empty() ? "" : " ") + name + "=" + value;
  return text;
}

// Sweeps above this many evaluations (points x trials) start only with --yes.
constexpr std::int64_t kConfirmEvaluations = 10000;

int sweep_main(const std::vector<std::string>& args) {
  mpi::Session session;
  const bool root = session.rank() == 0;

  po::options_description general("pcmsim sweep [options]");
  general.add_options()
    ("help,h", "show this help")
    ("config", po::value<std::string>(),
     "INI file with any option below (name = value; an axis is a comma-separated list); "
     "the command line wins over the file")
    ("model", po::value<std::string>()->default_value(default_model_path()),
     "network file: HDF5 pcmsim-model, or ONNX (.onnx, docs/onnx.md)")
    ("data", po::value<std::string>()->default_value("fashion-mnist:t10k"),
     "evaluation data: fashion-mnist:t10k|train[@DIR], an HDF5 data set, or an IDX images file")
    ("limit", po::value<long>()->default_value(0), "evaluate the first N images (0 = all)")
    ("calibration-data", po::value<std::string>()->default_value("fashion-mnist:train"),
     "data for --calibrate (the training set, not the test set)")
    ("out", po::value<std::string>()->default_value("pcmsim_sweep.h5"),
     "results file (HDF5); a CSV view is written beside it with the extension .csv")
    ("resume", po::bool_switch(), "continue the sweep in --out (same command) where it stopped")
    ("reuse", po::value<std::string>()->default_value("on"),
     "reuse programmed chips and snapshots across points: on/off (off: a fresh chip per point "
     "and trial; same results, for benchmarks)")
    ("max-chips", po::value<int>()->default_value(8),
     "converter settings held in memory at once per programmed chip")
    ("yes", po::bool_switch(),
     "start a sweep of more than 10000 evaluations (points x trials) without refusing");
  // The evaluation settings (t_inference: a comma-separated list of times is an axis).
  add_evaluation_options(general);
  // The cost model's constants (one value each, not axes): each point's cost in the results.
  add_cost_options(general);
  add_setting_options<nets::ModelInputOptions>(general);
  po::options_description hidden;
  add_deprecated_options(hidden);

  // The chip settings of `pcmsim run`, each taking a comma-separated list of values here.
  po::options_description run_options;
  add_simulation_options(run_options);
  po::options_description chip(
      "chip settings (as in pcmsim run; a comma-separated list is an axis, items of a list "
      "value are separated by ';', e.g. --digital-layers 'first;last,none')");
  chip.add(run_options);
  po::options_description all;
  all.add(general).add(chip).add(hidden);

  po::variables_map vm;
  try {
    po::store(parse_arguments(args, all), vm);
  } catch (const po::error& e) {
    // An option pcmsim run does not have is not an axis either.
    core::throw_invalid(kTag, concat(e.what(), " (not an option or axis of pcmsim sweep; see "
                                     "pcmsim sweep --help)"));
  }
  if (vm.count("help")) {
    if (root)
      std::cout << all << "\nAxes that reuse programmed chips: converter, GDC, calibration and "
                          "time settings. See docs/sweeps.md.\n";
    return 0;
  }
  if (vm.count("config")) {
    const std::string path = vm["config"].as<std::string>();
    std::ifstream in(path);
    if (!in) core::throw_invalid(kTag, concat("--config = '", path, "': cannot open the file"));
    try {
      if (std::filesystem::is_directory(path))
        core::throw_invalid(kTag, concat("--config = '", path, "': is a folder, not a file"));
      po::store(po::parse_config_file(in, all, false), vm);
    } catch (const po::error& e) {
      core::throw_invalid(kTag, concat("config file '", path, "': ", e.what()));
    }
  }
  try {
    po::notify(vm);
  } catch (const po::error& e) {
    core::throw_invalid(kTag, e.what());
  }
  resolve_deprecated(vm);

  // Everything that can fail is checked on every rank before any work; rank 0 also checks the
  // results file. A failure anywhere stops every rank with rank 0's message.
  nets::SweepGrid grid;
  std::vector<nets::SweepPoint> points;
  std::vector<std::string> point_configs;
  std::vector<std::uint64_t> point_seeds;
  cost::CostParams cost_constants;
  std::vector<std::vector<double>> point_costs;
  std::vector<std::pair<std::string, std::string>> constants;
  nets::Network net;
  nets::Dataset data;
  core::MatrixF images, calibration;
  std::unique_ptr<nets::SweepStore> store;
  nets::SweepMeta meta;
  int trials = 0;
  long limit = 0, batch = 0, calibration_images = 0;
  bool reuse = true, fp32 = true;
  int max_chips = 8;
  std::string out_path;
  std::exception_ptr setup_error;
  try {
    // The evaluation settings; their t_inference list is the time axis.
    nets::EvaluationOptions evaluation_settings = evaluation_options(vm);
    trials = evaluation_settings.trials;
    batch = evaluation_settings.batch_size;
    calibration_images = evaluation_settings.calibration_images;
    fp32 = evaluation_settings.fp32;
    limit = vm["limit"].as<long>();
    if (limit < 0) core::throw_invalid(kTag, concat("--limit = ", limit, ": must be >= 0"));
    max_chips = vm["max-chips"].as<int>();
    if (max_chips < 1) core::throw_invalid(kTag, concat("--max-chips = ", max_chips, ": must be >= 1"));
    const std::string reuse_text = vm["reuse"].as<std::string>();
    if (reuse_text != "on" && reuse_text != "off")
      core::throw_invalid(kTag, concat("--reuse = '", reuse_text, "': expected on or off"));
    reuse = reuse_text == "on";
    cost_constants = cost_params(vm);

    // Axes (two or more values) and constants (one value), axes ordered programming, converter,
    // time, by name within a kind: the grid (and so every point index) does not depend on the
    // order of the options.
    std::map<int, std::vector<nets::SweepAxis>> by_kind;
    nets::SimulationConfig base;
    apply_preset_option(vm, base);  // --preset NAME: a published chip's values under the axes
    for (const auto& setting : core::settings<nets::SimulationConfig>()) {
      const std::string option = setting.option_name();
      const std::string* text = given(vm, option);
      if (!text) continue;
      std::vector<std::string> values = split_values(*text, option);
      const std::string name = setting.info.external_name();
      if (values.size() == 1) {
        constants.emplace_back(name, values[0]);
        nets::apply_sweep_setting(base, name, values[0]);
        continue;
      }
      by_kind[static_cast<int>(setting.info.affects)].push_back({name, std::move(values)});
    }
    std::vector<std::string> times;
    for (double t : evaluation_settings.t_inference) times.push_back(core::format_value(t));
    if (times.size() > 1) by_kind[static_cast<int>(nets::AxisKind::time)].push_back({"t_inference", times});
    else constants.emplace_back("t_inference", times.at(0));
    for (auto& [kind, axes] : by_kind)
      for (auto& axis : axes) grid.axes.push_back(std::move(axis));
    grid.validate();  // at most nets::kMaxSweepPoints points
    const double default_time = evaluation_settings.t_inference.at(0);
    // Say how big the sweep is before any set-up (a large grid takes minutes to set up), and
    // refuse a large one unless asked for: a stray extra value multiplies the work.
    const std::int64_t evaluations = grid.size() * trials;
    if (root)
      std::cerr << "sweep: " << grid.size() << " points x " << trials << " trials = "
                << evaluations << " evaluations, each over "
                << (limit > 0 ? concat(limit, " images") : std::string("the whole data set"))
                << "\n";
    if (evaluations > kConfirmEvaluations && !vm["yes"].as<bool>())
      core::throw_invalid(kTag, concat("the sweep has ", evaluations, " evaluations (",
                                       grid.size(), " points x ", trials, " trials), more than ",
                                       kConfirmEvaluations, ": pass --yes to start it"));

    // Each point's configuration: the constants, then the point's settings, as values.
    points = nets::make_points(grid, base, default_time);
    for (const nets::SweepPoint& p : points) {
      point_configs.push_back(nets::config_text(p.config) + "t_inference=" +
                              core::format_value(p.t_inference) + "\n");
      point_seeds.push_back(p.config.seed);
    }

    // What the sweep computes (resume refuses a file of another sweep).
    std::ostringstream fingerprint;
    for (const char* name : {"model", "data", "calibration-data"})
      fingerprint << name << "=" << vm[name].as<std::string>() << "\n";
    fingerprint << "limit=" << limit << "\ntrials=" << trials << "\nbatch_size=" << batch
                << "\ncalibration_images=" << calibration_images << "\nfp32=" << fp32 << "\n";
    for (const auto& [name, value] : constants) fingerprint << name << "=" << value << "\n";
    nets::ModelInputOptions input;
    for (const std::string& name : apply_setting_options(vm, input))
      fingerprint << name << "=" << *given(vm, name == "input_mean" ? "input-mean" : "input-std")
                  << "\n";
    for (const auto& axis : grid.axes) {
      fingerprint << "axis " << axis.name << "=";
      for (std::size_t k = 0; k < axis.values.size(); ++k)
        fingerprint << (k ? "," : "") << axis.values[k];
      fingerprint << "\n";
    }
    meta.fingerprint = fingerprint.str();
    meta.git_revision = PCMSIM_GIT_REVISION;
    meta.seed = points.empty() ? 0 : points.front().config.seed;
    meta.model = vm["model"].as<std::string>();
    meta.data = vm["data"].as<std::string>();
    meta.trials = trials;
    std::istringstream lines(meta.fingerprint);
    for (std::string line; std::getline(lines, line);) meta.options.push_back(line);

    net = nets::load_model(meta.model, input);
    data = nets::load_dataset(meta.data, limit);
    nets::check_compatible(data, net);
    images = nets::normalized_images(data, net);
    bool any_calibration = false;
    for (const auto& p : points) any_calibration |= p.config.calibrate;
    if (any_calibration) {
      const nets::Dataset cal =
          load_calibration_data(vm["calibration-data"].as<std::string>(), calibration_images);
      nets::check_compatible(cal, net);
      calibration = nets::normalized_images(cal, net);
    }
    meta.images = images.rows();
    // What only the network can tell: per-layer precision names, and whether each programming
    // setting maps onto the chip (digital-layer names, tile budget). Mapping needs only shapes.
    const auto shapes = nets::layer_matrices(net);
    std::set<std::string> mapped;
    for (const nets::SweepPoint& p : points) {
      const auto settings = grid.settings(p.index);
      for (const auto& entry : p.config.layer_precision)
        if (net.find_layer(entry.first) < 0)
          core::throw_invalid(kTag, concat("point ", settings_text(settings), ": layer_precision "
                                           "names layer '", entry.first, "', which ",
                                           meta.model, " does not have"));
      if (!mapped.insert(p.programming_group).second) continue;
      try {
        mapping::plan(shapes, p.config.chip, p.config.mapper);
      } catch (const std::invalid_argument& e) {
        core::throw_invalid(kTag, concat("point ", settings_text(settings), ": ", e.what()));
      }
    }

    // What one inference costs at each point (docs/cost.md; none for ideal converters).
    for (const nets::SweepPoint& p : points) {
      const cost::CostInput input = nets::cost_input(net, p.config);
      std::optional<cost::CostReport> report;
      if (cost::uncostable_reason(input).empty())
        report = cost::compute_cost(input, cost_constants, p.config.io.p_in, p.config.io.p_out,
                                    p.config.io.b_in);
      point_costs.push_back(nets::cost_totals(report));
    }

    out_path = vm["out"].as<std::string>();
    const bool resume = vm["resume"].as<bool>();
    if (root) {
      if (fp32) {
        nets::Fp32Matmul reference(net);
        meta.fp32_accuracy = nets::accuracy_of(net, images, data.labels, reference, batch);
      }
      store = std::make_unique<nets::SweepStore>(out_path, meta, grid, point_configs, point_seeds);
      store->set_point_costs(cost_constants, point_costs);
      store->check_writable();
      store->lock();  // before looking at the existing files: another sweep may be writing them
      const bool exists = std::filesystem::exists(out_path) ||
                          std::filesystem::exists(out_path + ".journal");
      if (exists && !resume)
        core::throw_invalid(kTag, concat("--out = '", out_path, "' already exists: pass --resume "
                                         "to continue that sweep, or remove it"));
      if (resume) store->load_existing();
    }
  } catch (...) {
    setup_error = std::current_exception();
  }
  // Rank 0's check decides; the others only report their own failure when rank 0 had none.
  if (!session.all_ok(!setup_error)) {
    if (setup_error && root) std::rethrow_exception(setup_error);
    if (setup_error && session.size() > 1) {
      try {
        std::rethrow_exception(setup_error);
      } catch (const std::exception& e) {
        std::cerr << "pcmsim sweep (rank " << session.rank() << "): error: " << e.what() << "\n";
      }
    }
    return 2;
  }

  const int threads = mpi::set_threads_per_rank(session);
  nets::EvalData eval;
  eval.net = &net;
  eval.images = &images;
  eval.labels = &data.labels;
  eval.calibration = &calibration;
  eval.batch_size = batch;
  nets::UnitOptions unit_options;
  unit_options.reuse = reuse;
  unit_options.max_chips = max_chips;

  std::vector<nets::WorkUnit> units;
  std::int64_t total = static_cast<std::int64_t>(points.size()) * trials, done_before = 0;
  if (root) {
    store->write_file();  // the file exists and is readable from the start
    done_before = static_cast<std::int64_t>(store->records().size());
    nets::PlanOptions plan;
    plan.trials = trials;
    plan.min_units = session.size() > 1 ? 2 * session.size() : 1;
    units = nets::plan_sweep(points, plan, store->done());
    std::cerr << "sweep: " << points.size() << " points x " << trials << " trials = " << total
              << " evaluations, " << done_before << " already done; " << units.size()
              << " work units over " << session.size() << " process(es) x " << threads
              << " thread(s)\n";
  }

  // Progress (rank 0's main thread only): evaluations done, ETA, the point being computed.
  ProgressLine progress;
  std::mutex current_mutex;
  std::string current = "starting";
  std::int64_t recorded = 0;
  std::atomic<int> root_in_unit{0};
  auto show = [&] {
    std::string what;
    {
      std::lock_guard<std::mutex> lock(current_mutex);
      what = current;
    }
    // Recorded units plus the evaluations rank 0 has finished in its current unit.
    const std::int64_t shown = std::min<std::int64_t>(
        total - done_before, recorded + std::max(0, root_in_unit.load() - 1));
    progress.update(static_cast<int>(shown), static_cast<int>(total - done_before),
                    concat(store->finished_points(), "/", points.size(), " points; ", what));
  };
  const bool serial = session.size() == 1;
  nets::UnitStats stats;
  std::mutex stats_mutex;
  auto compute = [&](const nets::WorkUnit& unit) {
    omp_set_num_threads(threads);  // per thread: rank 0 computes on a second thread under MPI
    nets::UnitStats unit_stats;
    if (root) root_in_unit = 0;
    auto records = nets::run_unit(unit, points, eval, unit_options, &unit_stats,
                                  [&](std::int64_t i) {
                                    if (!root) return;
                                    ++root_in_unit;
                                    {
                                      std::lock_guard<std::mutex> lock(current_mutex);
                                      current = concat("point ", i, " ",
                                                       settings_text(grid.settings(i)), " trial ",
                                                       unit.trial);
                                    }
                                    if (serial) show();
                                  });
    if (root) root_in_unit = 0;
    std::lock_guard<std::mutex> lock(stats_mutex);
    stats.programmings += unit_stats.programmings;
    stats.snapshots += unit_stats.snapshots;
    stats.shared_snapshots += unit_stats.shared_snapshots;
    stats.evaluations += unit_stats.evaluations;
    return records;
  };
  std::map<int, int> units_by_rank;
  rusage usage_at_start{};
  getrusage(RUSAGE_SELF, &usage_at_start);
  const double cpu_at_start =
      usage_at_start.ru_utime.tv_sec + usage_at_start.ru_stime.tv_sec +
      1e-6 * (usage_at_start.ru_utime.tv_usec + usage_at_start.ru_stime.tv_usec);
  const auto start = std::chrono::steady_clock::now();
  try {
    mpi::run_units(
        session, units, compute,
        [&](const std::vector<nets::TrialRecord>& records, int rank) {
          ++units_by_rank[rank];
          store->add(records);
          recorded += static_cast<std::int64_t>(records.size());
          show();
        },
        show);
  } catch (const std::exception& e) {
    if (session.size() > 1) {
      std::cerr << "pcmsim sweep (rank " << session.rank() << "): error: " << e.what() << "\n";
      session.abort(1);
    }
    throw;
  }
  // CPU seconds of each rank (its compute thread included): the load balance, and the wall time
  // the sweep would take on otherwise idle cores (the largest).
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double cpu_seconds = usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
                             1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) -
                             cpu_at_start;
  const std::vector<double> cpu_by_rank = session.gather(cpu_seconds);
  if (!root) return 0;
  store->write_file();
  progress.finish();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // Summary table (the file has everything; long sweeps show their first rows).
  std::map<std::int64_t, std::vector<double>> per_point;
  for (const auto& entry : store->records()) per_point[entry.first.first].push_back(entry.second);
  std::cout << "model " << meta.model << ", " << meta.images << " images, " << trials
            << (trials == 1 ? " trial" : " trials (mean ± std, 95 % CI of the mean)");
  if (meta.fp32_accuracy >= 0)
    std::cout << ", FP32 " << std::fixed << std::setprecision(2) << 100 * meta.fp32_accuracy
              << " %";
  std::cout << "\n" << std::fixed << std::setprecision(2);
  int shown = 0;
  for (const auto& [point, acc] : per_point) {
    if (static_cast<int>(acc.size()) != trials) continue;
    if (++shown > 40) {
      std::cout << "  ... (" << store->finished_points() - 40 << " more in the file)\n";
      break;
    }
    const nets::PointSummary s = nets::summarize(acc);
    std::cout << "  " << std::left << std::setw(48) << settings_text(grid.settings(point))
              << std::right << std::setw(7) << 100 * s.mean;
    if (trials > 1)  // one trial has no spread to show
      std::cout << " ± " << std::setw(5) << 100 * s.std << "  CI95 [" << 100 * s.ci_low << ", "
                << 100 * s.ci_high << "]";
    std::cout << " %\n";
  }
  std::cout << std::defaultfloat << std::setprecision(4);
  const std::int64_t computed = recorded;
  std::cout << "computed " << computed << " evaluations in " << seconds << " s ("
            << (seconds > 0 ? 60.0 * computed / seconds : 0) << " per minute)";
  if (serial)
    std::cout << "; programmed " << stats.programmings << " chips, drew " << stats.snapshots
              << " snapshots, shared " << stats.shared_snapshots;
  if (!serial) {
    std::cout << "; work units per rank:";
    for (const auto& [rank, n] : units_by_rank) std::cout << " " << rank << ":" << n;
  }
  std::cout << "\ncpu seconds per rank:";
  for (double c : cpu_by_rank) std::cout << " " << c;
  std::cout << "\nresults: " << out_path << ", " << nets::csv_view_path(out_path) << "\n";
  return 0;
}

}  // namespace

PCMSIM_COMMAND("sweep",
               "accuracy over a grid of settings (precision, time, cell, ...): resumable, MPI",
               sweep_main);

}  // namespace pcmsim::cli
