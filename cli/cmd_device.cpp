// `pcmsim device`: Monte Carlo statistics of a device model (devices/device_report.h).
#include <boost/program_options.hpp>
#include <cmath>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.h"
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
      ("model", po::value<std::string>()->default_value("pcm"),
       ("device model; one of:" + model_list()).c_str())
      ("g-target", po::value<std::string>()->default_value("1,5,12.5,25"),
       "target conductances, uS, comma-separated, each in [0, g_max]")
      ("t-inference", po::value<std::string>()->default_value("0,3600,86400,31536000"),
       "inference times after programming, seconds, comma-separated, each >= 0 "
       "(0: the programmed state; 3600 = 1 h, 86400 = 1 day, 31536000 = 1 year)")
      ("samples", po::value<double>()->default_value(100000),
       "devices programmed per target conductance, an integer >= 1 (1e6 accepted)")
      ("seed", po::value<unsigned long long>()->default_value(7), "random seed")
      ("format", po::value<std::string>()->default_value("table"),
       "output format: 'table' (aligned, for reading) or 'csv'")
      ("out", po::value<std::string>()->default_value("-"),
       "output file, written atomically; '-' = standard output");

  po::options_description physics("Device model options (units in the names; SI otherwise)", 110, 60);
  physics.add_options()
      ("g-max-uS", po::value<double>(),
       "largest target conductance g_max, uS (default 25; for 'tabulated': the table's "
       "largest g_target_uS)")
      ("t0-s", po::value<double>()->default_value(pcm_defaults.t0),
       "drift reference time t0, seconds (t = t_inference + t0)")
      ("t-read-s", po::value<double>()->default_value(pcm_defaults.t_read, "2.5e-7"),
       "read duration t_read of the 1/f noise integral, seconds")
      ("prog-noise-scale", po::value<double>()->default_value(1.0),
       "multiplies the programming noise (0: none), dimensionless")
      ("drift-scale", po::value<double>()->default_value(1.0),
       "multiplies the drift exponent nu (0: no drift), dimensionless")
      ("read-noise-scale", po::value<double>()->default_value(1.0),
       "multiplies the read-noise amplitude Q_s (0: none), dimensionless")
      ("read-noise-reference", po::value<std::string>(),
       "pcm only: conductance Q_s is computed from: 'target' (g_T, published model; "
       "default) or 'programmed' (g_prog)")
      ("table", po::value<std::string>(),
       "tabulated only: device table, CSV or HDF5 (columns g_target_uS, prog_mean_uS, "
       "prog_std_uS, nu_mean, nu_std[, read_noise_q]; see devices/tabulated_model.h)")
      ("prog-noise-std-uS", po::value<double>(),
       "state-independent only: programming-noise std, uS (default 0.2)")
      ("nu-mean", po::value<double>(),
       "state-independent only: mean of the normal nu is folded from (default 0.1)")
      ("nu-std", po::value<double>(),
       "state-independent only: std of that normal (default 0.05)")
      ("read-noise-q", po::value<double>(),
       "state-independent only: constant Q_s, dimensionless (default 0.0138087 = PCM at "
       "g_T = g_max/2)");

  po::options_description all(110, 60);
  all.add(general).add(physics);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    core::throw_invalid("cli device", e.what());
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << all;
    return 0;
  }

  devices::DeviceSpec spec;
  spec.model = vm["model"].as<std::string>();
  // Options that only one model uses are an error with another (they would be ignored).
  auto only_for = [&](const char* option, const char* model) {
    if (vm.count(option) && spec.model != model)
      core::throw_invalid("cli device", core::concat("--", option, " is only used by --model ",
                                                     model, " (got --model ", spec.model, ")"));
  };
  only_for("read-noise-reference", "pcm");
  only_for("table", "tabulated");
  only_for("prog-noise-std-uS", "state-independent");
  only_for("nu-mean", "state-independent");
  only_for("nu-std", "state-independent");
  only_for("read-noise-q", "state-independent");

  const bool g_max_given = vm.count("g-max-uS") > 0;
  const double g_max = g_max_given ? core::siemens_from_uS(vm["g-max-uS"].as<double>())
                                   : pcm_defaults.g_max;
  const double t0 = vm["t0-s"].as<double>(), t_read = vm["t-read-s"].as<double>();
  const double ps = vm["prog-noise-scale"].as<double>();
  const double ds = vm["drift-scale"].as<double>();
  const double rs = vm["read-noise-scale"].as<double>();

  spec.pcm = {g_max, t0, t_read, ps, ds, rs, devices::ReadNoiseReference::target};
  if (vm.count("read-noise-reference"))
    spec.pcm.read_noise_reference =
        devices::read_noise_reference_from_string(vm["read-noise-reference"].as<std::string>());
  spec.ideal.g_max = g_max;
  auto& si = spec.state_independent;
  si.g_max = g_max;
  si.t0 = t0;
  si.t_read = t_read;
  si.prog_noise_scale = ps;
  si.drift_scale = ds;
  si.read_noise_scale = rs;
  if (vm.count("prog-noise-std-uS"))
    si.prog_noise_std = core::siemens_from_uS(vm["prog-noise-std-uS"].as<double>());
  if (vm.count("nu-mean")) si.nu_mean = vm["nu-mean"].as<double>();
  if (vm.count("nu-std")) si.nu_std = vm["nu-std"].as<double>();
  if (vm.count("read-noise-q")) si.read_noise_q = vm["read-noise-q"].as<double>();
  auto& tab = spec.tabulated;
  tab.table_path = vm.count("table") ? vm["table"].as<std::string>() : "";
  tab.g_max = g_max_given ? g_max : 0.0;
  tab.t0 = t0;
  tab.t_read = t_read;
  tab.prog_noise_scale = ps;
  tab.drift_scale = ds;
  tab.read_noise_scale = rs;
  if (spec.model == "tabulated" && tab.table_path.empty())
    core::throw_invalid("cli device", "--model tabulated needs --table FILE");

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
  config.seed = vm["seed"].as<unsigned long long>();
  const std::string format = vm["format"].as<std::string>();
  if (format != "table" && format != "csv")
    core::throw_invalid("cli device",
                        core::concat("--format = '", format, "': must be 'table' or 'csv'"));

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
