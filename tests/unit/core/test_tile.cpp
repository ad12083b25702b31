#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <string>

#include "core/io_params.h"
#include "core/quantiser.h"
#include "core/tile.h"
#include "tests/unit/core/test_tile_util.h"

using namespace pcmsim::core;
using namespace pcmsim::test;

namespace {

RngKey tile_key(std::uint64_t seed) {
  RngKey k;
  k.seed = seed;
  k.stage = Stage::tile_forward;
  return k;
}

double max_rel_error(const MatrixD& a, const MatrixD& b) {
  const double scale = std::max(1e-30, b.cwiseAbs().maxCoeff());
  return (a - b).cwiseAbs().maxCoeff() / scale;
}

}  // namespace

// ---- Physics limits ----------------------------------------------------------------------------

TEST(Tile, IdealConvertersOffEqualTheFloatProduct) {
  for (auto nm : {NoiseManagement::none, NoiseManagement::abs_max}) {
    for (auto readout : {PlaneReadout::digital, PlaneReadout::analog}) {
      const auto block = random_block(37, 23, 3, 11, readout);
      IoParams io = ideal_io();
      io.noise_management = nm;
      Tile tile(block, io);
      const MatrixF x = random_input(19, 37, 5);
      TileReadout out;
      tile.forward(x, tile_key(1), out);
      const MatrixD exact = x.cast<double>() * block_weights(block);
      EXPECT_LT(max_rel_error(descale(out), exact), 1e-6)
          << to_string(nm) << (readout == PlaneReadout::analog ? " analog" : " digital");
      EXPECT_EQ(out.adc_step, 0.0);
      EXPECT_EQ(out.reads.size(), readout == PlaneReadout::analog ? 1u : 3u);
    }
  }
}

TEST(Tile, ConvertersOnStayWithinTheAnalyticQuantisationBound) {
  // One plane, weights up to full scale; out_bound large enough that nothing clips.
  const Index rows = 50, cols = 31;
  const auto block = random_block(rows, cols, 1, 3);
  const MatrixD w = block_weights(block);
  for (int p_in : {3, 5, 8}) {
    for (int p_out : {4, 8, 12}) {
      IoParams io;
      io.p_in = p_in;
      io.p_out = p_out;
      io.out_noise = 0;
      io.out_bound = 60.0;  // |sum_i x_i W_ij| <= rows * 1 = 50 < 60 in normalised units
      Tile tile(block, io);
      const MatrixF x = random_input(17, rows, 9, -3.0f, 3.0f);
      TileReadout out;
      tile.forward(x, tile_key(2), out);
      const MatrixD y = descale(out);
      const MatrixD exact = x.cast<double>() * w;
      const double in_step = QuantiserSpec{p_in, 1.0}.step();
      const double out_step = QuantiserSpec{p_out, 60.0}.step();
      for (Index b = 0; b < x.rows(); ++b) {
        ASSERT_EQ(out.bm_rounds[b], 0);
        const double s = out.input_scale[b];
        for (Index j = 0; j < cols; ++j) {
          // DAC error <= step/2 per input, weighted by |W_ij|; ADC error <= step/2 in normalised
          // units; both scaled back by s (and g_max/s_G for the ADC). 1e-5 covers float rounding.
          double bound_in = 0;
          for (Index i = 0; i < rows; ++i) bound_in += std::fabs(w(i, j)) * in_step / 2 * s;
          const double bound_out = out_step / 2 * s * out.output_scale[j];
          EXPECT_LE(std::fabs(y(b, j) - exact(b, j)),
                    (bound_in + bound_out) * (1 + 1e-5) + 1e-5 * std::fabs(exact(b, j)))
              << "p_in=" << p_in << " p_out=" << p_out << " b=" << b << " j=" << j;
          // Reads are integer multiples of the ADC step.
          const double k = out.reads[0](b, j) / out.adc_steps[j];
          EXPECT_NEAR(k, std::round(k), 1e-3);
        }
      }
      EXPECT_NEAR(out.adc_step, out_step, 1e-12);
    }
  }
}

