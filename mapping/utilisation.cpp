#include "mapping/utilisation.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "core/error.h"

namespace pcmsim::mapping {

using core::concat;

UtilisationReport utilisation_report(const MappingPlan& plan) {
  UtilisationReport r;
  r.chip = plan.chip;
  r.options = plan.options;
  r.tiles_used = plan.tiles_used;
  const Index cells_per_tile = plan.chip.cells_per_tile();
  for (const auto& lp : plan.layers) {
    LayerUtilisation u;
    u.name = lp.layer.name;
    u.rows = lp.layer.rows;
    u.cols = lp.layer.cols;
    u.groups = lp.layer.groups;
    u.kernel_h = lp.layer.kernel_h;
    u.kernel_w = lp.layer.kernel_w;
    u.digital = lp.digital;
    u.weights = lp.layer.weights();
    u.slices = Index(lp.slices.size());
    u.tiles = Index(lp.tiles().size());
    for (const auto& s : lp.slices) u.cells_used += s.rows * s.cols;
    u.cells_available = u.tiles * cells_per_tile;
    u.utilisation = u.cells_available > 0 ? double(u.cells_used) / double(u.cells_available) : 0;
    if (lp.digital)
      r.digital_weights += u.weights;
    else
      r.analog_weights += u.cells_used;
    r.layers.push_back(std::move(u));
  }
  r.cells_available = r.tiles_used * cells_per_tile;
  r.utilisation = r.cells_available > 0 ? double(r.analog_weights) / double(r.cells_available) : 0;
  r.chip_occupancy = plan.chip.bounded() ? double(r.tiles_used) / double(plan.chip.num_tiles) : 0;
  return r;
}

namespace {

std::string percent(double fraction) {
  char buf[32];
  // Small fractions keep three significant digits instead of rounding to 0.0%.
  const double pct = 100.0 * fraction;
  std::snprintf(buf, sizeof buf, (pct > 0 && pct < 1) ? "%.3g%%" : "%.1f%%", pct);
  return buf;
}

std::string shape_text(const LayerUtilisation& u) { return concat(u.rows, "x", u.cols); }

std::string kernel_text(const LayerUtilisation& u) {
  return (u.kernel_h == 1 && u.kernel_w == 1) ? std::string("-")
                                              : concat(u.kernel_h, "x", u.kernel_w);
}

std::string options_text(const UtilisationReport& r) {
  return concat("conv split ", to_string(r.options.conv_split), ", packing ",
                to_string(r.options.packing));
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

std::string render_table(const UtilisationReport& r) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"layer", "matrix", "groups", "kernel", "weights", "slices", "tiles",
                  "utilisation"});
  for (const auto& u : r.layers) {
    rows.push_back({u.name, shape_text(u), concat(u.groups), kernel_text(u), concat(u.weights),
                    u.digital ? "-" : concat(u.slices), u.digital ? "digital" : concat(u.tiles),
                    u.digital ? "-" : percent(u.utilisation)});
  }
  rows.push_back({"total", "", "", "", concat(r.analog_weights + r.digital_weights), "",
                  concat(r.tiles_used), percent(r.utilisation)});
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());

  std::ostringstream out;
  out << "chip: " << r.chip.tile_rows << "x" << r.chip.tile_cols << " tiles, ";
  if (r.chip.bounded())
    out << r.chip.num_tiles << " on the chip (" << r.tiles_used << " used, "
        << percent(r.chip_occupancy) << ")";
  else
    out << "unbounded";
  out << "; " << options_text(r) << "\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (i + 1 == rows.size()) {  // rule above the totals
      std::size_t total = 0;
      for (auto w : width) total += w + 2;
      out << std::string(total - 2, '-') << "\n";
    }
    std::string line;
    for (std::size_t c = 0; c < rows[i].size(); ++c) {
      const std::string& cell = rows[i][c];
      const std::string pad(width[c] - cell.size(), ' ');
      // Text columns left-aligned, numbers right-aligned.
      line += (c == 0 || c == 1 || c == 3) ? cell + pad : pad + cell;
      if (c + 1 < rows[i].size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  out << "analog weights " << r.analog_weights << ", digital weights " << r.digital_weights
      << "; utilisation = weights on tiles / cells of the tiles used ("
      << r.chip.cells_per_tile() << " per tile)\n";
  return out.str();
}

std::string render_slices_table(const MappingPlan& plan) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"layer", "group", "rows", "cols", "tile", "at", "sum"});
  for (const auto& lp : plan.layers) {
    if (lp.digital) {
      rows.push_back({lp.layer.name, "-", "digital", "", "", "", ""});
      continue;
    }
    std::vector<std::size_t> sum_of(lp.slices.size(), 0);
    for (std::size_t i = 0; i < lp.partial_sums.size(); ++i)
      for (Index s : lp.partial_sums[i].slices)
        if (s >= 0 && std::size_t(s) < sum_of.size()) sum_of[std::size_t(s)] = i;
    for (std::size_t i = 0; i < lp.slices.size(); ++i) {
      const TileSlice& s = lp.slices[i];
      rows.push_back({lp.layer.name, concat(s.group), concat("[", s.row0, ", ", s.row0 + s.rows, ")"),
                      concat("[", s.col0, ", ", s.col0 + s.cols, ")"), concat(s.tile),
                      concat("(", s.tile_row0, ", ", s.tile_col0, ")"), concat(sum_of[i])});
    }
  }
  std::vector<std::size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (std::size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t c = 0; c < row.size(); ++c)
      line += row[c] + std::string(width[c] - row[c].size() + 2, ' ');
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string render_json(const UtilisationReport& r, const MappingPlan* plan) {
  std::ostringstream out;
  out << "{\n  \"chip\": {\"tile_rows\": " << r.chip.tile_rows
      << ", \"tile_cols\": " << r.chip.tile_cols << ", \"num_tiles\": " << r.chip.num_tiles
      << "},\n  \"options\": {\"conv_split\": " << json_string(to_string(r.options.conv_split))
      << ", \"packing\": " << json_string(to_string(r.options.packing))
      << ", \"digital_layers\": [";
  for (std::size_t i = 0; i < r.options.digital_layers.size(); ++i)
    out << (i ? ", " : "") << json_string(r.options.digital_layers[i]);
  out << "]},\n  \"layers\": [";
  for (std::size_t i = 0; i < r.layers.size(); ++i) {
    const auto& u = r.layers[i];
    out << (i ? "," : "") << "\n    {\"name\": " << json_string(u.name) << ", \"rows\": " << u.rows
        << ", \"cols\": " << u.cols << ", \"groups\": " << u.groups
        << ", \"kernel_h\": " << u.kernel_h << ", \"kernel_w\": " << u.kernel_w
        << ", \"digital\": " << (u.digital ? "true" : "false") << ", \"weights\": " << u.weights
        << ", \"slices\": " << u.slices << ", \"tiles\": " << u.tiles
        << ", \"cells_used\": " << u.cells_used << ", \"cells_available\": " << u.cells_available
        << ", \"utilisation\": " << json_number(u.utilisation) << "}";
  }
  out << (r.layers.empty() ? "" : "\n  ") << "],\n  \"totals\": {\"tiles_used\": " << r.tiles_used
      << ", \"analog_weights\": " << r.analog_weights
      << ", \"digital_weights\": " << r.digital_weights
      << ", \"cells_available\": " << r.cells_available
      << ", \"utilisation\": " << json_number(r.utilisation)
      << ", \"chip_occupancy\": " << json_number(r.chip_occupancy) << "}";
  if (plan) {
    out << ",\n  \"plan\": {\"tiles_used\": " << plan->tiles_used << ", \"layers\": [";
    for (std::size_t i = 0; i < plan->layers.size(); ++i) {
      const auto& lp = plan->layers[i];
      out << (i ? "," : "") << "\n    {\"name\": " << json_string(lp.layer.name)
          << ", \"digital\": " << (lp.digital ? "true" : "false") << ", \"slices\": [";
      for (std::size_t k = 0; k < lp.slices.size(); ++k) {
        const auto& s = lp.slices[k];
        out << (k ? ", " : "") << "\n      {\"tile\": " << s.tile << ", \"group\": " << s.group
            << ", \"row0\": " << s.row0 << ", \"col0\": " << s.col0 << ", \"rows\": " << s.rows
            << ", \"cols\": " << s.cols << ", \"tile_row0\": " << s.tile_row0
            << ", \"tile_col0\": " << s.tile_col0 << "}";
      }
      out << "], \"partial_sums\": [";
      for (std::size_t k = 0; k < lp.partial_sums.size(); ++k) {
        const auto& ps = lp.partial_sums[k];
        out << (k ? ", " : "") << "\n      {\"group\": " << ps.group << ", \"col0\": " << ps.col0
            << ", \"cols\": " << ps.cols << ", \"slices\": [";
        for (std::size_t m = 0; m < ps.slices.size(); ++m) out << (m ? ", " : "") << ps.slices[m];
        out << "]}";
      }
      out << "]}";
    }
    out << (plan->layers.empty() ? "" : "\n  ") << "]}";
  }
  out << "\n}\n";
  return out.str();
}

}  // namespace pcmsim::mapping
