// The simulation pipeline (docs/architecture.md, stages 2-5) for one network on one PCM chip.
//
// AnalogChip is one Monte Carlo trial: the constructor plans the mapping and programs every
// slice once (stage 3); set_time() derives the conductances at an inference time from that
// frozen state (stage 4) and re-estimates the drift compensation; provider() runs batches
// through the tiles and the digital unit (stage 5) as the matmul seam of nets::forward.
// A sweep over times reuses the programming; a sweep over trials re-programs with a new key.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "circuit/ir_drop.h"
#include "core/calibration.h"
#include "core/digital_unit.h"
#include "core/gdc.h"
#include "core/io_params.h"
#include "core/tile.h"
#include "devices/device_factory.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"
#include "mapping/chip_spec.h"
#include "mapping/mapping_plan.h"
#include "nets/forward.h"
#include "nets/network.h"

namespace pcmsim::nets {

// Converter precision of one layer, overriding SimulationConfig::io (-1 = inherit).
struct LayerPrecision {
  int p_in = -1;
  int p_out = -1;
};

struct SimulationConfig {
  mapping::ChipSpec chip;           // tile shape (default 256 x 256) and tile budget
  mapping::MapperOptions mapper;    // whole-kernel splits, digital layers, weight scaling
  devices::DeviceSpec device;       // default: the PCM model of docs/physics.md
  devices::UnitCellSpec cell;       // default: one differential pair; scaling follows mapper
  core::IoParams io;                // default: 8-bit DAC/ADC, out_bound 10, out_noise 0.04
  circuit::IrDropParams ir_drop;    // default: ideal wires (docs/ir-drop.md)
  std::map<std::string, LayerPrecision> layer_precision;  // per-layer p_in/p_out by layer name
  core::DigitalParams digital;      // default: float64 accumulation
  bool gdc = true;                  // global drift compensation on
  core::GdcParams gdc_params;
  bool calibrate = false;           // calibrate converter ranges after programming
  core::CalibrationParams calibration;
  std::uint64_t seed = 0;

  // Throws std::invalid_argument naming the field; layer names are checked against the network
  // when a chip is built.
  void validate() const;

  template <class V>
  static void fields(V& v);
};

// layer_precision as text, "NAME:P_IN:P_OUT" per layer, and back (throws naming the item).
std::vector<std::string> layer_precision_text(const std::map<std::string, LayerPrecision>& m);
std::map<std::string, LayerPrecision> parse_layer_precision(const std::vector<std::string>& items);

template <class V>
void SimulationConfig::fields(V& v) {
  using S = SimulationConfig;
  const core::Affects c = core::Affects::converter;
  v.group("chip", [](S& s) -> auto& { return s.chip; });
  v.group("mapper", [](S& s) -> auto& { return s.mapper; });
  v.group("device", [](S& s) -> auto& { return s.device; });
  v.group("cell", [](S& s) -> auto& { return s.cell; });
  v.group("io", [](S& s) -> auto& { return s.io; });
  v.group("ir_drop", [](S& s) -> auto& { return s.ir_drop; });
  v.computed({"layer_precision", "bits", "NAME:P_IN:P_OUT, -1 inherits",
              "per-layer converter bits overriding p_in/p_out", c},
             [](const S& s) { return layer_precision_text(s.layer_precision); },
             [](S& s, const std::vector<std::string>& items) {
               s.layer_precision = parse_layer_precision(items);
             });
  v.group("digital", [](S& s) -> auto& { return s.digital; });
  v.field({"gdc", "", "", "global drift compensation", c}, [](S& s) -> auto& { return s.gdc; });
  v.group("gdc_params", [](S& s) -> auto& { return s.gdc_params; });
  v.field({"calibrate", "", "", "calibrate the converter ranges on data after programming", c},
          [](S& s) -> auto& { return s.calibrate; });
  v.group("calibration", [](S& s) -> auto& { return s.calibration; });
  v.field({"seed", "", "0..2^64-1", "random seed of every stream", core::Affects::programming},
          [](S& s) -> auto& { return s.seed; });
}

// Keys of the pipeline's random streams; a pure function of (seed, stage, layer, slice, trial,
// sub) so that any point can be recomputed alone, in any process.
core::RngKey programming_key(std::uint64_t seed, int matrix_layer, int slice, int trial);
core::RngKey snapshot_key(std::uint64_t seed, int matrix_layer, int slice, int trial,
                          double t_inference);
// The ADC gains and offsets of a slice's tile: drawn once per programmed chip, like the devices
// (programming stage, sub 1; the devices use sub 0).
core::RngKey adc_key(std::uint64_t seed, int matrix_layer, int slice, int trial);

class AnalogChip {
 public:
  // Plans and programs (stage 3). `net` must outlive the chip.
  AnalogChip(const Network& net, const SimulationConfig& config, int trial);
  ~AnalogChip();
  // Sweeps (nets/sweep.h): a chip with the programmed state of `programmed` (same network, trial
  // and programming-side settings: chip, mapper, device, cell, seed) but the converter-side
  // settings of `config` (io, layer_precision, digital, gdc, gdc_params, calibrate, calibration).
  // Copies the frozen device state instead of programming again; the result is bit-identical to
  // AnalogChip(net, config, trial). Throws if the programming-side settings visibly differ
  // (seed, tile shape, digital layers, weight scaling, device model, cell kind).
  AnalogChip(const AnalogChip& programmed, const SimulationConfig& config);
  AnalogChip(const AnalogChip&) = delete;
  AnalogChip& operator=(const AnalogChip&) = delete;

