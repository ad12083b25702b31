#include "cli/util.h"

#include <unistd.h>

#include <filesystem>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/error.h"

namespace pcmsim::cli {

std::vector<double> parse_number_list(const std::string& text, const std::string& option) {
  std::vector<double> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    const char* begin = item.c_str();
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(begin, &end);
    if (item.empty() || end == begin || *end != '\0' || errno == ERANGE || std::isnan(v))
      core::throw_invalid("cli", core::concat("--", option, ": '", item, "' is not a number"));
    values.push_back(v);
  }
  if (values.empty()) core::throw_invalid("cli", core::concat("--", option, ": empty list"));
  return values;
}

std::vector<int> parse_int_list(const std::string& text, const std::string& option) {
  std::vector<int> values;
  for (double v : parse_number_list(text, option)) {
    if (v != std::floor(v) || std::abs(v) > 2e9)
      core::throw_invalid("cli", core::concat("--", option, ": '", v, "' is not an integer"));
    values.push_back(static_cast<int>(v));
  }
  return values;
}

void check_output_path(const std::string& path, const std::string& option) {
  namespace fs = std::filesystem;
  const auto bad = [&](const std::string& why) {
    core::throw_invalid("cli", core::concat("--", option, " = '", path, "': ", why));
  };
  if (path.empty()) bad("empty path");
  const fs::path p(path);
  if (p.extension() == ".csv") bad("give the HDF5 file (.h5); its CSV view is written beside it");
  std::error_code ec;
  const auto status = fs::status(p, ec);
  if (fs::exists(status) && !fs::is_regular_file(status))
    bad("exists and is not a regular file");
  const fs::path dir = fs::absolute(p).parent_path();
  if (!fs::is_directory(dir)) bad(core::concat("folder '", dir.string(), "' does not exist"));
  const fs::path probe = dir / (".pcmsim_probe_" + std::to_string(::getpid()));
  {
    std::ofstream out(probe);
    if (!out) bad(core::concat("folder '", dir.string(), "' is not writable"));
  }
  fs::remove(probe, ec);
}

void write_text_atomically(const std::string& path, const std::string& content) {
  if (path.empty() || path == "-") {
    std::cout << content << std::flush;
    return;
  }
  const std::string temporary = path + ".partial";
  {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    if (!out) core::throw_io("cli", core::concat("cannot write '", path, "'"));
    out << content;
    out.flush();
    if (!out) {
      std::remove(temporary.c_str());
      core::throw_io("cli", core::concat("writing '", path, "' failed"));
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    core::throw_io("cli", core::concat("cannot move the finished file to '", path, "'"));
  }
}

}  // namespace pcmsim::cli
