#include "core/calibration.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/digital_unit.h"
#include "core/error.h"

namespace pcmsim::core {

namespace {
constexpr const char* kParams = "core::CalibrationParams";
constexpr const char* kWhere = "core::calibrate_ranges";

// The tile with its ADC off: the same normalised weights, read weights, output scales, noise
// and input handling, rebuilt from the tile's public view (one plane per read group, whose
// significance is the group's read weight, so the twin's group weights equal the tile's).
Tile adc_off_twin(const Tile& tile, double input_range) {
  ConductanceBlock block;
  block.g_max = 1.0;  // normalised conductances: G = w * g_max
  block.readout = PlaneReadout::digital;
  for (int g = 0; g < tile.groups(); ++g) {
    const MatrixF& w = tile.group_weights(g);
    ConductancePlane p;
    p.g_plus = w.cwiseMax(0.0f);
    p.g_minus = (-w).cwiseMax(0.0f);
    p.significance = tile.group_weight(g);
    block.planes.push_back(std::move(p));
  }
  block.weight_scale = tile.output_scale().cwiseInverse();  // output_scale = g_max / s
  IoParams io = tile.io();
  io.p_out = 0;
  io.out_bound = std::numeric_limits<double>::infinity();
  // The twin reads the analog outputs before any ADC: no ADC errors (an INL is relative to a
  // full scale the twin does not have; gains and offsets are drawn on the real tile only).
  io.adc_offset_std = io.adc_gain_std = io.adc_inl = 0.0;
  io.adc_inl_table.clear();
  Tile twin(std::move(block), io);
  twin.set_input_range(input_range);
  return twin;
}
}  // namespace

std::string to_string(RangeStatistic v) { return v == RangeStatistic::max ? "max" : "percentile"; }
std::string to_string(OutputRangeGranularity v) {
  return v == OutputRangeGranularity::per_column ? "per_column" : "per_tile";
}
RangeStatistic range_statistic_from_string(const std::string& text) {
  if (text == "max") return RangeStatistic::max;
  if (text == "percentile") return RangeStatistic::percentile;
  throw_invalid(kWhere, concat("statistic = '", text, "': must be max or percentile"));
}
OutputRangeGranularity output_range_granularity_from_string(const std::string& text) {
  if (text == "per_column") return OutputRangeGranularity::per_column;
  if (text == "per_tile") return OutputRangeGranularity::per_tile;
  throw_invalid(kWhere, concat("output_granularity = '", text, "': must be per_column or per_tile"));
}

void CalibrationParams::validate() const {
  if (statistic != RangeStatistic::max && statistic != RangeStatistic::percentile)
    throw_invalid(kParams, concat("statistic = ", static_cast<int>(statistic), ": unknown"));
  if (!(percentile > 0 && percentile <= 100))
    throw_invalid(kParams, concat("percentile = ", percentile, ": must be in (0, 100]"));
  if (output_granularity != OutputRangeGranularity::per_column &&
      output_granularity != OutputRangeGranularity::per_tile)
    throw_invalid(kParams, concat("output_granularity = ", static_cast<int>(output_granularity),
                                  ": unknown"));
  require_positive(kParams, "input_headroom", input_headroom);
  require_positive(kParams, "output_headroom", output_headroom);
}

double range_statistic(std::vector<float>& values, const CalibrationParams& params) {
  if (values.empty()) return 0.0;
  for (float& v : values) v = std::fabs(v);
  if (params.statistic == RangeStatistic::max)
    return *std::max_element(values.begin(), values.end());
  const double n = static_cast<double>(values.size());
  auto rank = static_cast<std::size_t>(std::ceil(params.percentile / 100.0 * n));
  rank = std::min(std::max<std::size_t>(rank, 1), values.size());
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(rank - 1),
                   values.end());
  return values[rank - 1];
}

