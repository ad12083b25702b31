#include "mapping/mapping_plan.h"

#include <algorithm>
#include <unordered_map>

#include "core/error.h"

namespace pcmsim::mapping {

using core::concat;
using core::throw_invalid;

std::vector<Index> LayerPlan::tiles() const {
  std::vector<Index> ids;
  ids.reserve(slices.size());
  for (const auto& s : slices) ids.push_back(s.tile);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<std::pair<Index, Index>> MappingPlan::slices_on_tile(Index tile) const {
  std::vector<std::pair<Index, Index>> found;
  for (std::size_t l = 0; l < layers.size(); ++l)
    for (std::size_t s = 0; s < layers[l].slices.size(); ++s)
      if (layers[l].slices[s].tile == tile) found.emplace_back(Index(l), Index(s));
  return found;
}

const LayerPlan& MappingPlan::layer(const std::string& name) const {
  for (const auto& l : layers)
    if (l.layer.name == name) return l;
  throw_invalid("mapping::MappingPlan", concat("no layer named '", name, "'"));
}

namespace {

constexpr const char* kPlan = "mapping::plan";
constexpr const char* kCheck = "mapping::check_plan";
// A plan with more slices than this would take gigabytes; no real chip mapping comes close.
constexpr Index kMaxSlices = Index(1) << 26;

// Hands out positions on physical tiles. Without packing every slice gets a fresh tile; with
// packing, first fit over the tiles that still have room, in tile order (deterministic).
class TileAllocator {
 public:
  TileAllocator(const ChipSpec& chip, Packing packing) : chip_(chip), packing_(packing) {}

  struct Place {
    Index tile, row0, col0;
  };

  Place place(Index rows, Index cols) {
    if (packing_ != Packing::none) {
      for (std::size_t i = 0; i < open_.size(); ++i) {
        Place p;
        if (try_place(open_[i], rows, cols, p)) {
          if (is_full(open_[i])) open_.erase(open_.begin() + std::ptrdiff_t(i));
          return p;
        }
      }
    }
    OpenTile t;
    t.id = count_++;
    Place p;
    try_place(t, rows, cols, p);  // always fits an empty tile (rows, cols <= tile shape)
    if (packing_ != Packing::none && !is_full(t)) open_.push_back(std::move(t));
    return p;
  }

  Index tiles_used() const { return count_; }

 private:
  struct Shelf {
    Index row0, height, used_cols;
  };
  struct OpenTile {
    Index id = 0;
    Index next_row = 0;  // diagonal: next free row and column; dense: top of the next shelf
    Index next_col = 0;
    std::vector<Shelf> shelves;
  };

  bool try_place(OpenTile& t, Index rows, Index cols, Place& p) const {
    if (packing_ != Packing::dense) {
      // Diagonal (and the first slice of an unpacked tile): rows and columns disjoint from
      // every earlier slice on the tile.
      if (t.next_row + rows > chip_.tile_rows || t.next_col + cols > chip_.tile_cols)
        return false;
      p = {t.id, t.next_row, t.next_col};
      t.next_row += rows;
      t.next_col += cols;
      return true;
    }
    for (auto& shelf : t.shelves) {
      if (rows <= shelf.height && shelf.used_cols + cols <= chip_.tile_cols) {
        p = {t.id, shelf.row0, shelf.used_cols};
        shelf.used_cols += cols;
        return true;
      }
    }
    if (t.next_row + rows > chip_.tile_rows) return false;
    t.shelves.push_back({t.next_row, rows, cols});
    p = {t.id, t.next_row, 0};
    t.next_row += rows;
    return true;
  }

  bool is_full(const OpenTile& t) const {
    if (packing_ == Packing::none) return true;
    if (packing_ == Packing::diagonal)
      return t.next_row >= chip_.tile_rows || t.next_col >= chip_.tile_cols;
    if (t.next_row < chip_.tile_rows) return false;
    for (const auto& s : t.shelves)
      if (s.used_cols < chip_.tile_cols) return false;
    return true;
  }

  ChipSpec chip_;
  Packing packing_;
  Index count_ = 0;
  std::vector<OpenTile> open_;
};

// Row block height for a layer: the tile height, or for whole-kernel splitting the largest
// multiple of kh*kw that fits.
Index row_step(const LayerMatrix& layer, const ChipSpec& chip, const MapperOptions& options) {
  const Index k = layer.kernel_size();
  if (options.conv_split == ConvSplit::free || k == 1) return chip.tile_rows;
  if (k > chip.tile_rows)
    throw_invalid(kPlan, concat("layer '", layer.name, "': one kernel of ", layer.kernel_h, "x",
                                layer.kernel_w, " = ", k, " rows does not fit tile_rows = ",
                                chip.tile_rows,
                                "; use free convolution splitting or taller tiles"));
  return chip.tile_rows / k * k;
}

std::vector<bool> resolve_digital(const std::vector<LayerMatrix>& layers,
                                  const MapperOptions& options) {
  std::vector<bool> digital(layers.size());
  std::unordered_map<std::string, std::size_t> by_name;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    digital[i] = layers[i].digital;
    if (!by_name.emplace(layers[i].name, i).second)
      throw_invalid(kPlan, concat("two layers are named '", layers[i].name,
                                  "'; layer names must be unique"));
  }
  for (const auto& token : options.digital_layers) {
    const auto it = by_name.find(token);
    if (it != by_name.end()) {
      digital[it->second] = true;
    } else if (token == "first" && !layers.empty()) {
      digital.front() = true;
    } else if (token == "last" && !layers.empty()) {
      digital.back() = true;
    } else {
      std::string known;
      for (std::size_t i = 0; i < layers.size() && i < 30; ++i)
        known += (i ? ", " : "") + layers[i].name;
      if (layers.size() > 30) known += ", ...";
      throw_invalid(kPlan, concat("digital layer '", token,
                                  "' is not a mappable layer of the network (layers: ",
                                  known.empty() ? "none" : known, "; or first, last)"));
    }
  }
  return digital;
}

[[noreturn]] void throw_too_small(const ChipSpec& chip, const MapperOptions& options,
                                  Index needed) {
  throw_invalid(kPlan, concat("the network needs ", needed, " tiles of ", chip.tile_rows, "x",
                              chip.tile_cols, " but the chip has ", chip.num_tiles, ": ",
                              needed - chip.num_tiles, " tiles short (packing ",
                              to_string(options.packing), ")"));
}

MappingPlan make_plan(const std::vector<LayerMatrix>& layers, const ChipSpec& chip,
                      const MapperOptions& options, bool enforce_bound) {
  chip.validate();
  options.validate();
  for (const auto& l : layers) l.validate();
  const std::vector<bool> digital = resolve_digital(layers, options);

  // Count the slices first: refuse absurd plans (e.g. 1x1 tiles for a large network) before
  // allocating them, and fail a too-small chip early when every slice needs its own tile.
  double slices = 0;
  for (std::size_t li = 0; li < layers.size(); ++li) {
    if (digital[li]) continue;
    const LayerMatrix& l = layers[li];
    const Index step = row_step(l, chip, options);
    slices += double(l.groups) * double((l.rows + step - 1) / step) *
              double((l.cols + chip.tile_cols - 1) / chip.tile_cols);
  }
  if (slices > 4e18)  // keeps the conversion to Index below defined
    throw_invalid(kPlan, concat("the plan would have ", slices, " slices; use larger tiles"));
  if (enforce_bound && chip.bounded() && options.packing == Packing::none &&
      slices > double(chip.num_tiles))
    throw_too_small(chip, options, Index(slices));
  if (slices > double(kMaxSlices))
    throw_invalid(kPlan, concat("the plan would have ", slices, " slices (more than ",
                                kMaxSlices, "); use larger tiles"));

  MappingPlan result;
  result.chip = chip;
  result.options = options;
  result.layers.reserve(layers.size());
  TileAllocator tiles(chip, options.packing);
  for (std::size_t li = 0; li < layers.size(); ++li) {
    const LayerMatrix& layer = layers[li];
    LayerPlan lp;
    lp.layer = layer;
    lp.digital = digital[li];
    if (!lp.digital) {
      const Index step = row_step(layer, chip, options);
      for (Index g = 0; g < layer.groups; ++g) {
        for (Index c0 = 0; c0 < layer.cols; c0 += chip.tile_cols) {
          PartialSum sum;
          sum.group = g;
          sum.col0 = c0;
          sum.cols = std::min(chip.tile_cols, layer.cols - c0);
          for (Index r0 = 0; r0 < layer.rows; r0 += step) {
            TileSlice s;
            s.group = g;
            s.row0 = r0;
            s.col0 = c0;
            s.rows = std::min(step, layer.rows - r0);
            s.cols = sum.cols;
            const auto p = tiles.place(s.rows, s.cols);
            s.tile = p.tile;
            s.tile_row0 = p.row0;
            s.tile_col0 = p.col0;
            sum.slices.push_back(Index(lp.slices.size()));
            lp.slices.push_back(s);
          }
          lp.partial_sums.push_back(std::move(sum));
        }
      }
    }
    result.layers.push_back(std::move(lp));
  }
  result.tiles_used = tiles.tiles_used();
  return result;
}

// ---- check_plan helpers ----

struct Rect {
  Index r0, c0, h, w;
  std::string label;
};

// Counts how many rectangles cover each cell of [0,R) x [0,C) on the grid compressed to the
// rectangles' edges (cost independent of R*C). Throws naming two overlapping rectangles, or
// (when require_cover) an uncovered cell.
void check_coverage(const std::vector<Rect>& rects, Index R, Index C, bool require_cover,
                    const std::string& what) {
  std::vector<Index> ys{0, R}, xs{0, C};
  for (const auto& r : rects) {
    ys.push_back(r.r0);
    ys.push_back(r.r0 + r.h);
    xs.push_back(r.c0);
    xs.push_back(r.c0 + r.w);
  }
  std::sort(ys.begin(), ys.end());
  ys.erase(std::unique(ys.begin(), ys.end()), ys.end());
  std::sort(xs.begin(), xs.end());
  xs.erase(std::unique(xs.begin(), xs.end()), xs.end());
  const std::size_t ny = ys.size(), nx = xs.size();
  if (double(ny) * double(nx) > 1e8)
    throw_invalid(kCheck, concat(what, ": ", rects.size(),
                                 " slices on too irregular a grid to check"));
  auto at = [](const std::vector<Index>& v, Index x) {
    return std::size_t(std::lower_bound(v.begin(), v.end(), x) - v.begin());
  };
  std::vector<int> d(ny * nx, 0);
  for (const auto& r : rects) {
    const std::size_t y0 = at(ys, r.r0), y1 = at(ys, r.r0 + r.h);
    const std::size_t x0 = at(xs, r.c0), x1 = at(xs, r.c0 + r.w);
    d[y0 * nx + x0] += 1;
    d[y1 * nx + x0] -= 1;
    d[y0 * nx + x1] -= 1;
    d[y1 * nx + x1] += 1;
  }
  // 2-D prefix sum: d becomes the cover count of the cell starting at (ys[i], xs[j]).
  for (std::size_t i = 0; i < ny; ++i)
    for (std::size_t j = 0; j < nx; ++j) {
      int v = d[i * nx + j];
      if (i) v += d[(i - 1) * nx + j];
      if (j) v += d[i * nx + j - 1];
      if (i && j) v -= d[(i - 1) * nx + j - 1];
      d[i * nx + j] = v;
    }
  for (std::size_t i = 0; i + 1 < ny; ++i)
    for (std::size_t j = 0; j + 1 < nx; ++j) {
      const int n = d[i * nx + j];
      const Index y = ys[i], x = xs[j];
      if (n > 1) {
        std::vector<std::string> who;
        for (const auto& r : rects)
          if (y >= r.r0 && y < r.r0 + r.h && x >= r.c0 && x < r.c0 + r.w) who.push_back(r.label);
        throw_invalid(kCheck, concat(what, ": ", who.size() > 0 ? who[0] : "?", " and ",
                                     who.size() > 1 ? who[1] : "?", " overlap at (", y, ", ", x,
                                     ")"));
      }
      if (require_cover && n == 0)
        throw_invalid(kCheck, concat(what, ": weight (", y, ", ", x, ") is not placed"));
    }
}

std::string slice_label(const LayerPlan& lp, std::size_t s) {
  return concat("layer '", lp.layer.name, "' slice ", s);
}

bool same_shape(const LayerMatrix& a, const LayerMatrix& b) {
  return a.name == b.name && a.rows == b.rows && a.cols == b.cols && a.groups == b.groups &&
         a.kernel_h == b.kernel_h && a.kernel_w == b.kernel_w;
}

}  // namespace

MappingPlan plan(const std::vector<LayerMatrix>& layers, const ChipSpec& chip,
                 const MapperOptions& options) {
  MappingPlan result = make_plan(layers, chip, options, true);
  if (chip.bounded() && result.tiles_used > chip.num_tiles)
    throw_too_small(chip, options, result.tiles_used);
  return result;
}

Index tiles_needed(const std::vector<LayerMatrix>& layers, const ChipSpec& chip,
                   const MapperOptions& options) {
  return make_plan(layers, chip, options, false).tiles_used;
}

void check_plan(const MappingPlan& plan, const std::vector<LayerMatrix>& layers) {
  const ChipSpec& chip = plan.chip;
  try {
    chip.validate();
    plan.options.validate();
  } catch (const std::invalid_argument& e) {
    throw_invalid(kCheck, concat("the plan's configuration is invalid: ", e.what()));
  }
  if (plan.layers.size() != layers.size())
    throw_invalid(kCheck, concat("the plan has ", plan.layers.size(), " layers, the network ",
                                 layers.size()));
  if (plan.tiles_used < 0)
    throw_invalid(kCheck, concat("tiles_used = ", plan.tiles_used, " is negative"));
  if (chip.bounded() && plan.tiles_used > chip.num_tiles)
    throw_invalid(kCheck, concat("the plan uses ", plan.tiles_used, " tiles, the chip has ",
                                 chip.num_tiles));

  // Per tile: the rectangles placed on it.
  std::vector<std::vector<Rect>> on_tile(std::size_t(plan.tiles_used));
  for (const auto& l : layers) l.validate();
  // Digital layers resolve exactly as in plan().
  const std::vector<bool> digital = resolve_digital(layers, plan.options);

  for (std::size_t li = 0; li < layers.size(); ++li) {
    const LayerPlan& lp = plan.layers[li];
    const LayerMatrix& layer = layers[li];
    const std::string lname = concat("layer '", layer.name, "'");
    if (!same_shape(lp.layer, layer))
      throw_invalid(kCheck, concat("layer ", li, ": the plan has '", lp.layer.name, "' ",
                                   lp.layer.rows, "x", lp.layer.cols, " (groups ",
                                   lp.layer.groups, ", kernel ", lp.layer.kernel_h, "x",
                                   lp.layer.kernel_w, "), the network '", layer.name, "' ",
                                   layer.rows, "x", layer.cols, " (groups ", layer.groups,
                                   ", kernel ", layer.kernel_h, "x", layer.kernel_w, ")"));
    if (lp.digital != digital[li])
      throw_invalid(kCheck, concat(lname, " is ", lp.digital ? "digital" : "analog",
                                   " in the plan but ", digital[li] ? "digital" : "analog",
                                   " by the layer flag and options"));
    if (lp.digital) {
      if (!lp.slices.empty() || !lp.partial_sums.empty())
        throw_invalid(kCheck, concat(lname, " is digital but has ", lp.slices.size(),
                                     " slices placed on tiles"));
      continue;
    }
    if (lp.slices.empty()) throw_invalid(kCheck, concat(lname, " is analog but not placed"));

    // Bounds of every slice, in the layer and on its tile.
    const Index k = layer.kernel_size();
    std::vector<std::vector<Rect>> per_group(std::size_t(layer.groups));
    for (std::size_t si = 0; si < lp.slices.size(); ++si) {
      const TileSlice& s = lp.slices[si];
      const std::string sname = slice_label(lp, si);
      if (s.group < 0 || s.group >= layer.groups)
        throw_invalid(kCheck, concat(sname, ": group ", s.group, " outside [0, ", layer.groups,
                                     ")"));
      if (s.rows < 1 || s.cols < 1 || s.row0 < 0 || s.col0 < 0 || s.row0 + s.rows > layer.rows ||
          s.col0 + s.cols > layer.cols)
        throw_invalid(kCheck, concat(sname, ": block rows [", s.row0, ", ", s.row0 + s.rows,
                                     ") cols [", s.col0, ", ", s.col0 + s.cols,
                                     ") outside the layer's ", layer.rows, "x", layer.cols));
      if (s.tile < 0 || s.tile >= plan.tiles_used)
        throw_invalid(kCheck, concat(sname, ": tile ", s.tile, " outside [0, ", plan.tiles_used,
                                     ")"));
      if (s.tile_row0 < 0 || s.tile_col0 < 0 || s.tile_row0 + s.rows > chip.tile_rows ||
          s.tile_col0 + s.cols > chip.tile_cols)
        throw_invalid(kCheck, concat(sname, ": ", s.rows, "x", s.cols, " block at (",
                                     s.tile_row0, ", ", s.tile_col0, ") overflows tile ",
                                     s.tile, " of ", chip.tile_rows, "x", chip.tile_cols));
      if (plan.options.conv_split == ConvSplit::whole_kernel && k > 1 &&
          (s.row0 % k != 0 || s.rows % k != 0))
        throw_invalid(kCheck, concat(sname, ": rows [", s.row0, ", ", s.row0 + s.rows,
                                     ") cut a ", layer.kernel_h, "x", layer.kernel_w,
                                     " kernel (whole-kernel splitting)"));
      per_group[std::size_t(s.group)].push_back({s.row0, s.col0, s.rows, s.cols, sname});
      on_tile[std::size_t(s.tile)].push_back({s.tile_row0, s.tile_col0, s.rows, s.cols, sname});
    }
    // Every weight exactly once.
    for (Index g = 0; g < layer.groups; ++g)
      check_coverage(per_group[std::size_t(g)], layer.rows, layer.cols, true,
                     concat(lname, " group ", g));

    // Partial sums: every output once; each sum's slices span its columns and cover all rows
    // in increasing order; every slice in exactly one sum.
    std::vector<int> slice_used(lp.slices.size(), 0);
    std::vector<Rect> outputs;
    for (std::size_t pi = 0; pi < lp.partial_sums.size(); ++pi) {
      const PartialSum& ps = lp.partial_sums[pi];
      const std::string pname = concat(lname, " partial sum ", pi);
      if (ps.group < 0 || ps.group >= layer.groups || ps.cols < 1 || ps.col0 < 0 ||
          ps.col0 + ps.cols > layer.cols)
        throw_invalid(kCheck, concat(pname, ": group ", ps.group, " cols [", ps.col0, ", ",
                                     ps.col0 + ps.cols, ") outside the layer"));
      Index next_row = 0;
      for (Index si : ps.slices) {
        if (si < 0 || std::size_t(si) >= lp.slices.size())
          throw_invalid(kCheck, concat(pname, ": slice index ", si, " out of range"));
        const TileSlice& s = lp.slices[std::size_t(si)];
        if (s.group != ps.group || s.col0 != ps.col0 || s.cols != ps.cols)
          throw_invalid(kCheck, concat(pname, ": slice ", si, " (group ", s.group, ", cols [",
                                       s.col0, ", ", s.col0 + s.cols,
                                       ")) does not feed these outputs"));
        if (s.row0 != next_row)
          throw_invalid(kCheck, concat(pname, ": slice ", si, " starts at row ", s.row0,
                                       ", expected ", next_row, " (rows must be covered in order)"));
        next_row = s.row0 + s.rows;
        ++slice_used[std::size_t(si)];
      }
      if (next_row != layer.rows)
        throw_invalid(kCheck, concat(pname, ": its slices cover rows [0, ", next_row, ") of ",
                                     layer.rows));
      outputs.push_back({ps.group, ps.col0, 1, ps.cols, pname});
    }
    for (std::size_t si = 0; si < slice_used.size(); ++si)
      if (slice_used[si] != 1)
        throw_invalid(kCheck, concat(slice_label(lp, si), " is summed ", slice_used[si],
                                     " times (must be once)"));
    // Groups as rows of a groups x cols grid: every output channel in exactly one sum.
    check_coverage(outputs, layer.groups, layer.cols, true, concat(lname, " outputs"));
  }

  // Tiles: used, no overlaps, packing mode respected.
  for (std::size_t t = 0; t < on_tile.size(); ++t) {
    const auto& rects = on_tile[t];
    const std::string tname = concat("tile ", t);
    if (rects.empty())
      throw_invalid(kCheck, concat(tname, " holds no slice (tiles_used = ", plan.tiles_used,
                                   ")"));
    if (plan.options.packing == Packing::none && rects.size() > 1)
      throw_invalid(kCheck, concat(tname, " holds ", rects.size(), " slices (", rects[0].label,
                                   ", ", rects[1].label, ") but packing is none"));
    if (plan.options.packing == Packing::diagonal) {
      // Disjoint row ranges and disjoint column ranges.
      for (int axis = 0; axis < 2; ++axis) {
        std::vector<const Rect*> order;
        for (const auto& r : rects) order.push_back(&r);
        std::sort(order.begin(), order.end(), [axis](const Rect* a, const Rect* b) {
          return axis == 0 ? a->r0 < b->r0 : a->c0 < b->c0;
        });
        for (std::size_t i = 1; i < order.size(); ++i) {
          const Rect& a = *order[i - 1];
          const Rect& b = *order[i];
          const bool clash = axis == 0 ? a.r0 + a.h > b.r0 : a.c0 + a.w > b.c0;
          if (clash)
            throw_invalid(kCheck, concat(tname, ": ", a.label, " and ", b.label, " share ",
                                         axis == 0 ? "rows" : "columns",
                                         " but packing is diagonal"));
        }
      }
    }
    check_coverage(rects, chip.tile_rows, chip.tile_cols, false, tname);
  }
}

}  // namespace pcmsim::mapping
