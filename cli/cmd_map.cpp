// `pcmsim map`: place a model's layers on crossbar tiles and report the utilisation
// (mapping/mapping_plan.h, mapping/utilisation.h).
#include <boost/program_options.hpp>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/cost_options.h"
#include "cli/setting_options.h"
#include "cli/sim_options.h"
#include "cli/util.h"
#include "core/error.h"
#include "mapping/mapping_plan.h"
#include "mapping/utilisation.h"
#include "nets/cost_input.h"
#include "nets/model_io.h"
#include "nets/onnx_import.h"
#include "nets/network.h"

namespace po = boost::program_options;

namespace pcmsim::cli {
namespace {

constexpr const char* kWhere = "cli map";

constexpr const char* kUsage =
    "usage: pcmsim map --model FILE [options]\n\n"
    "Places every linear and conv layer of a model (pcmsim HDF5 model, docs/formats.md, or ONNX) on\n"
    "crossbar tiles and prints, per layer, its weight matrix (rows = inputs, cols = outputs per\n"
    "group), the tiles it uses and their utilisation (weights / cells of the tiles used), and\n"
    "the totals. A model that does not fit a bounded chip (--num-tiles N) is an error that says how\n"
    "many tiles it needs. See docs/mapping.md.\n\n"
    "It also reports what the mapped network costs (docs/cost.md): energy, latency and area per\n"
    "layer and per inference, and the chip's peak figures (TOPS, TOPS/W, energy and time of a\n"
    "full-tile MVM), from the cost constants (--preset, --cost-file, the cost options). It takes\n"
    "every chip setting of pcmsim run; the chip, mapper, cell, converter and digital-unit\n"
    "settings change its report.\n";

int run_map(const std::vector<std::string>& args) {
  po::options_description opts("Options", 110, 60);
  opts.add_options()
      ("help,h", "show this help and exit")
      ("model", po::value<std::string>(),
       "model file: pcmsim HDF5 model, or ONNX (.onnx, docs/onnx.md); required")
      ("format", po::value<std::string>()->default_value("table"),
       "output format: 'table' or 'json'")
      ("slices", "also list every slice: its weight rows/cols, tile, position on the tile and "
       "partial sum (table), or add the whole plan under \"plan\" (json)")
      ("out", po::value<std::string>()->default_value("-"),
       "output file, written atomically; '-' = standard output");
  po::options_description chip_opts("Chip settings (as in pcmsim run)", 110, 60);
  add_simulation_options(chip_opts);
  po::options_description cost_opts("Cost model", 110, 60);
  add_cost_options(cost_opts);
  add_setting_options<nets::ModelInputOptions>(opts);
  opts.add(chip_opts).add(cost_opts);
  const po::variables_map vm = parse_options(args, opts, kWhere);
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << opts << "\n";
    return 0;
  }
  if (!vm.count("model")) core::throw_invalid(kWhere, "--model FILE is required");

  const nets::SimulationConfig config = simulation_config(vm);
  const cost::CostParams cost_constants = cost_params(vm);

  const std::string format = vm["format"].as<std::string>();
  if (format != "table" && format != "json")
    core::throw_invalid(kWhere, core::concat("--format = '", format, "': must be 'table' or 'json'"));

  check_text_output_path(vm["out"].as<std::string>(), "out");  // before any work

  nets::Network net;
  try {
    nets::ModelInputOptions input;
    apply_setting_options(vm, input);
    net = nets::load_model(vm["model"].as<std::string>(), input);
  } catch (const std::runtime_error& e) {
    // A missing or malformed model file is bad input (exit 2).
    throw std::invalid_argument(e.what());
  }
  const auto layers = nets::placed_layer_matrices(net, config);  // --layer-replicas included
  const auto plan = mapping::plan(layers, config.chip, config.mapper);
  mapping::check_plan(plan, layers);  // network_cost (below) refuses replicated digital layers
  const auto report = mapping::utilisation_report(plan);
  const cost::CostReport cost = nets::network_cost(net, config, cost_constants);
  const bool slices = vm.count("slices") > 0;
  std::string text;
  if (format == "json") {
    // The cost members join the report's object: {"chip": .., ..., "tops": .., ...}.
    text = mapping::render_json(report, slices ? &plan : nullptr);
    const auto close = text.find_last_of('}');
    text = text.substr(0, close) + "," + cost::render_cost_json_members(cost) +
           text.substr(close);
  } else {
    text = "model: " + net.name + "\n" + mapping::render_table(report);
    if (slices) text += "\n" + mapping::render_slices_table(plan);
    text += "\ncost per inference (docs/cost.md)\n" + cost::render_cost_table(cost);
  }
  write_text_atomically(vm["out"].as<std::string>(), text);
  return 0;
}

}  // namespace

PCMSIM_COMMAND("map", "place a model on crossbar tiles and report tiles used and utilisation",
               run_map);

}  // namespace pcmsim::cli
