#include "core/adc_transfer.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace pcmsim::core {
namespace {

constexpr const char* kWhere = "core::adc_inl_table";

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

AdcTransferTable read_adc_transfer_table(const std::string& path) {
  require_path(kWhere, "adc_inl_table", path);
  if (std::filesystem::is_directory(path))
    throw_io(kWhere, concat("adc_inl_table = ", path, ": is a folder, not a CSV table"));
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw_io(kWhere, concat("adc_inl_table = ", path, ": cannot open (", std::strerror(errno),
                            ")"));
  AdcTransferTable t;
  t.source = path;
  bool header = false;
  std::string line;
  std::size_t line_no = 0, last_line = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    std::vector<std::string> fields;
    std::stringstream ss(text);
    std::string f;
    while (std::getline(ss, f, ',')) fields.push_back(trim(f));
    if (text.back() == ',') fields.push_back("");
    if (!header) {
      if (fields.size() != 2 || fields[0] != "ideal" || fields[1] != "actual")
        throw_invalid(kWhere, concat(path, ":", line_no, ": header '", text,
                                     "': expected 'ideal,actual'"));
      header = true;
      continue;
    }
    if (fields.size() != 2)
      throw_invalid(kWhere, concat(path, ":", line_no, ": ", fields.size(),
                                   " fields, expected 2 (ideal,actual)"));
    double v[2];
    for (int k = 0; k < 2; ++k) {
      char* end = nullptr;
      errno = 0;
      v[k] = std::strtod(fields[k].c_str(), &end);
      if (fields[k].empty() || end != fields[k].c_str() + fields[k].size() || errno == ERANGE ||
          !std::isfinite(v[k]))
        throw_invalid(kWhere, concat(path, ":", line_no, ": ", k == 0 ? "ideal" : "actual",
                                     " = '", fields[k], "' is not a finite number"));
    }
    if (std::fabs(v[1]) > 2.0)
      throw_invalid(kWhere, concat(path, ":", line_no, ": actual = ", v[1],
                                   ": must be in [-2, 2] (units of the ADC's full scale)"));
    if (!t.ideal.empty() && !(v[0] > t.ideal.back()))
      throw_invalid(kWhere, concat(path, ":", line_no, ": ideal = ", v[0],
                                   ": must be strictly increasing (previous row: ",
                                   t.ideal.back(), ")"));
    t.ideal.push_back(v[0]);
    t.deviation.push_back(v[1] - v[0]);
    last_line = line_no;
  }
  if (in.bad()) throw_io(kWhere, concat("adc_inl_table = ", path, ": read error"));
  if (!header)
    throw_invalid(kWhere, concat(path, ": empty (expected a header line 'ideal,actual')"));
  if (t.ideal.size() < 2 || t.ideal.front() > -1.0 || t.ideal.back() < 1.0)
    throw_invalid(kWhere,
                  concat(path, ":", last_line, ": the table must cover the full scale, ideal "
                                               "from <= -1 to >= 1 (",
                         t.ideal.size(), " rows",
                         t.ideal.empty() ? std::string()
                                         : concat(", from ", t.ideal.front(), " to ",
                                                  t.ideal.back()),
                         ")"));
  return t;
}

}  // namespace pcmsim::core
