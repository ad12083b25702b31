// TiledSum (tiles' forwards and the digital sum in cached chunks of rows, on all threads) against
// the plain sequence it replaces: each tile's forward over the whole batch, then
// LayerAccumulator::add of its readout. Bit for bit, for every accumulator, with bound
// management redoing clipped samples, bit-serial inputs, several chunks and 1 or 2 threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/digital_unit.h"
#include "core/tile.h"
#include "core/tiled_sum.h"
#include "tests/unit/core/test_tile_util.h"

using namespace pcmsim::core;
using pcmsim::test::two_plane_block;

namespace {

struct Layer {
  std::vector<std::unique_ptr<Tile>> tiles;
  std::vector<TiledTerm> terms;
  std::vector<VectorD> alpha;
};

// A 200 x 150 layer on a grid of 64 x 64 tiles (two planes each).
Layer make_layer(const MatrixF& w, const IoParams& io) {
  Layer layer;
  const Index tile = 64;
  std::mt19937 gen(9);
  std::uniform_real_distribution<double> ua(0.9, 1.5);
  for (Index r = 0; r < w.rows(); r += tile)
    for (Index c = 0; c < w.cols(); c += tile) {
      const Index nr = std::min(tile, w.rows() - r), nc = std::min(tile, w.cols() - c);
      layer.tiles.push_back(std::make_unique<Tile>(two_plane_block(w.block(r, c, nr, nc)), io));
      VectorD a(nc);
      for (Index j = 0; j < nc; ++j) a(j) = ua(gen);
      layer.alpha.push_back(a);
    }
  Index t = 0;
  for (Index r = 0; r < w.rows(); r += tile)
    for (Index c = 0; c < w.cols(); c += tile, ++t)
      layer.terms.push_back({layer.tiles[t].get(), r, c,
                             RngKey{3, Stage::tile_forward, 0, static_cast<std::uint32_t>(t)},
                             &layer.alpha[t]});
  return layer;
}

MatrixF plain_sum(const Layer& layer, const MatrixF& x, std::uint64_t first_row, Index cols,
                  const DigitalParams& dp, bool* clipped) {
  LayerAccumulator acc(dp);
  acc.begin(x.rows(), cols);
  TileReadout ro;
  for (const TiledTerm& t : layer.terms) {
    t.tile->forward(x.middleCols(t.row0, t.tile->rows()), t.key, ro, first_row);
    for (auto r : ro.bm_rounds) *clipped = *clipped || r > 0;
    acc.add(ro, t.col0, t.alpha);
  }
  return acc.finish();
}

}  // namespace

TEST(TiledSum, SameBitsAsEachTileForwardThenAdd) {
  std::mt19937 gen(5);
  std::normal_distribution<float> n;
  const Index rows = 200, cols = 150, batch = 1100;
  MatrixF w(rows, cols), x(batch, rows);
  for (Index i = 0; i < w.size(); ++i) w.data()[i] = 0.05f * n(gen);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = n(gen);

  std::vector<IoParams> ios(2);
  ios[0].out_bound = 1.5;  // many samples clip: bound management redoes them
  ios[1].b_in = 3;         // bit-serial: 3 cycles x 2 planes = 6 reads per tile
  std::vector<DigitalParams> modes(4);
  modes[1].accumulator = Accumulator::float32;
  modes[2].accumulator = Accumulator::fixed_point;
  modes[3].accumulator = Accumulator::block_floating_point;
  const std::uint64_t first_row = 41;
  const int threads_before = omp_get_max_threads();
  for (std::size_t k = 0; k < ios.size(); ++k) {
    const Layer layer = make_layer(w, ios[k]);
    for (const DigitalParams& dp : modes) {
      bool clipped = false;
      const MatrixF want = plain_sum(layer, x, first_row, cols, dp, &clipped);
      if (k == 0) EXPECT_TRUE(clipped) << "the case must exercise bound management";
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        TiledSum sum(dp);
        MatrixF got(batch, cols);
        sum.run(layer.terms, x, first_row, got);
        ASSERT_EQ(got.rows(), batch);
        ASSERT_EQ(got.cols(), cols);
        for (Index i = 0; i < got.size(); ++i)
          ASSERT_EQ(std::memcmp(&got.data()[i], &want.data()[i], sizeof(float)), 0)
              << "io " << k << " " << to_string(dp.accumulator) << " threads " << threads
              << " element " << i << ": " << got.data()[i] << " vs " << want.data()[i];
        // A second run reuses the buffers and gives the same bits.
        MatrixF again(batch, cols);
        sum.run(layer.terms, x, first_row, again);
        ASSERT_TRUE(again == got);
      }
    }
  }
  omp_set_num_threads(threads_before);
}

