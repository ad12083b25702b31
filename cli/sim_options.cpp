#include "cli/sim_options.h"

#include <sstream>

#include "cli/util.h"
#include "core/error.h"

namespace pcmsim::cli {
namespace {

bool parse_on_off(const std::string& text, const std::string& option) {
  if (text == "on" || text == "true" || text == "1") return true;
  if (text == "off" || text == "false" || text == "0") return false;
  core::throw_invalid("cli", core::concat("--", option, " = '", text, "': expected on or off"));
}

std::vector<std::string> split_names(const std::string& text) {
  std::vector<std::string> names;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty()) names.push_back(item);
  return names;
}

}  // namespace

std::string default_model_path() {
  return std::string(PCMSIM_SOURCE_DIR) + "/nets/zoo/resnet_hwa.h5";
}

void add_simulation_options(po::options_description& options) {
  options.add_options()
    ("tile", po::value<std::string>()->default_value("256x256"),
     "crossbar tile size ROWSxCOLS (devices)")
    ("tiles", po::value<long>()->default_value(0), "number of tiles on the chip, 0 = unbounded")
    ("digital-layers", po::value<std::string>()->default_value(""),
     "comma-separated layer names kept digital (FP32); 'first'/'last' name those layers")
    ("weight-scaling", po::value<std::string>()->default_value("per_tile"),
     "weight-to-conductance scale per_tile or per_column")
    ("device", po::value<std::string>()->default_value("pcm"),
     "device model: pcm, ideal, state-independent, tabulated")
    ("device-table", po::value<std::string>()->default_value(""),
     "CSV or HDF5 table of a tabulated device model")
    ("g-max-uS", po::value<double>()->default_value(25.0), "largest device conductance (µS)")
    ("prog-noise-scale", po::value<double>()->default_value(1.0), "programming-noise scale")
    ("drift-scale", po::value<double>()->default_value(1.0), "drift-exponent scale")
    ("read-noise-scale", po::value<double>()->default_value(1.0), "1/f read-noise scale")
    ("cell", po::value<std::string>()->default_value("pair"),
     "unit cell: pair, multi_pair, bit_sliced")
    ("pairs", po::value<int>()->default_value(2), "device pairs per weight (multi_pair)")
    ("significance", po::value<double>()->default_value(2.0),
     "significance factor between pairs (multi_pair)")
    ("weight-bits", po::value<int>()->default_value(8), "weight bits (bit_sliced)")
    ("slice-bits", po::value<int>()->default_value(2), "bits per weight slice (bit_sliced)")
    ("p-in", po::value<int>()->default_value(8), "DAC bits (0 = off, 2..16)")
    ("p-out", po::value<int>()->default_value(8), "ADC bits (0 = off, 2..16)")
    ("b-in", po::value<int>()->default_value(0), "bit-serial input bits per cycle (0 = parallel)")
    ("layer-precision", po::value<std::vector<std::string>>()->composing(),
     "per-layer converter bits NAME:P_IN:P_OUT (-1 inherits); repeatable")
    ("out-bound", po::value<double>()->default_value(10.0),
     "ADC full scale (normalised units: a full-scale weight times a full-scale input is 1)")
    ("out-noise", po::value<double>()->default_value(0.04), "output noise std (normalised units)")
    ("in-noise", po::value<double>()->default_value(0.0), "DAC output noise std (normalised units)")
    ("noise-management", po::value<std::string>()->default_value("abs_max"),
     "input scaling: abs_max, static_range (calibrated), none")
    ("bound-management", po::value<std::string>()->default_value("automatic"),
     "iterative bound management: automatic, on, off")
    ("accumulator", po::value<std::string>()->default_value("float64"),
     "digital accumulation: float64, float32, fixed_point, block_floating_point")
    ("acc-bits", po::value<int>()->default_value(32), "fixed-point accumulator bits")
    ("gdc", po::value<std::string>()->default_value("on"), "global drift compensation on/off")
    ("gdc-granularity", po::value<std::string>()->default_value("per_tile"),
     "GDC factor per_tile or per_column")
    ("gdc-reference", po::value<std::string>()->default_value("programmed"),
     "GDC reference: programmed (read at t = 0) or exact (ideal weights)")
    ("calibrate", po::value<std::string>()->default_value("off"),
     "calibrate converter ranges on calibration data after programming: on/off")
    ("calibration-statistic", po::value<std::string>()->default_value("max"),
     "calibrated range statistic: max or percentile")
    ("calibration-percentile", po::value<double>()->default_value(99.9),
     "percentile for --calibration-statistic percentile")
    ("seed", po::value<unsigned long long>()->default_value(0), "random seed");
}

