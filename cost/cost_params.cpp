#include "cost/cost_params.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include "core/error.h"

namespace pcmsim::cost {
namespace {

constexpr const char* kWhere = "cost::CostParams";

// Errors name the setting as the user writes it (adc_area_um2 in square micrometres).
void non_negative(const char* name, double value, double text_scale = 1.0) {
  if (!(value >= 0) || !std::isfinite(value))
    core::throw_invalid(kWhere,
                        core::concat(name, " = ", value / text_scale, ": must be finite and >= 0"));
}
void positive(const char* name, double value, double text_scale = 1.0) {
  if (!(value > 0) || !std::isfinite(value))
    core::throw_invalid(kWhere,
                        core::concat(name, " = ", value / text_scale, ": must be finite and > 0"));
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::string to_string(InputCoding v) { return v == InputCoding::pwm ? "pwm" : "amplitude"; }
std::string to_string(Schedule v) { return v == Schedule::pipelined ? "pipelined" : "sequential"; }
InputCoding input_coding_from_string(const std::string& text) {
  if (text == "pwm") return InputCoding::pwm;
  if (text == "amplitude") return InputCoding::amplitude;
  core::throw_invalid(kWhere,
                      core::concat("input_coding = '", text, "': expected pwm or amplitude"));
}
Schedule schedule_from_string(const std::string& text) {
  if (text == "pipelined") return Schedule::pipelined;
  if (text == "sequential") return Schedule::sequential;
  core::throw_invalid(kWhere,
                      core::concat("schedule = '", text, "': expected pipelined or sequential"));
}

void CostParams::validate() const {
  if (input_coding != InputCoding::pwm && input_coding != InputCoding::amplitude)
    core::throw_invalid(
        kWhere, core::concat("input_coding = ", static_cast<int>(input_coding), ": unknown"));
  positive("pwm_step_time", pwm_step_time);
  positive("t_integration", t_integration);
  non_negative("dac_energy", dac_energy);
  non_negative("v_read", v_read);
  non_negative("g_read_mean_uS", g_read_mean, 1e-6);
  if (!(input_activity >= 0 && input_activity <= 1))
    core::throw_invalid(kWhere,
                        core::concat("input_activity = ", input_activity, ": must be in [0, 1]"));
  non_negative("adc_fom", adc_fom);
  non_negative("adc_energy_floor", adc_energy_floor);
  non_negative("adc_time", adc_time);
  non_negative("adc_area_um2", adc_area, 1e-12);
  non_negative("mvm_energy", mvm_energy);
  non_negative("mvm_time", mvm_time);
  positive("tile_area_mm2", tile_area, 1e-6);
  non_negative("fp32_add_energy", fp32_add_energy);
  non_negative("fp32_mul_energy", fp32_mul_energy);
  non_negative("int_add_energy", int_add_energy);
  positive("digital_ops_per_s", digital_ops_per_s);
  non_negative("byte_energy", byte_energy);
  non_negative("digital_area_mm2", digital_area, 1e-6);
  if (schedule != Schedule::pipelined && schedule != Schedule::sequential)
    core::throw_invalid(kWhere,
                        core::concat("schedule = ", static_cast<int>(schedule), ": unknown"));
}

double CostParams::adc_energy(int bits) const {
  if (bits < 1 || bits > 32)
    core::throw_invalid(kWhere, core::concat("ADC bits = ", bits, ": must be in [1, 32]"));
  return std::max(adc_fom * std::ldexp(1.0, bits), adc_energy_floor);
}


void load_cost_params(const std::string& path, CostParams& params) {
  std::ifstream in(path);
  if (!in) core::throw_invalid("cost", core::concat("cost file '", path, "': cannot be read"));
  std::set<std::string> seen;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const auto hash = line.find('#');
    if (hash != std::string::npos) line.erase(hash);
    line = trim(line);
    if (line.empty()) continue;
    const auto where = core::concat("cost file '", path, "' line ", number);
    const auto eq = line.find('=');
    if (eq == std::string::npos)
      core::throw_invalid("cost", core::concat(where, ": '", line, "' is not 'name = value'"));
    const std::string name = trim(line.substr(0, eq));
    const std::string value = trim(line.substr(eq + 1));
    const auto* s = core::find_setting<CostParams>(name);
    if (!s) {
      std::string list;
      for (const auto& setting : core::settings<CostParams>())
        list += (list.empty() ? "" : ", ") + std::string(setting.info.external_name());
      core::throw_invalid("cost", core::concat(where, ": unknown cost setting '", name,
                                               "' (settings: ", list, ")"));
    }
    if (!seen.insert(s->info.external_name()).second)
      core::throw_invalid("cost", core::concat(where, ": '", name, "' is given twice"));
    try {
      s->set_text(params, value);
    } catch (const std::invalid_argument& e) {
      core::throw_invalid("cost", core::concat(where, ": ", e.what()));
    }
  }
  if (in.bad()) core::throw_invalid("cost", core::concat("cost file '", path, "': read error"));
  params.validate();
}

}  // namespace pcmsim::cost