  // Calibrates the converter ranges on `images` (normalised, N x C*H*W) at the programmed state
  // (t = 0), layer by layer through the analog network itself, and keeps them for every later
  // time. Needs config.calibrate; called by the constructor's user before set_time().
  void calibrate(const MatrixF& images);

  // Stage 4: conductances of every slice at t_inference seconds after programming, and the
  // GDC factors (when enabled) estimated through the tiles at that time.
  void set_time(double t_inference);
  double time() const { return t_inference_; }
  // Same as set_time(source.time()) for a chip with the same programming (the constructor
  // above), but copies source's snapshot conductances instead of drawing them again: one
  // snapshot per time serves every converter setting of a sweep. Bit-identical to set_time().
  void set_time_from(const AnalogChip& source);

  // The matmul seam for nets::forward (analog layers on tiles, digital layers in float32).
  MatmulProvider& provider();

  const mapping::MappingPlan& plan() const { return plan_; }
  const SimulationConfig& config() const { return config_; }
  int trial() const { return trial_; }
  // GDC factor per column of each slice of each matrix layer at the current time (1 if off).
  const std::vector<std::vector<core::VectorD>>& gdc_alpha() const { return alpha_; }
  // Calibrated ranges per (matrix layer, group); empty when not calibrated.
  const std::map<std::pair<int, int>, core::CalibratedRanges>& calibrated_ranges() const {
    return ranges_;
  }

 private:
  class Provider;
  struct SliceState {
    devices::ProgrammedBlock programmed;
    core::ConductanceBlock conductances;  // current snapshot, reused across times
    std::unique_ptr<core::Tile> tile;
    core::GdcReference gdc_reference;
  };
  core::IoParams io_for_layer(const std::string& name) const;
  void prepare_gdc();
  void update_gdc_alpha(std::size_t m, std::size_t s, double t_inference);

  const Network& net_;
  SimulationConfig config_;
  int trial_ = 0;
  double t_inference_ = 0;
  bool gdc_ready_ = false;
  std::vector<MatrixLayer> layers_;
  mapping::MappingPlan plan_;
  std::vector<std::vector<SliceState>> slices_;  // [matrix layer][slice]
  std::vector<std::vector<core::VectorD>> alpha_;
  std::map<std::pair<int, int>, core::CalibratedRanges> ranges_;
  std::unique_ptr<Provider> provider_;
};

}  // namespace pcmsim::nets
