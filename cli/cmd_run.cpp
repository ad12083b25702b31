// `pcmsim run`: the main job. Evaluates a network on a simulated PCM chip over inference times
// and Monte Carlo trials beside its FP32 accuracy, prints a table (or CSV) and writes the results
// with the full configuration, seeds and git revision to HDF5 and CSV.
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/command.h"
#include "git_revision.h"  // generated at build time: PCMSIM_GIT_REVISION
#include "cli/progress.h"
#include "cli/sim_options.h"
#include "cli/util.h"
#include "core/error.h"
#include "core/hdf5_io.h"
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

std::string results_csv(const std::string& model, const nets::SimulationConfig& config,
                        const nets::EvaluationResult& result, int trials) {
  std::ostringstream out;
  out.precision(6);
  out << "model,p_in,p_out,t_inference_s,gdc,trials,acc_mean,acc_std,fp32_acc\n";
  for (const auto& t : result.times)
    out << model << ',' << config.io.p_in << ',' << config.io.p_out << ',' << t.t_inference << ','
        << (config.gdc ? "on" : "off") << ',' << trials << ',' << t.mean << ',' << t.std << ','
        << result.fp32_accuracy << '\n';
  return out.str();
}

void write_results_hdf5(const std::string& path, const std::vector<std::string>& options,
                        const nets::SimulationConfig& config,
                        const nets::EvaluationResult& result) {
  const std::string partial = path + ".partial";
  try {
    core::h5::File file = core::h5::File::create(partial);
    file.write_attribute("format", std::string("pcmsim-run"));
    file.write_attribute("format_version", std::int64_t{1});
    file.write_attribute("git_revision", std::string(PCMSIM_GIT_REVISION));
    file.write_attribute("seed", static_cast<std::int64_t>(config.seed));
    file.write_attribute("options", options);
    file.write_attribute("fp32_accuracy", result.fp32_accuracy);
    file.write_attribute("images", static_cast<std::int64_t>(result.images));
    std::vector<double> times, mean, stdev, per_trial;
    for (const auto& t : result.times) {
      times.push_back(t.t_inference);
      mean.push_back(t.mean);
      stdev.push_back(t.std);
      per_trial.insert(per_trial.end(), t.accuracy.begin(), t.accuracy.end());
    }
    const std::size_t trials = result.times.empty() ? 0 : result.times[0].accuracy.size();
    file.write_dataset("t_inference_s", times.data(), {times.size()});
    file.write_dataset("acc_mean", mean.data(), {mean.size()});
    file.write_dataset("acc_std", stdev.data(), {stdev.size()});
    file.write_dataset("accuracy", per_trial.data(), {times.size(), trials});
    file.flush();
    file.close();
  } catch (...) {
    std::remove(partial.c_str());
    throw;
  }
  if (std::rename(partial.c_str(), path.c_str()) != 0) {
    std::remove(partial.c_str());
    core::throw_io("pcmsim run", core::concat("cannot move the finished file to '", path, "'"));
  }
}

