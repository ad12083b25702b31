#include "cost/cost_model.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <sstream>

#include "core/error.h"

namespace pcmsim::cost {
namespace {

constexpr const char* kWhere = "cost";
using core::concat;

// Energy of one accumulation add at the digital unit's precision. float64 is the simulator's
// exact reference; hardware would accumulate in float32, so it is costed as a float32 add.
double accumulate_energy(const CostParams& p, const core::DigitalParams& d) {
  switch (d.accumulator) {
    case core::Accumulator::fixed_point:
      return p.int_add_energy * d.acc_bits / 32.0;
    case core::Accumulator::block_floating_point:
      return p.int_add_energy * d.bfp_window_bits / 32.0;
    default:
      return p.fp32_add_energy;
  }
}

void check_bits(const std::string& layer, const char* name, int bits) {
  if (bits < 2 || bits > 16)
    core::throw_invalid(kWhere, concat("layer '", layer, "': ", name, " = ", bits,
                                       ": must be in [2, 16] (an ideal converter, 0 bits, has "
                                       "no defined cost)"));
}

std::string json_number(double v) {
  std::ostringstream out;
  out << std::setprecision(10) << v;
  return out.str();
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += concat("\\u00", "0123456789abcdef"[(c >> 4) & 0xf], "0123456789abcdef"[c & 0xf]);
      continue;
    }
    out += c;
  }
  return out + "\"";
}

}  // namespace

int LayerWork::input_cycles() const { return b_in > 0 ? (p_in - 1 + b_in - 1) / b_in : 1; }

void CostInput::validate() const {
  if (layers.size() != plan.layers.size())
    core::throw_invalid(kWhere, concat("CostInput: ", layers.size(),
                                       " layers of work for a plan "
                                       "of ",
                                       plan.layers.size(), " layers"));
  if (planes < 1)
    core::throw_invalid(kWhere, concat("CostInput: planes = ", planes, ": must be >= 1"));
  digital.validate();
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const LayerWork& w = layers[i];
    if (w.name != plan.layers[i].layer.name)
      core::throw_invalid(kWhere, concat("CostInput: layer ", i, " is '", w.name,
                                         "' but the plan's is '", plan.layers[i].layer.name, "'"));
    if (w.positions < 1)
      core::throw_invalid(
          kWhere, concat("layer '", w.name, "': positions = ", w.positions, ": must be >= 1"));
    if (!(w.elementwise_ops >= 0) || !std::isfinite(w.elementwise_ops))
      core::throw_invalid(kWhere, concat("layer '", w.name, "': elementwise_ops = ",
                                         w.elementwise_ops, ": must be finite and >= 0"));
    if (plan.layers[i].digital) continue;
    check_bits(w.name, "p_in", w.p_in);
    check_bits(w.name, "p_out", w.p_out);
    if (w.b_in != 0 && (w.b_in < 1 || w.b_in > w.p_in - 1))
      core::throw_invalid(kWhere, concat("layer '", w.name, "': b_in = ", w.b_in,
                                         ": must be 0 or in [1, p_in - 1]"));
  }
}

std::string uncostable_reason(const CostInput& input) {
  for (std::size_t i = 0; i < input.layers.size() && i < input.plan.layers.size(); ++i) {
    const LayerWork& w = input.layers[i];
    if (input.plan.layers[i].digital) continue;
    if (w.p_in == 0 || w.p_out == 0)
      return concat("layer '", w.name, "' has an ideal converter (p_in = ", w.p_in,
                    ", p_out = ", w.p_out, "), which has no defined cost");
  }
  return "";
}

Index adcs_per_tile(Index tile_cols, int adc_columns) {
  if (adc_columns < 1)
    core::throw_invalid(kWhere, concat("adc_columns = ", adc_columns, ": must be >= 1"));
  return (tile_cols + adc_columns - 1) / adc_columns;
}

