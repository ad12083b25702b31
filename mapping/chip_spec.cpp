#include "mapping/chip_spec.h"

#include <charconv>

#include <limits>
#include <utility>

#include "core/error.h"

namespace pcmsim::mapping {

using core::concat;
using core::throw_invalid;

namespace {

// Shapes stay far below this so that products like rows*cols*groups cannot overflow.
constexpr Index kMaxExtent = Index(1) << 31;
constexpr Index kMaxTileExtent = Index(1) << 16;

void require_extent(const char* where, const std::string& name, Index value) {
  if (value < 1 || value > kMaxExtent)
    throw_invalid(where, concat(name, " = ", value, ": must be in [1, ", kMaxExtent, "]"));
}

}  // namespace

void ChipSpec::validate() const {
  constexpr const char* where = "mapping::ChipSpec";
  // Real crossbars have at most a few thousand lines; the cap keeps cell counts in 64 bits.
  for (auto [name, value] : {std::pair<const char*, Index>{"tile_rows", tile_rows},
                             std::pair<const char*, Index>{"tile_cols", tile_cols}})
    if (value < 1 || value > kMaxTileExtent)
      throw_invalid(where, concat(name, " = ", value, ": must be in [1, ", kMaxTileExtent, "]"));
  if (num_tiles < 0 || num_tiles > kMaxExtent)
    throw_invalid(where, concat("num_tiles = ", num_tiles, ": must be in [0, ", kMaxExtent,
                                "] (0 = unbounded)"));
}

void MapperOptions::validate() const {
  constexpr const char* where = "mapping::MapperOptions";
  for (std::size_t i = 0; i < digital_layers.size(); ++i)
    if (digital_layers[i].empty())
      throw_invalid(where, concat("digital_layers[", i, "] is an empty name"));
}

void LayerMatrix::validate() const {
  const std::string where = name.empty() ? std::string("mapping::LayerMatrix")
                                         : concat("mapping::LayerMatrix '", name, "'");
  if (name.empty()) throw_invalid(where, "name is empty");
  require_extent(where.c_str(), "rows", rows);
  require_extent(where.c_str(), "cols", cols);
  require_extent(where.c_str(), "groups", groups);
  require_extent(where.c_str(), "kernel_h", kernel_h);
  require_extent(where.c_str(), "kernel_w", kernel_w);
  if (rows % kernel_size() != 0)
    throw_invalid(where, concat("rows = ", rows, " is not a multiple of the kernel size ",
                                kernel_h, "x", kernel_w, " = ", kernel_size()));
  // Total weights must stay representable (and sane).
  const double total = double(rows) * double(cols) * double(groups);
  if (total > double(std::numeric_limits<Index>::max() / 4))
    throw_invalid(where, concat("rows*cols*groups = ", total, ": too many weights"));
}

LayerMatrix LayerMatrix::linear(std::string name, Index in_features, Index out_features) {
  LayerMatrix m;
  m.name = std::move(name);
  m.rows = in_features;
  m.cols = out_features;
  m.validate();
  return m;
}

LayerMatrix LayerMatrix::conv2d(std::string name, Index in_channels, Index out_channels,
                                Index kernel_h, Index kernel_w, Index groups) {
  const std::string where = concat("mapping::LayerMatrix '", name, "'");
  require_extent(where.c_str(), "groups", groups);
  require_extent(where.c_str(), "in_channels", in_channels);
  require_extent(where.c_str(), "out_channels", out_channels);
  require_extent(where.c_str(), "kernel_h", kernel_h);
  require_extent(where.c_str(), "kernel_w", kernel_w);
  if (in_channels % groups != 0)
    throw_invalid(where, concat("in_channels = ", in_channels, " is not divisible by groups = ",
                                groups));
  if (out_channels % groups != 0)
    throw_invalid(where, concat("out_channels = ", out_channels,
                                " is not divisible by groups = ", groups));
  LayerMatrix m;
  m.name = std::move(name);
  m.rows = in_channels / groups * kernel_h * kernel_w;
  m.cols = out_channels / groups;
  m.groups = groups;
  m.kernel_h = kernel_h;
  m.kernel_w = kernel_w;
  m.validate();
  return m;
}

const char* to_string(ConvSplit v) {
  switch (v) {
    case ConvSplit::whole_kernel: return "whole_kernel";
    case ConvSplit::free: return "free";
  }
  return "?";
}

const char* to_string(Packing v) {
  switch (v) {
    case Packing::none: return "none";
    case Packing::diagonal: return "diagonal";
    case Packing::dense: return "dense";
  }
  return "?";
}

std::pair<Index, Index> parse_tile_shape(const std::string& text, const std::string& name) {
  const auto bad = [&] {
    throw_invalid("mapping", concat(name, " = '", text,
                                    "': expected ROWSxCOLS with both in [1, 65536], e.g. 256x256"));
  };
  const auto x = text.find('x');
  if (x == std::string::npos) bad();
  const auto number = [&](std::size_t begin, std::size_t end) {
    Index v = 0;
    const auto [ptr, ec] = std::from_chars(text.data() + begin, text.data() + end, v);
    if (ec != std::errc() || ptr != text.data() + end || begin == end || v < 1 || v > 65536) bad();
    return v;
  };
  return {number(0, x), number(x + 1, text.size())};
}

ConvSplit parse_conv_split(const std::string& text) {
  if (text == "whole_kernel" || text == "whole-kernel") return ConvSplit::whole_kernel;
  if (text == "free") return ConvSplit::free;
  throw_invalid("mapping", concat("conv split '", text, "': expected whole_kernel or free"));
}

Packing parse_packing(const std::string& text) {
  if (text == "none") return Packing::none;
  if (text == "diagonal") return Packing::diagonal;
  if (text == "dense") return Packing::dense;
  throw_invalid("mapping", concat("packing '", text, "': expected none, diagonal or dense"));
}

}  // namespace pcmsim::mapping
