// The options that describe a simulated chip and an evaluation, shared by `pcmsim run` and
// `pcmsim sweep`: generated from the field lists of nets::SimulationConfig and
// nets::EvaluationOptions (cli/setting_options.h).
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "nets/evaluation.h"
#include "nets/simulation.h"

namespace pcmsim::cli {

namespace po = boost::program_options;

// Adds --preset and the chip, device, converter, digital-unit, GDC and calibration options.
void add_simulation_options(po::options_description& options);
// `base` with the --preset's values, then the options given on the command line applied, validated. Throws
// std::invalid_argument naming the option.
nets::SimulationConfig simulation_config(const po::variables_map& vm,
                                         nets::SimulationConfig base = {});
// The inference times, trials, batch size and calibration images.
void add_evaluation_options(po::options_description& options);
nets::EvaluationOptions evaluation_options(const po::variables_map& vm,
                                           nets::EvaluationOptions base = {});

// Default model and data: the zoo shipped with the sources.
std::string default_model_path();

}  // namespace pcmsim::cli
