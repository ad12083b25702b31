// The simulation pipeline (docs/architecture.md, stages 2-5) for one network on one PCM chip.
//
// The pipeline as values: ProgrammedChip (one trial: plan + programmed devices, stage 3) gives a
// ChipSnapshot at any time (stage 4); a ConverterSetup holds what the converters need (I/O
// settings, calibrated ranges, GDC references); ChipForward runs batches through the tiles and
// the digital unit (stage 5) for one (programming, converters, snapshot). Which of them two
// configurations may share follows from the field lists' Affects: programming, converter, time.
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
#include "core/tiled_sum.h"
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
  // Copies of a layer's weights on more tile rows, all fed the same input, their outputs
  // averaged in the digital unit: each weight is then held by R device pairs, whose
  // programming noise, drift spread and read noise average out (by layer name, R in 2..64).
  // For small layers on idle rows: a 3x3 stem on one input channel uses 9 of a tile's rows.
  std::map<std::string, int> layer_replicas;
  core::DigitalParams digital;      // default: float64 accumulation
  bool gdc = true;                  // global drift compensation on
  core::GdcParams gdc_params;
  bool calibrate = false;           // calibrate converter ranges after programming
  core::CalibrationParams calibration;
  // Layers whose model holds a learned input range (Layer::learned_input_range) use it as
  // their static input range (NoiseManagement::static_range), and calibration measures only
  // their ADC ranges; off: such ranges are ignored (calibrated or 1, as for other layers).
  bool use_learned_input_ranges = true;
  std::uint64_t seed = 0;

  // Throws std::invalid_argument naming the field; layer names are checked against the network
  // when a chip is built.
  void validate() const;

  template <class V>
  static void fields(V& v);
};

// layer_replicas as text, "NAME:R" per layer, and back (throws naming the item).
std::vector<std::string> layer_replicas_text(const std::map<std::string, int>& m);
std::map<std::string, int> parse_layer_replicas(const std::vector<std::string>& items);
// The layers' matrices as placed on tiles: layer_matrices(net) with each replicated layer's
// rows times its replicas (the mapper, the chip and the cost model see the same shapes).
std::vector<mapping::LayerMatrix> placed_layer_matrices(const Network& net,
                                                        const SimulationConfig& config);
// Throws std::invalid_argument when layer_precision or layer_replicas names a layer the network
// does not have (or, for layer_replicas, one that is not a Linear or convolution layer).
void check_layer_names(const Network& net, const SimulationConfig& config);
// Throws std::invalid_argument when layer_replicas names a layer the plan keeps digital.
void check_replicas_are_analog(const mapping::MappingPlan& plan, const SimulationConfig& config);
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
  v.computed({"layer_replicas", "", "NAME:R, R in 2..64",
              "copies of a layer's weights on more tile rows, outputs averaged",
              core::Affects::programming},
             [](const S& s) { return layer_replicas_text(s.layer_replicas); },
             [](S& s, const std::vector<std::string>& items) {
               s.layer_replicas = parse_layer_replicas(items);
             });
  v.group("digital", [](S& s) -> auto& { return s.digital; });
  v.field({"gdc", "", "", "global drift compensation", c}, [](S& s) -> auto& { return s.gdc; });
  v.group("gdc_params", [](S& s) -> auto& { return s.gdc_params; });
  v.field({"calibrate", "", "", "calibrate the converter ranges on data after programming", c},
          [](S& s) -> auto& { return s.calibrate; });
  v.group("calibration", [](S& s) -> auto& { return s.calibration; });
  v.field({"use_learned_input_ranges", "", "",
           "use the input ranges learned in training (stored with the model) under static_range",
           c}, [](S& s) -> auto& { return s.use_learned_input_ranges; });
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

// The conductances of every slice of a programmed chip at one time: a plain value that any
// number of forwards (one per converter setting) may read.
struct ChipSnapshot {
  double t_inference = 0;
  std::vector<std::vector<core::ConductanceBlock>> slices;  // [matrix layer][slice]
};

// Stage 3: one Monte Carlo trial's programmed chip (the mapping plan and the frozen device state
// of every slice). Immutable once built: snapshots, converter set-ups and forwards only read it,
// so one programming serves every time and every converter setting of a sweep. `net` must
// outlive the chip.
class ProgrammedChip {
 public:
  ProgrammedChip(const Network& net, const SimulationConfig& config, int trial);

  // Stage 4: the conductances of every slice at t_inference seconds after programming (drift and
  // accumulated read noise; the random stream is keyed by the time, not by the call order).
  ChipSnapshot at(double t_inference) const;

  // Throws naming the settings when `config` differs from this chip's in any setting that
  // needs a newly programmed chip (Affects::programming in the field lists), or names a layer
  // the network does not have.
  void check_programming(const SimulationConfig& config) const;

