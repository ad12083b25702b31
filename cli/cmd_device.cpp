// `pcmsim device`: Monte Carlo statistics of a device model (devices/device_report.h).
#include <boost/program_options.hpp>
#include <cmath>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/cost_options.h"
#include "cli/setting_options.h"
#include "cli/util.h"
#include "core/error.h"
#include "core/types.h"
#include "devices/device_factory.h"
#include "devices/device_report.h"

namespace po = boost::program_options;

namespace pcmsim::cli {
namespace {

constexpr const char* kUsage =
    "usage: pcmsim device [options]\n\n"
    "Monte Carlo statistics of a device model: for each target conductance, program --samples\n"
    "devices once, then at each inference time take a snapshot of the same devices (drift and\n"
    "accumulated read noise) and report the mean and std of their conductance and of their\n"
    "drift exponents nu. Output columns:\n"
    "  model,g_target_uS,t_inference_s,samples,mean_uS,std_uS,nu_mean,nu_std\n"
    "Results are bit-identical for any OMP_NUM_THREADS.\n";

std::string model_list() {
  std::string s;
  for (const auto& info : devices::device_model_infos())
    s += "\n    " + info.name + ": " + info.summary;
  return s;
}

int run_device(const std::vector<std::string>& args) {
  const devices::DeviceReportConfig report_defaults;
  const devices::PcmParams pcm_defaults;
  const devices::StateIndependentParams si_defaults;

  po::options_description general("Report options", 110, 60);
  general.add_options()
      ("help,h", "show this help and exit")
      ("g-target", po::value<std::string>()->default_value("1,5,12.5,25"),
       "target conductances, uS, comma-separated, each in [0, g_max]")
      ("t-inference", po::value<std::string>()->default_value("0,3600,86400,31536000"),
       "inference times after programming, seconds, comma-separated, each >= 0 "
       "(0: the programmed state; 3600 = 1 h, 86400 = 1 day, 31536000 = 1 year)")
      ("samples", po::value<double>()->default_value(100000),
       "devices programmed per target conductance, an integer >= 1 (1e6 accepted)")
      ("seed", po::value<std::string>()->default_value("7"), "random seed (0..2^64-1)")
      ("format", po::value<std::string>()->default_value("table"),
       "output format: 'table' (aligned, for reading) or 'csv'")
      ("out", po::value<std::string>()->default_value("-"),
       "output file, written atomically; '-' = standard output");

  po::options_description physics("Device model settings (as in pcmsim run)", 110, 60);
  add_preset_option(physics);
  add_setting_options<devices::DeviceSpec>(physics);
  po::options_description hidden;
  add_deprecated_options(hidden);
  hidden.add_options()("model", po::value<std::string>(), "deprecated: --device-model");
  po::options_description all(110, 60);
  all.add(general).add(physics);
  po::options_description parsed(110, 60);
  parsed.add(all).add(hidden);
  po::variables_map vm;
  try {
    po::store(parse_arguments(args, parsed), vm);
    po::notify(vm);
    if (vm.count("model")) {
      if (vm.count("device-model"))
        core::throw_invalid("cli device", "--model and --device-model name the same setting");
      std::cerr << "pcmsim: warning: pcmsim device --model is deprecated, use --device-model\n";
      vm.insert({"device-model", vm["model"]});
    }
    resolve_deprecated(vm);
  } catch (const po::error& e) {
    core::throw_invalid("cli device", e.what());
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\nDevice models:" << model_list() << "\n\n" << all;
    return 0;
  }

  devices::DeviceSpec spec;
  spec.tabulated.g_max = 0;  // the table's largest g_target unless --g-max-uS is given
  apply_preset_option(vm, spec);  // a preset's device values, under the explicit options
  apply_setting_options(vm, spec);
  if (core::canonical_setting_name(spec.model) == "tabulated") {
    if (!given(vm, "g-max-uS")) spec.tabulated.g_max = 0;
    if (spec.tabulated.table_path.empty())
      core::throw_invalid("cli device", "--device-model tabulated needs --device-table FILE");
  }
  spec.validate();

  devices::DeviceReportConfig config;
  config.g_targets.clear();
  for (double g : parse_number_list(vm["g-target"].as<std::string>(), "g-target"))
    config.g_targets.push_back(core::siemens_from_uS(g));
  config.t_inference = parse_number_list(vm["t-inference"].as<std::string>(), "t-inference");
  const double samples = vm["samples"].as<double>();
  if (!(samples >= 1) || samples != std::floor(samples) || samples > 1e12)
    core::throw_invalid("cli device",
                        core::concat("--samples = ", samples, ": must be an integer in [1, 1e12]"));
  config.samples = static_cast<std::size_t>(samples);
  config.seed = std::get<std::uint64_t>(core::parse_value(
      "--seed", core::ValueType::unsigned_integer, vm["seed"].as<std::string>()));
  const std::string format = vm["format"].as<std::string>();
  if (format != "table" && format != "csv")
    core::throw_invalid("cli device",
                        core::concat("--format = '", format, "': must be 'table' or 'csv'"));

  check_text_output_path(vm["out"].as<std::string>(), "out");  // before any work

  std::shared_ptr<const devices::DeviceModel> model;
  try {
    model = devices::make_device_model(spec);
  } catch (const std::runtime_error& e) {
    // A malformed table file is bad input too (exit 2), like any other bad option.
    throw std::invalid_argument(e.what());
  }
  const auto rows = devices::device_report(*model, config);
  write_text_atomically(vm["out"].as<std::string>(), format == "csv"
                                                         ? devices::device_report_csv(rows)
                                                         : devices::device_report_table(rows));
  return 0;
}

}  // namespace

PCMSIM_COMMAND("device", "Monte Carlo statistics of a device model (conductance vs time)",
               run_device);

}  // namespace pcmsim::cli
