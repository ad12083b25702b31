// Real ADCs (IoParams adc_offset_std, adc_gain_std, adc_inl, adc_columns; Tile::draw_adc_errors):
// the transfer each ADC applies, which columns share it, and the spreads of the draws.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <string>

#include "core/io_params.h"
#include "core/tile.h"
#include "tests/unit/core/test_tile_util.h"

using namespace pcmsim::core;
using namespace pcmsim::test;

namespace {

RngKey adc_test_key(std::uint64_t seed) {
  RngKey k;
  k.seed = seed;
  k.stage = Stage::programming;
  k.sub = 1;
  return k;
}

// No converters, no noise, a finite ADC range B = 4 (normalised units): reads are the analog
// outputs, clipped at +-4.
IoParams linear_io() {
  IoParams io = ideal_io();
  io.out_bound = 4.0;
  return io;
}

// Writes `text` to a file in the test's temporary folder and returns its path.
std::string write_table(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "adc_inl_" + name + ".csv";
  std::ofstream(path) << text;
  return path;
}

// A transfer table of n + 1 evenly spaced points over [-1, 1], actual = f(ideal).
template <class F>
std::string table_of(const std::string& name, int n, F f) {
  std::string text = "# test table\nideal,actual\n";
  for (int k = 0; k <= n; ++k) {
    const double x = -1.0 + 2.0 * k / n;
    char row[64];
    std::snprintf(row, sizeof row, "%.17g,%.17g\n", x, f(x));
    text += row;
  }
  return write_table(name, text);
}

}  // namespace

TEST(AdcErrors, ZeroSpreadsDrawNothingAndChangeNothing) {
  const auto block = random_block(20, 12, 1, 3);
  IoParams io;  // the default converters, with noise
  Tile plain(block, io), drawn(block, io);
  drawn.draw_adc_errors(adc_test_key(1));
  EXPECT_EQ(drawn.adc_gain().size(), 0);
  EXPECT_EQ(drawn.adc_offset().size(), 0);
  const MatrixF x = random_input(9, 20, 4);
  TileReadout a, b;
  plain.forward(x, RngKey{}, a);
  drawn.forward(x, RngKey{}, b);
  EXPECT_EQ(a.reads[0], b.reads[0]);
}

TEST(AdcErrors, EachAdcAppliesItsGainOffsetAndBow) {
  const auto block = random_block(20, 12, 1, 5);
  const MatrixF x = random_input(16, 20, 6, -3.0f, 3.0f);
  Tile ideal(block, ideal_io());  // the analog outputs, unclipped
  TileReadout ref;
  ideal.forward(x, RngKey{}, ref);
  IoParams io = linear_io();
  io.adc_offset_std = 0.2;
  io.adc_gain_std = 0.1;
  io.adc_inl = 0.3;
  Tile tile(block, io);
  tile.draw_adc_errors(adc_test_key(2));
  ASSERT_EQ(tile.adc_gain().size(), 12);
  TileReadout out;
  tile.forward(x, RngKey{}, out);
  for (Index b = 0; b < x.rows(); ++b)
    for (Index j = 0; j < 12; ++j) {
      const double v = ref.reads[0](b, j), B = 4.0;
      const double c = std::min(std::max(v, -B), B) / B;
      const double want = std::min(std::max(tile.adc_gain()[j] * v + tile.adc_offset()[j] +
                                                0.3 * (1 - c * c), -B), B);
      EXPECT_NEAR(out.reads[0](b, j), want, 1e-5) << b << " " << j;
    }
  // Every column got its own draw.
  EXPECT_NE(tile.adc_gain()[0], tile.adc_gain()[1]);
  EXPECT_NE(tile.adc_offset()[0], tile.adc_offset()[1]);
}

TEST(AdcErrors, InlAloneIsABowThatVanishesAtFullScale) {
  // A one-row, one-column tile read at v = 0, +-B/2 and +-B: the bow adds inl, 3/4 inl, 0.
  MatrixF w(1, 1);
  w(0, 0) = 1.0f;
  const auto block = pair_block(w);
  IoParams io = linear_io();
  io.adc_inl = 0.5;
  Tile tile(block, io);
  tile.draw_adc_errors(adc_test_key(3));  // no spreads: no draw
  EXPECT_EQ(tile.adc_gain().size(), 0);
  MatrixF x(5, 1);
  x << 0.0f, 2.0f, -2.0f, 4.0f, -4.0f;
  TileReadout out;
  tile.forward(x, RngKey{}, out);
  EXPECT_NEAR(out.reads[0](0, 0), 0.5, 1e-6);
  EXPECT_NEAR(out.reads[0](1, 0), 2.0 + 0.375, 1e-6);
  EXPECT_NEAR(out.reads[0](2, 0), -2.0 + 0.375, 1e-6);
  EXPECT_NEAR(out.reads[0](3, 0), 4.0, 1e-6);
  EXPECT_NEAR(out.reads[0](4, 0), -4.0, 1e-6);
}

