// Errors: standard exceptions whose message starts with a tag naming where it was raised,
// e.g. "[devices::PcmParams] g_max_uS = -1: must be > 0". Library code never prints,
// aborts or exits; the CLI and the Python bindings turn these into messages.
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pcmsim::core {

// Concatenates anything streamable into one string.
template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  out.precision(10);
  (out << ... << parts);
  return out.str();
}

// "[where] message"
inline std::string tagged(std::string_view where, std::string_view message) {
  return concat("[", where, "] ", message);
}

// A parameter or argument out of range, of the wrong shape, NaN, ...
[[noreturn]] inline void throw_invalid(std::string_view where, std::string_view message) {
  throw std::invalid_argument(tagged(where, message));
}

// A file that cannot be read or written, or whose content is malformed.
[[noreturn]] inline void throw_io(std::string_view where, std::string_view message) {
  throw std::runtime_error(tagged(where, message));
}

// Checks `lo <= value <= hi` (and finite), naming the parameter and its value on failure.
inline void require_in_range(std::string_view where, std::string_view name, double value,
                             double lo, double hi) {
  if (!(value >= lo && value <= hi))  // also rejects NaN
    throw_invalid(where, concat(name, " = ", value, ": must be in [", lo, ", ", hi, "]"));
}

inline void require_finite(std::string_view where, std::string_view name, double value) {
  if (!std::isfinite(value)) throw_invalid(where, concat(name, " = ", value, ": must be finite"));
}

// The same for element `index` of the array `name` (named "name[index]"); the name is built only
// on failure, which keeps the check cheap in per-call loops.
inline void require_finite(std::string_view where, std::string_view name, std::int64_t index,
                           double value) {
  if (!std::isfinite(value))
    throw_invalid(where, concat(name, "[", index, "] = ", value, ": must be finite"));
}

inline void require_positive(std::string_view where, std::string_view name, double value) {
  if (!(value > 0) || !std::isfinite(value))
    throw_invalid(where, concat(name, " = ", value, ": must be finite and > 0"));
}

inline void require_non_negative(std::string_view where, std::string_view name, double value) {
  if (!(value >= 0) || !std::isfinite(value))
    throw_invalid(where, concat(name, " = ", value, ": must be finite and >= 0"));
}

// A file path as given: not empty and without a NUL byte (which C file functions would take as
// the end of a shorter path, silently opening or writing another file).
inline void require_path(std::string_view where, std::string_view what, const std::string& path) {
  if (path.empty()) throw_invalid(where, concat(what, ": empty path"));
  if (path.find('\0') != std::string::npos)
    throw_invalid(where, concat(what, " '", path.substr(0, path.find('\0')),
                                "\\0...': the path contains a NUL byte"));
}

}  // namespace pcmsim::core
