#include "cost/presets.h"

#include "core/error.h"

namespace pcmsim::cost {

const std::vector<Preset>& presets() {
  // Cost constants are listed in full for hermes (they are also CostParams' defaults, but a
  // preset must not change when a default does). docs/cost.md gives the source of each value.
  static const std::vector<Preset> list = {
      {"hermes",
       "IBM HERMES 64-core 14 nm PCM chip (Le Gallo et al., Nature Electronics 2023): 64 cores "
       "of 256x256, 8-bit PWM inputs, 8-bit outputs with one ADC per column; cost constants "
       "calibrated to its one-phase 8-bit MVM (133 ns, 13.4 nJ); its measured PCM statistics "
       "(device model hermes)",
       {{"device_model", "hermes"},
        {"tile_rows", "256"},
        {"tile_cols", "256"},
        {"num_tiles", "64"},
        {"p_in", "8"},
        {"p_out", "8"},
        {"b_in", "0"},
        {"cell", "pair"},
        {"input_coding", "pwm"},
        {"pwm_step_time", "1e-09"},
        {"dac_energy", "5e-13"},
        {"v_read", "0.2"},
        {"g_read_mean_uS", "5"},
        {"input_activity", "0.25"},
        {"adc_fom", "3e-14"},
        {"adc_energy_floor", "2.7e-13"},
        {"adc_time", "5e-09"},
        {"adc_area_um2", "100"},
        {"adc_columns", "1"},
        {"mvm_energy", "1.05e-08"},
        {"mvm_time", "1e-09"},
        {"tile_area_mm2", "0.594"}}},
      {"ambrogio2023",
       "IBM 14 nm analog-AI chip (Ambrogio et al., Nature 2023): 34 tiles of 512x2048 PCM "
       "devices = 512x512 weights of 4 devices (2 pairs summed in analog on the capacitor), "
       "8-bit pulse-duration inputs; the paper's significance F = 1 needs increasing "
       "significances in pcmsim, so F = 2 here; cost constants are pcmsim's defaults, not "
       "calibrated to it",
       {{"tile_rows", "512"},
        {"tile_cols", "512"},
        {"num_tiles", "34"},
        {"p_in", "8"},
        {"p_out", "8"},
        {"b_in", "0"},
        {"cell", "multi_pair"},
        {"num_pairs", "2"},
        {"significance_factor", "2"},
        {"plane_readout", "analog"},
        {"input_coding", "pwm"}}},
  };
  return list;
}

const Preset& find_preset(const std::string& name) {
  for (const Preset& p : presets())
    if (p.name == name) return p;
  std::string names;
  for (const Preset& p : presets()) names += (names.empty() ? "" : ", ") + p.name;
  core::throw_invalid("cost", core::concat("preset '", name, "': unknown (presets: ", names, ")"));
}

}  // namespace pcmsim::cost