ReadCost read_cost(const CostParams& p, Index rows, Index cols, Index tile_cols, int adc_columns,
                   int dac_bits, int adc_bits, int devices) {
  if (rows < 1 || cols < 1 || tile_cols < cols || dac_bits < 2 || devices < 1)
    core::throw_invalid(
        kWhere, concat("read_cost: rows = ", rows, ", cols = ", cols, ", tile_cols = ", tile_cols,
                       ", dac_bits = ", dac_bits, ", devices = ", devices, ": out of range"));
  ReadCost c;
  // Signed DAC levels |k| <= 2^(bits-1) - 1 (core/quantiser.h): a PWM pulse is |k| steps long.
  const double levels = std::ldexp(1.0, dac_bits - 1) - 1.0;
  const bool pwm = p.input_coding == InputCoding::pwm;
  const double t_int = pwm ? levels * p.pwm_step_time : p.t_integration;
  // Sum over devices of V^2 G t: a PWM input of mean duty a drives the full V for a*t; an
  // amplitude-coded one drives a*V for t (power a^2).
  const double activity = pwm ? p.input_activity : p.input_activity * p.input_activity;
  c.array = static_cast<double>(rows) * static_cast<double>(cols) * devices * p.v_read * p.v_read *
            p.g_read_mean * t_int * activity;
  c.dac = static_cast<double>(rows) * p.dac_energy;
  c.adc = static_cast<double>(cols) * p.adc_energy(adc_bits);
  c.periphery = p.mvm_energy;
  // ADC a serves columns a, a + n, a + 2n, ... (n ADCs): ceil(cols / n) conversions in a row.
  const Index adcs = adcs_per_tile(tile_cols, adc_columns);
  const Index rounds = (cols + adcs - 1) / adcs;
  c.time = t_int + static_cast<double>(rounds) * p.adc_time + p.mvm_time;
  return c;
}

PeakFigures peak_figures(const CostParams& params, const mapping::ChipSpec& chip, int p_in,
                         int p_out, int b_in, int adc_columns, int planes, bool analog_readout,
                         Index tiles_used) {
  params.validate();
  chip.validate();
  LayerWork w;
  w.p_in = p_in;
  w.p_out = p_out;
  w.b_in = b_in;
  check_bits("(peak)", "p_in", p_in);
  check_bits("(peak)", "p_out", p_out);
  if (planes < 1) core::throw_invalid(kWhere, concat("planes = ", planes, ": must be >= 1"));
  const int dac_bits = b_in > 0 ? b_in + 1 : p_in;
  const int reads = w.input_cycles() * (analog_readout ? 1 : planes);
  const ReadCost r = read_cost(params, chip.tile_rows, chip.tile_cols, chip.tile_cols, adc_columns,
                               dac_bits, p_out, analog_readout ? 2 * planes : 2);
  PeakFigures f;
  f.mvm_energy = reads * r.energy();
  f.mvm_time = reads * r.time;
  f.ops = 2.0 * static_cast<double>(chip.tile_rows) * static_cast<double>(chip.tile_cols);
  f.cores = chip.bounded() ? chip.num_tiles : tiles_used;
  f.tops = static_cast<double>(f.cores) * f.ops / f.mvm_time / 1e12;
  f.tops_per_w = f.ops / f.mvm_energy / 1e12;
  return f;
}