nets::SimulationConfig simulation_config(const po::variables_map& vm) {
  nets::SimulationConfig c;
  const auto [rows, cols] = parse_tile_shape(vm["tile"].as<std::string>(), "tile");
  c.chip.tile_rows = rows;
  c.chip.tile_cols = cols;
  c.chip.num_tiles = vm["tiles"].as<long>();
  c.mapper.digital_layers = split_names(vm["digital-layers"].as<std::string>());
  c.mapper.weight_scaling = mapping::parse_weight_scaling(vm["weight-scaling"].as<std::string>());

  c.device.model = vm["device"].as<std::string>();
  const double g_max = core::siemens_from_uS(vm["g-max-uS"].as<double>());
  const double prog = vm["prog-noise-scale"].as<double>();
  const double drift = vm["drift-scale"].as<double>();
  const double read = vm["read-noise-scale"].as<double>();
  c.device.pcm.g_max = g_max;
  c.device.pcm.prog_noise_scale = prog;
  c.device.pcm.drift_scale = drift;
  c.device.pcm.read_noise_scale = read;
  c.device.ideal.g_max = g_max;
  c.device.state_independent.g_max = g_max;
  c.device.state_independent.prog_noise_scale = prog;
  c.device.state_independent.drift_scale = drift;
  c.device.state_independent.read_noise_scale = read;
  c.device.tabulated.table_path = vm["device-table"].as<std::string>();
  c.device.tabulated.prog_noise_scale = prog;
  c.device.tabulated.drift_scale = drift;
  c.device.tabulated.read_noise_scale = read;

  c.cell.kind = devices::parse_cell_kind(vm["cell"].as<std::string>());
  c.cell.num_pairs = vm["pairs"].as<int>();
  c.cell.significance_factor = vm["significance"].as<double>();
  c.cell.weight_bits = vm["weight-bits"].as<int>();
  c.cell.slice_bits = vm["slice-bits"].as<int>();

  c.io.p_in = vm["p-in"].as<int>();
  c.io.p_out = vm["p-out"].as<int>();
  c.io.b_in = vm["b-in"].as<int>();
  c.io.out_bound = vm["out-bound"].as<double>();
  c.io.out_noise = vm["out-noise"].as<double>();
  c.io.in_noise = vm["in-noise"].as<double>();
  c.io.noise_management =
      core::noise_management_from_string(vm["noise-management"].as<std::string>());
  c.io.bound_management =
      core::bound_management_from_string(vm["bound-management"].as<std::string>());
  if (vm.count("layer-precision")) {
    for (const std::string& spec : vm["layer-precision"].as<std::vector<std::string>>()) {
      const auto colon2 = spec.rfind(':');
      const auto colon1 = colon2 == std::string::npos ? colon2 : spec.rfind(':', colon2 - 1);
      if (colon1 == std::string::npos || colon1 == 0)
        core::throw_invalid("cli", core::concat("--layer-precision = '", spec,
                                                "': expected NAME:P_IN:P_OUT"));
      const auto bits = parse_int_list(spec.substr(colon1 + 1, colon2 - colon1 - 1) + "," +
                                           spec.substr(colon2 + 1),
                                       "layer-precision");
      c.layer_precision[spec.substr(0, colon1)] = nets::LayerPrecision{bits[0], bits[1]};
    }
  }

  c.digital.accumulator = core::accumulator_from_string(vm["accumulator"].as<std::string>());
  c.digital.acc_bits = vm["acc-bits"].as<int>();
  c.gdc = parse_on_off(vm["gdc"].as<std::string>(), "gdc");
  c.gdc_params.granularity =
      core::gdc_granularity_from_string(vm["gdc-granularity"].as<std::string>());
  c.gdc_params.reference = core::gdc_reference_from_string(vm["gdc-reference"].as<std::string>());
  c.calibrate = parse_on_off(vm["calibrate"].as<std::string>(), "calibrate");
  c.calibration.statistic =
      core::range_statistic_from_string(vm["calibration-statistic"].as<std::string>());
  c.calibration.percentile = vm["calibration-percentile"].as<double>();
  c.seed = vm["seed"].as<unsigned long long>();
  c.validate();
  return c;
}

std::vector<std::string> describe_options(const po::variables_map& vm) {
  std::vector<std::string> lines;
  for (const auto& [name, value] : vm) {
    std::ostringstream text;
    const auto& v = value.value();
    if (auto* s = boost::any_cast<std::string>(&v)) text << *s;
    else if (auto* i = boost::any_cast<int>(&v)) text << *i;
    else if (auto* l = boost::any_cast<long>(&v)) text << *l;
    else if (auto* u = boost::any_cast<unsigned long long>(&v)) text << *u;
    else if (auto* d = boost::any_cast<double>(&v)) { text.precision(17); text << *d; }
    else if (auto* list = boost::any_cast<std::vector<std::string>>(&v)) {
      for (std::size_t i = 0; i < list->size(); ++i) text << (i ? ";" : "") << (*list)[i];
    } else if (auto* ll = boost::any_cast<long long>(&v)) text << *ll;
    else continue;
    lines.push_back(name + "=" + text.str());
  }
  return lines;
}

}  // namespace pcmsim::cli
