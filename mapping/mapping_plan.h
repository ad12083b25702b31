// Stage 2 of the pipeline: place every mappable layer's weight matrices on crossbar tiles.
//
// plan() is pure and deterministic: it needs only the layer shapes, the chip and the options,
// and returns the same MappingPlan for the same inputs. check_plan() verifies its invariants.
// See docs/mapping.md for the data model.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mapping/chip_spec.h"

namespace pcmsim::mapping {

// One block of one layer (group) placed on one physical tile.
// The block is W_group[row0 : row0+rows, col0 : col0+cols] (rows = inputs, cols = outputs) and
// sits at [tile_row0 : tile_row0+rows, tile_col0 : tile_col0+cols] of tile `tile`.
struct TileSlice {
  Index tile = 0;  // physical tile id in [0, MappingPlan::tiles_used)
  Index group = 0;
  Index row0 = 0;
  Index col0 = 0;
  Index rows = 0;
  Index cols = 0;
  Index tile_row0 = 0;  // always 0 without packing
  Index tile_col0 = 0;
};

// The digital unit adds the partial outputs of `slices` (indices into LayerPlan::slices, in
// increasing row0; together they cover all rows of the group) into outputs col0 .. col0+cols-1
// of group `group`, i.e. output channels group*layer.cols + col0 + j.
struct PartialSum {
  Index group = 0;
  Index col0 = 0;
  Index cols = 0;
  std::vector<Index> slices;
};

struct LayerPlan {
  LayerMatrix layer;  // the shape as given to plan()
  bool digital = false;  // resolved: layer.digital or named in MapperOptions::digital_layers
  // Empty for a digital layer. Order: group, then column block, then row block, so the slices
  // of one PartialSum are consecutive.
  std::vector<TileSlice> slices;
  std::vector<PartialSum> partial_sums;  // order: group, then column block

  // Distinct physical tiles holding this layer's slices, ascending.
  std::vector<Index> tiles() const;
  // Output channel of column `col` of group `group`.
  Index output_index(Index group, Index col) const { return group * layer.cols + col; }
};

struct MappingPlan {
  ChipSpec chip;
  MapperOptions options;
  std::vector<LayerPlan> layers;  // same order as the input layers
  Index tiles_used = 0;           // tiles 0 .. tiles_used-1 each hold at least one slice

  // (layer index, slice index) of every slice placed on `tile`, in placement order.
  std::vector<std::pair<Index, Index>> slices_on_tile(Index tile) const;
  // The plan of the layer called `name`; throws std::invalid_argument if there is none.
  const LayerPlan& layer(const std::string& name) const;
};

// Places `layers` on the chip. Throws std::invalid_argument for an invalid ChipSpec,
// MapperOptions or LayerMatrix, duplicate layer names, an unknown name in
// options.digital_layers, a kernel larger than a tile (whole-kernel splitting), or a bounded
// chip that is too small (the message says how many tiles are needed and how many the chip has).
MappingPlan plan(const std::vector<LayerMatrix>& layers, const ChipSpec& chip,
                 const MapperOptions& options);

// Tiles `layers` need on a chip with chip's tile shape, ignoring chip.num_tiles.
Index tiles_needed(const std::vector<LayerMatrix>& layers, const ChipSpec& chip,
                   const MapperOptions& options);

// Verifies a plan against the layers it was made for: same layers and shapes, digital layers
// unplaced, every weight of every analog layer placed exactly once, slices within layer and
// tile bounds, no tile overflows, no two slices overlap on a tile, the packing mode respected,
// whole kernels kept together when the options ask for it, the partial sums covering every
// output once with slices that cover all rows. Throws std::invalid_argument (a
// std::logic_error) naming the layer, slice or tile and the violation.
void check_plan(const MappingPlan& plan, const std::vector<LayerMatrix>& layers);

}  // namespace pcmsim::mapping