TEST(AdcErrors, ColumnsSharingAnAdcShareItsErrors) {
  const auto block = random_block(8, 10, 1, 7);
  IoParams io = linear_io();
  io.adc_offset_std = 0.1;
  io.adc_gain_std = 0.1;
  io.adc_columns = 4;  // ADCs serve columns 0-3, 4-7, 8-9
  Tile tile(block, io);
  tile.draw_adc_errors(adc_test_key(4));
  for (Index j = 0; j < 10; ++j) {
    EXPECT_EQ(tile.adc_gain()[j], tile.adc_gain()[j / 4 * 4]) << j;
    EXPECT_EQ(tile.adc_offset()[j], tile.adc_offset()[j / 4 * 4]) << j;
  }
  EXPECT_NE(tile.adc_gain()[0], tile.adc_gain()[4]);
  EXPECT_NE(tile.adc_gain()[4], tile.adc_gain()[8]);
  // The draws are a function of the key: the same key gives the same ADCs.
  Tile again(block, io);
  again.draw_adc_errors(adc_test_key(4));
  EXPECT_EQ(again.adc_gain(), tile.adc_gain());
  again.draw_adc_errors(adc_test_key(5));
  EXPECT_NE(again.adc_gain(), tile.adc_gain());
}

TEST(AdcErrors, DrawsHaveTheGivenSpreads) {
  // N = 8192 ADCs (one column each). The sample mean of N normal draws has std sigma/sqrt(N),
  // the sample std has std ~ sigma/sqrt(2N); 4 of those is a bound a correct draw breaks with
  // probability ~6e-5.
  const Index n = 8192;
  const auto block = random_block(2, n, 1, 8);
  IoParams io = linear_io();
  io.adc_offset_std = 0.1;
  io.adc_gain_std = 0.05;
  Tile tile(block, io);
  tile.draw_adc_errors(adc_test_key(6));
  const Eigen::ArrayXd off = tile.adc_offset().cast<double>().array();
  const Eigen::ArrayXd lg = tile.adc_gain().cast<double>().array().log();
  auto stdev = [](const Eigen::ArrayXd& a) {
    return std::sqrt((a - a.mean()).square().sum() / double(a.size() - 1));
  };
  EXPECT_NEAR(off.mean(), 0.0, 4 * 0.1 / std::sqrt(double(n)));
  EXPECT_NEAR(stdev(off), 0.1, 4 * 0.1 / std::sqrt(2.0 * n));
  EXPECT_NEAR(lg.mean(), 0.0, 4 * 0.05 / std::sqrt(double(n)));
  EXPECT_NEAR(stdev(lg), 0.05, 4 * 0.05 / std::sqrt(2.0 * n));
  // Gain and offset are independent draws (correlation within 4/sqrt(N)).
  const double corr = ((off - off.mean()) * (lg - lg.mean())).sum() / (n - 1) /
                      (stdev(off) * stdev(lg));
  EXPECT_LT(std::abs(corr), 4 / std::sqrt(double(n)));
}

