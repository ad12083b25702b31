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

void check_output_path(const std::string& path, const std::string& option) {
  namespace fs = std::filesystem;
  const auto bad = [&](const std::string& why) {
    core::throw_invalid("cli", core::concat("--", option, " = '", path, "': ", why));
  };
  if (fs::path(path).extension() == ".csv")
    bad("give the HDF5 file (.h5); its CSV view is written beside it");
  nets::check_results_path(path, core::concat("cli --", option).c_str());
}

void write_text_atomically(const std::string& path, const std::string& content) {
  if (path.empty() || path == "-") {
    std::cout << content << std::flush;
    return;
  }
  nets::write_text_file(path, content, "cli");
}

}  // namespace pcmsim::cli
