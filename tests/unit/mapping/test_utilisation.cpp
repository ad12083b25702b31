// Utilisation report: hand-computed numbers and the table / JSON renderers.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "mapping/utilisation.h"

namespace pcmsim::mapping {
namespace {

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(Utilisation, HandComputedLinearLayer) {
  const auto p = plan({LayerMatrix::linear("fc", 1000, 700)}, ChipSpec{}, MapperOptions{});
  const auto r = utilisation_report(p);
  ASSERT_EQ(r.layers.size(), 1u);
  const auto& u = r.layers[0];
  EXPECT_EQ(u.weights, 700000);
  EXPECT_EQ(u.slices, 12);
  EXPECT_EQ(u.tiles, 12);
  EXPECT_EQ(u.cells_used, 700000);
  EXPECT_EQ(u.cells_available, 12 * 65536);
  EXPECT_DOUBLE_EQ(u.utilisation, 700000.0 / (12 * 65536.0));
  EXPECT_EQ(r.tiles_used, 12);
  EXPECT_DOUBLE_EQ(r.utilisation, u.utilisation);
  EXPECT_EQ(r.digital_weights, 0);
  EXPECT_DOUBLE_EQ(r.chip_occupancy, 0.0);  // unbounded
}

TEST(Utilisation, DigitalLayersAndTotals) {
  ChipSpec chip;
  chip.num_tiles = 8;
  MapperOptions o;
  o.digital_layers = {"first"};
  const auto p = plan({LayerMatrix::conv2d("conv1", 1, 16, 3, 3),  // 9 x 16, digital
                       LayerMatrix::conv2d("conv2", 64, 64, 3, 3),  // 576 x 64: 3 tiles
                       LayerMatrix::linear("fc", 64, 10)},          // 1 tile
                      chip, o);
  const auto r = utilisation_report(p);
  EXPECT_TRUE(r.layers[0].digital);
  EXPECT_EQ(r.layers[0].tiles, 0);
  EXPECT_EQ(r.layers[0].cells_used, 0);
  EXPECT_DOUBLE_EQ(r.layers[0].utilisation, 0.0);
  EXPECT_EQ(r.digital_weights, 144);
  EXPECT_EQ(r.analog_weights, 576 * 64 + 640);
  EXPECT_EQ(r.tiles_used, 4);
  EXPECT_DOUBLE_EQ(r.utilisation, (576.0 * 64 + 640) / (4 * 65536.0));
  EXPECT_DOUBLE_EQ(r.layers[1].utilisation, 576.0 * 64 / (3 * 65536.0));
  EXPECT_DOUBLE_EQ(r.chip_occupancy, 0.5);
}

TEST(Utilisation, SharedTilesCountForEachLayerButOnceInTotals) {
  MapperOptions o;
  o.packing = Packing::dense;
  const auto p = plan({LayerMatrix::linear("a", 100, 100), LayerMatrix::linear("b", 100, 100)},
                      ChipSpec{}, o);
  const auto r = utilisation_report(p);
  EXPECT_EQ(r.tiles_used, 1);
  EXPECT_EQ(r.layers[0].tiles, 1);
  EXPECT_EQ(r.layers[1].tiles, 1);
  EXPECT_DOUBLE_EQ(r.layers[0].utilisation, 10000.0 / 65536.0);
  EXPECT_DOUBLE_EQ(r.utilisation, 20000.0 / 65536.0);
}

TEST(Utilisation, TableRendering) {
  MapperOptions o;
  o.digital_layers = {"last"};
  const auto p = plan({LayerMatrix::linear("fc1", 1000, 700), LayerMatrix::linear("fc2", 700, 10)},
                      ChipSpec{}, o);
  const std::string t = render_table(utilisation_report(p));
  EXPECT_TRUE(contains(t, "256x256 tiles, unbounded")) << t;
  EXPECT_TRUE(contains(t, "whole_kernel")) << t;
  EXPECT_TRUE(contains(t, "fc1")) << t;
  EXPECT_TRUE(contains(t, "1000x700")) << t;
  EXPECT_TRUE(contains(t, "89.0%")) << t;  // 700000 / (12 * 65536) = 0.8901
  EXPECT_TRUE(contains(t, "digital")) << t;
  EXPECT_TRUE(contains(t, "total")) << t;
  EXPECT_TRUE(contains(t, "digital weights 7000")) << t;
  // Layer rows in input order, total last.
  EXPECT_LT(t.find("fc1"), t.find("fc2"));
  EXPECT_LT(t.find("fc2"), t.find("total"));
}

TEST(Utilisation, JsonRendering) {
  ChipSpec chip;
  chip.tile_rows = 128;
  chip.tile_cols = 64;
  chip.num_tiles = 100;
  const auto p = plan({LayerMatrix::linear("fc \"quoted\"", 200, 100)}, chip, MapperOptions{});
  const std::string j = render_json(utilisation_report(p));
  EXPECT_TRUE(contains(j, "\"tile_rows\": 128")) << j;
  EXPECT_TRUE(contains(j, "\"tile_cols\": 64")) << j;
  EXPECT_TRUE(contains(j, "\"num_tiles\": 100")) << j;
  EXPECT_TRUE(contains(j, "\"name\": \"fc \\\"quoted\\\"\"")) << j;  // escaped
  EXPECT_TRUE(contains(j, "\"tiles\": 4")) << j;                      // 2 x 2 blocks
  EXPECT_TRUE(contains(j, "\"utilisation\": 0.6103515625")) << j;     // 20000 / 32768
  EXPECT_TRUE(contains(j, "\"chip_occupancy\": 0.04")) << j;
  EXPECT_TRUE(contains(j, "\"digital\": false")) << j;
  // Balanced braces and brackets (a cheap well-formedness check; no JSON parser in the deps).
  int braces = 0, brackets = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < j.size(); ++i) {
    const char c = j[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    braces += (c == '{') - (c == '}');
    brackets += (c == '[') - (c == ']');
    EXPECT_GE(braces, 0);
    EXPECT_GE(brackets, 0);
  }
  EXPECT_EQ(braces, 0);
  EXPECT_EQ(brackets, 0);
  EXPECT_FALSE(in_string);
}

TEST(Utilisation, SlicesTableAndPlanJson) {
  MapperOptions o;
  o.digital_layers = {"first"};
  const auto p = plan({LayerMatrix::linear("in", 5, 5), LayerMatrix::conv2d("conv", 64, 64, 3, 3)},
                      ChipSpec{}, o);
  const std::string t = render_slices_table(p);
  EXPECT_TRUE(contains(t, "digital")) << t;
  EXPECT_TRUE(contains(t, "[252, 504)")) << t;  // the second whole-kernel row block
  EXPECT_TRUE(contains(t, "[504, 576)")) << t;
  EXPECT_TRUE(contains(t, "[0, 64)")) << t;
  EXPECT_EQ(std::count(t.begin(), t.end(), '\n'), 1 + 1 + 3);  // header, digital, 3 slices

  const std::string j = render_json(utilisation_report(p), &p);
  EXPECT_TRUE(contains(j, "\"plan\": {\"tiles_used\": 3")) << j;
  EXPECT_TRUE(contains(j, "\"row0\": 504")) << j;
  EXPECT_TRUE(contains(j, "\"slices\": [0, 1, 2]")) << j;  // one partial sum of three row blocks
  EXPECT_FALSE(contains(render_json(utilisation_report(p)), "\"plan\""));
}

}  // namespace
}  // namespace pcmsim::mapping