TEST(AdcErrors, BadSettingsNameTheField) {
  auto expect_bad = [](void (*edit)(IoParams&), const std::string& needle) {
    IoParams io;
    edit(io);
    try {
      io.validate();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_bad([](IoParams& io) { io.adc_offset_std = -0.1; }, "adc_offset_std = -0.1");
  expect_bad([](IoParams& io) { io.adc_gain_std = std::nan(""); }, "adc_gain_std = nan");
  expect_bad([](IoParams& io) { io.adc_inl = INFINITY; }, "adc_inl = inf");
  expect_bad([](IoParams& io) { io.adc_columns = 0; }, "adc_columns = 0");
  expect_bad(
      [](IoParams& io) {
        io.p_out = 0;
        io.out_bound = INFINITY;
        io.adc_inl = 0.1;
      },
      "needs a finite out_bound");
}

TEST(AdcErrors, IdentityInlTableGivesTheIdealAdcBitForBit) {
  // The default converters with their noise: the table path must not change a single bit.
  const auto block = random_block(24, 16, 1, 11);
  const MatrixF x = random_input(20, 24, 12);
  IoParams io;
  Tile plain(block, io);
  io.adc_inl_table = table_of("identity", 7, [](double v) { return v; });
  Tile table(block, io);
  TileReadout a, b;
  plain.forward(x, RngKey{}, a);
  table.forward(x, RngKey{}, b);
  EXPECT_EQ(a.reads[0], b.reads[0]);
}

TEST(AdcErrors, BowedInlTableIsTheParametricBow) {
  // adc_inl = 0.3 on full scale B = 4 is the transfer actual = x + (0.3 / 4)(1 - x^2): a table
  // of it, 2001 points, interpolates the parabola to within 0.3 h^2 / 4 = 7.5e-8 (h = 1e-3).
  const auto block = random_block(20, 12, 1, 13);
  const MatrixF x = random_input(64, 20, 14, -3.0f, 3.0f);
  const double inl = 0.3, B = 4.0;
  const std::string path =
      table_of("bow", 2000, [&](double v) { return v + inl / B * (1 - v * v); });
  IoParams bow = linear_io();
  bow.adc_inl = inl;
  IoParams table = linear_io();
  table.adc_inl_table = path;
  TileReadout a, b;
  Tile(block, bow).forward(x, RngKey{}, a);
  Tile(block, table).forward(x, RngKey{}, b);
  const float diff = (a.reads[0] - b.reads[0]).cwiseAbs().maxCoeff();
  EXPECT_LT(diff, 2e-6f);
  // Ideal reads differ from these by up to inl: the comparison can fail.
  TileReadout ideal;
  Tile(block, linear_io()).forward(x, RngKey{}, ideal);
  EXPECT_GT((ideal.reads[0] - b.reads[0]).cwiseAbs().maxCoeff(), 0.1f);
  // With 8-bit quantisation (no noise) the codes agree except where the tiny interpolation
  // error crosses a decision threshold: at most one step apart, and rarely.
  IoParams q_bow = bow, q_table = table;
  q_bow.p_out = q_table.p_out = 8;
  const MatrixF xq = random_input(512, 20, 15, -3.0f, 3.0f);
  Tile(block, q_bow).forward(xq, RngKey{}, a);
  Tile(block, q_table).forward(xq, RngKey{}, b);
  const float step = float(B / 127);
  const MatrixF d = (a.reads[0] - b.reads[0]).cwiseAbs();
  EXPECT_LE(d.maxCoeff(), step * 1.001f);
  EXPECT_LE((d.array() > 0).count(), a.reads[0].size() / 1000);
}

TEST(AdcErrors, InlTableIsInUnitsOfFullScale) {
  // Three points: deviation 0 at -1, +0.1 at 0, 0 at 1 (a tent): read at 0, B/2, -B/2, B with
  // B = 4 the ADC adds 0.4, 0.2, 0.2, 0.
  MatrixF w(1, 1);
  w(0, 0) = 1.0f;
  IoParams io = linear_io();
  io.adc_inl_table = write_table("tent", "ideal,actual\n-1,-1\n0,0.1\n1,1\n");
  Tile tile(pair_block(w), io);
  MatrixF x(4, 1);
  x << 0.0f, 2.0f, -2.0f, 4.0f;
  TileReadout out;
  tile.forward(x, RngKey{}, out);
  EXPECT_NEAR(out.reads[0](0, 0), 0.4, 1e-6);
  EXPECT_NEAR(out.reads[0](1, 0), 2.2, 1e-6);
  EXPECT_NEAR(out.reads[0](2, 0), -1.8, 1e-6);
  EXPECT_NEAR(out.reads[0](3, 0), 4.0, 1e-6);
}

TEST(AdcErrors, BadInlTablesNameTheFileLineAndValue) {
  auto expect_bad = [](const std::string& path, const std::string& needle) {
    IoParams io;
    io.adc_inl_table = path;
    try {
      io.validate();
      ADD_FAILURE() << "no error for " << needle;
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_bad(::testing::TempDir() + "no_such_table.csv", "cannot open");
  expect_bad(write_table("header", "x,y\n-1,-1\n1,1\n"), "expected 'ideal,actual'");
  expect_bad(write_table("number", "ideal,actual\n-1,-1\n0,abc\n1,1\n"),
             ":3: actual = 'abc' is not a finite number");
  expect_bad(write_table("order", "ideal,actual\n-1,-1\n0.5,0.5\n0.5,0.6\n1,1\n"),
             ":4: ideal = 0.5: must be strictly increasing");
  expect_bad(write_table("cover", "ideal,actual\n-1,-1\n0.9,0.9\n"), "cover the full scale");
  expect_bad(write_table("fields", "ideal,actual\n-1,-1,3\n1,1\n"), ":2: 3 fields");
  expect_bad(write_table("large", "ideal,actual\n-1,-1\n1,3\n"), ":3: actual = 3");
  expect_bad(write_table("empty", "# nothing\n"), "empty");
  IoParams both;
  both.adc_inl = 0.1;
  both.adc_inl_table = write_table("ok", "ideal,actual\n-1,-1\n1,1\n");
  EXPECT_THROW(both.validate(), std::invalid_argument);
}
