// Calibrated converter ranges (issue 3 item 6): the input range of a layer and the ADC full
// scale of each tile (per column or per tile), measured on a few batches of data right after
// programming, stored with the programmed chip (CalibratedRanges) and applied at every later
// time with Tile::set_input_range / Tile::set_output_bounds.
//
// Input range: the statistic (max, or a percentile) of |x| over every value of the layer's
// calibration inputs, times headroom. It is what NoiseManagement::static_range divides by; with
// abs_max it is stored but has no effect on the tile.
//
// Output bounds: each tile's calibration inputs (its rows of the layer input) go through a
// twin of the tile with the ADC off (p_out = 0, unbounded) and otherwise the same converters,
// noise management (with the calibrated input range) and noise, so the observed values are
// exactly what the ADC would see. The statistic of |value| over all samples and reads of a
// column (per_column) or of the whole tile (per_tile), times headroom, is the bound. A column
// that only ever sees 0 takes the tile's bound; a tile that only sees 0 keeps
// IoParams::out_bound.
//
// Percentile: nearest rank, the ceil(p/100 * n)-th smallest of the n observed values.
#pragma once

#include <string>
#include <vector>

#include "core/rng.h"
#include "core/settings.h"
#include "core/tile.h"
#include "core/types.h"

namespace pcmsim::core {

enum class RangeStatistic { max, percentile };
enum class OutputRangeGranularity { per_column, per_tile };

std::string to_string(RangeStatistic v);
std::string to_string(OutputRangeGranularity v);
RangeStatistic range_statistic_from_string(const std::string& text);  // "max", "percentile"
OutputRangeGranularity output_range_granularity_from_string(const std::string& text);
PCMSIM_ENUM_TEXT(RangeStatistic, range_statistic_from_string, "max", "percentile");
PCMSIM_ENUM_TEXT(OutputRangeGranularity, output_range_granularity_from_string, "per_column",
                 "per_tile");

struct CalibrationParams {
  RangeStatistic statistic = RangeStatistic::max;
  // With statistic = percentile: in (0, 100] (e.g. 99.9 ignores the rarest outliers).
  double percentile = 99.9;
  OutputRangeGranularity output_granularity = OutputRangeGranularity::per_column;
  // Multiplies both statistics (finite, > 0); > 1 leaves room for later drift or noise.
  double input_headroom = 1.0;
  double output_headroom = 1.0;
  bool calibrate_input = true;
  bool calibrate_output = true;

  // Throws std::invalid_argument "[core::CalibrationParams] <field> = <value>: ...".
  void validate() const;

  // Outside this struct the names carry the prefix calibration_ (--calibration-percentile).
  template <class V>
  static void fields(V& v) {
    using S = CalibrationParams;
    const Affects c = Affects::converter;
    v.field({"statistic", "", "", "calibrated range statistic", c, "calibration_statistic"},
            [](S& s) -> auto& { return s.statistic; });
    v.field({"percentile", "%", "(0, 100]", "percentile of the percentile statistic", c,
             "calibration_percentile"}, [](S& s) -> auto& { return s.percentile; });
    v.field({"output_granularity", "", "", "calibrated ADC range per column or per tile", c,
             "calibration_output_granularity"},
            [](S& s) -> auto& { return s.output_granularity; });
    v.field({"input_headroom", "", "> 0, finite", "multiplies the input statistic", c,
             "calibration_input_headroom"}, [](S& s) -> auto& { return s.input_headroom; });
    v.field({"output_headroom", "", "> 0, finite", "multiplies the output statistic", c,
             "calibration_output_headroom"}, [](S& s) -> auto& { return s.output_headroom; });
    v.field({"calibrate_input", "", "", "calibrate the input ranges", c,
             "calibration_input"}, [](S& s) -> auto& { return s.calibrate_input; });
    v.field({"calibrate_output", "", "", "calibrate the ADC ranges", c,
             "calibration_output"}, [](S& s) -> auto& { return s.calibrate_output; });
  }
};

// The calibrated ranges of one layer (keep with the programmed chip).
struct CalibratedRanges {
  double input_range = 0;               // 0 = not calibrated
  std::vector<VectorF> output_bounds;   // per tile: one bound per column (normalised units);
                                        // empty = not calibrated
  // Largest |pre-bias layer output| over the calibration data (ADC off, float64 accumulation,
  // output units); 0 = not measured (calibrate_output off). Sizes a fixed-point accumulator:
  // DigitalParams::acc_frac_bits = frac_bits_for_range(headroom * layer_output_max, acc_bits).
  double layer_output_max = 0;
};

// Where a tile sits in its layer: it receives input columns [row0, row0 + tile->rows()) and
// produces layer outputs [col0, col0 + tile->cols()).
struct TilePlacement {
  Tile* tile = nullptr;
  Index row0 = 0;
  Index col0 = 0;
};

// Measures the ranges on `batches` (each batch x layer inputs, finite; at least one value).
// Noise draws come from key.with_stage(Stage::calibration).with_slice(tile).with_sub(batch).
// Does not modify the tiles. Throws std::invalid_argument on bad params, no batches, a batch
// narrower than a tile's rows, non-finite data, or all-zero data when calibrating the input.
CalibratedRanges calibrate_ranges(const std::vector<TilePlacement>& tiles,
                                  const std::vector<MatrixF>& batches,
                                  const CalibrationParams& params, const RngKey& key);

// Applies stored ranges to the tiles (same order as calibrated): set_input_range when
// calibrated, set_output_bounds for each tile with bounds. Throws on a count mismatch.
void apply_ranges(const CalibratedRanges& ranges, const std::vector<Tile*>& tiles);

// Statistic of |values| (max or nearest-rank percentile); 0 for no values. `values` is
// reordered.
double range_statistic(std::vector<float>& values, const CalibrationParams& params);

}  // namespace pcmsim::core
