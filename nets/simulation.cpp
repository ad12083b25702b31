#include "nets/simulation.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "circuit/ir_drop.h"
#include "core/error.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::ProgrammedChip";
using core::concat;

// The snapshot stream of a time: a hash of the time's bits, so a time gets the same read-noise
// draw whatever list of times it was evaluated in (sweeps may split and reorder times).
std::uint32_t time_stream(double t_inference) {
  std::uint64_t bits;
  std::memcpy(&bits, &t_inference, sizeof bits);
  bits ^= bits >> 33;
  bits *= 0xff51afd7ed558ccdull;
  bits ^= bits >> 33;
  return static_cast<std::uint32_t>(bits);
}

void check_replicas(const std::string& layer, std::int64_t replicas) {
  if (replicas < 2 || replicas > 64)
    core::throw_invalid("nets::SimulationConfig", concat("layer_replicas['", layer, "'] = ",
                                                         replicas, ": must be 2..64"));
}

void check_precision(const std::string& layer, const char* field, std::int64_t bits) {
  if (bits != -1 && bits != 0 && (bits < 2 || bits > 16))
    core::throw_invalid("nets::SimulationConfig",
                        concat("layer_precision['", layer, "'].", field, " = ", bits,
                               ": must be -1 (inherit), 0 (off) or 2..16"));
}

}  // namespace

std::vector<std::string> layer_replicas_text(const std::map<std::string, int>& m) {
  std::vector<std::string> items;
  for (const auto& [name, r] : m) items.push_back(concat(name, ":", r));
  return items;
}

std::map<std::string, int> parse_layer_replicas(const std::vector<std::string>& items) {
  std::map<std::string, int> m;
  for (const std::string& item : items) {
    const auto colon = item.rfind(':');
    if (colon == std::string::npos || colon == 0)
      core::throw_invalid("nets::SimulationConfig",
                          concat("layer_replicas = '", item, "': expected NAME:R"));
    const std::string name = item.substr(0, colon);
    const auto r = std::get<std::int64_t>(core::parse_value(
        concat("layer_replicas['", name, "']"), core::ValueType::integer, item.substr(colon + 1)));
    if (m.count(name))
      core::throw_invalid("nets::SimulationConfig",
                          concat("layer_replicas names layer '", name, "' twice"));
    check_replicas(name, r);
    m[name] = static_cast<int>(r);
  }
  return m;
}

std::vector<mapping::LayerMatrix> placed_layer_matrices(const Network& net,
                                                        const SimulationConfig& config) {
  std::vector<mapping::LayerMatrix> out = layer_matrices(net);
  for (mapping::LayerMatrix& l : out)
    if (const auto it = config.layer_replicas.find(l.name); it != config.layer_replicas.end())
      l.rows *= it->second;
  return out;
}

void check_layer_names(const Network& net, const SimulationConfig& config) {
  constexpr const char* kConfig = "nets::SimulationConfig";
  for (const auto& entry : config.layer_precision)
    if (net.find_layer(entry.first) < 0)
      core::throw_invalid(kConfig, concat("layer_precision names layer '", entry.first,
                                          "', which the network does not have"));
  for (const auto& entry : config.layer_replicas) {
    const int i = net.find_layer(entry.first);
    const LayerKind kind = i < 0 ? LayerKind::identity : net.layers[std::size_t(i)].kind;
    if (kind != LayerKind::linear && kind != LayerKind::conv2d && kind != LayerKind::conv1d)
      core::throw_invalid(kConfig, concat("layer_replicas names layer '", entry.first, "', which ",
                                          i < 0 ? "the network does not have"
                                                : "is not a Linear or convolution layer"));
  }
}

void check_replicas_are_analog(const mapping::MappingPlan& plan, const SimulationConfig& config) {
  for (const mapping::LayerPlan& l : plan.layers)
    if (l.digital && config.layer_replicas.count(l.layer.name))
      core::throw_invalid(kTag, concat("layer_replicas names layer '", l.layer.name,
                                       "', which is kept digital (digital_layers): only analog "
                                       "layers are replicated on tiles"));
}

std::vector<std::string> layer_precision_text(const std::map<std::string, LayerPrecision>& m) {
  std::vector<std::string> items;
  for (const auto& [name, p] : m) items.push_back(concat(name, ":", p.p_in, ":", p.p_out));
  return items;
}

