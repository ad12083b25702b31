#include "cli/cost_options.h"

namespace pcmsim::cli {

void add_preset_option(po::options_description& options) {
  std::string help =
      "a published chip as a set of setting values, each overridable by its "
      "option:";
  for (const cost::Preset& p : cost::presets()) help += " " + p.name + " (" + p.description + ");";
  options.add_options()("preset", po::value<std::string>(), help.c_str());
}

const cost::Preset* given_preset(const po::variables_map& vm) {
  const std::string* name = given(vm, "preset");
  return name ? &cost::find_preset(*name) : nullptr;
}

void add_cost_options(po::options_description& options) {
  options.add_options()("cost-file", po::value<std::string>(),
                        "cost constants from a file of 'name = value' lines (docs/cost.md), "
                        "applied after --preset and before the cost options");
  add_setting_options<cost::CostParams>(options);
}

cost::CostParams cost_params(const po::variables_map& vm, cost::CostParams base) {
  apply_preset_option(vm, base);
  if (const std::string* file = given(vm, "cost-file")) cost::load_cost_params(*file, base);
  apply_setting_options(vm, base);
  base.validate();
  return base;
}

}  // namespace pcmsim::cli