int run_main(const std::vector<std::string>& args) {
  po::options_description options("pcmsim run [options]");
  options.add_options()
    ("help,h", "show this help")
    ("model", po::value<std::string>()->default_value(default_model_path()),
     "network file (HDF5 pcmsim-model)")
    ("data", po::value<std::string>()->default_value("fashion-mnist:t10k"),
     "evaluation data: fashion-mnist:t10k|train[@DIR], an HDF5 data set, or an IDX images file")
    ("limit", po::value<long>()->default_value(0), "evaluate the first N images (0 = all)")
    ("t-inference", po::value<std::string>()->default_value("1,3600,86400,31536000"),
     "inference times after programming (s), comma-separated")
    ("trials", po::value<int>()->default_value(5), "Monte Carlo trials (programmed chips)")
    ("batch", po::value<long>()->default_value(256), "images per forward pass")
    ("calibration-data", po::value<std::string>()->default_value("fashion-mnist:train"),
     "data for --calibrate (the training set, not the test set)")
    ("calibration-images", po::value<long>()->default_value(256),
     "calibration images (first N of --calibration-data)")
    ("format", po::value<std::string>()->default_value("table"), "output: table or csv")
    ("out", po::value<std::string>()->default_value("pcmsim_run.h5"),
     "results file (HDF5); a CSV view is written beside it with the extension .csv");
  add_simulation_options(options);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(options).run(), vm);
  if (vm.count("help")) {
    std::cout << options << "\n";
    return 0;
  }
  po::notify(vm);

  const std::string format = vm["format"].as<std::string>();
  if (format != "table" && format != "csv")
    core::throw_invalid("cli", core::concat("--format = '", format, "': expected table or csv"));
  const nets::SimulationConfig config = simulation_config(vm);
  nets::EvaluationOptions eval;
  eval.t_inference = parse_number_list(vm["t-inference"].as<std::string>(), "t-inference");
  eval.trials = vm["trials"].as<int>();
  eval.batch_size = vm["batch"].as<long>();
  eval.calibration_images = vm["calibration-images"].as<long>();
  const long limit = vm["limit"].as<long>();
  if (limit < 0) core::throw_invalid("cli", core::concat("--limit = ", limit, ": must be >= 0"));
  eval.validate();

  // Check the output location before any work: a run must not end in an unwritable path.
  const std::string out_path = vm["out"].as<std::string>();
  const std::filesystem::path out_dir = std::filesystem::absolute(out_path).parent_path();
  if (!std::filesystem::is_directory(out_dir))
    core::throw_invalid("cli", core::concat("--out = '", out_path, "': folder '",
                                            out_dir.string(), "' does not exist"));

  const std::string model_path = vm["model"].as<std::string>();
  const nets::Network net = nets::load_network(model_path);
  const nets::Dataset data = nets::load_dataset(vm["data"].as<std::string>(), limit);
  nets::check_compatible(data, net);
  const core::MatrixF images = nets::normalized_images(data, net);
  core::MatrixF calibration;
  if (config.calibrate) {
    const nets::Dataset cal =
        nets::load_dataset(vm["calibration-data"].as<std::string>(), eval.calibration_images);
    nets::check_compatible(cal, net);
    calibration = nets::normalized_images(cal, net);
  }

  ProgressLine progress;
  const nets::EvaluationResult result = nets::evaluate(
      net, images, data.labels, config, eval, calibration,
      [&](const nets::Progress& p) { progress.update(p.done, p.total, p.what); });
  progress.finish();

  const std::string model_name = net.name.empty() ? model_path : net.name;
  const std::string csv = results_csv(model_name, config, result, eval.trials);
  write_results_hdf5(out_path, describe_options(vm), config, result);
  std::filesystem::path csv_path(out_path);
  csv_path.replace_extension(".csv");
  write_text_atomically(csv_path.string(), csv);

  if (format == "csv") {
    std::cout << csv;
    return 0;
  }
  std::cout << "model    " << model_name << " (" << model_path << ")\n"
            << "data     " << data.name << ", " << result.images << " images\n"
            << "chip     " << config.chip.tile_rows << "x" << config.chip.tile_cols
            << " tiles, device " << config.device.model << ", p_in " << config.io.p_in
            << ", p_out " << config.io.p_out << ", GDC " << (config.gdc ? "on" : "off")
            << ", " << eval.trials << " trials, seed " << config.seed << "\n\n";
  std::cout << std::fixed << std::setprecision(2);
  std::cout << "  t_inference      accuracy (%)      FP32 (%)\n";
  for (const auto& t : result.times)
    std::cout << "  " << std::left << std::setw(12) << time_label(t.t_inference) << std::right
              << std::setw(8) << 100 * t.mean << " ± " << std::setw(5) << 100 * t.std
              << std::setw(14) << 100 * result.fp32_accuracy << "\n";
  std::cout << "\nresults: " << out_path << ", " << csv_path.string() << "\n";
  return 0;
}

}  // namespace

PCMSIM_COMMAND("run", "evaluate a network on a simulated PCM chip over drift time (main job)",
               run_main);

}  // namespace pcmsim::cli
