// How well a MappingPlan uses the chip: per layer its matrix shape, tiles used and
// utilisation, plus totals; rendered as a text table or JSON (the library returns strings, the
// CLI prints them).
//
// Utilisation = cells holding a weight / cells of the tiles used. A cell is one weight = one
// differential device pair (one tile column x one tile row). Per layer, "tiles used" counts
// every tile holding any of its slices, so with packing a shared tile counts for each layer on
// it; the totals count every tile once.
#pragma once

#include <string>
#include <vector>

#include "mapping/mapping_plan.h"

namespace pcmsim::mapping {

struct LayerUtilisation {
  std::string name;
  Index rows = 0;  // matrix rows (inputs) of one group
  Index cols = 0;  // matrix cols (outputs) of one group
  Index groups = 1;
  Index kernel_h = 1;
  Index kernel_w = 1;
  bool digital = false;
  Index weights = 0;          // rows * cols * groups
  Index slices = 0;           // blocks placed on tiles (0 when digital)
  Index tiles = 0;            // distinct tiles holding a slice of this layer
  Index cells_used = 0;       // weights on tiles (= weights when analog, 0 when digital)
  Index cells_available = 0;  // tiles * tile_rows * tile_cols
  double utilisation = 0.0;   // cells_used / cells_available; 0 when the layer uses no tile
};

struct UtilisationReport {
  ChipSpec chip;
  MapperOptions options;
  std::vector<LayerUtilisation> layers;
  Index tiles_used = 0;        // distinct tiles of the whole plan
  Index analog_weights = 0;    // = cells used on the chip
  Index digital_weights = 0;   // weights kept in the digital unit
  Index cells_available = 0;   // tiles_used * tile_rows * tile_cols
  double utilisation = 0.0;    // analog_weights / cells_available; 0 when no tile is used
  double chip_occupancy = 0.0; // tiles_used / chip.num_tiles on a bounded chip; 0 if unbounded
};

UtilisationReport utilisation_report(const MappingPlan& plan);

// Aligned plain-text table: a header line with the chip and options, one row per layer, a
// total row, and the digital layers.
std::string render_table(const UtilisationReport& report);

// One JSON object {"chip":{...},"options":{...},"layers":[...],"totals":{...}}; field names as
// in the structs above. With `plan` (the plan the report was made from), a "plan" member is
// added: {"tiles_used", "layers": [{"name", "digital", "slices": [{tile, group, row0, col0,
// rows, cols, tile_row0, tile_col0}], "partial_sums": [{group, col0, cols, slices}]}]}.
std::string render_json(const UtilisationReport& report, const MappingPlan* plan = nullptr);

// Every slice of the plan, one line each: layer, group, weight rows [r0, r1) and cols [c0, c1),
// tile and position on it, and the partial sum (column block) it is added into.
std::string render_slices_table(const MappingPlan& plan);

}  // namespace pcmsim::mapping