TEST(TiledSum, RejectsBadInput) {
  MatrixF w = MatrixF::Constant(100, 70, 0.02f);
  const Layer layer = make_layer(w, IoParams{});
  TiledSum sum;
  MatrixF x = MatrixF::Ones(300, 100), y(300, 70);
  x(257, 3) = std::nanf("");
  try {  // named by its row in the whole input (chunks are 132 rows), as Tile::forward names it
    sum.run(layer.terms, x, 0, y);
    ADD_FAILURE() << "no error for a NaN input";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("input(257,3) = nan"), std::string::npos) << e.what();
  }
  EXPECT_THROW(sum.run({}, x, 0, y), std::invalid_argument);
  MatrixF narrow = MatrixF::Ones(300, 90), y_narrow(10, 70);  // the second row of tiles reads 64..99
  EXPECT_THROW(sum.run(layer.terms, narrow, 0, y), std::invalid_argument);
  EXPECT_THROW(sum.run(layer.terms, x, 0, y_narrow), std::invalid_argument);  // 10 rows for 300
  x(257, 3) = 1.0f;
  EXPECT_NO_THROW(sum.run(layer.terms, x, 0, y));  // usable after an error
  EXPECT_TRUE(y.allFinite());
  // Into a block of columns of a wider output: the same values, the other columns untouched.
  MatrixF wide = MatrixF::Constant(300, 90, 7.0f);
  sum.run(layer.terms, x, 0, wide.middleCols(10, 70));
  EXPECT_TRUE(wide.middleCols(10, 70) == y);
  EXPECT_TRUE((wide.leftCols(10).array() == 7.0f).all());
  EXPECT_TRUE((wide.rightCols(10).array() == 7.0f).all());
}

namespace {
// Rows produced on demand (as a convolution's im2col), here copied from a matrix, counting the
// rows produced.
class ProducedRows final : public RowSource {
 public:
  explicit ProducedRows(const MatrixF& m) : m_(m) {}
  Index rows() const override { return m_.rows(); }
  Index cols() const override { return m_.cols(); }
  bool stored() const override { return false; }
  RowBlock block(Index r0, Index n, MatrixF& scratch) const override {
    scratch = m_.middleRows(r0, n);
#pragma omp atomic
    produced_ += n;
    return RowBlock(scratch.data(), n, scratch.cols(), Eigen::OuterStride<>(scratch.cols()));
  }
  mutable Index produced_ = 0;

 private:
  const MatrixF& m_;
};
}  // namespace

TEST(TiledSum, ProducedRowsGiveTheStoredRowsBits) {
  std::mt19937 gen(6);
  std::normal_distribution<float> n;
  const Index rows = 200, cols = 150, batch = 700;
  MatrixF w(rows, cols), x(batch, rows);
  for (Index i = 0; i < w.size(); ++i) w.data()[i] = 0.05f * n(gen);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = n(gen);
  IoParams io;
  io.out_bound = 1.5;  // bound management redoes samples
  const Layer layer = make_layer(w, io);
  const int threads_before = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    TiledSum sum;
    MatrixF want(batch, cols), got(batch, cols);
    sum.run(layer.terms, x, 5, want);
    const ProducedRows produced(x);
    sum.run(layer.terms, produced, 5, got);
    EXPECT_TRUE(got == want) << "threads " << threads;
    EXPECT_EQ(produced.produced_, batch) << "each row produced once, in its chunk";
  }
  omp_set_num_threads(threads_before);

  // RepeatedRows: copies side by side, produced or stored.
  const MatrixF small = x.topRows(3).leftCols(4);
  const MatrixRows stored(small);
  const ProducedRows produced(small);
  for (const RowSource* src : {static_cast<const RowSource*>(&stored),
                               static_cast<const RowSource*>(&produced)}) {
    const RepeatedRows twice(*src, 3);
    ASSERT_EQ(twice.cols(), 12);
    EXPECT_FALSE(twice.stored());
    MatrixF scratch;
    const RowBlock b = twice.block(1, 2, scratch);
    EXPECT_TRUE(MatrixF(b) == small.bottomRows(2).replicate(1, 3));
  }

  // A non-finite produced value is named by its row in the whole input.
  MatrixF bad = x;
  bad(600, 7) = std::nanf("");
  TiledSum sum;
  MatrixF y(batch, cols);
  try {
    sum.run(layer.terms, ProducedRows(bad), 0, y);
    ADD_FAILURE() << "no error for a NaN input";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("input(600,7) = nan"), std::string::npos) << e.what();
  }
}
