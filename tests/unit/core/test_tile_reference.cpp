// The optimised tile against the double-precision oracle (core/reference/tile_reference.h) on a
// list of cases: shapes not multiples of 8, batch 1 and several work blocks, several p, every
// noise-management mode, several planes with both readouts, bit-serial inputs, every noise source
// and stochastic rounding. Both draw the same random numbers, so noise-on results match too.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "core/quantiser.h"
#include "core/reference/tile_reference.h"
#include "core/tile.h"
#include "tests/unit/core/test_tile_util.h"

using namespace pcmsim::core;
using namespace pcmsim::test;

namespace {

struct Case {
  std::string name;
  Index rows, cols, batch;
  int planes;
  PlaneReadout readout;
  IoParams io;
  double input_range = 1.0;
  bool per_column_bounds = false;
  float x_lo = -1.0f, x_hi = 1.0f;
};

std::vector<Case> cases() {
  std::vector<Case> list;
  auto add = [&](std::string name, Index r, Index c, Index b, int planes, PlaneReadout ro,
                 auto tweak) {
    Case k{name, r, c, b, planes, ro, IoParams{}};
    tweak(k);
    list.push_back(k);
  };
  const auto D = PlaneReadout::digital, A = PlaneReadout::analog;
  add("defaults_batch1", 13, 7, 1, 1, D, [](Case&) {});
  add("defaults_two_blocks", 37, 29, 70, 1, D, [](Case&) {});
  add("noise_off_p4_p6", 37, 29, 70, 1, D, [](Case& k) {
    k.io.p_in = 4; k.io.p_out = 6; k.io.out_noise = 0; k.io.out_bound = 8; });
  add("converters_off", 21, 11, 9, 1, D, [](Case& k) { k.io = ideal_io(); });
  add("p16", 19, 5, 6, 1, D, [](Case& k) { k.io.p_in = 16; k.io.p_out = 16; });
  add("p2_p3", 19, 9, 12, 1, D, [](Case& k) { k.io.p_in = 2; k.io.p_out = 3; k.io.out_bound = 4; });
  add("static_range_in_noise", 23, 17, 40, 1, D, [](Case& k) {
    k.io.noise_management = NoiseManagement::static_range; k.input_range = 0.7;
    k.io.p_in = 5; k.io.p_out = 5; k.io.in_noise = 0.02; k.io.out_bound = 6; });
  add("nm_none_bm_iterative", 41, 15, 90, 1, D, [](Case& k) {
    k.io.noise_management = NoiseManagement::none; k.io.bound_management = BoundManagement::iterative;
    k.io.out_bound = 1.5; k.x_lo = -2; k.x_hi = 2; });
  add("abs_max_bm_noise_off", 41, 15, 90, 1, D, [](Case& k) {
    k.io.out_bound = 1.0; k.io.out_noise = 0; });
  add("three_planes_digital_pcm_read_stochastic", 30, 14, 66, 3, D, [](Case& k) {
    k.io.read_noise = ReadNoise::pcm_like; k.io.w_noise = 0.05;
    k.io.rounding = Rounding::stochastic; k.io.out_bound = 5; });
  add("two_planes_analog_additive", 33, 18, 20, 2, A, [](Case& k) {
    k.io.read_noise = ReadNoise::additive; k.io.w_noise = 0.03; k.io.p_out = 7; });
  add("four_planes_analog_noise_off", 27, 10, 5, 4, A, [](Case& k) { k.io.out_noise = 0; });
  add("bit_serial_two_planes", 25, 19, 35, 2, D, [](Case& k) {
    k.io.p_in = 7; k.io.b_in = 2; k.io.in_noise = 0.01; k.io.out_bound = 5; });
  add("bit_serial_noise_off", 25, 19, 35, 1, D, [](Case& k) {
    k.io.p_in = 9; k.io.b_in = 3; k.io.out_noise = 0; k.io.out_bound = 12; });
  add("bit_serial_stochastic_analog", 25, 19, 35, 3, A, [](Case& k) {
    k.io.p_in = 6; k.io.b_in = 1; k.io.rounding = Rounding::stochastic; });
  add("per_column_bounds_p4", 29, 13, 25, 1, D, [](Case& k) {
    k.io.p_out = 4; k.per_column_bounds = true; });
  return list;
}

RngKey key_of(std::uint64_t seed) {
  RngKey k;
  k.seed = seed;
  k.stage = Stage::tile_forward;
  k.layer = 3;
  k.slice = 1;
  return k;
}

}  // namespace

