#include "nets/simulation.h"

#include <algorithm>
#include <cstring>
#include <set>

#include "core/error.h"

namespace pcmsim::nets {
namespace {

constexpr const char* kTag = "nets::AnalogChip";
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

void check_precision(const std::string& layer, const char* field, std::int64_t bits) {
  if (bits != -1 && bits != 0 && (bits < 2 || bits > 16))
    core::throw_invalid("nets::SimulationConfig",
                        concat("layer_precision['", layer, "'].", field, " = ", bits,
                               ": must be -1 (inherit), 0 (off) or 2..16"));
}

}  // namespace

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
  digital.validate();
  gdc_params.validate();
  calibration.validate();
  for (const auto& [name, precision] : layer_precision) {
    check_precision(name, "p_in", precision.p_in);
    check_precision(name, "p_out", precision.p_out);
  }
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

// Runs analog layers on their tiles and digital layers in float32.
class AnalogChip::Provider : public MatmulProvider {
 public:
  Provider(AnalogChip& chip) : chip_(chip), fp32_(chip.net_), accumulator_(chip.config_.digital) {}

  void begin_batch(Index first_sample, Index batch_size) override {
    first_sample_ = first_sample;
    batch_size_ = batch_size;
  }

  void matmul(int m, int group, const Eigen::Ref<const MatrixF>& x, MatrixF& y) override {
    const mapping::LayerPlan& layer_plan = chip_.plan_.layers.at(m);
    if (layer_plan.digital) {
      fp32_.matmul(m, group, x, y);
      return;
    }
    if (calibrating_ && !chip_.ranges_.count({m, group})) calibrate_group(m, group, x);
    const MatrixLayer& layer = chip_.layers_.at(m);
    y.resize(x.rows(), layer.cols);
    // x holds positions_per_sample rows per sample, sample-major (nets/forward.h).
    const Index positions_per_sample = batch_size_ > 0 ? x.rows() / batch_size_ : 1;
    const auto first_row = static_cast<std::uint64_t>(first_sample_) *
                           static_cast<std::uint64_t>(positions_per_sample);
    for (const mapping::PartialSum& sum : layer_plan.partial_sums) {
      if (sum.group != group) continue;
      accumulator_.begin(x.rows(), sum.cols);
      for (Index s : sum.slices) {
        const mapping::TileSlice& slice = layer_plan.slices[s];
        // Draws keyed by the global position (sample first_sample_ + n, output position p of
        // the positions_per_sample of a conv layer): the same bits for any batch size.
        const core::RngKey key{chip_.config_.seed,
                               core::Stage::tile_forward,
                               static_cast<std::uint32_t>(m),
                               static_cast<std::uint32_t>(s),
                               static_cast<std::uint32_t>(chip_.trial_),
                               0};
        chip_.slices_[m][s].tile->forward(x.middleCols(slice.row0, slice.rows), key, readout_,
                                          first_row);
        accumulator_.add(readout_, 0, chip_.config_.gdc ? &chip_.alpha_[m][s] : nullptr);
      }
      accumulator_.finish(partial_);
      y.middleCols(sum.col0, sum.cols) = partial_;
    }
  }

  bool calibrating_ = false;

 private:
  // Measures the converter ranges of the tiles of one (layer, group) on its actual inputs, which
  // already went through the calibrated analog layers before it.
  void calibrate_group(int m, int group, const Eigen::Ref<const MatrixF>& x) {
    const mapping::LayerPlan& layer_plan = chip_.plan_.layers.at(m);
    std::vector<core::TilePlacement> placements;
    std::vector<core::Tile*> tiles;
    for (std::size_t s = 0; s < layer_plan.slices.size(); ++s) {
      const mapping::TileSlice& slice = layer_plan.slices[s];
      if (slice.group != group) continue;
      placements.push_back({chip_.slices_[m][s].tile.get(), slice.row0, slice.col0});
      tiles.push_back(chip_.slices_[m][s].tile.get());
    }
    const core::RngKey key = programming_key(chip_.config_.seed, m, group, chip_.trial_)
                                 .with_stage(core::Stage::calibration);
    core::CalibratedRanges ranges =
        core::calibrate_ranges(placements, {MatrixF(x)}, chip_.config_.calibration, key);
    core::apply_ranges(ranges, tiles);
    chip_.ranges_[{m, group}] = std::move(ranges);
  }

