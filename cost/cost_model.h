// The cost model (docs/cost.md): energy, latency and area of one inference on a mapped chip,
// per layer and in total, and the chip's peak figures.
//
// Inputs: the mapping plan (which slice sits on which tile), the work of each layer per
// inference (LayerWork: output positions, converter bits, element-wise digital operations;
// derived from the network's shapes and the configuration by nets/cost_input.h), the unit cell
// (planes, readout) and the digital unit's precision, and the constants (CostParams). The
// activity counts (tile reads, DAC and ADC conversions, digital operations, bytes moved) are
// derived from these per inference; they are what the simulator executes for one image,
// except bound-management re-reads, which depend on the data and are not counted.
//
// Pure: the same inputs give the same report; it never changes a simulated result.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/digital_unit.h"
#include "core/types.h"
#include "cost/cost_params.h"
#include "mapping/mapping_plan.h"

namespace pcmsim::cost {

using core::Index;

// What one mappable layer computes for one inference.
struct LayerWork {
  std::string name;        // the layer of the plan with this name
  Index positions = 1;     // output positions per image (H'*W' of a convolution; 1 for linear)
  int p_in = 8;            // DAC bits of the layer (2..16)
  int p_out = 8;           // ADC bits of the layer (2..16)
  int b_in = 0;            // bit-serial input bits per cycle (0 = the whole value at once)
  // Element-wise digital operations per inference attributed to this layer: its bias and fused
  // activation and the non-matrix layers (normalisation, activations, pooling, residual adds)
  // that follow it up to the next matrix layer.
  double elementwise_ops = 0;
  int input_cycles() const;  // ceil((p_in - 1) / b_in), or 1
};

struct CostInput {
  mapping::MappingPlan plan;
  std::vector<LayerWork> layers;  // one per plan layer, same order and names
  int planes = 1;                 // conductance planes (device pairs) per weight
  int adc_columns = 1;            // columns sharing one ADC (core::IoParams::adc_columns)
  bool analog_readout = false;    // planes summed in analog (one read) or read one by one
  core::DigitalParams digital;    // precision of the accumulation of partial sums
  // Throws std::invalid_argument naming the layer and field: names differing from the plan,
  // converter bits out of range (an ideal converter, 0 bits, has no cost), planes < 1.
  void validate() const;
};

// Per layer and per inference. Energies in J, times in s.
struct LayerCost {
  std::string name;
  bool digital = false;     // kept in the digital unit (FP32), no tile
  Index tiles = 0;          // distinct tiles holding its slices
  double tile_reads = 0;    // reads of a tile (one input application + conversion of its columns)
  double dac_conversions = 0;
  double adc_conversions = 0;
  double input_cycles = 1;  // DAC cycles per MVM (bit-serial), per layer
  double digital_ops = 0;
  double bytes_moved = 0;   // inputs to the tiles and ADC outputs to the digital unit
  double macs = 0;          // multiply-accumulates of the layer (weights x positions)
  double energy_dac = 0, energy_array = 0, energy_adc = 0, energy_periphery = 0;
  double energy_digital = 0, energy_movement = 0;
  double energy = 0;        // sum of the above
  double latency_analog = 0;   // slowest tile of the layer: its reads one after the other
  double latency_digital = 0;  // digital operations at the digital unit's throughput
  double latency = 0;          // analog + digital
  double area_mm2 = 0;         // area of the tiles it uses (a shared tile counts for each layer)
};

// Why `input` cannot be costed ("" when it can): an analog layer with an ideal converter
// (p_in or p_out 0 in the simulator) has no defined conversion cost.
std::string uncostable_reason(const CostInput& input);

// Full-tile MVM of the chip at the given converter settings: what one core does at its peak.
struct PeakFigures {
  double mvm_energy = 0;  // J per full-tile MVM (all input cycles and planes)
  double mvm_time = 0;    // s per full-tile MVM
  double ops = 0;         // 2 * rows * cols operations per MVM
  Index cores = 0;        // tiles busy at once: num_tiles, or the tiles used on an unbounded chip
  double tops = 0;        // cores * ops / mvm_time / 1e12
  double tops_per_w = 0;  // ops / mvm_energy / 1e12
};

struct CostReport {
  CostParams params;
  std::vector<LayerCost> layers;
  double energy_per_inference = 0;  // J
  double latency = 0;               // s, one inference through every layer
  double inferences_per_s = 0;      // pipelined: 1 / busiest stage; sequential: 1 / latency
  double ops_per_inference = 0;     // 2 * MACs of every layer
  double area_mm2 = 0;              // tiles used + digital unit
  double chip_area_mm2 = 0;         // num_tiles (bounded chip; else tiles used) + digital unit
  PeakFigures peak;
};

// Energy and time of one read of a tile slice of `rows` x `cols` at the given converter bits.
struct ReadCost {
  double dac = 0, array = 0, adc = 0, periphery = 0;  // J
  double time = 0;                                    // s
  double energy() const { return dac + array + adc + periphery; }
};
// `devices`: devices driven per weight in this read (2 per plane read at once); `dac_bits`: the
// signed DAC levels of one cycle. Throws on bad arguments.
// `adc_columns`: columns sharing one ADC (core::IoParams::adc_columns).
ReadCost read_cost(const CostParams& p, Index rows, Index cols, Index tile_cols, int adc_columns,
                   int dac_bits, int adc_bits, int devices);

// ADCs of a tile with `tile_cols` columns: ceil(tile_cols / adc_columns).
Index adcs_per_tile(Index tile_cols, int adc_columns);

PeakFigures peak_figures(const CostParams& params, const mapping::ChipSpec& chip, int p_in,
                         int p_out, int b_in, int adc_columns, int planes, bool analog_readout,
                         Index tiles_used);

// Validates both, then costs every layer. `peak_io`: the chip-wide converter bits (p_in, p_out,
// b_in) for the peak figures.
CostReport compute_cost(const CostInput& input, const CostParams& params, int peak_p_in,
                        int peak_p_out, int peak_b_in);

// The per-layer numbers as named columns, one value per layer, in a fixed order (names with
// their unit: "energy_J", "latency_s", "area_mm2", "tile_reads", ...): what results files and
// the Python table hold. layer_from_columns is the inverse for row i (names missing: 0).
std::vector<std::pair<std::string, std::vector<double>>> layer_columns(const CostReport& report);
// The totals and peak figures as (name, value): "energy_per_inference_J", "latency_s",
// "inferences_per_s", "ops_per_inference", "area_mm2", "chip_area_mm2", "tops", "tops_per_w",
// "cores", "mvm_energy_J", "mvm_time_s".
std::vector<std::pair<std::string, double>> total_columns(const CostReport& report);
// Sets the LayerCost fields / totals named in the columns (for reading results files back).
void set_layer_column(LayerCost& layer, const std::string& name, double value);
void set_total_column(CostReport& report, const std::string& name, double value);

// Text table (one row per layer, totals, peak) and the JSON members of a report:
// "tops", "tops_per_w", "mvm_energy_J", "mvm_time_s", "energy_per_inference_J", "latency_s",
// "inferences_per_s", "area_mm2", "chip_area_mm2", "ops_per_inference", "cost_layers": [...],
// "cost_constants": {...} (without the enclosing braces, to splice into another object).
std::string render_cost_table(const CostReport& report);
std::string render_cost_json_members(const CostReport& report);

}  // namespace pcmsim::cost