TEST(Tile, ClippingHappensExactlyAtTheBounds) {
  // 4 rows, 3 columns; column 0 sums to +8, column 1 to -8, column 2 to +1 for x = 1.
  ConductanceBlock block;
  block.g_max = 1.0;
  ConductancePlane p;
  p.g_plus = MatrixF::Zero(4, 3);
  p.g_minus = MatrixF::Zero(4, 3);
  p.g_plus.col(0).setConstant(1.0f);
  p.g_minus.col(1).setConstant(1.0f);
  p.g_plus(0, 2) = 1.0f;
  block.planes.push_back(p);
  block.weight_scale = VectorD::Ones(3);
  for (int p_out : {0, 8}) {
    IoParams io = ideal_io();
    io.p_out = p_out;
    io.out_bound = 2.5;
    Tile tile(block, io);
    MatrixF x = MatrixF::Ones(2, 4) * 2.0f;  // sums +8, -8, +2
    x.row(1).setConstant(0.5f);              // sums +2, -2, +0.5: inside the bound
    TileReadout out;
    tile.forward(x, tile_key(3), out);
    const float top = p_out == 0 ? 2.5f : float(QuantiserSpec({8, 2.5}).max_level() * out.adc_steps[0]);
    EXPECT_EQ(out.reads[0](0, 0), top);
    EXPECT_EQ(out.reads[0](0, 1), -top);
    if (p_out == 0) {
      EXPECT_EQ(out.reads[0](0, 2), 2.0f);
      EXPECT_EQ(out.reads[0](1, 0), 2.0f);
      EXPECT_EQ(out.reads[0](1, 1), -2.0f);
      EXPECT_EQ(out.reads[0](1, 2), 0.5f);
    }
    EXPECT_NEAR(top, 2.5f, 2.5e-6f);
    EXPECT_EQ(out.clipped[0], 1);
    EXPECT_EQ(out.clipped[1], 0);
    // Exactly at the bound is not clipping.
    MatrixF at = MatrixF::Constant(1, 4, 2.5f / 4.0f);
    tile.forward(at, tile_key(3), out);
    EXPECT_EQ(out.clipped[0], 0);
  }
}

TEST(Tile, PerColumnOutputBoundsClipEachColumnAtItsOwnBound) {
  auto block = random_block(8, 5, 1, 21);
  for (auto& v : block.planes[0].g_minus.reshaped()) v = 0;  // all weights positive
  IoParams io = ideal_io();
  io.p_out = 6;
  io.out_bound = 100.0;
  Tile tile(block, io);
  VectorF bounds(5);
  bounds << 0.5f, 1.0f, 2.0f, 100.0f, 0.25f;
  tile.set_output_bounds(bounds);
  const MatrixF x = MatrixF::Ones(1, 8);
  TileReadout out;
  tile.forward(x, tile_key(4), out);
  for (Index j = 0; j < 5; ++j) {
    const QuantiserSpec adc{6, bounds[j]};
    EXPECT_NEAR(out.adc_steps[j], adc.step(), 1e-12);
    const double sum = tile.group_weights(0).col(j).sum();
    EXPECT_NEAR(out.reads[0](0, j), quantise_nearest(adc, sum), 1e-5 * bounds[j]) << j;
  }
  EXPECT_NEAR(out.adc_step, QuantiserSpec({6, 100.0}).step(), 1e-12);  // the largest LSB
  EXPECT_THROW(tile.set_output_bounds(VectorF::Ones(4)), std::invalid_argument);
  VectorF bad = bounds;
  bad[2] = -1;
  EXPECT_THROW(tile.set_output_bounds(bad), std::invalid_argument);
  tile.set_output_bounds(VectorF());  // back to uniform
  EXPECT_EQ(tile.output_bounds().size(), 0);
}

