// The mapper's inputs: the chip (ChipSpec), the mapper options (MapperOptions) and the shape of
// every mappable layer as a weight matrix (LayerMatrix). Shapes only: the mapper never sees
// weights, so it can plan a network before (or without) loading it.
#pragma once

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "core/settings.h"
#include "core/types.h"

namespace pcmsim::mapping {

using core::Index;

// The crossbar chip. Default: 256 x 256 tiles as on IBM's HERMES chip, as many as needed.
struct ChipSpec {
  Index tile_rows = 256;  // word lines = inputs per tile, in [1, 65536]
  Index tile_cols = 256;  // bit lines (differential pairs) = outputs per tile, in [1, 65536]
  Index num_tiles = 0;    // tiles on the chip; 0 = unbounded
  // Throws std::invalid_argument naming the bad field, e.g. "tile_rows = 0: must be >= 1".
  void validate() const;
  template <class V>
  static void fields(V& v);
  bool bounded() const { return num_tiles > 0; }
  Index cells_per_tile() const { return tile_rows * tile_cols; }
};

// How a convolution's rows (im2col inputs) may be split across tiles.
enum class ConvSplit {
  whole_kernel,  // row splits only at multiples of kh*kw: one input channel's kernel stays whole
  free,          // row splits anywhere (fills tiles fully)
};

// Whether several slices may share a physical tile.
enum class Packing {
  none,      // one layer slice per tile (default; what HERMES-style mappings do)
  diagonal,  // slices on a tile use disjoint rows AND disjoint columns: all can run at once
  dense,     // slices on a tile are packed in shelves; slices in one shelf share word lines and
             // columns are disjoint, so they are driven one after the other (time-multiplexed)
};

const char* to_string(ConvSplit v);
const char* to_string(Packing v);
// Parse "whole_kernel"/"free", "none"/"diagonal"/"dense".
ConvSplit parse_conv_split(const std::string& text);
Packing parse_packing(const std::string& text);
PCMSIM_ENUM_TEXT(ConvSplit, parse_conv_split, "whole_kernel", "free");
PCMSIM_ENUM_TEXT(Packing, parse_packing, "none", "diagonal", "dense");

// "ROWSxCOLS" (e.g. "256x256") of a tile shape; throws naming `name` and the text.
std::pair<Index, Index> parse_tile_shape(const std::string& text, const std::string& name);

template <class V>
void ChipSpec::fields(V& v) {
  using S = ChipSpec;
  const core::Affects p = core::Affects::programming;
  v.field({"tile_rows", "", "1..65536", "word lines (inputs) per tile", p},
          [](S& s) -> auto& { return s.tile_rows; });
  v.field({"tile_cols", "", "1..65536", "bit lines (outputs) per tile", p},
          [](S& s) -> auto& { return s.tile_cols; });
  v.shortcut({"tile", "", "ROWSxCOLS", "tile shape, sets tile_rows and tile_cols", p},
             [](const S& s) { return std::to_string(s.tile_rows) + "x" + std::to_string(s.tile_cols); },
             [](S& s, const std::string& text) {
               std::tie(s.tile_rows, s.tile_cols) = parse_tile_shape(text, "tile");
             });
  v.field({"num_tiles", "", ">= 0", "tiles on the chip, 0 = as many as needed", p},
          [](S& s) -> auto& { return s.num_tiles; });
}

struct MapperOptions {
  ConvSplit conv_split = ConvSplit::whole_kernel;
  // Layers kept in the digital unit (FP32), by name. "first" and "last" are shortcuts for the
  // first and last mappable layer (used only when no layer carries that exact name).
  // Unknown names are an error at plan time.
  std::vector<std::string> digital_layers;
  Packing packing = Packing::none;
  // Throws std::invalid_argument on an empty name in digital_layers.
  void validate() const;
  template <class V>
  static void fields(V& v) {
    using S = MapperOptions;
    const core::Affects p = core::Affects::programming;
    v.field({"conv_split", "", "", "where a convolution's rows may be split across tiles", p},
            [](S& s) -> auto& { return s.conv_split; });
    v.field({"digital_layers", "", "layer names, first, last", "layers kept digital (FP32)", p},
            [](S& s) -> auto& { return s.digital_layers; });
    v.field({"packing", "", "", "whether several layer slices may share a tile", p},
            [](S& s) -> auto& { return s.packing; });
  }
};

// One mappable layer (Linear or Conv2d) as `groups` independent weight matrices of
// rows x cols each. rows are the inputs of one group in im2col order (channel-major,
// kernel-minor: row = c*kh*kw + ky*kw + kx), cols are the outputs of one group; output column c
// of group g is output channel g*cols + c.
struct LayerMatrix {
  std::string name;
  Index rows = 0;      // in_features, or in_channels/groups * kh * kw
  Index cols = 0;      // out_features, or out_channels/groups
  Index groups = 1;    // >= 1; depthwise convolution: groups = in_channels
  Index kernel_h = 1;  // 1 for Linear
  Index kernel_w = 1;
  bool digital = false;  // kept in the digital unit regardless of MapperOptions

  Index kernel_size() const { return kernel_h * kernel_w; }
  Index weights() const { return rows * cols * groups; }
  bool is_conv() const { return kernel_size() > 1; }
  // Throws std::invalid_argument naming the layer and the bad field (rows must be a multiple
  // of kh*kw, everything >= 1, name not empty).
  void validate() const;

  static LayerMatrix linear(std::string name, Index in_features, Index out_features);
  // Throws if in_channels or out_channels is not divisible by groups.
  static LayerMatrix conv2d(std::string name, Index in_channels, Index out_channels,
                            Index kernel_h, Index kernel_w, Index groups = 1);
};

}  // namespace pcmsim::mapping