std::map<std::string, LayerPrecision> parse_layer_precision(const std::vector<std::string>& items) {
  std::map<std::string, LayerPrecision> m;
  for (const std::string& item : items) {
    const auto colon2 = item.rfind(':');
    const auto colon1 = colon2 == std::string::npos || colon2 == 0 ? std::string::npos
                                                                    : item.rfind(':', colon2 - 1);
    if (colon1 == std::string::npos || colon1 == 0)
      core::throw_invalid("nets::SimulationConfig",
                          concat("layer_precision = '", item, "': expected NAME:P_IN:P_OUT"));
    const std::string name = item.substr(0, colon1);
    const auto bits = [&](std::size_t begin, std::size_t end, const char* field) {
      const auto v = std::get<std::int64_t>(
          core::parse_value(concat("layer_precision['", name, "'].", field),
                            core::ValueType::integer, item.substr(begin, end - begin)));
      check_precision(name, field, v);
      return static_cast<int>(v);
    };
    if (m.count(name))
      core::throw_invalid("nets::SimulationConfig",
                          concat("layer_precision names layer '", name, "' twice"));
    m[name] = LayerPrecision{bits(colon1 + 1, colon2, "p_in"), bits(colon2 + 1, item.size(), "p_out")};
  }
  return m;
}

void SimulationConfig::validate() const {
  chip.validate();
  device.validate();
  mapper.validate();
  cell.validate();
  io.validate();
  ir_drop.validate();
  digital.validate();
  gdc_params.validate();
  calibration.validate();
  for (const auto& [name, precision] : layer_precision) {
    check_precision(name, "p_in", precision.p_in);
    check_precision(name, "p_out", precision.p_out);
  }
  for (const auto& [name, r] : layer_replicas) check_replicas(name, r);
}

core::RngKey programming_key(std::uint64_t seed, int matrix_layer, int slice, int trial) {
  return core::RngKey{seed,
                      core::Stage::programming,
                      static_cast<std::uint32_t>(matrix_layer),
                      static_cast<std::uint32_t>(slice),
                      static_cast<std::uint32_t>(trial),
                      0};
}

core::RngKey snapshot_key(std::uint64_t seed, int matrix_layer, int slice, int trial,
                          double t_inference) {
  return programming_key(seed, matrix_layer, slice, trial)
      .with_stage(core::Stage::snapshot)
      .with_sub(time_stream(t_inference));
}

core::RngKey adc_key(std::uint64_t seed, int matrix_layer, int slice, int trial) {
  return programming_key(seed, matrix_layer, slice, trial).with_sub(1);
}