TEST(Tile, BoundManagementRemovesClipping) {
  const Index rows = 64, cols = 16;
  auto block = random_block(rows, cols, 1, 5);
  for (auto& v : block.planes[0].g_minus.reshaped()) v = 0;  // all-positive: outputs ~ rows/2
  const MatrixD w = block_weights(block);
  IoParams io;
  io.out_noise = 0;
  io.out_bound = 10.0;  // x = +-U(0.5, 1) on 64 rows gives outputs ~ 24 > 10
  io.bound_management = BoundManagement::off;
  const MatrixF x = random_input(40, rows, 8, 0.5f, 1.0f);
  TileReadout off, on;
  Tile(block, io).forward(x, tile_key(5), off);
  int clipped_off = 0;
  for (auto c : off.clipped) clipped_off += c;
  EXPECT_GT(clipped_off, 30);
  io.bound_management = BoundManagement::iterative;
  Tile(block, io).forward(x, tile_key(5), on);
  const MatrixD y = descale(on), exact = x.cast<double>() * w;
  for (Index b = 0; b < x.rows(); ++b) {
    EXPECT_EQ(on.clipped[b], 0);
    EXPECT_GE(on.bm_rounds[b], 1);
    EXPECT_FLOAT_EQ(on.input_scale[b], off.input_scale[b] * std::ldexp(1.0f, on.bm_rounds[b]));
    for (Index j = 0; j < cols; ++j) {
      EXPECT_LT(std::fabs(on.reads[0](b, j)), 10.0f + 1e-5f);
      // Within the quantisation bound at the final scale.
      const double s = on.input_scale[b];
      const double tol = (w.col(j).cwiseAbs().sum() * QuantiserSpec({8, 1.0}).step() / 2 +
                          QuantiserSpec({8, 10.0}).step() / 2 * on.output_scale[j]) * s * (1 + 1e-5);
      EXPECT_LE(std::fabs(y(b, j) - exact(b, j)), tol);
    }
  }
  // automatic = iterative under abs_max, off under a static range.
  IoParams a;
  EXPECT_TRUE(a.bound_management_active());
  EXPECT_EQ(a.bm_rounds(), 9);  // floor(log2(1000))
  a.noise_management = NoiseManagement::static_range;
  EXPECT_FALSE(a.bound_management_active());
  EXPECT_EQ(a.bm_rounds(), 0);
}

TEST(Tile, StaticRangeClipsInputsAtTheDacBound) {
  auto block = random_block(6, 4, 1, 2);
  IoParams io = ideal_io();
  io.noise_management = NoiseManagement::static_range;
  io.in_bound = 1.0;
  Tile tile(block, io);
  tile.set_input_range(2.0);
  MatrixF x(1, 6);
  x << 5.0f, -7.0f, 1.0f, 0.0f, -1.0f, 2.0f;  // x/2 = 2.5, -3.5, 0.5, 0, -0.5, 1 -> clipped to +-1
  TileReadout out;
  tile.forward(x, tile_key(6), out);
  EXPECT_EQ(out.input_scale[0], 2.0f);
  MatrixD xc(1, 6);
  xc << 2.0, -2.0, 1.0, 0.0, -1.0, 2.0;
  const MatrixD exact = xc * block_weights(block);
  EXPECT_LT(max_rel_error(descale(out), exact), 1e-6);
  EXPECT_THROW(tile.set_input_range(0.0), std::invalid_argument);
  EXPECT_THROW(tile.set_input_range(NAN), std::invalid_argument);
}

TEST(Tile, ZeroInputUnderAbsMaxGivesZeroOutput) {
  const auto block = random_block(9, 4, 1, 1);
  IoParams io;  // defaults, output noise on
  Tile tile(block, io);
  TileReadout out;
  tile.forward(MatrixF::Zero(3, 9), tile_key(7), out);
  const MatrixD y = descale(out);
  EXPECT_EQ(y.cwiseAbs().maxCoeff(), 0.0);
  EXPECT_EQ(out.input_scale[1], 0.0f);
}

// ---- Bit-serial inputs and planes --------------------------------------------------------------

TEST(Tile, BitSerialInputsAddUpToTheFullWidthDac) {
  const auto block = random_block(21, 13, 2, 4);
  const MatrixF x = random_input(10, 21, 3);
  IoParams io = ideal_io();
  io.p_in = 7;
  io.in_bound = 1.0;
  io.noise_management = NoiseManagement::abs_max;
  TileReadout full;
  Tile(block, io).forward(x, tile_key(8), full);
  for (int b_in : {1, 2, 4, 6}) {  // 6 magnitude bits: 6, 3, 2 (ceil(6/4)) and 1 cycles
    io.b_in = b_in;
    Tile tile(block, io);
    EXPECT_EQ(tile.cycles(), (6 + b_in - 1) / b_in);
    TileReadout serial;
    tile.forward(x, tile_key(8), serial);
    EXPECT_EQ(serial.reads.size(), full.reads.size() * tile.cycles());
    EXPECT_LT(max_rel_error(descale(serial), descale(full)), 1e-6) << "b_in=" << b_in;
    // Each cycle drives at most the DAC's full scale.
    for (const auto& r : serial.reads) EXPECT_LE(r.cwiseAbs().maxCoeff(), 21.0f * 1.0001f);
  }
}