CalibratedRanges calibrate_ranges(const std::vector<TilePlacement>& tiles,
                                  const std::vector<MatrixF>& batches,
                                  const CalibrationParams& params, const RngKey& key) {
  params.validate();
  if (batches.empty()) throw_invalid(kWhere, "no calibration batches");
  const Index width = batches.front().cols();
  for (std::size_t k = 0; k < batches.size(); ++k) {
    if (batches[k].cols() != width || batches[k].rows() < 1)
      throw_invalid(kWhere, concat("batch ", k, " is ", batches[k].rows(), "x", batches[k].cols(),
                                   ": every batch must be n x ", width, " with n >= 1"));
    if (!batches[k].allFinite())
      throw_invalid(kWhere, concat("batch ", k, " contains a NaN or infinite value"));
  }
  Index layer_cols = 0;
  for (std::size_t t = 0; t < tiles.size(); ++t) {
    if (tiles[t].tile == nullptr) throw_invalid(kWhere, concat("tile ", t, " is null"));
    if (tiles[t].col0 < 0)
      throw_invalid(kWhere, concat("tile ", t, ": col0 = ", tiles[t].col0, ": must be >= 0"));
    layer_cols = std::max(layer_cols, tiles[t].col0 + tiles[t].tile->cols());
    if (tiles[t].row0 < 0 || tiles[t].row0 + tiles[t].tile->rows() > width)
      throw_invalid(kWhere, concat("tile ", t, ": rows [", tiles[t].row0, ", ",
                                   tiles[t].row0 + tiles[t].tile->rows(),
                                   ") outside the layer's ", width, " inputs"));
  }

  CalibratedRanges out;
  if (params.calibrate_input) {
    std::vector<float> all;
    for (const MatrixF& b : batches) all.insert(all.end(), b.data(), b.data() + b.size());
    const double stat = range_statistic(all, params);
    if (!(stat > 0))
      throw_invalid(kWhere, concat("input range statistic = ", stat,
                                   ": the calibration inputs are all zero"));
    out.input_range = stat * params.input_headroom;
  }
  if (!params.calibrate_output) return out;

  const RngKey base = key.with_stage(Stage::calibration);
  out.output_bounds.resize(tiles.size());
  // The layer outputs of each batch (ADC off), accumulated over the tiles.
  std::vector<LayerAccumulator> layer(batches.size());
  if (layer_cols > 0)
    for (std::size_t k = 0; k < batches.size(); ++k) layer[k].begin(batches[k].rows(), layer_cols);
  for (std::size_t t = 0; t < tiles.size(); ++t) {
    const Tile& tile = *tiles[t].tile;
    const double in_range = out.input_range > 0 ? out.input_range : tile.input_range();
    const Tile twin = adc_off_twin(tile, in_range);
    const Index cols = tile.cols();
    std::vector<std::vector<float>> per_col(static_cast<std::size_t>(cols));
    TileReadout ro;
    for (std::size_t k = 0; k < batches.size(); ++k) {
      const MatrixF& x = batches[k];
      twin.forward(x.middleCols(tiles[t].row0, tile.rows()),
                   base.with_slice(static_cast<std::uint32_t>(t)).with_sub(static_cast<std::uint32_t>(k)),
                   ro);
      layer[k].add(ro, tiles[t].col0);
      for (const MatrixF& rd : ro.reads)
        for (Index b = 0; b < rd.rows(); ++b)
          for (Index j = 0; j < cols; ++j) per_col[static_cast<std::size_t>(j)].push_back(rd(b, j));
    }
    std::vector<float> all;
    for (const auto& v : per_col) all.insert(all.end(), v.begin(), v.end());
    double tile_stat = range_statistic(all, params) * params.output_headroom;
    if (!(tile_stat > 0)) tile_stat = tile.io().out_bound;  // the tile never sees a signal
    VectorF bounds(cols);
    for (Index j = 0; j < cols; ++j) {
      double s = tile_stat;
      if (params.output_granularity == OutputRangeGranularity::per_column) {
        s = range_statistic(per_col[static_cast<std::size_t>(j)], params) * params.output_headroom;
        if (!(s > 0)) s = tile_stat;
      }
      bounds(j) = static_cast<float>(s);
    }
    out.output_bounds[t] = bounds;
  }
  if (layer_cols > 0)
    for (auto& acc : layer)
      out.layer_output_max = std::max<double>(out.layer_output_max, acc.finish().cwiseAbs().maxCoeff());
  return out;
}

void apply_ranges(const CalibratedRanges& ranges, const std::vector<Tile*>& tiles) {
  if (!ranges.output_bounds.empty() && ranges.output_bounds.size() != tiles.size())
    throw_invalid("core::apply_ranges", concat(ranges.output_bounds.size(),
                                               " tiles calibrated, ", tiles.size(), " given"));
  for (std::size_t t = 0; t < tiles.size(); ++t) {
    if (tiles[t] == nullptr) throw_invalid("core::apply_ranges", concat("tile ", t, " is null"));
    if (ranges.input_range > 0) tiles[t]->set_input_range(ranges.input_range);
    if (!ranges.output_bounds.empty() && ranges.output_bounds[t].size() > 0)
      tiles[t]->set_output_bounds(ranges.output_bounds[t]);
  }
}

}  // namespace pcmsim::core
