// Mapper: configuration validation, hand-counted placements, digital layers, bounded chips,
// packing, and invariants (check_plan) on many random layer shapes.
#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "mapping/mapping_plan.h"

namespace pcmsim::mapping {
namespace {

// EXPECT that `statement` throws E whose message contains every fragment.
template <class E, class F>
void expect_throw_with(F&& statement, const std::vector<std::string>& fragments) {
  try {
    statement();
    ADD_FAILURE() << "no exception; expected one mentioning '" << fragments.front() << "'";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const auto& f : fragments)
      EXPECT_NE(what.find(f), std::string::npos) << "message: " << what << "\nmissing: " << f;
  }
}

ChipSpec tiles(Index rows, Index cols, Index n = 0) {
  ChipSpec c;
  c.tile_rows = rows;
  c.tile_cols = cols;
  c.num_tiles = n;
  return c;
}

std::vector<Index> slice_rows(const LayerPlan& lp) {
  std::vector<Index> r;
  for (const auto& s : lp.slices) r.push_back(s.rows);
  return r;
}

// ---- validate() ----

TEST(ChipSpec, DefaultsAreHermesTilesUnbounded) {
  ChipSpec c;
  EXPECT_EQ(c.tile_rows, 256);
  EXPECT_EQ(c.tile_cols, 256);
  EXPECT_EQ(c.num_tiles, 0);
  EXPECT_FALSE(c.bounded());
  EXPECT_NO_THROW(c.validate());
}

TEST(ChipSpec, ValidateNamesTheBadField) {
  expect_throw_with<std::invalid_argument>([] { tiles(0, 256).validate(); },
                                           {"mapping::ChipSpec", "tile_rows = 0"});
  expect_throw_with<std::invalid_argument>([] { tiles(256, 0).validate(); }, {"tile_cols = 0"});
  expect_throw_with<std::invalid_argument>([] { tiles(256, -3).validate(); },
                                           {"tile_cols = -3"});
  expect_throw_with<std::invalid_argument>([] { tiles(256, 256, -1).validate(); },
                                           {"num_tiles = -1"});
  expect_throw_with<std::invalid_argument>([] { tiles(65537, 256).validate(); },
                                           {"tile_rows = 65537", "[1, 65536]"});
  EXPECT_NO_THROW(tiles(65536, 1).validate());
  // plan() validates at entry.
  expect_throw_with<std::invalid_argument>(
      [] { plan({LayerMatrix::linear("fc", 4, 4)}, tiles(0, 256), MapperOptions{}); },
      {"tile_rows = 0"});
}

TEST(MapperOptions, DefaultsAndValidate) {
  MapperOptions o;
  EXPECT_EQ(o.conv_split, ConvSplit::whole_kernel);
  EXPECT_EQ(o.packing, Packing::none);
  EXPECT_TRUE(o.digital_layers.empty());
  EXPECT_NO_THROW(o.validate());
  o.digital_layers = {"fc1", ""};
  expect_throw_with<std::invalid_argument>([&] { o.validate(); }, {"digital_layers[1]"});
}

TEST(MapperOptions, ParseAndPrintEnums) {
  EXPECT_EQ(parse_conv_split("free"), ConvSplit::free);
  EXPECT_EQ(parse_conv_split(to_string(ConvSplit::whole_kernel)), ConvSplit::whole_kernel);
  EXPECT_EQ(parse_packing("dense"), Packing::dense);
  EXPECT_EQ(parse_packing(to_string(Packing::diagonal)), Packing::diagonal);
  expect_throw_with<std::invalid_argument>([] { parse_packing("tight"); }, {"'tight'"});
  expect_throw_with<std::invalid_argument>([] { parse_conv_split(""); }, {"conv split"});
}

TEST(LayerMatrix, BuildersAndValidate) {
  const auto fc = LayerMatrix::linear("fc", 1000, 700);
  EXPECT_EQ(fc.rows, 1000);
  EXPECT_EQ(fc.cols, 700);
  EXPECT_EQ(fc.kernel_size(), 1);
  const auto conv = LayerMatrix::conv2d("c", 64, 128, 3, 3);
  EXPECT_EQ(conv.rows, 576);
  EXPECT_EQ(conv.cols, 128);
  EXPECT_EQ(conv.kernel_size(), 9);
  const auto dw = LayerMatrix::conv2d("dw", 32, 32, 3, 3, 32);
  EXPECT_EQ(dw.rows, 9);
  EXPECT_EQ(dw.cols, 1);
  EXPECT_EQ(dw.groups, 32);
  EXPECT_EQ(dw.weights(), 288);
  expect_throw_with<std::invalid_argument>([] { LayerMatrix::conv2d("g", 30, 32, 3, 3, 4); },
                                           {"'g'", "in_channels = 30", "groups = 4"});
  expect_throw_with<std::invalid_argument>([] { LayerMatrix::conv2d("g", 32, 30, 3, 3, 4); },
                                           {"out_channels = 30"});
  expect_throw_with<std::invalid_argument>([] { LayerMatrix::linear("z", 0, 3); },
                                           {"'z'", "rows = 0"});
  expect_throw_with<std::invalid_argument>([] { LayerMatrix::linear("", 3, 3); },
                                           {"name is empty"});
  LayerMatrix bad = conv;
  bad.rows = 575;
  expect_throw_with<std::invalid_argument>([&] { bad.validate(); },
                                           {"rows = 575", "multiple of the kernel size"});
}

// ---- hand-counted cases ----

TEST(Plan, Linear1000x700On256TilesUses4x3Tiles) {
  const std::vector<LayerMatrix> layers{LayerMatrix::linear("fc", 1000, 700)};
  const auto p = plan(layers, ChipSpec{}, MapperOptions{});
  ASSERT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(p.tiles_used, 12);
  const auto& lp = p.layers[0];
  ASSERT_EQ(lp.slices.size(), 12u);
  ASSERT_EQ(lp.partial_sums.size(), 3u);  // three column blocks: 256, 256, 188
  const std::vector<Index> col_widths{256, 256, 188};
  for (std::size_t j = 0; j < 3; ++j) {
    const auto& ps = lp.partial_sums[j];
    EXPECT_EQ(ps.col0, Index(256 * j));
    EXPECT_EQ(ps.cols, col_widths[j]);
    ASSERT_EQ(ps.slices.size(), 4u);  // four row blocks summed: 256, 256, 256, 232
    const std::vector<Index> row_heights{256, 256, 256, 232};
    for (std::size_t i = 0; i < 4; ++i) {
      const auto& s = lp.slices[std::size_t(ps.slices[i])];
      EXPECT_EQ(s.row0, Index(256 * i));
      EXPECT_EQ(s.rows, row_heights[i]);
      EXPECT_EQ(s.cols, col_widths[j]);
      EXPECT_EQ(s.tile_row0, 0);
      EXPECT_EQ(s.tile_col0, 0);
    }
  }
  // One slice per tile, numbered in plan order.
  for (std::size_t i = 0; i < lp.slices.size(); ++i) EXPECT_EQ(lp.slices[i].tile, Index(i));
  EXPECT_EQ(lp.output_index(0, 5), 5);
}

TEST(Plan, Conv3x3With64InChannelsSplitsAtWholeKernels) {
  // 64 in-channels x 3x3 = 576 rows; 256-row tiles hold floor(256/9) = 28 kernels = 252 rows.
  const std::vector<LayerMatrix> layers{LayerMatrix::conv2d("conv", 64, 64, 3, 3)};
  const auto p = plan(layers, ChipSpec{}, MapperOptions{});
  ASSERT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(slice_rows(p.layers[0]), (std::vector<Index>{252, 252, 72}));
  EXPECT_EQ(p.layers[0].slices[1].row0, 252);
  EXPECT_EQ(p.layers[0].slices[2].row0, 504);
  EXPECT_EQ(p.tiles_used, 3);

  MapperOptions free;
  free.conv_split = ConvSplit::free;
  const auto q = plan(layers, ChipSpec{}, free);
  ASSERT_NO_THROW(check_plan(q, layers));
  EXPECT_EQ(slice_rows(q.layers[0]), (std::vector<Index>{256, 256, 64}));
}

TEST(Plan, KernelLargerThanTileIsAnErrorUnlessFreeSplitting) {
  const std::vector<LayerMatrix> layers{LayerMatrix::conv2d("big", 4, 8, 17, 17)};
  expect_throw_with<std::invalid_argument>(
      [&] { plan(layers, ChipSpec{}, MapperOptions{}); },
      {"mapping::plan", "'big'", "17x17 = 289", "tile_rows = 256", "free"});
  MapperOptions free;
  free.conv_split = ConvSplit::free;
  const auto p = plan(layers, ChipSpec{}, free);  // 1156 rows -> 5 blocks
  EXPECT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(p.tiles_used, 5);
}

TEST(Plan, GroupedConvolutionIsGroupsIndependentMatrices) {
  // 128 -> 256 channels, 4 groups, 3x3: each group 32*9 = 288 rows x 64 cols.
  const std::vector<LayerMatrix> layers{LayerMatrix::conv2d("g", 128, 256, 3, 3, 4)};
  const auto p = plan(layers, ChipSpec{}, MapperOptions{});
  ASSERT_NO_THROW(check_plan(p, layers));
  const auto& lp = p.layers[0];
  EXPECT_EQ(p.tiles_used, 8);  // 4 groups x (252 + 36 rows)
  ASSERT_EQ(lp.partial_sums.size(), 4u);
  for (Index g = 0; g < 4; ++g) {
    const auto& ps = lp.partial_sums[std::size_t(g)];
    EXPECT_EQ(ps.group, g);
    EXPECT_EQ(ps.cols, 64);
    ASSERT_EQ(ps.slices.size(), 2u);
    EXPECT_EQ(lp.slices[std::size_t(ps.slices[0])].rows, 252);
    EXPECT_EQ(lp.slices[std::size_t(ps.slices[1])].rows, 36);
  }
  EXPECT_EQ(lp.output_index(2, 3), 2 * 64 + 3);
}

// The zoo's networks (zoo/models.py) in their layer order, hand-counted on 256x256 tiles.
TEST(Plan, ZooResNetMatchesHandCount) {
  // Stem 3x3 1->16, three stages of one basic block (16, 32, 64 channels), 1x1 projection
  // shortcuts where the shape changes, fc 64->10. Hand count (whole-kernel splits, 28 kernels
  // of 3x3 per 256-row tile):
  //   stem 9x16 -> 1; stage 1: 144x16, 144x16 -> 2;
  //   stage 2: 144x32 -> 1, 288x32 -> 2 (252+36), shortcut 16x32 -> 1;
  //   stage 3: 288x64 -> 2, 576x64 -> 3 (252+252+72), shortcut 32x64 -> 1; fc 64x10 -> 1.
  //   Total 1 + 2 + 4 + 6 + 1 = 14 tiles.
  const std::vector<LayerMatrix> layers{
      LayerMatrix::conv2d("stem", 1, 16, 3, 3),
      LayerMatrix::conv2d("blocks.0.conv1", 16, 16, 3, 3),
      LayerMatrix::conv2d("blocks.0.conv2", 16, 16, 3, 3),
      LayerMatrix::conv2d("blocks.1.conv1", 16, 32, 3, 3),
      LayerMatrix::conv2d("blocks.1.conv2", 32, 32, 3, 3),
      LayerMatrix::conv2d("blocks.1.down.0", 16, 32, 1, 1),
      LayerMatrix::conv2d("blocks.2.conv1", 32, 64, 3, 3),
      LayerMatrix::conv2d("blocks.2.conv2", 64, 64, 3, 3),
      LayerMatrix::conv2d("blocks.2.down.0", 32, 64, 1, 1),
      LayerMatrix::linear("fc", 64, 10),
  };
  const auto p = plan(layers, ChipSpec{}, MapperOptions{});
  ASSERT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(p.tiles_used, 14);
  const std::vector<std::size_t> per_layer{1, 1, 1, 1, 2, 1, 2, 3, 1, 1};
  for (std::size_t i = 0; i < layers.size(); ++i)
    EXPECT_EQ(p.layers[i].tiles().size(), per_layer[i]) << layers[i].name;
  EXPECT_EQ(slice_rows(p.layers[7]), (std::vector<Index>{252, 252, 72}));

  // Free splitting: 288 -> 256 + 32, 576 -> 256 + 256 + 64: the same count.
  MapperOptions free;
  free.conv_split = ConvSplit::free;
  EXPECT_EQ(tiles_needed(layers, ChipSpec{}, free), 14);
  // First and last digital: 12 tiles.
  MapperOptions o;
  o.digital_layers = {"first", "last"};
  EXPECT_EQ(tiles_needed(layers, ChipSpec{}, o), 12);
  // 128x128 tiles: stem 1; 144 rows -> 126 + 18 (14 kernels per tile): 2 + 2; stage 2:
  // 144x32 -> 2, 288x32 -> 3 (126+126+36), 16x32 -> 1; stage 3: 288x64 -> 3, 576x64 -> 5
  // (4*126 + 72), 32x64 -> 1; fc 1. Total 1 + 4 + 6 + 9 + 1 = 21.
  ChipSpec small;
  small.tile_rows = small.tile_cols = 128;
  EXPECT_EQ(tiles_needed(layers, small, MapperOptions{}), 21);
}

TEST(Plan, ZooMlpAndLeNetMatchHandCounts) {
  // MLP 784-256-128-10: 784 rows -> 256*3 + 16 = 4 tiles; 256x128 -> 1; 128x10 -> 1.
  const std::vector<LayerMatrix> mlp{LayerMatrix::linear("fc1", 784, 256),
                                     LayerMatrix::linear("fc2", 256, 128),
                                     LayerMatrix::linear("fc3", 128, 10)};
  const auto p = plan(mlp, ChipSpec{}, MapperOptions{});
  ASSERT_NO_THROW(check_plan(p, mlp));
  EXPECT_EQ(p.tiles_used, 6);
  EXPECT_EQ(slice_rows(p.layers[0]), (std::vector<Index>{256, 256, 256, 16}));
  // LeNet-5: conv1 25x6, conv2 150x16, fc1 400x120 (2 tiles), fc2 120x84, fc3 84x10.
  const std::vector<LayerMatrix> lenet{
      LayerMatrix::conv2d("conv1", 1, 6, 5, 5), LayerMatrix::conv2d("conv2", 6, 16, 5, 5),
      LayerMatrix::linear("fc1", 400, 120), LayerMatrix::linear("fc2", 120, 84),
      LayerMatrix::linear("fc3", 84, 10)};
  const auto q = plan(lenet, ChipSpec{}, MapperOptions{});
  ASSERT_NO_THROW(check_plan(q, lenet));
  EXPECT_EQ(q.tiles_used, 6);
  // On 64x64 tiles conv2's 150 rows split at whole 5x5 kernels: 50 + 50 + 50.
  ChipSpec small;
  small.tile_rows = small.tile_cols = 64;
  const auto r = plan(lenet, small, MapperOptions{});
  ASSERT_NO_THROW(check_plan(r, lenet));
  EXPECT_EQ(slice_rows(r.layers[1]), (std::vector<Index>{50, 50, 50}));
}

// ---- digital layers ----

TEST(Plan, DigitalLayersByNameFlagAndShortcuts) {
  std::vector<LayerMatrix> layers{LayerMatrix::linear("a", 300, 10),
                                  LayerMatrix::linear("b", 10, 10),
                                  LayerMatrix::linear("c", 10, 300)};
  MapperOptions o;
  o.digital_layers = {"first"};
  auto p = plan(layers, ChipSpec{}, o);
  ASSERT_NO_THROW(check_plan(p, layers));
  EXPECT_TRUE(p.layers[0].digital);
  EXPECT_TRUE(p.layers[0].slices.empty());
  EXPECT_TRUE(p.layers[0].partial_sums.empty());
  EXPECT_FALSE(p.layers[1].digital);
  EXPECT_EQ(p.layers[1].slices[0].tile, 0);  // digital layers take no tile numbers
  EXPECT_EQ(p.tiles_used, 3);

  o.digital_layers = {"last", "b"};
  p = plan(layers, ChipSpec{}, o);
  EXPECT_FALSE(p.layers[0].digital);
  EXPECT_TRUE(p.layers[1].digital);
  EXPECT_TRUE(p.layers[2].digital);
  EXPECT_EQ(p.tiles_used, 2);
  EXPECT_NO_THROW(check_plan(p, layers));

  layers[1].digital = true;  // the layer's own flag
  p = plan(layers, ChipSpec{}, MapperOptions{});
  EXPECT_TRUE(p.layers[1].digital);
  EXPECT_NO_THROW(check_plan(p, layers));

  o.digital_layers = {"fc9"};
  expect_throw_with<std::invalid_argument>([&] { plan(layers, ChipSpec{}, o); },
                                           {"'fc9'", "layers: a, b, c"});
}

TEST(Plan, ALayerNamedFirstIsMatchedByName) {
  const std::vector<LayerMatrix> layers{LayerMatrix::linear("x", 4, 4),
                                        LayerMatrix::linear("first", 4, 4)};
  MapperOptions o;
  o.digital_layers = {"first"};
  const auto p = plan(layers, ChipSpec{}, o);
  EXPECT_FALSE(p.layers[0].digital);
  EXPECT_TRUE(p.layers[1].digital);
}

TEST(Plan, DuplicateLayerNamesAreRejected) {
  const std::vector<LayerMatrix> layers{LayerMatrix::linear("fc", 4, 4),
                                        LayerMatrix::linear("fc", 4, 4)};
  expect_throw_with<std::invalid_argument>([&] { plan(layers, ChipSpec{}, MapperOptions{}); },
                                           {"'fc'", "unique"});
}

TEST(Plan, EmptyNetworkUsesNoTiles) {
  const auto p = plan({}, ChipSpec{}, MapperOptions{});
  EXPECT_EQ(p.tiles_used, 0);
  EXPECT_NO_THROW(check_plan(p, {}));
}

// ---- bounded chip ----

TEST(Plan, BoundedChipTooSmallSaysByHowMuch) {
  const std::vector<LayerMatrix> layers{LayerMatrix::linear("fc", 1000, 700)};
  expect_throw_with<std::invalid_argument>(
      [&] { plan(layers, tiles(256, 256, 10), MapperOptions{}); },
      {"mapping::plan", "needs 12 tiles", "256x256", "chip has 10", "2 tiles short"});
  const auto p = plan(layers, tiles(256, 256, 12), MapperOptions{});  // exactly enough
  EXPECT_EQ(p.tiles_used, 12);
  EXPECT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(tiles_needed(layers, tiles(256, 256, 1), MapperOptions{}), 12);
}

TEST(Plan, AbsurdSliceCountsAreRefusedBeforeAllocating) {
  // 100000 x 100000 weights on 1x1 tiles = 1e10 slices.
  const std::vector<LayerMatrix> layers{LayerMatrix::linear("huge", 100000, 100000)};
  expect_throw_with<std::invalid_argument>([&] { plan(layers, tiles(1, 1), MapperOptions{}); },
                                           {"1e+10 slices", "larger tiles"});
  // On a bounded chip without packing the shortfall is reported first, exactly.
  expect_throw_with<std::invalid_argument>(
      [&] { plan(layers, tiles(1, 1, 1000), MapperOptions{}); },
      {"needs 10000000000 tiles of 1x1", "chip has 1000", "9999999000 tiles short"});
}

// ---- packing ----

TEST(Plan, PackingDepthwiseSlices) {
  // 64 depthwise 3x3 filters: 64 matrices of 9x1.
  const std::vector<LayerMatrix> layers{LayerMatrix::conv2d("dw", 64, 64, 3, 3, 64)};
  MapperOptions o;
  auto p = plan(layers, ChipSpec{}, o);
  EXPECT_EQ(p.tiles_used, 64);  // one slice per tile
  EXPECT_NO_THROW(check_plan(p, layers));

  o.packing = Packing::diagonal;  // 256 rows hold floor(256/9) = 28 diagonal 9x1 blocks
  p = plan(layers, ChipSpec{}, o);
  EXPECT_EQ(p.tiles_used, 3);
  EXPECT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(p.slices_on_tile(0).size(), 28u);
  EXPECT_EQ(p.slices_on_tile(2).size(), 8u);
  EXPECT_EQ(p.layers[0].slices[1].tile_row0, 9);
  EXPECT_EQ(p.layers[0].slices[1].tile_col0, 1);

  o.packing = Packing::dense;  // one 9-row shelf holds 256 columns
  p = plan(layers, ChipSpec{}, o);
  EXPECT_EQ(p.tiles_used, 1);
  EXPECT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(p.layers[0].slices[63].tile_row0, 0);
  EXPECT_EQ(p.layers[0].slices[63].tile_col0, 63);
}

TEST(Plan, PackingSharesTilesAcrossLayers) {
  const std::vector<LayerMatrix> layers{LayerMatrix::linear("a", 100, 100),
                                        LayerMatrix::linear("b", 100, 100),
                                        LayerMatrix::linear("c", 100, 200)};
  MapperOptions o;
  o.packing = Packing::diagonal;
  auto p = plan(layers, ChipSpec{}, o);  // a, b on tile 0 diagonally; c does not fit beside
  EXPECT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(p.tiles_used, 2);
  EXPECT_EQ(p.layers[1].slices[0].tile, 0);
  EXPECT_EQ(p.layers[1].slices[0].tile_row0, 100);
  EXPECT_EQ(p.layers[2].slices[0].tile, 1);

  o.packing = Packing::dense;  // shelf 0: a | b (cols 0..199); shelf 1 (rows 100..199): c
  p = plan(layers, ChipSpec{}, o);
  EXPECT_NO_THROW(check_plan(p, layers));
  EXPECT_EQ(p.tiles_used, 1);
  EXPECT_EQ(p.layers[1].slices[0].tile_col0, 100);
  EXPECT_EQ(p.layers[2].slices[0].tile_row0, 100);
  EXPECT_EQ(p.layers[2].slices[0].tile_col0, 0);
}

// ---- invariants on random shapes ----

std::vector<LayerMatrix> random_layers(std::mt19937_64& rng, int count) {
  std::uniform_int_distribution<int> kind(0, 3), small(1, 40), big(1, 700), kdim(1, 5),
      groups(1, 6);
  std::vector<LayerMatrix> layers;
  for (int i = 0; i < count; ++i) {
    const std::string name = "l" + std::to_string(i);
    switch (kind(rng)) {
      case 0:
        layers.push_back(LayerMatrix::linear(name, big(rng), big(rng)));
        break;
      case 1: {  // plain convolution
        layers.push_back(LayerMatrix::conv2d(name, small(rng), small(rng) * 4, kdim(rng),
                                             kdim(rng)));
        break;
      }
      case 2: {  // grouped convolution
        const int g = groups(rng);
        layers.push_back(LayerMatrix::conv2d(name, g * small(rng), g * small(rng), kdim(rng),
                                             kdim(rng), g));
        break;
      }
      default: {  // depthwise
        const int c = small(rng);
        layers.push_back(LayerMatrix::conv2d(name, c, c, 3, 3, c));
      }
    }
  }
  return layers;
}

Index ceil_div(Index a, Index b) { return (a + b - 1) / b; }

TEST(Plan, InvariantsHoldOnRandomShapes) {
  std::mt19937_64 rng(20261128);
  const std::vector<std::pair<Index, Index>> tile_shapes{
      {256, 256}, {128, 64}, {64, 128}, {100, 37}, {25, 25}, {512, 512}};
  const std::vector<Packing> packings{Packing::none, Packing::diagonal, Packing::dense};
  const std::vector<ConvSplit> splits{ConvSplit::whole_kernel, ConvSplit::free};
  int plans_checked = 0;
  for (int trial = 0; trial < 25; ++trial) {
    const auto layers = random_layers(rng, 1 + trial % 12);
    for (const auto& [tr, tc] : tile_shapes)
      for (auto split : splits)
        for (auto packing : packings) {
          MapperOptions o;
          o.conv_split = split;
          o.packing = packing;
          if (trial % 3 == 0) o.digital_layers = {"first"};
          const ChipSpec chip = tiles(tr, tc);
          const auto p = plan(layers, chip, o);
          ASSERT_NO_THROW(check_plan(p, layers))
              << "trial " << trial << " tile " << tr << "x" << tc << " " << to_string(split)
              << " " << to_string(packing);
          // The expected tile count without packing; packing never needs more.
          Index expected = 0;
          for (std::size_t i = 0; i < layers.size(); ++i) {
            if (p.layers[i].digital) continue;
            const auto& l = layers[i];
            const Index k = l.kernel_size();
            const Index step =
                (split == ConvSplit::free || k == 1) ? tr : tr / k * k;  // k <= 25 <= tr
            expected += l.groups * ceil_div(l.rows, step) * ceil_div(l.cols, tc);
          }
          if (packing == Packing::none)
            EXPECT_EQ(p.tiles_used, expected);
          else
            EXPECT_LE(p.tiles_used, expected);
          // Whole-kernel splitting never cuts a kernel.
          if (split == ConvSplit::whole_kernel)
            for (const auto& lp : p.layers)
              for (const auto& s : lp.slices) {
                EXPECT_EQ(s.row0 % lp.layer.kernel_size(), 0);
                EXPECT_EQ(s.rows % lp.layer.kernel_size(), 0);
              }
          // Deterministic: the same inputs give the same plan.
          const auto again = plan(layers, chip, o);
          ASSERT_EQ(again.tiles_used, p.tiles_used);
          for (std::size_t i = 0; i < p.layers.size(); ++i) {
            ASSERT_EQ(again.layers[i].slices.size(), p.layers[i].slices.size());
            for (std::size_t s = 0; s < p.layers[i].slices.size(); ++s) {
              const auto& a = again.layers[i].slices[s];
              const auto& b = p.layers[i].slices[s];
              EXPECT_TRUE(a.tile == b.tile && a.row0 == b.row0 && a.col0 == b.col0 &&
                          a.tile_row0 == b.tile_row0 && a.tile_col0 == b.tile_col0);
            }
          }
          ++plans_checked;
        }
  }
  EXPECT_EQ(plans_checked, 25 * 6 * 2 * 3);
}

// The plan as a recipe: scatter a weight matrix onto tiles, run each tile's block, add the
// partial sums as the plan says, and get exactly x*W (integer-valued doubles: exact sums).
TEST(Plan, TilesAndPartialSumsReproduceTheMatrixProduct) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> value(-8, 8);
  const std::vector<LayerMatrix> layers{LayerMatrix::conv2d("c", 12, 30, 3, 3, 3),
                                        LayerMatrix::linear("fc", 70, 45)};
  for (auto packing : {Packing::none, Packing::diagonal, Packing::dense}) {
    MapperOptions o;
    o.packing = packing;
    const ChipSpec chip = tiles(20, 16);
    const auto p = plan(layers, chip, o);
    check_plan(p, layers);
    std::vector<core::MatrixD> tile_cells(std::size_t(p.tiles_used),
                                          core::MatrixD::Constant(20, 16, 1e9));  // poison
    for (std::size_t li = 0; li < layers.size(); ++li) {
      const auto& l = layers[li];
      // Full weight matrix per group; inputs x per group.
      std::vector<core::MatrixD> w(std::size_t(l.groups));
      for (auto& m : w) m = core::MatrixD::NullaryExpr(l.rows, l.cols, [&] { return value(rng); });
      for (const auto& s : p.layers[li].slices)
        tile_cells[std::size_t(s.tile)].block(s.tile_row0, s.tile_col0, s.rows, s.cols) =
            w[std::size_t(s.group)].block(s.row0, s.col0, s.rows, s.cols);
      for (Index g = 0; g < l.groups; ++g) {
        const core::MatrixD x =
            core::MatrixD::NullaryExpr(3, l.rows, [&] { return value(rng); });  // batch of 3
        const core::MatrixD expected = x * w[std::size_t(g)];
        core::MatrixD got = core::MatrixD::Zero(3, l.cols);
        for (const auto& ps : p.layers[li].partial_sums) {
          if (ps.group != g) continue;
          for (Index si : ps.slices) {
            const auto& s = p.layers[li].slices[std::size_t(si)];
            got.middleCols(ps.col0, ps.cols) +=
                x.middleCols(s.row0, s.rows) *
                tile_cells[std::size_t(s.tile)].block(s.tile_row0, s.tile_col0, s.rows, s.cols);
          }
        }
        EXPECT_EQ(got, expected) << l.name << " group " << g << " " << to_string(packing);
      }
    }
  }
}

}  // namespace
}  // namespace pcmsim::mapping