namespace {

core::IoParams io_for_layer(const SimulationConfig& config, const std::string& name) {
  core::IoParams io = config.io;
  const auto it = config.layer_precision.find(name);
  if (it != config.layer_precision.end()) {
    if (it->second.p_in >= 0) io.p_in = it->second.p_in;
    if (it->second.p_out >= 0) io.p_out = it->second.p_out;
  }
  io.validate();
  return io;
}

// Calibration-stage streams of the GDC: layer bit 30 marks the reference reads (at t = 0),
// bit 31 the reads at each time.
core::RngKey gdc_key(const SimulationConfig& config, std::size_t m, std::size_t s, int trial,
                     double t_inference, std::uint32_t marker) {
  return snapshot_key(config.seed, int(m), int(s), trial, t_inference)
      .with_stage(core::Stage::calibration)
      .with_layer(marker | static_cast<std::uint32_t>(m));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ProgrammedChip

ProgrammedChip::ProgrammedChip(const Network& net, const SimulationConfig& config, int trial)
    : net_(net), config_(config), trial_(trial) {
  config_.validate();
  if (trial < 0) core::throw_invalid(kTag, concat("trial = ", trial, ": must be >= 0"));
  check_layer_names(net, config_);
  layers_ = matrix_layers(net);
  replicas_.assign(layers_.size(), 1);
  for (std::size_t m = 0; m < layers_.size(); ++m) {
    const auto it = config_.layer_replicas.find(layers_[m].name);
    if (it == config_.layer_replicas.end()) continue;
    const int R = replicas_[m] = it->second;
    for (MatrixF& w : layers_[m].weights) w = w.replicate(R, 1).eval();  // copy k: rows k*n..
    layers_[m].rows *= R;
  }
  plan_ = mapping::plan(placed_layer_matrices(net, config_), config_.chip, config_.mapper);
  check_replicas_are_analog(plan_, config_);
  const auto model = devices::make_device_model(config_.device);
  blocks_.resize(layers_.size());
  for (std::size_t m = 0; m < layers_.size(); ++m) {
    const mapping::LayerPlan& layer_plan = plan_.layers[m];
    blocks_[m].resize(layer_plan.slices.size());
    for (std::size_t s = 0; s < layer_plan.slices.size(); ++s) {
      const mapping::TileSlice& slice = layer_plan.slices[s];
      const auto weights = layers_[m].weights.at(slice.group).block(slice.row0, slice.col0,
                                                                    slice.rows, slice.cols);
      devices::program_block(devices::weights_to_targets(weights, config_.cell, model->g_max()),
                             model, programming_key(config_.seed, int(m), int(s), trial),
                             blocks_[m][s]);
    }
  }
}

void ProgrammedChip::check_programming(const SimulationConfig& config) const {
  config.validate();
  // Which settings belong to the programming is said once, in the field lists.
  const auto differ = core::differing_settings(config, config_, core::Affects::programming);
  if (!differ.empty()) {
    std::string names;
    for (const auto& n : differ) names += (names.empty() ? "" : ", ") + n;
    core::throw_invalid(kTag, concat("a configuration used with a programmed chip must have its "
                                     "programming settings; these differ: ", names));
  }
  check_layer_names(net_, config);
}

ChipSnapshot ProgrammedChip::at(double t_inference) const {
  core::require_non_negative(kTag, "t_inference", t_inference);
  ChipSnapshot snapshot;
  snapshot.t_inference = t_inference;
  snapshot.slices.resize(blocks_.size());
  for (std::size_t m = 0; m < blocks_.size(); ++m) {
    snapshot.slices[m].resize(blocks_[m].size());
    for (std::size_t s = 0; s < blocks_[m].size(); ++s) {
      devices::at_time(blocks_[m][s], t_inference,
                       snapshot_key(config_.seed, int(m), int(s), trial_, t_inference),
                       snapshot.slices[m][s]);
      circuit::apply_ir_drop(config_.ir_drop, snapshot.slices[m][s]);  // no-op without wires
    }
  }
  return snapshot;
}

// ---------------------------------------------------------------------------------------------
// ConverterSetup

// The ranges a calibrating forward measures, (layer, group) by (layer, group) as the data reach
// them.
struct ChipForward::Calibration {
  std::map<std::pair<int, int>, core::CalibratedRanges> ranges;
};

ConverterSetup::ConverterSetup(const ProgrammedChip& chip, const SimulationConfig& config,
                               const MatrixF* calibration_images)
    : config_(config) {
  chip.check_programming(config_);
  for (const MatrixLayer& layer : chip.layers()) io_.push_back(io_for_layer(config_, layer.name));
  if (!config_.calibrate && !config_.gdc) return;
  // Ranges and GDC references are measured at the programmed state.
  const ChipSnapshot programmed = chip.at(0.0);
  ChipForward::Calibration calibration;
  ChipForward forward_at_0(chip, *this, programmed, &calibration);
  if (config_.calibrate) {
    if (!calibration_images || calibration_images->rows() == 0)
      core::throw_invalid(kTag, "calibrate is on but no calibration images were given");
    forward(chip.network(), *calibration_images, forward_at_0);
    ranges_ = std::move(calibration.ranges);
  }
  if (!config_.gdc) return;
  // The reference is read with the calibrated ranges in place (forward_at_0 applied them).
  gdc_references_.resize(forward_at_0.tiles_.size());
  for (std::size_t m = 0; m < forward_at_0.tiles_.size(); ++m) {
    for (std::size_t s = 0; s < forward_at_0.tiles_[m].size(); ++s) {
      core::Tile& tile = *forward_at_0.tiles_[m][s];
      const core::RngKey key = gdc_key(config_, m, s, chip.trial(), 0.0, 0x40000000u);
      if (config_.gdc_params.reference == core::GdcReferenceKind::exact) {
        const mapping::TileSlice& slice = chip.plan().layers[m].slices[s];
        const MatrixF weights = chip.layers()[m].weights.at(slice.group).block(
            slice.row0, slice.col0, slice.rows, slice.cols);
        gdc_references_[m].push_back(
            core::gdc_reference_exact(tile, weights, config_.gdc_params, key));
      } else {
        gdc_references_[m].push_back(core::gdc_reference(tile, config_.gdc_params, key));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ChipForward

ChipForward::ChipForward(const ProgrammedChip& chip, const ConverterSetup& converters,
                         const ChipSnapshot& snapshot)
    : ChipForward(chip, converters, snapshot, nullptr) {}

ChipForward::ChipForward(const ProgrammedChip& chip, const ConverterSetup& converters,
                         const ChipSnapshot& snapshot, Calibration* calibration)
    : chip_(chip),
      converters_(converters),
      calibration_(calibration),
      fp32_(chip.network()),
      tiled_sum_(converters.config().digital) {
  const mapping::MappingPlan& plan = chip.plan();
  if (snapshot.slices.size() != plan.layers.size() ||
      converters.io_.size() != plan.layers.size())
    core::throw_invalid(kTag, "ChipForward: the snapshot or converter set-up belongs to another "
                              "chip (matrix layer counts differ)");
  tiles_.resize(plan.layers.size());
  alpha_.resize(plan.layers.size());
  for (std::size_t m = 0; m < plan.layers.size(); ++m) {
    const auto& slices = plan.layers[m].slices;
    if (snapshot.slices[m].size() != slices.size())
      core::throw_invalid(kTag, concat("ChipForward: the snapshot has ", snapshot.slices[m].size(),
                                       " slices for matrix layer ", m, ", the chip ",
                                       slices.size()));
    for (std::size_t s = 0; s < slices.size(); ++s) {
      tiles_[m].push_back(std::make_unique<core::Tile>(snapshot.slices[m][s], converters.io_[m]));
      tiles_[m].back()->draw_adc_errors(adc_key(chip.config().seed, int(m), int(s), chip.trial()));
      alpha_[m].push_back(core::VectorD::Ones(slices[s].cols));
    }
  }
  // Learned input ranges first: calibration then measures the ADC ranges with them in place.
  for (std::size_t m = 0; m < tiles_.size(); ++m) {
    const double learned = learned_input_range(m);
    if (learned > 0)
      for (auto& tile : tiles_[m]) tile->set_input_range(learned);
  }
  for (const auto& [where, ranges] : converters.ranges_) {
    std::vector<core::Tile*> tiles;
    for (std::size_t s = 0; s < plan.layers.at(where.first).slices.size(); ++s)
      if (plan.layers[where.first].slices[s].group == where.second)
        tiles.push_back(tiles_[where.first][s].get());
    core::apply_ranges(ranges, tiles);
  }
  t_inference_ = snapshot.t_inference;
  if (!calibration_)
    for (std::size_t m = 0; m < tiles_.size(); ++m)
      for (std::size_t s = 0; s < tiles_[m].size(); ++s) update_gdc_alpha(m, s);
}

ChipForward::~ChipForward() = default;

void ChipForward::set_snapshot(const ChipSnapshot& snapshot) {
  if (snapshot.slices.size() != tiles_.size())
    core::throw_invalid(kTag, "set_snapshot: the snapshot belongs to another chip");
  for (std::size_t m = 0; m < tiles_.size(); ++m) {
    if (snapshot.slices[m].size() != tiles_[m].size())
      core::throw_invalid(kTag, "set_snapshot: the snapshot belongs to another chip");
    for (std::size_t s = 0; s < tiles_[m].size(); ++s)
      tiles_[m][s]->set_conductances(snapshot.slices[m][s]);
  }
  t_inference_ = snapshot.t_inference;
  for (std::size_t m = 0; m < tiles_.size(); ++m)
    for (std::size_t s = 0; s < tiles_[m].size(); ++s) update_gdc_alpha(m, s);
}

double ChipForward::learned_input_range(std::size_t m) const {
  return converters_.config().use_learned_input_ranges
             ? chip_.layers().at(m).learned_input_range
             : 0.0;
}

void ChipForward::update_gdc_alpha(std::size_t m, std::size_t s) {
  const SimulationConfig& config = converters_.config();
  if (!config.gdc) return;
  const core::RngKey key = gdc_key(config, m, s, chip_.trial(), t_inference_, 0x80000000u);
  alpha_[m][s] =
      core::gdc_alpha(*tiles_[m][s], converters_.gdc_references_.at(m).at(s), key).alpha;
}

void ChipForward::begin_batch(Index first_sample, Index batch_size) {
  first_sample_ = first_sample;
  batch_size_ = batch_size;
}

void ChipForward::matmul(int m, int group, const core::RowSource& x, MatrixF& y) {
  const mapping::LayerPlan& layer_plan = chip_.plan().layers.at(m);
  if (layer_plan.digital) {
    fp32_.matmul(m, group, x, y);
    return;
  }
  const int R = chip_.replicas(m);
  if (R == 1) {
    tiles_matmul(m, group, x, y);
    return;
  }
  // Every copy of the weights gets the same input; the digital unit averages the copies.
  tiles_matmul(m, group, core::RepeatedRows(x, R), y);
  y /= static_cast<float>(R);
}

void ChipForward::tiles_matmul(int m, int group, const core::RowSource& x, MatrixF& y) {
  const mapping::LayerPlan& layer_plan = chip_.plan().layers.at(m);
  if (calibration_ && !calibration_->ranges.count({m, group})) calibrate_group(m, group, x);
  const SimulationConfig& config = converters_.config();
  y.resize(x.rows(), chip_.layers().at(m).cols);
  // The draws are keyed by the global position: x holds positions_per_sample rows per sample,
  // sample-major (nets/forward.h), so its first row is position first_sample_ * that of the
  // data set. The same bits for any batch size.
  const Index positions_per_sample = batch_size_ > 0 ? x.rows() / batch_size_ : 1;
  const auto first_row = static_cast<std::uint64_t>(first_sample_) *
                         static_cast<std::uint64_t>(positions_per_sample);
  for (const mapping::PartialSum& sum : layer_plan.partial_sums) {
    if (sum.group != group) continue;
    terms_.clear();
    for (Index s : sum.slices) {
      const mapping::TileSlice& slice = layer_plan.slices[s];
      const core::RngKey key{config.seed,
                             core::Stage::tile_forward,
                             static_cast<std::uint32_t>(m),
                             static_cast<std::uint32_t>(s),
                             static_cast<std::uint32_t>(chip_.trial()),
                             0};
      terms_.push_back({tiles_[m][s].get(), slice.row0, 0, key,
                        config.gdc ? &alpha_[m][s] : nullptr});  // ones until set
    }
    tiled_sum_.run(terms_, x, first_row, y.middleCols(sum.col0, sum.cols));
  }
}

// Measures the converter ranges of the tiles of one (layer, group) on its actual inputs, which
// already went through the calibrated analog layers before it.
void ChipForward::calibrate_group(int m, int group, const core::RowSource& x) {
  const mapping::LayerPlan& layer_plan = chip_.plan().layers.at(m);
  std::vector<core::TilePlacement> placements;
  std::vector<core::Tile*> tiles;
  for (std::size_t s = 0; s < layer_plan.slices.size(); ++s) {
    const mapping::TileSlice& slice = layer_plan.slices[s];
    if (slice.group != group) continue;
    placements.push_back({tiles_[m][s].get(), slice.row0, slice.col0});
    tiles.push_back(tiles_[m][s].get());
  }
  const SimulationConfig& config = converters_.config();
  const core::RngKey key =
      programming_key(config.seed, m, group, chip_.trial()).with_stage(core::Stage::calibration);
  core::CalibrationParams params = config.calibration;
  if (learned_input_range(static_cast<std::size_t>(m)) > 0) params.calibrate_input = false;
  core::CalibratedRanges ranges = core::calibrate_ranges(placements, {core::all_rows(x)}, params, key);
  core::apply_ranges(ranges, tiles);
  calibration_->ranges[{m, group}] = std::move(ranges);
}

}  // namespace pcmsim::nets
