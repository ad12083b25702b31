// The options that describe a simulated chip, shared by `pcmsim run` and `pcmsim sweep`:
// declared once here, turned into a nets::SimulationConfig once here.
#pragma once

#include <boost/program_options.hpp>
#include <string>
#include <vector>

#include "nets/evaluation.h"
#include "nets/simulation.h"

namespace pcmsim::cli {

namespace po = boost::program_options;

// Adds the chip, device, converter, digital-unit, GDC and calibration options.
void add_simulation_options(po::options_description& options);
// Reads them back (after po::notify). Throws std::invalid_argument naming the option.
nets::SimulationConfig simulation_config(const po::variables_map& vm);
// "name=value" lines of every simulation option actually in effect, for result files.
std::vector<std::string> describe_options(const po::variables_map& vm);

// Default model and data: the zoo shipped with the sources.
std::string default_model_path();

}  // namespace pcmsim::cli
