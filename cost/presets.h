// Presets: published chips as named sets of setting values (docs/cost.md). A preset is text
// "name = value" pairs over the settings of any configuration struct (nets::SimulationConfig's
// chip, converters and cell; cost::CostParams); apply_preset<S> sets those that S has. The CLI
// applies `--preset NAME` first and the explicit options after it, so each value can be
// overridden.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/settings.h"

namespace pcmsim::cost {

struct Preset {
  std::string name;
  std::string description;  // one line: the chip and its source
  // (external setting name, value in its text form), e.g. {"tile_rows", "256"}.
  std::vector<std::pair<std::string, std::string>> values;
};

// Every preset, in a fixed order: hermes, ambrogio2023.
const std::vector<Preset>& presets();
// The preset called `name`; throws std::invalid_argument "[cost] preset 'x': unknown (presets:
// hermes, ambrogio2023)".
const Preset& find_preset(const std::string& name);

// Sets every value of `preset` that names a setting of S; returns the names it set. Throws
// std::invalid_argument naming the preset and the setting for a value S cannot take.
template <class S>
std::vector<std::string> apply_preset(const Preset& preset, S& s) {
  std::vector<std::string> applied;
  for (const auto& [name, text] : preset.values) {
    const auto* setting = core::find_setting<S>(name);
    if (!setting) continue;
    try {
      setting->set_text(s, text);
    } catch (const std::invalid_argument& e) {
      core::throw_invalid("cost", core::concat("preset '", preset.name, "': ", e.what()));
    }
    applied.push_back(name);
  }
  return applied;
}

}  // namespace pcmsim::cost
