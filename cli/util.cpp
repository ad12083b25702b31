#include "cli/util.h"

#include <filesystem>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"
#include "core/settings.h"
#include "nets/results.h"

namespace pcmsim::cli {

std::vector<double> parse_number_list(const std::string& text, const std::string& option) {
  auto values = std::get<std::vector<double>>(
      core::parse_value("--" + option, core::ValueType::real_list, text));
  if (values.empty()) core::throw_invalid("cli", core::concat("--", option, ": empty list"));
  return values;
}

boost::program_options::parsed_options parse_arguments(
    const std::vector<std::string>& args,
    const boost::program_options::options_description& options) {
  auto parsed = boost::program_options::command_line_parser(args).options(options).run();
  for (const auto& option : parsed.options)
    if (option.position_key >= 0) {
      const std::string word = option.original_tokens.empty() ? "" : option.original_tokens[0];
      core::throw_invalid(
          "cli", core::concat("unexpected word '", word,
                              "': every value belongs to an option "
                              "(give a list as one comma-separated value, e.g. --t-inference "
                              "1,3600)"));
    }
  return parsed;
}

void check_output_path(const std::string& path, const std::string& option) {
  namespace fs = std::filesystem;
  const auto bad = [&](const std::string& why) {
    core::throw_invalid("cli", core::concat("--", option, " = '", path, "': ", why));
  };
  if (fs::path(path).extension() == ".csv")
    bad("give the HDF5 file (.h5); its CSV view is written beside it");
  nets::check_results_path(path, core::concat("cli --", option).c_str());
}

void check_text_output_path(const std::string& path, const std::string& option) {
  if (path == "-") return;
  nets::check_results_path(path, core::concat("cli --", option).c_str());
}

nets::Dataset load_calibration_data(const std::string& spec, long count) {
  try {
    return nets::load_dataset(spec, count);
  } catch (const std::invalid_argument& e) {
    core::throw_invalid("cli", core::concat("--calibration-images = ", count, ": ", e.what()));
  }
}

void write_text_atomically(const std::string& path, const std::string& content) {
  if (path.empty() || path == "-") {
    std::cout << content << std::flush;
    return;
  }
  nets::write_text_file(path, content, "cli");
}

}  // namespace pcmsim::cli