TEST(Tile, AnalogAndDigitalPlaneReadoutsBothRecoverTheWeights) {
  for (auto readout : {PlaneReadout::digital, PlaneReadout::analog}) {
    const auto block = random_block(30, 12, 4, 99, readout);
    Tile tile(block, ideal_io());
    const double total = 1 + 2 + 4 + 8;
    if (readout == PlaneReadout::analog) {
      EXPECT_EQ(tile.groups(), 1);
      EXPECT_DOUBLE_EQ(tile.group_weight(0), total);
      // Normalised so that full scale stays 1.
      EXPECT_LE(tile.group_weights(0).cwiseAbs().maxCoeff(), 1.0f);
    } else {
      EXPECT_EQ(tile.groups(), 4);
      EXPECT_DOUBLE_EQ(tile.group_weight(3), 8.0);
    }
    TileReadout out;
    const MatrixF x = random_input(5, 30, 1);
    tile.forward(x, tile_key(9), out);
    EXPECT_LT(max_rel_error(descale(out), x.cast<double>() * block_weights(block)), 1e-6);
  }
}

// ---- Snapshots, reuse, determinism -------------------------------------------------------------

TEST(Tile, SetConductancesEqualsAFreshTileAndReusesBuffers) {
  const auto a = random_block(40, 20, 2, 1), b = random_block(40, 20, 2, 2);
  IoParams io;
  io.read_noise = ReadNoise::pcm_like;
  io.w_noise = 0.02;
  Tile tile(a, io);
  const MatrixF x = random_input(70, 40, 4);
  TileReadout out;
  tile.forward(x, tile_key(10), out);
  const float* buffer = out.reads[0].data();
  tile.set_conductances(b);
  tile.forward(x, tile_key(10), out);
  EXPECT_EQ(out.reads[0].data(), buffer);  // same shape: the read buffers are reused
  TileReadout fresh;
  Tile(b, io).forward(x, tile_key(10), fresh);
  for (std::size_t r = 0; r < out.reads.size(); ++r) EXPECT_EQ(out.reads[r], fresh.reads[r]);
  // A smaller batch into the same readout, then the first again: same result as before.
  tile.forward(x.topRows(3), tile_key(10), out);
  EXPECT_EQ(out.reads[0].rows(), 3);
  EXPECT_EQ(out.reads[0], fresh.reads[0].topRows(3));

  auto wrong = random_block(40, 21, 2, 3);
  EXPECT_THROW(tile.set_conductances(wrong), std::invalid_argument);
  auto fewer = random_block(40, 20, 1, 3);
  EXPECT_THROW(tile.set_conductances(fewer), std::invalid_argument);
}

TEST(Tile, SameBitsForOneAndTwoThreads) {
  const auto block = random_block(97, 45, 2, 7, PlaneReadout::digital);
  IoParams io;
  io.in_noise = 0.01;
  io.read_noise = ReadNoise::pcm_like;
  io.w_noise = 0.03;
  io.rounding = Rounding::stochastic;
  io.out_bound = 3.0;  // forces bound management on many samples
  io.b_in = 3;
  const MatrixF x = random_input(333, 97, 12);  // 6 blocks, the last one partial
  const Tile tile(block, io);
  const int saved = omp_get_max_threads();
  TileReadout one, two;
  omp_set_num_threads(1);
  tile.forward(x, tile_key(11), one);
  omp_set_num_threads(2);
  tile.forward(x, tile_key(11), two);
  omp_set_num_threads(saved);
  int redone = 0;
  for (auto r : one.bm_rounds) redone += r > 0;
  EXPECT_GT(redone, 10);  // the bound-management path is exercised
  ASSERT_EQ(one.reads.size(), two.reads.size());
  for (std::size_t r = 0; r < one.reads.size(); ++r)
    EXPECT_EQ(std::memcmp(one.reads[r].data(), two.reads[r].data(),
                          sizeof(float) * one.reads[r].size()), 0);
  EXPECT_EQ(one.input_scale, two.input_scale);
  EXPECT_EQ(one.bm_rounds, two.bm_rounds);
  // A different key gives different noise.
  TileReadout other;
  tile.forward(x, tile_key(12), other);
  EXPECT_NE(other.reads[0], one.reads[0]);
}

