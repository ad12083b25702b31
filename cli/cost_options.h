// `--preset NAME` (published chips, cost/presets.h) and the cost-model options (`--cost-file`
// and one option per cost::CostParams setting, generated from its field list).
// Order of precedence, lowest first: defaults (or --config-from), the preset, --cost-file, the
// explicit options.
#pragma once

#include <boost/program_options.hpp>
#include <string>

#include "cli/setting_options.h"
#include "cost/cost_params.h"
#include "cost/presets.h"

namespace pcmsim::cli {

namespace po = boost::program_options;

void add_preset_option(po::options_description& options);
// The preset named by --preset, or nullptr. Throws std::invalid_argument for an unknown name.
const cost::Preset* given_preset(const po::variables_map& vm);

// Applies --preset (when given) to `s`: the preset's values that are settings of S.
template <class S>
void apply_preset_option(const po::variables_map& vm, S& s) {
  if (const cost::Preset* preset = given_preset(vm)) cost::apply_preset(*preset, s);
}

// --cost-file and the CostParams settings.
void add_cost_options(po::options_description& options);
// `base` with --preset, --cost-file and the explicit cost options applied, validated.
cost::CostParams cost_params(const po::variables_map& vm, cost::CostParams base = {});

}  // namespace pcmsim::cli
