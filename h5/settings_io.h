// Settings (core/settings.h) as HDF5 attributes of a group: the provenance of result files.
// One attribute per setting, typed (integers, numbers, text, lists), SI values; a setting whose
// text form uses another unit (g_max_uS) is stored under its SI name (g_max).
#pragma once

#include <limits>
#include <string>

#include "core/settings.h"
#include "h5/hdf5_io.h"

namespace pcmsim::h5 {

template <class S>
std::string attribute_name(const core::Setting<S>& s) {
  return s.info.text_scale != 1.0 ? s.info.name : s.info.external_name();
}

template <class S>
void write_settings(Group& group, const S& value) {
  for (const auto& s : core::settings<S>()) {
    if (s.shortcut) continue;
    const std::string name = attribute_name(s);
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, bool>) group.write_attribute(name, std::int64_t{v});
          else if constexpr (std::is_same_v<T, std::uint64_t>) {
            if (v <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
              group.write_attribute(name, static_cast<std::int64_t>(v));
            else group.write_attribute(name, std::to_string(v));
          } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
            // HDF5 has no empty string array: an empty list is the text attribute "".
            if (v.empty()) group.write_attribute(name, std::string());
            else group.write_attribute(name, v);
          } else {
            group.write_attribute(name, v);
          }
        },
        s.get(value));
  }
}

// Sets every setting found in `group` (a setting missing from an older file keeps its value);
// an attribute that is no setting of S is an error naming it and the group.
template <class S>
void read_settings(const Group& group, S& value) {
  for (const std::string& attr : group.attribute_names()) {
    const core::Setting<S>* s = nullptr;
    for (const auto& candidate : core::settings<S>())
      if (!candidate.shortcut && attribute_name(candidate) == attr) s = &candidate;
    if (!s)
      core::throw_io("h5::read_settings",
                     core::concat(group.where(attr), ": not a setting of this version"));
    const std::string where = group.where(attr);
    core::Value v;
    try {
      switch (s->type) {
        case core::ValueType::boolean:
        case core::ValueType::integer: v = group.read_int_attribute(attr); break;
        case core::ValueType::unsigned_integer:
          try {
            v = group.read_int_attribute(attr);
          } catch (const std::runtime_error&) {
            v = core::parse_value(where, s->type, group.read_string_attribute(attr));
          }
          break;
        case core::ValueType::real: v = group.read_double_attribute(attr); break;
        case core::ValueType::text: v = group.read_string_attribute(attr); break;
        case core::ValueType::real_list: v = group.read_double_list_attribute(attr); break;
        case core::ValueType::text_list: {
          auto items = group.read_string_list_attribute(attr);
          if (items.size() == 1 && items[0].empty()) items.clear();  // written for an empty list
          v = items;
          break;
        }
      }
      s->set(value, v);
    } catch (const std::invalid_argument& e) {
      core::throw_io("h5::read_settings", core::concat(where, ": ", e.what()));
    }
  }
}

}  // namespace pcmsim::h5