// One-hot input rows (the GDC identity probe) skip the GEMM (a copy of weight rows): the same
// bits as the GEMM path, which the same rows take when a dense row shares their work block
// (and then go through the DAC whole, where a one-hot block converts its non-zero values only).
// Noise is keyed by the row's index, so rows 0..n-1 of both batches draw the same numbers.
TEST(Tile, OneHotRowsGiveTheGemmPathsBits) {
  const Index rows = 40, cols = 23;
  const auto block = random_block(rows, cols, 2, 9, PlaneReadout::digital);
  for (int b_in : {0, 2})
  for (auto nm : {NoiseManagement::abs_max, NoiseManagement::static_range}) {
    SCOPED_TRACE(b_in);
    SCOPED_TRACE(static_cast<int>(nm));
    IoParams io;
    io.read_noise = ReadNoise::pcm_like;
    io.w_noise = 0.03;
    io.b_in = b_in;
    io.noise_management = nm;  // static_range: range 1, so 1e-9 below rounds to 0 in the DAC
    MatrixF one_hot = MatrixF::Zero(rows, rows);
    for (Index i = 0; i < rows; ++i) {
      if (i % 3 == 0) one_hot(i, (i * 11 + 5) % rows) = -0.0f;  // a zero's sign passes the DAC
      if (i % 7 != 3) one_hot(i, (i * 11) % rows) = (i % 2 ? -0.3f : 0.8f) * (1 + i % 5);
    }
    one_hot(1, 1) = 1e-9f;  // rounds to 0 in the DAC: the same bits as an all-zero row
    one_hot(1, (1 * 11) % rows) = 0.0f;
    MatrixF with_dense(rows + 1, rows);
    with_dense.topRows(rows) = one_hot;
    with_dense.row(rows) = random_input(1, rows, 5);
    const Tile tile(block, io);
    TileReadout fast, gemm;
    tile.forward(one_hot, tile_key(3), fast);
    tile.forward(with_dense, tile_key(3), gemm);
    ASSERT_EQ(fast.reads.size(), gemm.reads.size());
    for (std::size_t r = 0; r < fast.reads.size(); ++r)
      for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < cols; ++j)
          ASSERT_EQ(fast.reads[r](i, j), gemm.reads[r](i, j)) << r << " " << i << " " << j;
    EXPECT_GT(fast.reads[0].cwiseAbs().sum(), 0.0f);  // not a trivial all-zero read
  }
}

TEST(Tile, CopiedReadoutKeepsTheDataNotTheScratch) {
  const auto block = random_block(10, 10, 1, 1);
  Tile tile(block, IoParams{});
  TileReadout out;
  tile.forward(random_input(4, 10, 1), tile_key(1), out);
  TileReadout copy = out;
  EXPECT_EQ(copy.reads[0], out.reads[0]);
  tile.forward(random_input(4, 10, 1), tile_key(1), copy);  // gets its own scratch
  EXPECT_EQ(copy.reads[0], out.reads[0]);
}

// ---- Errors ------------------------------------------------------------------------------------

static void expect_invalid(const IoParams& io, const std::string& field) {
  try {
    io.validate();
    ADD_FAILURE() << "accepted bad " << field;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[core::IoParams]"), std::string::npos) << e.what();
  }
}

TEST(IoParams, DefaultsAreIbmsStandardInferenceTile) {
  IoParams io;
  EXPECT_NO_THROW(io.validate());
  EXPECT_EQ(io.p_in, 8);
  EXPECT_EQ(io.p_out, 8);
  EXPECT_EQ(io.in_bound, 1.0);
  EXPECT_EQ(io.out_bound, 10.0);
  EXPECT_EQ(io.out_noise, 0.04);
  EXPECT_EQ(io.noise_management, NoiseManagement::abs_max);
  EXPECT_EQ(io.rounding, Rounding::nearest);
  EXPECT_EQ(io.input_cycles(), 1);
}

