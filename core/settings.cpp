#include "core/settings.h"

#include <cerrno>
#include <cstdlib>

namespace pcmsim::core {
namespace {

constexpr const char* kTag = "settings";

[[noreturn]] void bad(const std::string& name, const std::string& text, const std::string& why) {
  throw_invalid(kTag, concat(name, " = '", text, "': ", why));
}

// The whole text as an integer of type T (the unsigned type refuses a sign).
template <class T>
T parse_integer(const std::string& name, const std::string& text, const char* range,
                const char* expected) {
  if (std::is_unsigned_v<T> && !text.empty() && text[0] == '-') bad(name, text, "must be >= 0");
  T v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec == std::errc::result_out_of_range) bad(name, text, concat("out of range of ", range));
  if (ec != std::errc() || ptr != end || text.empty()) bad(name, text, expected);
  return v;
}

double parse_real(const std::string& name, const std::string& text, double scale) {
  if (text.empty()) bad(name, text, "expected a number");
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size()) bad(name, text, "expected a number");
  if (std::isnan(v)) bad(name, text, "not a number");
  if (errno == ERANGE && std::isinf(v)) bad(name, text, "overflows a double");
  return v * scale;
}

bool parse_bool(const std::string& name, const std::string& text) {
  if (text == "on" || text == "true" || text == "True" || text == "1") return true;
  if (text == "off" || text == "false" || text == "False" || text == "0") return false;
  bad(name, text, "expected on or off");
}

// Comma-separated items; an empty item (",," or a trailing comma) is an error, not dropped.
std::vector<std::string> split_items(const std::string& name, const std::string& text) {
  std::vector<std::string> items;
  if (text.empty()) return items;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? comma : comma - start);
    if (item.empty()) bad(name, text, "empty item in the comma-separated list");
    items.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return items;
}

std::string format_real(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto [ptr, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);  // shortest round trip
  return ec == std::errc() ? std::string(buffer, ptr) : concat(v);
}

}  // namespace

const char* to_string(ValueType t) {
  switch (t) {
    case ValueType::boolean: return "on/off";
    case ValueType::integer: return "integer";
    case ValueType::unsigned_integer: return "integer >= 0";
    case ValueType::real: return "number";
    case ValueType::text: return "text";
    case ValueType::real_list: return "list of numbers";
    case ValueType::text_list: return "list of names";
  }
  return "?";
}

Value parse_value(const std::string& name, ValueType type, const std::string& text,
                  double text_scale) {
  switch (type) {
    case ValueType::boolean: return parse_bool(name, text);
    case ValueType::integer:
      return parse_integer<std::int64_t>(name, text, "a 64-bit integer", "expected an integer");
    case ValueType::unsigned_integer:
      return parse_integer<std::uint64_t>(name, text, "0..2^64-1", "expected an integer >= 0");
    case ValueType::real: return parse_real(name, text, text_scale);
    case ValueType::text: return text;
    case ValueType::real_list: {
      std::vector<double> values;
      for (const std::string& item : split_items(name, text))
        values.push_back(parse_real(name, item, text_scale));
      return values;
    }
    case ValueType::text_list: return split_items(name, text);
  }
  bad(name, text, "unknown type");
}

std::string format_value(const Value& value, double text_scale) {
  return std::visit(
      [text_scale](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) return v ? "on" : "off";
        else if constexpr (std::is_same_v<T, double>) return format_real(v / text_scale);
        else if constexpr (std::is_same_v<T, std::string>) return v;
        else if constexpr (std::is_same_v<T, std::vector<double>>) {
          std::string s;
          for (double d : v) s += (s.empty() ? "" : ",") + format_real(d / text_scale);
          return s;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string s;
          for (std::size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + v[i];
          return s;
        } else {
          return std::to_string(v);
        }
      },
      value);
}

std::string describe_setting(const FieldInfo& info, const std::vector<std::string>& choices,
                             const std::string& default_text, bool unit) {
  std::string text = unit ? info.unit : "";
  const auto append = [&](const std::string& part) { text += (text.empty() ? "" : "; ") + part; };
  if (!choices.empty()) {
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : "|") + c;
    append(list);
  } else if (*info.range) {
    append(info.range);
  }
  append("default " + (default_text.empty() ? std::string("none") : default_text));
  return text;
}

void throw_value_type(const std::string& name, ValueType expected, const Value& got) {
  static const char* kinds[] = {"a bool", "an integer", "an integer", "a number",
                                "text", "a list of numbers", "a list of names"};
  throw_invalid(kTag, concat(name, " = '", format_value(got), "': expected ", to_string(expected),
                             ", got ", kinds[got.index()]));
}

}  // namespace pcmsim::core
