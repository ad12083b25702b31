// The optimised accumulators against the oracle on real tile readouts: a layer on a grid of
// tiles with two digitally read planes (F = 1, 2), a bit-serial 8-bit DAC (3 cycles), 8-bit
// ADC and output noise, so every tile hands over 6 reads. Bit for bit, every accumulator.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/digital_unit.h"
#include "core/reference/digital_reference.h"
#include "core/tile.h"
#include "tests/unit/core/test_tile_util.h"

using namespace pcmsim::core;
using pcmsim::test::two_plane_block;

TEST(DigitalOnTileReadouts, AccumulatorsMatchReference) {
  std::mt19937 gen(5);
  std::normal_distribution<float> n;
  const Index rows = 200, cols = 150, tile = 64;
  MatrixF w(rows, cols), x(13, rows);
  for (Index i = 0; i < w.size(); ++i) w.data()[i] = 0.05f * n(gen);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = n(gen);
  IoParams io;
  io.b_in = 3;
  std::vector<std::unique_ptr<Tile>> tiles;
  std::vector<Index> row0, col0;
  for (Index r = 0; r < rows; r += tile)
    for (Index c = 0; c < cols; c += tile) {
      const Index nr = std::min(tile, rows - r), nc = std::min(tile, cols - c);
      tiles.push_back(std::make_unique<Tile>(two_plane_block(w.block(r, c, nr, nc)), io));
      row0.push_back(r);
      col0.push_back(c);
    }
  std::vector<TileReadout> readouts(tiles.size());
  for (std::size_t t = 0; t < tiles.size(); ++t)
    tiles[t]->forward(x.middleCols(row0[t], tiles[t]->rows()),
                      RngKey{3, Stage::tile_forward, 0, static_cast<std::uint32_t>(t)},
                      readouts[t]);
  ASSERT_EQ(readouts[0].reads.size(), 6u);
  std::mt19937 agen(9);
  std::uniform_real_distribution<double> ua(0.9, 1.5);
  std::vector<VectorD> alpha(tiles.size());
  for (std::size_t t = 0; t < tiles.size(); ++t) {
    alpha[t].resize(tiles[t]->cols());
    for (Index j = 0; j < alpha[t].size(); ++j) alpha[t](j) = ua(agen);
  }

  std::vector<DigitalParams> modes(5);
  modes[1].accumulator = Accumulator::float32;
  modes[2].accumulator = Accumulator::fixed_point;
  modes[2].acc_bits = 12;
  modes[2].acc_frac_bits = frac_bits_for_range(1.0, 12);  // outputs have std ~0.7: some saturate
  modes[3].accumulator = Accumulator::block_floating_point;
  modes[3].bfp_window_bits = 6;
  modes[4].accumulator = Accumulator::fixed_point;
  for (const DigitalParams& dp : modes) {
    LayerAccumulator acc(dp);
    acc.begin(x.rows(), cols);
    std::vector<reference::PlacedReadout> parts;
    for (std::size_t t = 0; t < tiles.size(); ++t) {
      acc.add(readouts[t], col0[t], &alpha[t]);
      parts.push_back({&readouts[t], col0[t], alpha[t]});
    }
    const MatrixF y = acc.finish();
    long long sat_ref = 0;
    const MatrixD ref = reference::accumulate(dp, x.rows(), cols, parts, &sat_ref);
    for (Index i = 0; i < y.size(); ++i)
      ASSERT_EQ(y.data()[i], static_cast<float>(ref.data()[i])) << to_string(dp.accumulator) << " " << i;
    EXPECT_EQ(acc.saturations(), sat_ref);
    if (dp.accumulator == Accumulator::fixed_point && dp.acc_bits == 12) EXPECT_GT(sat_ref, 0);
  }
}