TEST(IoParams, ValidateRejectsEachBadField) {
  auto with = [](auto f) { IoParams io; f(io); return io; };
  expect_invalid(with([](IoParams& io) { io.p_in = 1; }), "p_in");
  expect_invalid(with([](IoParams& io) { io.p_in = 17; }), "p_in");
  expect_invalid(with([](IoParams& io) { io.p_in = -2; }), "p_in");
  expect_invalid(with([](IoParams& io) { io.p_out = 1; }), "p_out");
  expect_invalid(with([](IoParams& io) { io.p_out = 20; }), "p_out");
  expect_invalid(with([](IoParams& io) { io.in_bound = 0; }), "in_bound");
  expect_invalid(with([](IoParams& io) { io.in_bound = NAN; }), "in_bound");
  expect_invalid(with([](IoParams& io) { io.in_bound = INFINITY; }), "in_bound");  // p_in = 8
  expect_invalid(with([](IoParams& io) { io.out_bound = -1; }), "out_bound");
  expect_invalid(with([](IoParams& io) { io.out_bound = INFINITY; }), "out_bound");
  expect_invalid(with([](IoParams& io) { io.in_noise = -0.1; }), "in_noise");
  expect_invalid(with([](IoParams& io) { io.out_noise = NAN; }), "out_noise");
  expect_invalid(with([](IoParams& io) { io.w_noise = -1; }), "w_noise");
  expect_invalid(with([](IoParams& io) { io.read_noise = static_cast<ReadNoise>(9); }), "read_noise");
  expect_invalid(with([](IoParams& io) { io.noise_management = static_cast<NoiseManagement>(9); }),
                 "noise_management");
  expect_invalid(with([](IoParams& io) { io.bound_management = static_cast<BoundManagement>(9); }),
                 "bound_management");
  expect_invalid(with([](IoParams& io) { io.rounding = static_cast<Rounding>(9); }), "rounding");
  expect_invalid(with([](IoParams& io) { io.bm_max_factor = 0.5; }), "bm_max_factor");
  expect_invalid(with([](IoParams& io) { io.bm_max_factor = INFINITY; }), "bm_max_factor");
  expect_invalid(with([](IoParams& io) { io.b_in = -1; }), "b_in");
  expect_invalid(with([](IoParams& io) { io.b_in = 8; }), "b_in");  // > p_in - 1
  expect_invalid(with([](IoParams& io) { io.p_in = 0; io.in_bound = INFINITY; io.b_in = 2; }), "b_in");
  // Valid corner cases.
  EXPECT_NO_THROW(with([](IoParams& io) { io.p_out = 0; io.out_bound = INFINITY; }).validate());
  EXPECT_NO_THROW(with([](IoParams& io) { io.b_in = 7; }).validate());
  EXPECT_NO_THROW(with([](IoParams& io) { io.p_in = 16; io.p_out = 2; }).validate());
  EXPECT_THROW(noise_management_from_string("absmax"), std::invalid_argument);
  EXPECT_EQ(read_noise_from_string("pcm_like"), ReadNoise::pcm_like);
}

TEST(Tile, RejectsBadInputsAndBlocks) {
  const auto block = random_block(8, 6, 1, 1);
  Tile tile(block, IoParams{});
  TileReadout out;
  try {
    tile.forward(MatrixF::Zero(2, 7), tile_key(1), out);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("2x7"), std::string::npos) << e.what();
  }
  MatrixF x = MatrixF::Zero(3, 8);
  x(2, 5) = NAN;
  try {
    tile.forward(x, tile_key(1), out);
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("input(2,5)"), std::string::npos) << e.what();
  }
  x(2, 5) = INFINITY;
  EXPECT_THROW(tile.forward(x, tile_key(1), out), std::invalid_argument);

  auto bad = block;
  bad.weight_scale.resize(5);
  EXPECT_THROW(Tile(bad, IoParams{}), std::invalid_argument);
  bad = block;
  bad.planes[0].g_plus(1, 1) = NAN;
  EXPECT_THROW(Tile(bad, IoParams{}), std::invalid_argument);
  bad = block;
  bad.planes[0].g_minus(0, 0) = -1e-6f;
  EXPECT_THROW(Tile(bad, IoParams{}), std::invalid_argument);
  bad = block;
  bad.planes[0].g_minus.resize(8, 5);
  EXPECT_THROW(Tile(bad, IoParams{}), std::invalid_argument);
  bad = block;
  bad.g_max = 0;
  EXPECT_THROW(Tile(bad, IoParams{}), std::invalid_argument);
  bad = block;
  bad.planes.clear();
  EXPECT_THROW(Tile(bad, IoParams{}), std::invalid_argument);
  IoParams io;
  io.p_out = 1;
  EXPECT_THROW(Tile(block, io), std::invalid_argument);
}