CostReport compute_cost(const CostInput& input, const CostParams& params, int peak_p_in,
                        int peak_p_out, int peak_b_in) {
  params.validate();
  input.validate();
  const mapping::MappingPlan& plan = input.plan;
  const CostParams& p = params;
  CostReport report;
  report.params = params;
  const double tile_area_m2 =
      p.tile_area +
      static_cast<double>(adcs_per_tile(plan.chip.tile_cols, input.adc_columns)) * p.adc_area;
  const double accumulate = accumulate_energy(p, input.digital);
  const int planes_read = input.analog_readout ? 1 : input.planes;
  const int devices = input.analog_readout ? 2 * input.planes : 2;
  std::map<Index, double> tile_busy;  // per inference, over all layers
  double slowest_layer = 0;

  for (std::size_t i = 0; i < plan.layers.size(); ++i) {
    const mapping::LayerPlan& lp = plan.layers[i];
    const LayerWork& w = input.layers[i];
    LayerCost c;
    c.name = w.name;
    c.digital = lp.digital;
    const double positions = static_cast<double>(w.positions);
    c.macs = static_cast<double>(lp.layer.weights()) * positions;
    if (lp.digital) {
      // FP32 multiply-adds; weights, inputs and outputs moved once per inference as float32.
      c.digital_ops = 2.0 * c.macs + w.elementwise_ops;
      c.energy_digital =
          c.macs * (p.fp32_mul_energy + p.fp32_add_energy) + w.elementwise_ops * p.fp32_add_energy;
      c.bytes_moved = 4.0 * (static_cast<double>(lp.layer.weights()) +
                             positions * static_cast<double>(lp.layer.rows * lp.layer.groups) +
                             positions * static_cast<double>(lp.layer.cols * lp.layer.groups));
    } else {
      const int cycles = w.input_cycles();
      c.input_cycles = cycles;
      const int dac_bits = w.b_in > 0 ? w.b_in + 1 : w.p_in;
      const double reads_per_position = static_cast<double>(cycles) * planes_read;
      std::map<Index, double> layer_busy;
      double adds = 0;
      for (const mapping::TileSlice& s : lp.slices) {
        const ReadCost r =
            read_cost(p, s.rows, s.cols, plan.chip.tile_cols, input.adc_columns, dac_bits, w.p_out,
                      devices);
        const double reads = positions * reads_per_position;
        c.tile_reads += reads;
        c.dac_conversions += reads * static_cast<double>(s.rows);
        c.adc_conversions += reads * static_cast<double>(s.cols);
        c.energy_dac += reads * r.dac;
        c.energy_array += reads * r.array;
        c.energy_adc += reads * r.adc;
        c.energy_periphery += reads * r.periphery;
        // Inputs once per position (every cycle re-uses them), every ADC output once.
        c.bytes_moved += positions * static_cast<double>(s.rows) * w.p_in / 8.0 +
                         reads * static_cast<double>(s.cols) * w.p_out / 8.0;
        adds += reads * static_cast<double>(s.cols);
        double& busy = layer_busy[s.tile];
        // Diagonal packing: slices on one tile use disjoint rows and columns and run at once.
        busy = plan.options.packing == mapping::Packing::diagonal ? std::max(busy, reads * r.time)
                                                                  : busy + reads * r.time;
      }
      for (const auto& [tile, busy] : layer_busy) {
        c.latency_analog = std::max(c.latency_analog, busy);
        tile_busy[tile] += busy;
      }
      c.tiles = static_cast<Index>(layer_busy.size());
      // Every ADC output is de-scaled (one multiply) and accumulated (one add).
      c.digital_ops = 2.0 * adds + w.elementwise_ops;
      c.energy_digital =
          adds * (p.fp32_mul_energy + accumulate) + w.elementwise_ops * p.fp32_add_energy;
      c.area_mm2 = static_cast<double>(c.tiles) * tile_area_m2 * 1e6;
    }
    c.energy_movement = c.bytes_moved * p.byte_energy;
    c.latency_digital = c.digital_ops / p.digital_ops_per_s;
    c.latency = c.latency_analog + c.latency_digital;
    c.energy = c.energy_dac + c.energy_array + c.energy_adc + c.energy_periphery +
               c.energy_digital + c.energy_movement;
    report.energy_per_inference += c.energy;
    report.latency += c.latency;
    report.ops_per_inference += 2.0 * c.macs;
    slowest_layer = std::max(slowest_layer, c.latency);
    report.layers.push_back(std::move(c));
  }
  double stage = slowest_layer;
  for (const auto& entry : tile_busy) stage = std::max(stage, entry.second);
  const double period = p.schedule == Schedule::pipelined ? stage : report.latency;
  report.inferences_per_s = period > 0 ? 1.0 / period : 0.0;
  report.area_mm2 = (static_cast<double>(plan.tiles_used) * tile_area_m2 + p.digital_area) * 1e6;
  const Index chip_tiles = plan.chip.bounded() ? plan.chip.num_tiles : plan.tiles_used;
  report.chip_area_mm2 = (static_cast<double>(chip_tiles) * tile_area_m2 + p.digital_area) * 1e6;
  report.peak = peak_figures(p, plan.chip, peak_p_in, peak_p_out, peak_b_in, input.adc_columns,
                             input.planes, input.analog_readout, plan.tiles_used);
  return report;
}

