#include "cli/sim_options.h"

#include <iostream>

#include "cli/cost_options.h"
#include "cli/setting_options.h"
#include "core/error.h"

namespace pcmsim::cli {

std::string default_model_path() {
  // The ResNet trained through the simulator (zoo/README.md): the most drift-robust all-analog
  // model of the zoo at 8 bits.
  return std::string(PCMSIM_SOURCE_DIR) + "/zoo/resnet_hwa_p8.h5";
}

void add_simulation_options(po::options_description& options) {
  add_preset_option(options);
  add_setting_options<nets::SimulationConfig>(options);
}

nets::SimulationConfig simulation_config(const po::variables_map& vm,
                                         nets::SimulationConfig base) {
  apply_preset_option(vm, base);
  apply_setting_options(vm, base);
  if (base.device.model.find('-') != std::string::npos)
    std::cerr << "pcmsim: warning: device model '" << base.device.model
              << "' is spelled with '_' now\n";
  base.validate();
  return base;
}

void add_evaluation_options(po::options_description& options) {
  add_setting_options<nets::EvaluationOptions>(options);
}

nets::EvaluationOptions evaluation_options(const po::variables_map& vm,
                                           nets::EvaluationOptions base) {
  apply_setting_options(vm, base);
  base.validate();
  return base;
}

}  // namespace pcmsim::cli