TEST(TileReference, OptimisedEqualsTheOracleOnEveryCase) {
  std::uint32_t seed = 100;
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.name);
    ++seed;
    const auto block = random_block(c.rows, c.cols, c.planes, seed, c.readout);
    const MatrixF x = random_input(c.batch, c.rows, seed + 1000, c.x_lo, c.x_hi);
    Tile tile(block, c.io);
    tile.set_input_range(c.input_range);
    VectorF bounds;
    if (c.per_column_bounds) {
      bounds.resize(c.cols);
      for (Index j = 0; j < c.cols; ++j) bounds[j] = 0.5f + 0.37f * float(j);
      tile.set_output_bounds(bounds);
    }
    TileReadout opt;
    tile.forward(x, key_of(seed), opt);
    const auto ref = reference::tile_forward(block, c.io, c.input_range, bounds, x, key_of(seed));

    ASSERT_EQ(opt.reads.size(), ref.reads.size());
    for (std::size_t r = 0; r < ref.reads.size(); ++r)
      EXPECT_NEAR(opt.read_weight[r], ref.read_weight[r], 1e-12 * ref.read_weight[r]);
    for (Index j = 0; j < c.cols; ++j) {
      EXPECT_NEAR(opt.output_scale[j], ref.output_scale[j], 1e-12 * ref.output_scale[j]);
      EXPECT_NEAR(opt.adc_steps[j], ref.adc_steps[j], 1e-12 * ref.adc_steps[j]);
    }
    int bm_used = 0;
    for (Index b = 0; b < c.batch; ++b) {
      EXPECT_NEAR(opt.input_scale[b], ref.input_scale[b], 1e-6 * ref.input_scale[b]) << b;
      EXPECT_EQ(int(opt.bm_rounds[b]), ref.bm_rounds[b]) << b;
      EXPECT_EQ(int(opt.clipped[b]), ref.clipped[b]) << b;
      bm_used += ref.bm_rounds[b] > 0;
    }
    if (c.name.find("bm") != std::string::npos) { EXPECT_GT(bm_used, 0); }

    // Element-wise: float vs double agree to 1e-5 (relative to the read's range). A value lying
    // within float rounding of an ADC tie may land on the neighbouring level: such a flip
    // must be exactly one LSB, and they must be rare (a handful of the elements).
    Index flips = 0, elements = 0;
    for (std::size_t r = 0; r < ref.reads.size(); ++r) {
      const double range = std::max(1.0, ref.reads[r].cwiseAbs().maxCoeff());
      for (Index b = 0; b < c.batch; ++b)
        for (Index j = 0; j < c.cols; ++j) {
          ++elements;
          const double d = std::fabs(double(opt.reads[r](b, j)) - ref.reads[r](b, j));
          if (d <= 1e-5 * range) continue;
          ++flips;
          EXPECT_LE(d, ref.adc_steps[j] * (1 + 1e-4)) << "r=" << r << " b=" << b << " j=" << j;
        }
    }
    EXPECT_LE(flips, 2 + elements / 1000) << flips << " of " << elements;
    // The layer outputs the digital unit would form.
    const MatrixD y_opt = descale(opt), y_ref = reference::descale(ref);
    const double scale = std::max(1e-12, y_ref.cwiseAbs().maxCoeff());
    if (flips == 0) { EXPECT_LT((y_opt - y_ref).cwiseAbs().maxCoeff() / scale, 1e-5); }
  }
}

// The oracle itself against the plain product (so the comparison above is not circular).
TEST(TileReference, OracleIsTheExactProductWithEverythingOff) {
  const auto block = random_block(17, 9, 2, 5, PlaneReadout::analog);
  const MatrixF x = random_input(4, 17, 6);
  const auto ref = reference::tile_forward(block, ideal_io(), 1.0, VectorF(), x, key_of(1));
  const MatrixD exact = x.cast<double>() * block_weights(block);
  EXPECT_LT((reference::descale(ref) - exact).cwiseAbs().maxCoeff(), 1e-12);
}
