// `pcmsim run`: the main job. Evaluates a network on a simulated PCM chip over inference times
// and Monte Carlo trials beside its FP32 accuracy, prints a table (or CSV) and writes the results
// with the full configuration, seeds and git revision to HDF5 and CSV.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "git_revision.h"  // generated at build time: PCMSIM_GIT_REVISION
#include "cli/cost_options.h"
#include "cli/progress.h"
#include "cli/sim_options.h"
#include "cli/util.h"
#include "core/error.h"
#include "cli/setting_options.h"
#include "nets/cost_input.h"
#include "nets/onnx_import.h"
#include "nets/results.h"
#include "nets/dataset.h"
#include "nets/evaluation.h"
#include "nets/model_io.h"

namespace pcmsim::cli {
namespace {

std::string time_label(double t) {
  struct Unit { double seconds; const char* name; };
  const Unit units[] = {{31536000, "y"}, {86400, "d"}, {3600, "h"}, {60, "min"}, {1, "s"}};
  for (const Unit& u : units) {
    const double n = t / u.seconds;
    if (t >= u.seconds && n == static_cast<long>(n)) return core::concat(n, " ", u.name);
  }
  return core::concat(t, " s");
}

int run_main(const std::vector<std::string>& args) {
  po::options_description options("pcmsim run [options]");
  options.add_options()
    ("help,h", "show this help")
    ("model", po::value<std::string>(),
     "network file: HDF5 pcmsim-model, or ONNX (.onnx, docs/onnx.md) [default: the zoo's "
     "resnet_hwa_p8.h5]")
    ("data", po::value<std::string>(),
     "evaluation data: fashion-mnist:t10k|train[@DIR], an HDF5 data set, or an IDX images file "
     "[default fashion-mnist:t10k]")
    ("limit", po::value<long>(), "evaluate the first N images (0 = all) [default 0]")
    ("calibration-data", po::value<std::string>(),
     "data for --calibrate (the training set, not the test set) [default fashion-mnist:train]")
    ("config-from", po::value<std::string>(),
     "start from the configuration, model and data recorded in a results file (.h5); options "
     "given here override it")
    ("format", po::value<std::string>()->default_value("table"), "output: table or csv")
    ("out", po::value<std::string>()->default_value("pcmsim_run.h5"),
     "results file (HDF5); a CSV view is written beside it with the extension .csv");
  po::options_description settings("chip, converter, digital-unit and evaluation settings");
  add_simulation_options(settings);
  add_evaluation_options(settings);
  add_setting_options<nets::ModelInputOptions>(settings);
  options.add(settings);
  po::options_description cost_settings("cost model (docs/cost.md)");
  add_cost_options(cost_settings);
  options.add(cost_settings);
  const po::variables_map vm = parse_options(args, options, "cli");
  if (vm.count("help")) {
    std::cout << options << "\n";
    return 0;
  }

  const std::string format = vm["format"].as<std::string>();
  if (format != "table" && format != "csv")
    core::throw_invalid("cli", core::concat("--format = '", format, "': expected table or csv"));
  nets::RunRecord run;
  run.model = default_model_path();
  run.data = "fashion-mnist:t10k";
  run.calibration_data = "fashion-mnist:train";
  if (vm.count("config-from"))
    nets::read_run_config(vm["config-from"].as<std::string>(), run.config, run.evaluation, &run);
  if (vm.count("model")) run.model = vm["model"].as<std::string>();
  if (vm.count("data")) run.data = vm["data"].as<std::string>();
  if (vm.count("calibration-data")) run.calibration_data = vm["calibration-data"].as<std::string>();
  if (vm.count("limit")) run.limit = vm["limit"].as<long>();
  if (run.limit < 0)
    core::throw_invalid("cli", core::concat("--limit = ", run.limit, ": must be >= 0"));
  run.config = simulation_config(vm, run.config);
  run.evaluation = evaluation_options(vm, run.evaluation);
  run.cost_params = cost_params(vm, run.cost_params);

  // Check the output location before any work: a run must not end in an unwritable path.
  const std::string out_path = vm["out"].as<std::string>();
  check_output_path(out_path, "out");

  nets::ModelInputOptions input;
  apply_setting_options(vm, input);
  const nets::Network net = nets::load_model(run.model, input);
  const nets::Dataset data = nets::load_dataset(run.data, run.limit);
  nets::check_compatible(data, net);
  // Learned input ranges only act under static_range scaling: say so rather than ignore them.
  const bool has_learned = std::any_of(net.layers.begin(), net.layers.end(), [](const auto& L) {
    return L.learned_input_range > 0;
  });
  if (has_learned && run.config.use_learned_input_ranges &&
      run.config.io.noise_management != core::NoiseManagement::static_range)
    std::cerr << "pcmsim: note: the model holds learned input ranges; they are used only with "
                 "--noise-management static_range (now "
              << core::to_string(run.config.io.noise_management) << ")\n";
  // What one inference costs on this chip (never changes a result; computed before the work so
  // that a bad layer name or constant stops the run early).
  const cost::CostInput cost_input = nets::cost_input(net, run.config);
  const std::string uncostable = cost::uncostable_reason(cost_input);
  if (uncostable.empty())
    run.cost = cost::compute_cost(cost_input, run.cost_params, run.config.io.p_in,
                                  run.config.io.p_out, run.config.io.b_in);
  else
    std::cerr << "pcmsim: note: no cost reported: " << uncostable << "\n";
  const core::MatrixF images = nets::normalized_images(data, net);
  core::MatrixF calibration;
  if (run.config.calibrate) {
    const nets::Dataset cal =
        load_calibration_data(run.calibration_data, run.evaluation.calibration_images);
    nets::check_compatible(cal, net);
    calibration = nets::normalized_images(cal, net);
  }

  ProgressLine progress;
  run.result = nets::evaluate(
      net, images, data.labels, run.config, run.evaluation, calibration,
      [&](const nets::Progress& p) { progress.update(p.done, p.total, p.what); });
  progress.finish();

  run.model_name = net.name.empty() ? run.model : net.name;
  run.git_revision = PCMSIM_GIT_REVISION;
  nets::write_run_results(out_path, run);

  if (format == "csv") {
    std::cout << nets::run_results_csv(run);
    return 0;
  }
  // The header names every setting that differs from its default, so two runs can be told apart.
  const nets::SimulationConfig defaults;
  std::string changed;
  for (const auto& s : core::settings<nets::SimulationConfig>())
    if (!s.shortcut && s.get(run.config) != s.get(defaults))
      changed += (changed.empty() ? "" : ", ") + std::string(s.info.external_name()) + " " +
                 s.text(run.config);
  const int trials = run.evaluation.trials;
  std::cout << "model    " << run.model_name << " (" << run.model << ")\n"
            << "data     " << data.name << ", " << run.result.images << " images\n"
            << "chip     " << run.config.chip.tile_rows << "x" << run.config.chip.tile_cols
            << " tiles, device " << run.config.device.model << ", p_in " << run.config.io.p_in
            << ", p_out " << run.config.io.p_out << ", GDC " << (run.config.gdc ? "on" : "off")
            << ", " << trials << (trials == 1 ? " trial" : " trials") << ", seed "
            << run.config.seed << "\n"
            << "settings " << (changed.empty() ? "all defaults" : changed) << "\n\n";
  std::cout << std::fixed << std::setprecision(2);
  // Columns: time (12, left), accuracy (mean, or "mean ± std": 16), FP32 (14).
  const int accuracy_width = trials > 1 ? 16 : 12;
  std::cout << "  " << std::left << std::setw(12) << "t_inference" << std::right
            << std::setw(accuracy_width) << "accuracy (%)" << std::setw(14) << "FP32 (%)" << "\n";
  for (const auto& t : run.result.times) {
    std::cout << "  " << std::left << std::setw(12) << time_label(t.t_inference) << std::right;
    if (trials > 1)
      std::cout << std::setw(8) << 100 * t.mean << " ± " << std::setw(5) << 100 * t.std;
    else
      std::cout << std::setw(accuracy_width) << 100 * t.mean;
    std::cout << std::setw(14) << 100 * run.result.fp32_accuracy << "\n";
  }
  if (trials > 1) std::cout << "\n(± one standard deviation over " << trials << " trials)\n";
  if (run.cost) {
    const cost::CostReport& c = *run.cost;
    std::cout << std::setprecision(3) << "\ncost     " << c.energy_per_inference * 1e6
              << " uJ and " << c.latency * 1e6 << " us per inference, " << std::setprecision(0)
              << c.inferences_per_s << " inferences/s, " << std::setprecision(2) << c.area_mm2
              << " mm2 of tiles; peak " << c.peak.tops << " TOPS, " << c.peak.tops_per_w
              << " TOPS/W (per layer: " << nets::cost_view_path(out_path) << ")\n";
  }
  std::cout << "\nresults: " << out_path << ", " << nets::csv_view_path(out_path) << "\n";
  return 0;
}

}  // namespace

PCMSIM_COMMAND("run", "evaluate a network on a simulated PCM chip over drift time (main job)",
               run_main);

}  // namespace pcmsim::cli
