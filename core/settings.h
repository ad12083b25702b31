// One definition of every setting (docs/adding-a-setting.md).
//
// Each configuration struct lists its fields once, beside its definition, in a static member
//     template <class V> static void fields(V& v);
// that calls, for each field,
//     v.field(FieldInfo{name, unit, range, help, stage}, accessor);   // accessor: S& -> T&
//     v.group("io", accessor);                                        // a nested config struct
//     v.computed(FieldInfo{...}, getter, setter);                     // one setting, several members
// The default is the struct's own member initialiser. From that list, generically:
//  - settings<S>(): the flattened, type-erased list (nested groups inlined), which the CLI turns
//    into options and --help, the sweep into axes, the result files into provenance, the Python
//    module into keyword constructors, properties and reprs;
//  - text form (the CLI, CSV and sweep values) and typed values (Python, HDF5).
// Names are snake_case and unique within a root config; the CLI spells them with hyphens.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "core/error.h"

namespace pcmsim::core {

// Whether changing a setting needs a newly programmed chip (programming), only other
// converters / digital unit / drift compensation on the same programmed chip (converter), or
// only another snapshot of it (time). Sweeps group their points by it.
enum class Affects { programming, converter, time };
inline const char* to_string(Affects s) {
  return s == Affects::programming ? "programming" : s == Affects::converter ? "converter" : "time";
}

struct FieldInfo {
  const char* name;   // snake_case, the one name of the concept (Python, files; CLI with '-')
  const char* unit;   // "" when dimensionless: "s", "S", "bits", ...
  const char* range;  // allowed values, for --help and docs (validate() enforces them)
  const char* help;   // one line
  Affects affects = Affects::converter;
  // The text form (CLI, CSV, sweep values) may use another unit: text = value / text_scale,
  // named text_name (e.g. g_max in siemens is g_max_uS in microsiemens).
  const char* text_name = nullptr;
  double text_scale = 1.0;
  const char* external_name() const { return text_name ? text_name : name; }
};

// A setting's value, typed: what Python and HDF5 exchange.
using Value = std::variant<bool, std::int64_t, std::uint64_t, double, std::string,
                           std::vector<double>, std::vector<std::string>>;
enum class ValueType { boolean, integer, unsigned_integer, real, text, real_list, text_list };
const char* to_string(ValueType t);

// Enumerations as text: PCMSIM_ENUM_TEXT(E, parser, names...) next to the enum's parser, in
// the enum's namespace (found by argument-dependent lookup); to_string(E) gives the name.
#define PCMSIM_ENUM_TEXT(E, parse, ...)                                                   \
  inline std::vector<std::string> enum_text_names(E) { return {__VA_ARGS__}; }           \
  inline E enum_text_parse(E, const std::string& text) { return parse(text); }

template <class T, class = void>
struct IsEnumText : std::false_type {};
template <class T>
struct IsEnumText<T, std::void_t<decltype(enum_text_names(std::declval<T>()))>>
    : std::true_type {};

// Text <-> Value, strict: no trailing characters, no overflow, no empty list item. Throw
// std::invalid_argument "[settings] <name> = '<text>': ..." naming the setting.
Value parse_value(const std::string& name, ValueType type, const std::string& text,
                  double text_scale = 1.0);
std::string format_value(const Value& value, double text_scale = 1.0);
[[noreturn]] void throw_value_type(const std::string& name, ValueType expected, const Value& got);
// "unit; choices or range; default X" of a setting, for --help and Python docstrings. `unit`:
// whether to name the unit (not when the external name carries it, as in g_max_uS).
std::string describe_setting(const FieldInfo& info, const std::vector<std::string>& choices,
                             const std::string& default_text, bool unit);

namespace detail {

// C++ member type T <-> Value.
template <class T>
struct Codec {
  static constexpr bool is_enum = IsEnumText<T>::value;
  static ValueType type() {
    if constexpr (std::is_same_v<T, bool>) return ValueType::boolean;
    else if constexpr (is_enum) return ValueType::text;
    else if constexpr (std::is_same_v<T, std::uint64_t>) return ValueType::unsigned_integer;
    else if constexpr (std::is_integral_v<T>) return ValueType::integer;
    else if constexpr (std::is_floating_point_v<T>) return ValueType::real;
    else if constexpr (std::is_same_v<T, std::string>) return ValueType::text;
    else if constexpr (std::is_same_v<T, std::vector<double>>) return ValueType::real_list;
    else if constexpr (std::is_same_v<T, std::vector<std::string>>) return ValueType::text_list;
    else static_assert(sizeof(T) == 0, "no settings codec for this type");
  }
  static std::vector<std::string> choices() {
    if constexpr (is_enum) return enum_text_names(T{});
    else return {};
  }
  static Value get(const T& v) {
    if constexpr (std::is_same_v<T, bool>) return v;
    else if constexpr (is_enum) return std::string(to_string(v));
    else if constexpr (std::is_same_v<T, std::uint64_t>) return v;
    else if constexpr (std::is_integral_v<T>) return static_cast<std::int64_t>(v);
    else if constexpr (std::is_floating_point_v<T>) return static_cast<double>(v);
    else return v;
  }
  static T set(const std::string& name, const Value& value) {
    if constexpr (std::is_same_v<T, bool>) {
      if (auto* b = std::get_if<bool>(&value)) return *b;
      if (auto* i = std::get_if<std::int64_t>(&value); i && (*i == 0 || *i == 1)) return *i == 1;
    } else if constexpr (is_enum) {
      if (auto* s = std::get_if<std::string>(&value)) {
        try {
          return enum_text_parse(T{}, *s);
        } catch (const std::invalid_argument&) {
          throw_choices(name, *s, enum_text_names(T{}));
        }
      }
    } else if constexpr (std::is_same_v<T, std::uint64_t>) {
      if (auto* u = std::get_if<std::uint64_t>(&value)) return *u;
      if (auto* i = std::get_if<std::int64_t>(&value)) {
        if (*i < 0) throw_invalid("settings", concat(name, " = ", *i, ": must be >= 0"));
        return static_cast<std::uint64_t>(*i);
      }
    } else if constexpr (std::is_integral_v<T>) {
      std::int64_t i = 0;
      if (auto* p = std::get_if<std::int64_t>(&value)) i = *p;
      else if (auto* u = std::get_if<std::uint64_t>(&value);
               u && *u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        i = static_cast<std::int64_t>(*u);
      else throw_value_type(name, type(), value);
      if (i < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
          i > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
        throw_invalid("settings", concat(name, " = ", i, ": out of range of ",
                                         std::numeric_limits<T>::min(), "..",
                                         std::numeric_limits<T>::max()));
      return static_cast<T>(i);
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto* d = std::get_if<double>(&value)) return static_cast<T>(*d);
      if (auto* i = std::get_if<std::int64_t>(&value)) return static_cast<T>(*i);
      if (auto* u = std::get_if<std::uint64_t>(&value)) return static_cast<T>(*u);
    } else {
      if (auto* v = std::get_if<T>(&value)) return *v;
      if constexpr (std::is_same_v<T, std::vector<double>>) {
        if (auto* s = std::get_if<std::vector<std::string>>(&value); s && s->empty()) return {};
      }
    }
    throw_value_type(name, type(), value);
  }
  [[noreturn]] static void throw_choices(const std::string& name, const std::string& text,
                                         const std::vector<std::string>& names) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw_invalid("settings", concat(name, " = '", text, "': expected one of ", list));
  }
};

}  // namespace detail

// One flattened, type-erased setting of a root config S.
template <class S>
struct Setting {
  FieldInfo info;
  ValueType type = ValueType::text;
  std::vector<std::string> choices;  // names of an enumeration
  bool shortcut = false;             // another spelling of settings listed too (not recorded)
  std::function<Value(const S&)> get;
  std::function<void(S&, const Value&)> set;