namespace {

// One table of (name, member) for LayerCost and for the totals: the single list behind the
// columns, their inverse and the JSON.
using LayerField = double LayerCost::*;
const std::vector<std::pair<const char*, LayerField>>& layer_fields() {
  static const std::vector<std::pair<const char*, LayerField>> list = {
      {"tile_reads", &LayerCost::tile_reads},
      {"dac_conversions", &LayerCost::dac_conversions},
      {"adc_conversions", &LayerCost::adc_conversions},
      {"input_cycles", &LayerCost::input_cycles},
      {"digital_ops", &LayerCost::digital_ops},
      {"bytes_moved", &LayerCost::bytes_moved},
      {"macs", &LayerCost::macs},
      {"energy_dac_J", &LayerCost::energy_dac},
      {"energy_array_J", &LayerCost::energy_array},
      {"energy_adc_J", &LayerCost::energy_adc},
      {"energy_periphery_J", &LayerCost::energy_periphery},
      {"energy_digital_J", &LayerCost::energy_digital},
      {"energy_movement_J", &LayerCost::energy_movement},
      {"energy_J", &LayerCost::energy},
      {"latency_analog_s", &LayerCost::latency_analog},
      {"latency_digital_s", &LayerCost::latency_digital},
      {"latency_s", &LayerCost::latency},
      {"area_mm2", &LayerCost::area_mm2},
  };
  return list;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<double>>> layer_columns(const CostReport& r) {
  std::vector<std::pair<std::string, std::vector<double>>> out;
  std::vector<double> digital, tiles;
  for (const LayerCost& c : r.layers) {
    digital.push_back(c.digital ? 1.0 : 0.0);
    tiles.push_back(static_cast<double>(c.tiles));
  }
  out.emplace_back("digital", std::move(digital));
  out.emplace_back("tiles", std::move(tiles));
  for (const auto& [name, member] : layer_fields()) {
    std::vector<double> v;
    for (const LayerCost& c : r.layers) v.push_back(c.*member);
    out.emplace_back(name, std::move(v));
  }
  return out;
}

std::vector<std::pair<std::string, double>> total_columns(const CostReport& r) {
  return {{"energy_per_inference_J", r.energy_per_inference},
          {"latency_s", r.latency},
          {"inferences_per_s", r.inferences_per_s},
          {"ops_per_inference", r.ops_per_inference},
          {"area_mm2", r.area_mm2},
          {"chip_area_mm2", r.chip_area_mm2},
          {"tops", r.peak.tops},
          {"tops_per_w", r.peak.tops_per_w},
          {"cores", static_cast<double>(r.peak.cores)},
          {"mvm_energy_J", r.peak.mvm_energy},
          {"mvm_time_s", r.peak.mvm_time}};
}

void set_layer_column(LayerCost& c, const std::string& name, double value) {
  if (name == "digital")
    c.digital = value != 0;
  else if (name == "tiles")
    c.tiles = static_cast<Index>(value);
  for (const auto& [field, member] : layer_fields())
    if (name == field) c.*member = value;
}

void set_total_column(CostReport& r, const std::string& name, double value) {
  if (name == "energy_per_inference_J")
    r.energy_per_inference = value;
  else if (name == "latency_s")
    r.latency = value;
  else if (name == "inferences_per_s")
    r.inferences_per_s = value;
  else if (name == "ops_per_inference")
    r.ops_per_inference = value;
  else if (name == "area_mm2")
    r.area_mm2 = value;
  else if (name == "chip_area_mm2")
    r.chip_area_mm2 = value;
  else if (name == "tops")
    r.peak.tops = value;
  else if (name == "tops_per_w")
    r.peak.tops_per_w = value;
  else if (name == "cores")
    r.peak.cores = static_cast<Index>(value);
  else if (name == "mvm_energy_J")
    r.peak.mvm_energy = value;
  else if (name == "mvm_time_s")
    r.peak.mvm_time = value;
}

std::string render_cost_table(const CostReport& r) {
  std::ostringstream out;
  out << std::left << std::setw(16) << "layer" << std::right << std::setw(7) << "tiles"
      << std::setw(12) << "reads" << std::setw(12) << "ADC conv" << std::setw(13) << "energy (nJ)"
      << std::setw(9) << "ADC %" << std::setw(10) << "digital %" << std::setw(14) << "latency (us)"
      << std::setw(12) << "area (mm2)"
      << "\n";
  out << std::fixed;
  for (const LayerCost& c : r.layers) {
    const double e = c.energy > 0 ? c.energy : 1.0;
    out << std::left << std::setw(16) << (c.name + (c.digital ? " (D)" : "")) << std::right
        << std::setw(7) << c.tiles << std::setprecision(0) << std::setw(12) << c.tile_reads
        << std::setw(12) << c.adc_conversions << std::setprecision(3) << std::setw(13)
        << c.energy * 1e9 << std::setprecision(1) << std::setw(9) << 100 * c.energy_adc / e
        << std::setw(10) << 100 * c.energy_digital / e << std::setprecision(3) << std::setw(14)
        << c.latency * 1e6 << std::setw(12) << c.area_mm2 << "\n";
  }
  out << std::setprecision(4) << "total: " << r.energy_per_inference * 1e6 << " uJ/inference, "
      << r.latency * 1e6 << " us latency, " << std::setprecision(1) << r.inferences_per_s
      << " inferences/s (" << to_string(r.params.schedule) << "), " << std::setprecision(3)
      << r.area_mm2 << " mm2 of tiles used (chip " << r.chip_area_mm2 << " mm2)\n"
      << "peak:  " << std::setprecision(2) << r.peak.tops << " TOPS on " << r.peak.cores
      << " cores, " << r.peak.tops_per_w << " TOPS/W, " << std::setprecision(3)
      << r.peak.mvm_energy * 1e9 << " nJ and " << std::setprecision(1) << r.peak.mvm_time * 1e9
      << " ns per full-tile MVM\n"
      << "(D) = digital layer. Bound-management re-reads are not counted (docs/cost.md).\n";
  return out.str();
}

std::string render_cost_json_members(const CostReport& r) {
  std::ostringstream out;
  for (const auto& [name, value] : total_columns(r))
    out << json_string(name) << ":" << json_number(value) << ",";
  out << "\"cost_layers\":[";
  for (std::size_t i = 0; i < r.layers.size(); ++i) {
    const LayerCost& c = r.layers[i];
    out << (i ? "," : "") << "{\"name\":" << json_string(c.name)
        << ",\"digital\":" << (c.digital ? "true" : "false") << ",\"tiles\":" << c.tiles;
    for (const auto& [name, member] : layer_fields())
      out << "," << json_string(name) << ":" << json_number(c.*member);
    out << "}";
  }
  out << "],\"cost_constants\":{";
  bool first = true;
  for (const auto& s : core::settings<CostParams>()) {
    out << (first ? "" : ",") << json_string(s.info.external_name()) << ":";
    const core::Value v = s.get(r.params);
    if (const auto* d = std::get_if<double>(&v))
      out << json_number(*d / s.info.text_scale);
    else if (const auto* i = std::get_if<std::int64_t>(&v))
      out << *i;
    else
      out << json_string(s.text(r.params));
    first = false;
  }
  out << "}";
  return out.str();
}

}  // namespace pcmsim::cost
