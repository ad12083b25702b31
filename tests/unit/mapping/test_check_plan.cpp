// check_plan() catches every kind of broken plan: each test corrupts one thing in a valid plan
// and expects the violation to be named.
#include <gtest/gtest.h>

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mapping/mapping_plan.h"

namespace pcmsim::mapping {
namespace {

struct Fixture {
  std::vector<LayerMatrix> layers{LayerMatrix::conv2d("conv", 64, 64, 3, 3),  // 576 x 64
                                  LayerMatrix::linear("fc", 300, 300)};
  MappingPlan good;
  Fixture(Packing packing = Packing::none) {
    MapperOptions o;
    o.packing = packing;
    good = plan(layers, ChipSpec{}, o);
  }
};

// Corrupts a copy of the fixture's plan and expects check_plan to name the violation.
void expect_violation(const std::function<void(MappingPlan&, std::vector<LayerMatrix>&)>& corrupt,
                      const std::string& fragment, Packing packing = Packing::none) {
  Fixture f(packing);
  ASSERT_NO_THROW(check_plan(f.good, f.layers));
  MappingPlan bad = f.good;
  corrupt(bad, f.layers);
  try {
    check_plan(bad, f.layers);
    ADD_FAILURE() << "check_plan accepted a plan that should violate: " << fragment;
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(fragment), std::string::npos) << "message: " << what;
  }
}

TEST(CheckPlan, AcceptsPlansFromPlan) {
  for (auto packing : {Packing::none, Packing::diagonal, Packing::dense}) {
    Fixture f(packing);
    EXPECT_NO_THROW(check_plan(f.good, f.layers)) << to_string(packing);
  }
}

TEST(CheckPlan, LayerListMismatch) {
  expect_violation([](MappingPlan& p, auto&) { p.layers.pop_back(); }, "the plan has 1 layers");
  expect_violation([](MappingPlan&, auto& layers) { layers[1].cols = 299; },
                   "the network 'fc' 300x299");
}

TEST(CheckPlan, WeightPlacedTwice) {
  expect_violation([](MappingPlan& p, auto&) { p.layers[0].slices[1].row0 = 0; },
                   "overlap");
}

TEST(CheckPlan, WeightNotPlaced) {
  expect_violation(
      [](MappingPlan& p, auto&) {
        auto& s = p.layers[1].slices.back();
        s.rows -= 1;  // leaves one row of the last block uncovered
      },
      "is not placed");
}

TEST(CheckPlan, SliceOutsideTheLayer) {
  expect_violation([](MappingPlan& p, auto&) { p.layers[1].slices[0].col0 = 200; },
                   "outside the layer's 300x300");
  expect_violation([](MappingPlan& p, auto&) { p.layers[0].slices[0].group = 1; },
                   "group 1 outside [0, 1)");
}

TEST(CheckPlan, TileOverflowAndBadTileIds) {
  expect_violation([](MappingPlan& p, auto&) { p.layers[1].slices[1].tile_col0 = 100; },
                   "overflows tile");
  expect_violation([](MappingPlan& p, auto&) { p.layers[1].slices[1].tile = 99; },
                   "tile 99 outside");
  expect_violation([](MappingPlan& p, auto&) { ++p.tiles_used; }, "holds no slice");
  expect_violation(
      [](MappingPlan& p, auto&) {
        p.chip.num_tiles = 2;
      },
      "the chip has 2");
}

TEST(CheckPlan, TwoSlicesOnOneTileWithoutPacking) {
  expect_violation(
      [](MappingPlan& p, auto&) {
        // fc's last block (44 x 44, alone on the last tile) moves beside conv's first block
        // (252 x 64 at (0,0) of tile 0) without overlapping it; tile ids stay dense.
        auto& s = p.layers[1].slices.back();
        ASSERT_EQ(s.tile, p.tiles_used - 1);
        s.tile = 0;
        s.tile_row0 = 0;
        s.tile_col0 = 100;
        --p.tiles_used;
      },
      "but packing is none");
}

TEST(CheckPlan, OverlapOnASharedTile) {
  expect_violation(
      [](MappingPlan& p, auto&) {
        // Dense packing: move a slice onto another's cells.
        auto& a = p.layers[0].slices[2];
        auto& b = p.layers[1].slices[3];
        b.tile = a.tile;
        b.tile_row0 = a.tile_row0;
        b.tile_col0 = a.tile_col0;
      },
      "overlap", Packing::dense);
}

TEST(CheckPlan, DiagonalPackingMustNotShareRowsOrColumns) {
  expect_violation(
      [](MappingPlan& p, auto&) {
        // Find a tile with two slices and give the second the first's rows.
        for (Index t = 0; t < p.tiles_used; ++t) {
          auto on = p.slices_on_tile(t);
          if (on.size() < 2) continue;
          auto& a = p.layers[std::size_t(on[0].first)].slices[std::size_t(on[0].second)];
          auto& b = p.layers[std::size_t(on[1].first)].slices[std::size_t(on[1].second)];
          b.tile_row0 = a.tile_row0;
          return;
        }
        FAIL() << "no shared tile in the diagonal fixture";
      },
      "share rows but packing is diagonal", Packing::diagonal);
}

TEST(CheckPlan, WholeKernelCut) {
  expect_violation(
      [](MappingPlan& p, auto&) {
        auto& s = p.layers[0].slices;  // 252 / 252 / 72 rows
        s[0].rows = 250;
        s[1].row0 = 250;
        s[1].rows = 254;
      },
      "cut a 3x3 kernel");
}

TEST(CheckPlan, DigitalLayerPlaced) {
  expect_violation([](MappingPlan& p, auto&) { p.layers[1].digital = true; },
                   "digital in the plan but analog");
  expect_violation(
      [](MappingPlan& p, auto& layers) {
        layers[1].digital = true;
        p.layers[1].digital = true;
      },
      "'fc' is digital but has");
}

TEST(CheckPlan, PartialSums) {
  expect_violation([](MappingPlan& p, auto&) { p.layers[1].partial_sums.pop_back(); },
                   "is summed 0 times");
  expect_violation(
      [](MappingPlan& p, auto&) {
        auto& ps = p.layers[1].partial_sums[0].slices;
        std::swap(ps[0], ps[1]);
      },
      "rows must be covered in order");
  expect_violation([](MappingPlan& p, auto&) { p.layers[1].partial_sums[0].slices.pop_back(); },
                   "cover rows [0, 256) of 300");
  expect_violation(
      [](MappingPlan& p, auto&) {
        p.layers[1].partial_sums[1].slices = p.layers[1].partial_sums[0].slices;
      },
      "does not feed these outputs");
}

}  // namespace
}  // namespace pcmsim::mapping