  std::string name() const { return info.name; }
  std::string option_name() const;  // the CLI spelling: external name with '-' for '_'
  std::string text(const S& s) const { return format_value(get(s), info.text_scale); }
  void set_text(S& s, const std::string& text) const {
    set(s, parse_value(info.external_name(), type, text, info.text_scale));
  }
};

template <class S>
std::string Setting<S>::option_name() const {
  std::string n = info.external_name();
  for (char& c : n)
    if (c == '_') c = '-';
  return n;
}

namespace detail {

// Walks S::fields with accessors composed from the root R down to S.
template <class R, class S, class Access>
struct Flatten {
  std::vector<Setting<R>>* out;
  Access access;  // R& -> S&

  // One member: a getter and a setter of it.
  template <class Get>
  void field(const FieldInfo& info, Get get) {
    using T = std::remove_reference_t<decltype(get(std::declval<S&>()))>;
    computed(info, [get](const S& s) -> const T& { return get(const_cast<S&>(s)); },
             [get](S& s, T v) { get(s) = std::move(v); });
  }
  // A setting that is not one member: getter (const S&) -> T, setter (S&, T).
  template <class Getter, class Setter>
  void computed(const FieldInfo& info, Getter getter, Setter setter) {
    using T = std::decay_t<decltype(getter(std::declval<const S&>()))>;
    Setting<R> s;
    s.info = info;
    s.type = Codec<T>::type();
    s.choices = Codec<T>::choices();
    auto acc = access;
    s.get = [acc, getter](const R& r) { return Codec<T>::get(getter(acc(const_cast<R&>(r)))); };
    const std::string name = info.name;
    s.set = [acc, setter, name](R& r, const Value& v) { setter(acc(r), Codec<T>::set(name, v)); };
    out->push_back(std::move(s));
  }
  // A convenience spelling of other settings (the CLI and sweeps take it; files and reprs
  // record the settings it stands for).
  template <class Getter, class Setter>
  void shortcut(const FieldInfo& info, Getter getter, Setter setter) {
    computed(info, getter, setter);
    out->back().shortcut = true;
  }
  template <class Get>
  void group(const char*, Get get) {
    using G = std::remove_reference_t<decltype(get(std::declval<S&>()))>;
    auto acc = access;
    auto composed = [acc, get](R& r) -> G& { return get(acc(r)); };
    Flatten<R, G, decltype(composed)> inner{out, composed};
    G::fields(inner);
  }
};

}  // namespace detail

// Every setting of S (nested structs inlined), in declaration order. Built once.
template <class S>
const std::vector<Setting<S>>& settings() {
  static const std::vector<Setting<S>> list = [] {
    std::vector<Setting<S>> out;
    auto self = [](S& s) -> S& { return s; };
    detail::Flatten<S, S, decltype(self)> visitor{&out, self};
    S::fields(visitor);
    return out;
  }();
  return list;
}

// The settings of S that affect `which` stage and differ between a and b (external names).
template <class S>
std::vector<std::string> differing_settings(const S& a, const S& b, Affects which) {
  std::vector<std::string> names;
  for (const auto& s : settings<S>())
    if (!s.shortcut && s.info.affects == which && s.get(a) != s.get(b))
      names.push_back(s.info.external_name());
  return names;
}

// Normalises a setting's spelling: hyphens as underscores ("p-in" -> "p_in").
inline std::string canonical_setting_name(std::string name) {
  for (char& c : name)
    if (c == '-') c = '_';
  return name;
}

// The setting named `name` (its external name, with '-' or '_'), or nullptr. (Member names
// inside a nested struct, like GdcParams::granularity, need not be unique in the root.)
template <class S>
const Setting<S>* find_setting(const std::string& name) {
  const std::string key = canonical_setting_name(name);
  for (const auto& s : settings<S>())
    if (key == s.info.external_name()) return &s;
  return nullptr;
}

// As find_setting, but throws std::invalid_argument "[where] unknown setting 'x' (settings: ..)".
template <class S>
const Setting<S>& setting(const std::string& name, const char* where = "settings") {
  if (const auto* s = find_setting<S>(name)) return *s;
  std::string list;
  for (const auto& s : settings<S>()) list += (list.empty() ? "" : ", ") + s.option_name();
  throw_invalid(where, concat("unknown setting '", name, "' (settings: ", list, ")"));
}

}  // namespace pcmsim::core
