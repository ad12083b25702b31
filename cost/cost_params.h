// The constants of the cost model (docs/cost.md): energy, time and area of the converters, the
// crossbar array, the fixed periphery of a tile read, the digital unit and data movement.
//
// Defaults: IBM's HERMES chip (Le Gallo et al. 2023), pcmsim's default 256 x 256 tile. Some
// constants are literature values (ADC figure of merit, digital operations), some assumed, and
// the fixed periphery term, ADC time and tile area are CALIBRATED so that the model reproduces
// HERMES' published one-phase 8-bit MVM (about 133 ns and 13.4 nJ per 256 x 256 MVM, 63.1 TOPS,
// 9.76 TOPS/W); docs/cost.md gives the source or the calibration of each. The peak figures are
// then derived by cost::peak_figures(), not stored.
//
// The settings are defined once here (core/settings.h); the CLI options, Python properties and
// results provenance (/config/cost) are generated from fields(). A file of "name = value" lines
// overrides them (load_cost_params).
#pragma once

#include <string>

#include "core/settings.h"

namespace pcmsim::cost {

// How the DAC codes an input: as a pulse width (time) or as a voltage amplitude.
enum class InputCoding {
  pwm,        // pulse of |k| * pwm_step_time for DAC level k (HERMES, Ambrogio 2023)
  amplitude,  // voltage proportional to the level for a fixed t_integration
};
// How the layers of a network share the chip in time.
enum class Schedule {
  pipelined,   // every layer on its own tiles works on another inference at once
  sequential,  // one inference at a time: throughput = 1 / latency
};

std::string to_string(InputCoding v);
std::string to_string(Schedule v);
InputCoding input_coding_from_string(const std::string& text);
Schedule schedule_from_string(const std::string& text);
PCMSIM_ENUM_TEXT(InputCoding, input_coding_from_string, "pwm", "amplitude");
PCMSIM_ENUM_TEXT(Schedule, schedule_from_string, "pipelined", "sequential");

struct CostParams {
  // ---- DAC and array
  InputCoding input_coding = InputCoding::pwm;
  double pwm_step_time = 1e-9;   // s per DAC level (pwm): one 1 GHz clock period
  double t_integration = 1e-7;   // s of one read (amplitude coding)
  double dac_energy = 0.5e-12;   // J per DAC conversion (one row, one input cycle); assumed
  double v_read = 0.2;           // V across a device at full-scale input
  double g_read_mean = 5 * 1e-6;    // S, mean device conductance during a read (2 devices/pair)
  double input_activity = 0.25;  // mean |x| / full scale: PWM duty or amplitude fraction
  // ---- ADC
  double adc_fom = 30e-15;            // J per conversion step (Walden figure of merit)
  double adc_energy_floor = 0.27e-12; // J, least energy of one conversion at any resolution
  double adc_time = 5e-9;             // s per conversion (calibrated to HERMES' 133 ns)
  double adc_area = 100 * 1e-12;         // m^2 per ADC (text: adc_area_um2); assumed
  // ---- fixed per tile read: periphery, control, local communication
  double mvm_energy = 10.5e-9;  // J per tile read (calibrated to HERMES' 13.4 nJ per MVM)
  double mvm_time = 1e-9;       // s per tile read
  double tile_area = 0.594 * 1e-6; // m^2 per tile without its ADCs (text: tile_area_mm2)
  // ---- digital unit and data movement
  double fp32_add_energy = 0.9e-12;  // J, 32-bit float add (Horowitz 2014, 45 nm)
  double fp32_mul_energy = 3.7e-12;  // J, 32-bit float multiply (Horowitz 2014, 45 nm)
  double int_add_energy = 0.1e-12;   // J, 32-bit integer add, scaled linearly with the width
  double digital_ops_per_s = 256e9;  // digital unit throughput (256 lanes at 1 GHz); assumed
  double byte_energy = 1.25e-12;     // J per byte moved (8 KB SRAM read, Horowitz 2014)
  double digital_area = 0.0;         // m^2 of the digital unit beside the tiles (text: mm2)
  Schedule schedule = Schedule::pipelined;

  // Throws std::invalid_argument "[cost::CostParams] <field> = <value>: ..." naming the field.
  void validate() const;

  template <class V>
  static void fields(V& v);

