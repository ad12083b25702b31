// A layer split over a grid of tiles and put back together by the digital unit.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "core/digital_unit.h"
#include "core/tile.h"
#include "devices/pcm_model.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"

using namespace pcmsim;
using core::Index;
using core::MatrixD;
using core::MatrixF;

namespace {

MatrixF gaussian(Index rows, Index cols, unsigned seed, float sd = 1.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> n(0.f, sd);
  MatrixF m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = n(gen);
  return m;
}

core::IoParams ideal_io() {
  core::IoParams io;
  io.p_in = 0;
  io.p_out = 0;
  io.out_bound = INFINITY;
  io.out_noise = 0;
  return io;
}

// A hand-made row/column grid of tiles of at most tile x tile.
struct TiledLayer {
  struct Slot {
    Index row0, col0;
    std::unique_ptr<core::Tile> tile;
  };
  std::vector<Slot> slots;
  Index cols = 0;
};

TiledLayer split(const MatrixF& w, Index tile, const devices::UnitCellSpec& cell,
                 const core::IoParams& io,
                 std::shared_ptr<const devices::DeviceModel> model = nullptr,
                 double t_inf = 0) {
  TiledLayer layer;
  layer.cols = w.cols();
  std::uint32_t slice = 0;
  for (Index r0 = 0; r0 < w.rows(); r0 += tile)
    for (Index c0 = 0; c0 < w.cols(); c0 += tile, ++slice) {
      const Index nr = std::min(tile, w.rows() - r0), nc = std::min(tile, w.cols() - c0);
      core::ConductanceBlock block =
          devices::weights_to_targets(w.block(r0, c0, nr, nc), cell, 25e-6);
      if (model) {
        const core::RngKey key{77, core::Stage::programming, 0, slice};
        const auto programmed = devices::program_block(block, model, key);
        block = devices::at_time(programmed, t_inf, key.with_sub(1));
      }
      layer.slots.push_back({r0, c0, std::make_unique<core::Tile>(block, io)});
    }
  return layer;
}

MatrixF run(const TiledLayer& layer, const MatrixF& x, const core::DigitalParams& dp) {
  core::LayerAccumulator acc(dp);
  acc.begin(x.rows(), layer.cols);
  core::TileReadout ro;
  for (std::size_t s = 0; s < layer.slots.size(); ++s) {
    const auto& slot = layer.slots[s];
    slot.tile->forward(x.middleCols(slot.row0, slot.tile->rows()),
                       core::RngKey{5, core::Stage::tile_forward, 0, static_cast<std::uint32_t>(s)},
                       ro);
    acc.add(ro, slot.col0);
  }
  return acc.finish();
}

}  // namespace

// Issue 3: splitting a 1000 x 700 layer over 256 x 256 tiles gives the same ideal result as one
// big tile (converters and noise off, float64 accumulation). Each tile has its own weight scale
// (max|W| of its block) and its own abs-max input scale; the digital unit undoes both.
TEST(TiledLayer, SplitOver256TilesEqualsOneBigTile) {
  const MatrixF w = gaussian(1000, 700, 1, 0.05f);
  const MatrixF x = gaussian(33, 1000, 2);
  const devices::UnitCellSpec cell;  // one differential pair, block scaling
  const TiledLayer big = split(w, 1000, cell, ideal_io());
  const TiledLayer tiled = split(w, 256, cell, ideal_io());
  ASSERT_EQ(big.slots.size(), 1u);
  ASSERT_EQ(tiled.slots.size(), 12u);  // 4 row splits x 3 column splits
  const MatrixF y_big = run(big, x, {});
  const MatrixF y_tiled = run(tiled, x, {});
  const MatrixD exact = x.cast<double>() * w.cast<double>();
  // Float GEMMs of up to 1000 terms: relative rounding ~1e-7 of the row's magnitude.
  const double scale = exact.cwiseAbs().maxCoeff();
  for (Index b = 0; b < x.rows(); ++b)
    for (Index j = 0; j < w.cols(); ++j) {
      ASSERT_NEAR(y_tiled(b, j), y_big(b, j), 2e-6 * scale) << b << "," << j;
      ASSERT_NEAR(y_tiled(b, j), exact(b, j), 2e-6 * scale) << b << "," << j;
    }
}

// Per-column scaling and bit-sliced, digitally read weights through the same grid: every read
// (slice) is shifted and added by the digital unit. Each tile quantises its block to 8 bits with
// its own column scales, so the reference is x times the weights the tiles represent
// (devices::effective_weights of each block), assembled into the layer.
TEST(TiledLayer, BitSlicedColumnScaledSplitEqualsRepresentedWeights) {
  const MatrixF w = gaussian(300, 90, 3, 0.1f);
  const MatrixF x = gaussian(9, 300, 4);
  devices::UnitCellSpec cell;
  cell.kind = devices::CellKind::bit_sliced;
  cell.scaling = devices::WeightScaling::column;
  cell.weight_bits = 8;
  cell.slice_bits = 2;
  const Index tile = 128;
  MatrixF w_eff(300, 90);
  for (Index r0 = 0; r0 < 300; r0 += tile)
    for (Index c0 = 0; c0 < 90; c0 += tile) {
      const Index nr = std::min(tile, 300 - r0), nc = std::min(tile, 90 - c0);
      w_eff.block(r0, c0, nr, nc) = devices::effective_weights(
          devices::weights_to_targets(w.block(r0, c0, nr, nc), cell, 25e-6));
    }
  const TiledLayer layer = split(w, tile, cell, ideal_io());
  ASSERT_EQ(layer.slots.size(), 3u);
  const MatrixF y = run(layer, x, {});
  const MatrixD exact = x.cast<double>() * w_eff.cast<double>();
  const double scale = exact.cwiseAbs().maxCoeff();
  EXPECT_LT((y.cast<double>() - exact).cwiseAbs().maxCoeff(), 2e-6 * scale);
  // and the 8-bit weight quantisation itself is small but real
  const MatrixF y_float = x * w;
  EXPECT_GT((y - y_float).cwiseAbs().maxCoeff(), 1e-4 * scale);
  EXPECT_LT((y - y_float).norm(), 0.02 * y_float.norm());
}

// The whole tiled forward with PCM conductances after one day, 8-bit converters, output
// noise, and every accumulator: same bits for 1 and 2 threads.
TEST(TiledLayer, SameBitsForOneAndTwoThreads) {
  const MatrixF w = gaussian(300, 200, 7, 0.05f);
  const MatrixF x = gaussian(70, 300, 8);
  auto model = std::make_shared<devices::PcmModel>();
  core::IoParams io;
  io.read_noise = core::ReadNoise::pcm_like;
  io.w_noise = 0.02;
  for (auto acc : {core::Accumulator::float64, core::Accumulator::fixed_point,
                   core::Accumulator::block_floating_point}) {
    core::DigitalParams dp;
    dp.accumulator = acc;
    MatrixF y[2];
    for (int threads : {1, 2}) {
      omp_set_num_threads(threads);
      const TiledLayer layer = split(w, 128, devices::UnitCellSpec{}, io, model, 86400.0);
      y[threads - 1] = run(layer, x, dp);
    }
    ASSERT_EQ(0, std::memcmp(y[0].data(), y[1].data(), sizeof(float) * y[0].size()))
        << core::to_string(acc);
  }
}