  const Network& network() const { return net_; }
  const SimulationConfig& config() const { return config_; }
  int trial() const { return trial_; }
  const mapping::MappingPlan& plan() const { return plan_; }
  const std::vector<MatrixLayer>& layers() const { return layers_; }
  int replicas(int matrix_layer) const { return replicas_.at(std::size_t(matrix_layer)); }
  const devices::ProgrammedBlock& block(std::size_t m, std::size_t s) const {
    return blocks_.at(m).at(s);
  }

 private:
  const Network& net_;
  SimulationConfig config_;
  int trial_ = 0;
  std::vector<MatrixLayer> layers_;  // replicated layers: weights stacked replicas times
  std::vector<int> replicas_;        // per matrix layer (layer_replicas; 1 = none)
  mapping::MappingPlan plan_;
  std::vector<std::vector<devices::ProgrammedBlock>> blocks_;  // [matrix layer][slice]
};

// The converter set-up of a programmed chip: the I/O settings of every layer, the converter
// ranges calibrated on data (when config.calibrate) and the GDC references read at the programmed
// state (when config.gdc). Depends on the programming and the converter half of the config,
// never on the time; immutable once built.
class ConverterSetup {
 public:
  // `config` must share `chip`'s programming settings (ProgrammedChip::check_programming);
  // `calibration_images` (normalised, N x C*H*W) are needed when config.calibrate and ignored
  // otherwise. Calibration runs layer by layer through the analog network itself at t = 0.
  ConverterSetup(const ProgrammedChip& chip, const SimulationConfig& config,
                 const MatrixF* calibration_images = nullptr);

  const SimulationConfig& config() const { return config_; }
  const core::IoParams& io(std::size_t matrix_layer) const { return io_.at(matrix_layer); }
  // Calibrated ranges per (matrix layer, group); empty when not calibrated.
  const std::map<std::pair<int, int>, core::CalibratedRanges>& calibrated_ranges() const {
    return ranges_;
  }
  // GDC reference per [matrix layer][slice]; empty when GDC is off.
  const std::vector<std::vector<core::GdcReference>>& gdc_references() const {
    return gdc_references_;
  }

 private:
  friend class ChipForward;
  SimulationConfig config_;
  std::vector<core::IoParams> io_;  // per matrix layer (layer_precision applied)
  std::map<std::pair<int, int>, core::CalibratedRanges> ranges_;
  std::vector<std::vector<core::GdcReference>> gdc_references_;
};

// Stage 5: the forward of a programmed chip at a snapshot with a converter set-up, as the matmul
// seam of nets::forward (analog layers on tiles + digital unit, digital layers in float32). It
// keeps references to `chip` and `converters` (which must outlive it) and builds its tiles from
// the snapshot; set_snapshot() moves it to another time of the same chip, reusing the tiles.
class ChipForward : public MatmulProvider {
 public:
  ChipForward(const ProgrammedChip& chip, const ConverterSetup& converters,
              const ChipSnapshot& snapshot);
  ~ChipForward() override;
  ChipForward(const ChipForward&) = delete;
  ChipForward& operator=(const ChipForward&) = delete;

  // Loads another snapshot of the same chip (its conductances and GDC factors).
  void set_snapshot(const ChipSnapshot& snapshot);
  double time() const { return t_inference_; }
  // GDC factor per column of each slice of each matrix layer at the current time (1 if off).
  const std::vector<std::vector<core::VectorD>>& gdc_alpha() const { return alpha_; }

  void begin_batch(Index first_sample, Index batch_size) override;
  void matmul(int matrix_layer, int group, const core::RowSource& x, MatrixF& y) override;

 private:
  friend class ConverterSetup;
  struct Calibration;  // the state of a calibrating forward (ConverterSetup only)
  ChipForward(const ProgrammedChip& chip, const ConverterSetup& converters,
              const ChipSnapshot& snapshot, Calibration* calibration);
  // matmul on the tiles as placed: x already holds one copy of the input per replica.
  void tiles_matmul(int m, int group, const core::RowSource& x, MatrixF& y);
  void calibrate_group(int m, int group, const core::RowSource& x);
  // Layer m's learned input range when the config uses it, else 0.
  double learned_input_range(std::size_t m) const;
  void update_gdc_alpha(std::size_t m, std::size_t s);

  const ProgrammedChip& chip_;
  const ConverterSetup& converters_;
  Calibration* calibration_ = nullptr;
  double t_inference_ = 0;
  std::vector<std::vector<std::unique_ptr<core::Tile>>> tiles_;  // [matrix layer][slice]
  std::vector<std::vector<core::VectorD>> alpha_;
  Fp32Matmul fp32_;
  core::TiledSum tiled_sum_;
  std::vector<core::TiledTerm> terms_;
  Index first_sample_ = 0;  // of the current batch (begin_batch), for the noise keys
  Index batch_size_ = 0;
};

}  // namespace pcmsim::nets