  // Energy of one ADC conversion at `bits` (>= 1): max(adc_fom * 2^bits, adc_energy_floor).
  double adc_energy(int bits) const;
};

template <class V>
void CostParams::fields(V& v) {
  using S = CostParams;
  // Cost constants never change a simulated result; `converter` is the cheapest stage a sweep
  // knows (core::Affects), so a sweep over them reuses programmed chips and snapshots.
  const core::Affects c = core::Affects::converter;
  v.field({"input_coding", "", "", "DAC coding of an input: pulse width or voltage amplitude", c},
          [](S& s) -> auto& { return s.input_coding; });
  v.field({"pwm_step_time", "s", "> 0", "pwm: pulse time per DAC level", c},
          [](S& s) -> auto& { return s.pwm_step_time; });
  v.field({"t_integration", "s", "> 0", "amplitude: integration time of one read", c},
          [](S& s) -> auto& { return s.t_integration; });
  v.field({"dac_energy", "J", ">= 0", "energy per DAC conversion (one row, one input cycle)", c},
          [](S& s) -> auto& { return s.dac_energy; });
  v.field({"v_read", "V", ">= 0", "read voltage across a device at full-scale input", c},
          [](S& s) -> auto& { return s.v_read; });
  v.field({"g_read_mean", "uS", ">= 0", "mean device conductance during a read", c,
           "g_read_mean_uS", 1e-6},
          [](S& s) -> auto& { return s.g_read_mean; });
  v.field({"input_activity", "", "0..1", "mean |input| / full scale (PWM duty, amplitude)", c},
          [](S& s) -> auto& { return s.input_activity; });
  v.field({"adc_fom", "J", ">= 0", "ADC Walden figure of merit, energy per conversion step", c},
          [](S& s) -> auto& { return s.adc_fom; });
  v.field({"adc_energy_floor", "J", ">= 0", "least energy of one ADC conversion", c},
          [](S& s) -> auto& { return s.adc_energy_floor; });
  v.field({"adc_time", "s", ">= 0", "time of one ADC conversion", c},
          [](S& s) -> auto& { return s.adc_time; });
  v.field({"adc_area", "um2", ">= 0", "area of one ADC", c, "adc_area_um2", 1e-12},
          [](S& s) -> auto& { return s.adc_area; });
  v.field({"mvm_energy", "J", ">= 0", "fixed energy per tile read (periphery, control)", c},
          [](S& s) -> auto& { return s.mvm_energy; });
  v.field({"mvm_time", "s", ">= 0", "fixed time per tile read", c},
          [](S& s) -> auto& { return s.mvm_time; });
  v.field({"tile_area", "mm2", "> 0", "area of one tile without its ADCs", c, "tile_area_mm2",
           1e-6},
          [](S& s) -> auto& { return s.tile_area; });
  v.field({"fp32_add_energy", "J", ">= 0", "energy of a 32-bit float add", c},
          [](S& s) -> auto& { return s.fp32_add_energy; });
  v.field({"fp32_mul_energy", "J", ">= 0", "energy of a 32-bit float multiply", c},
          [](S& s) -> auto& { return s.fp32_mul_energy; });
  v.field({"int_add_energy", "J", ">= 0", "energy of a 32-bit integer add (scaled with width)",
           c},
          [](S& s) -> auto& { return s.int_add_energy; });
  v.field({"digital_ops_per_s", "1/s", "> 0", "digital unit throughput, operations per second",
           c},
          [](S& s) -> auto& { return s.digital_ops_per_s; });
  v.field({"byte_energy", "J", ">= 0", "energy per byte moved between tiles and digital unit",
           c},
          [](S& s) -> auto& { return s.byte_energy; });
  v.field({"digital_area", "mm2", ">= 0", "area of the digital unit beside the tiles", c,
           "digital_area_mm2", 1e-6},
          [](S& s) -> auto& { return s.digital_area; });
  v.field({"schedule", "", "", "layers pipelined across tiles or one inference at a time", c},
          [](S& s) -> auto& { return s.schedule; });
}

// Reads "name = value" lines (names as on the command line, with '-' or '_'; '#' starts a
// comment; blank lines ignored) into `params`, over its current values. Throws
// std::invalid_argument naming the file, the line number and the setting for an unreadable
// file, a line without '=', an unknown name, a repeated name or a bad value; validates.
void load_cost_params(const std::string& path, CostParams& params);

}  // namespace pcmsim::cost