  AnalogChip& chip_;
  Fp32Matmul fp32_;
  core::LayerAccumulator accumulator_;
  core::TileReadout readout_;
  MatrixF partial_;
  Index first_sample_ = 0;
  Index batch_size_ = 0;
};

AnalogChip::AnalogChip(const Network& net, const SimulationConfig& config, int trial)
    : net_(net), config_(config), trial_(trial) {
  config_.validate();
  if (trial < 0) core::throw_invalid(kTag, concat("trial = ", trial, ": must be >= 0"));
  layers_ = matrix_layers(net);
  for (const auto& entry : config_.layer_precision)
    if (net.find_layer(entry.first) < 0)
      core::throw_invalid(kTag, concat("layer_precision names layer '", entry.first,
                                       "', which the network does not have"));
  plan_ = mapping::plan(layer_matrices(net), config_.chip, config_.mapper);
  const auto model = devices::make_device_model(config_.device);

  slices_.resize(layers_.size());
  alpha_.resize(layers_.size());
  for (std::size_t m = 0; m < layers_.size(); ++m) {
    const mapping::LayerPlan& layer_plan = plan_.layers[m];
    const core::IoParams io = io_for_layer(layers_[m].name);
    slices_[m].resize(layer_plan.slices.size());
    alpha_[m].resize(layer_plan.slices.size());
    for (std::size_t s = 0; s < layer_plan.slices.size(); ++s) {
      const mapping::TileSlice& slice = layer_plan.slices[s];
      const auto weights = layers_[m].weights.at(slice.group).block(slice.row0, slice.col0,
                                                                    slice.rows, slice.cols);
      SliceState& state = slices_[m][s];
      devices::program_block(devices::weights_to_targets(weights, config_.cell, model->g_max()),
                             model, programming_key(config_.seed, int(m), int(s), trial),
                             state.programmed);
      devices::at_time(state.programmed, 0.0, snapshot_key(config_.seed, int(m), int(s), trial, 0),
                       state.conductances);
      state.tile = std::make_unique<core::Tile>(state.conductances, io);
      alpha_[m][s] = core::VectorD::Ones(slice.cols);
    }
  }
  provider_ = std::make_unique<Provider>(*this);
}

AnalogChip::AnalogChip(const AnalogChip& programmed, const SimulationConfig& config)
    : net_(programmed.net_), config_(config), trial_(programmed.trial_) {
  config_.validate();
  const SimulationConfig& p = programmed.config_;
  // Which settings belong to the programming is said once, in the field lists.
  const auto differ = core::differing_settings(config_, p, core::Affects::programming);
  if (!differ.empty()) {
    std::string names;
    for (const auto& n : differ) names += (names.empty() ? "" : ", ") + n;
    core::throw_invalid(kTag, concat("a chip sharing another's programming must have the same "
                                     "programming settings; these differ: ", names));
  }
  for (const auto& entry : config_.layer_precision)
    if (net_.find_layer(entry.first) < 0)
      core::throw_invalid(kTag, concat("layer_precision names layer '", entry.first,
                                       "', which the network does not have"));
  config_.cell = p.cell;
  layers_ = programmed.layers_;
  plan_ = programmed.plan_;
  slices_.resize(layers_.size());
  alpha_.resize(layers_.size());
  for (std::size_t m = 0; m < layers_.size(); ++m) {
    const core::IoParams io = io_for_layer(layers_[m].name);
    slices_[m].resize(programmed.slices_[m].size());
    alpha_[m].resize(programmed.slices_[m].size());
    for (std::size_t s = 0; s < slices_[m].size(); ++s) {
      SliceState& state = slices_[m][s];
      state.programmed = programmed.slices_[m][s].programmed;
      // The programmed state as the constructor derives it (the source may be at a later time).
      devices::at_time(state.programmed, 0.0,
                       snapshot_key(config_.seed, int(m), int(s), trial_, 0), state.conductances);
      state.tile = std::make_unique<core::Tile>(state.conductances, io);
      alpha_[m][s] = core::VectorD::Ones(plan_.layers[m].slices[s].cols);
    }
  }
  provider_ = std::make_unique<Provider>(*this);
}

AnalogChip::~AnalogChip() = default;

core::IoParams AnalogChip::io_for_layer(const std::string& name) const {
  core::IoParams io = config_.io;
  const auto it = config_.layer_precision.find(name);
  if (it != config_.layer_precision.end()) {
    if (it->second.p_in >= 0) io.p_in = it->second.p_in;
    if (it->second.p_out >= 0) io.p_out = it->second.p_out;
  }
  io.validate();
  return io;
}

void AnalogChip::calibrate(const MatrixF& images) {
  if (!config_.calibrate)
    core::throw_invalid(kTag, "calibrate() called while config.calibrate is false");
  if (t_inference_ != 0 || gdc_ready_)
    core::throw_invalid(kTag, "calibrate() must come right after programming, before set_time()");
  ranges_.clear();
  provider_->calibrating_ = true;
  try {
    forward(net_, images, *provider_);
  } catch (...) {
    provider_->calibrating_ = false;
    throw;
  }
  provider_->calibrating_ = false;
}

void AnalogChip::prepare_gdc() {
  // The reference is read at the programmed state (t = 0), with the calibrated ranges in place.
  for (std::size_t m = 0; m < slices_.size(); ++m) {
    for (std::size_t s = 0; s < slices_[m].size(); ++s) {
      SliceState& state = slices_[m][s];
      // Calibration-stage streams: layer bit 30 marks the GDC reference, bit 31 the GDC reads.
      const core::RngKey key = snapshot_key(config_.seed, int(m), int(s), trial_, 0)
                                   .with_stage(core::Stage::calibration)
                                   .with_layer(0x40000000u | static_cast<std::uint32_t>(m));
      if (config_.gdc_params.reference == core::GdcReferenceKind::exact) {
        const mapping::TileSlice& slice = plan_.layers[m].slices[s];
        const MatrixF weights = layers_[m].weights.at(slice.group).block(
            slice.row0, slice.col0, slice.rows, slice.cols);
        state.gdc_reference =
            core::gdc_reference_exact(*state.tile, weights, config_.gdc_params, key);
      } else {
        state.gdc_reference = core::gdc_reference(*state.tile, config_.gdc_params, key);
      }
    }
  }
  gdc_ready_ = true;
}

void AnalogChip::set_time(double t_inference) {
  core::require_non_negative(kTag, "t_inference", t_inference);
  if (config_.gdc && !gdc_ready_) prepare_gdc();
  for (std::size_t m = 0; m < slices_.size(); ++m) {
    for (std::size_t s = 0; s < slices_[m].size(); ++s) {
      SliceState& state = slices_[m][s];
      devices::at_time(state.programmed, t_inference,
                       snapshot_key(config_.seed, int(m), int(s), trial_, t_inference),
                       state.conductances);
      state.tile->set_conductances(state.conductances);
      update_gdc_alpha(m, s, t_inference);
    }
  }
  t_inference_ = t_inference;
}

void AnalogChip::update_gdc_alpha(std::size_t m, std::size_t s, double t_inference) {
  if (!config_.gdc) return;
  const core::RngKey key = snapshot_key(config_.seed, int(m), int(s), trial_, t_inference)
                               .with_stage(core::Stage::calibration)
                               .with_layer(0x80000000u | static_cast<std::uint32_t>(m));
  alpha_[m][s] = core::gdc_alpha(*slices_[m][s].tile, slices_[m][s].gdc_reference, key).alpha;
}

void AnalogChip::set_time_from(const AnalogChip& source) {
  if (&source.net_ != &net_ || source.trial_ != trial_ || source.slices_.size() != slices_.size())
    core::throw_invalid(kTag, "set_time_from: the source chip has another network or trial");
  if (config_.gdc && !gdc_ready_) prepare_gdc();
  for (std::size_t m = 0; m < slices_.size(); ++m) {
    if (source.slices_[m].size() != slices_[m].size())
      core::throw_invalid(kTag, "set_time_from: the source chip has another mapping");
    for (std::size_t s = 0; s < slices_[m].size(); ++s) {
      SliceState& state = slices_[m][s];
      state.conductances = source.slices_[m][s].conductances;
      state.tile->set_conductances(state.conductances);
      update_gdc_alpha(m, s, source.t_inference_);
    }
  }
  t_inference_ = source.t_inference_;
}

MatmulProvider& AnalogChip::provider() { return *provider_; }

}  // namespace pcmsim::nets
