// Statistics of the tile's per-MVM noise against their formulas (docs/physics.md §4): output noise,
// PCM-like and additive read noise, input noise, and unbiased stochastic rounding.
//
// Tolerances: for N independent standard-normal residuals z, the sample mean has std 1/sqrt(N)
// and the sample variance has std sqrt(2/N); every check allows k = 5 of those standard
// deviations (a false failure has probability < 1e-6 per check; seeds are fixed anyway).
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/io_params.h"
#include "core/quantiser.h"
#include "core/tile.h"
#include "tests/unit/core/test_tile_util.h"

using namespace pcmsim::core;
using namespace pcmsim::test;

namespace {

constexpr double kSigmas = 5.0;

RngKey key_of(std::uint64_t seed) {
  RngKey k;
  k.seed = seed;
  k.stage = Stage::tile_forward;
  return k;
}

// Mean and variance of standardised residuals z = (read - exact) / sigma.
struct Moments {
  double mean = 0, var = 0;
  long long n = 0;
};
Moments moments(const std::vector<double>& z) {
  Moments m;
  m.n = static_cast<long long>(z.size());
  for (double v : z) m.mean += v;
  m.mean /= m.n;
  for (double v : z) m.var += (v - m.mean) * (v - m.mean);
  m.var /= (m.n - 1);
  return m;
}
void expect_standard_normal(const std::vector<double>& z, const char* what) {
  const Moments m = moments(z);
  EXPECT_LT(std::fabs(m.mean), kSigmas / std::sqrt(double(m.n))) << what << " mean " << m.mean;
  EXPECT_LT(std::fabs(m.var - 1.0), kSigmas * std::sqrt(2.0 / m.n)) << what << " var " << m.var;
}

// The normalised analog product the noise is added to, in double.
MatrixD exact_normalised(const Tile& tile, const MatrixF& xin) {
  return xin.cast<double>() * tile.group_weights(0).cast<double>();
}

IoParams analog_only() {
  IoParams io = ideal_io();  // converters off, NM none, BM off, no noise
  return io;
}

}  // namespace

TEST(TileNoiseStatistics, OutputNoiseIsGaussianWithTheConfiguredStd) {
  const Index rows = 40, cols = 50, batch = 2000;  // N = 100000 residuals
  const auto block = random_block(rows, cols, 1, 31);
  IoParams io = analog_only();
  io.out_noise = 0.05;
  Tile tile(block, io);
  const MatrixF x = random_input(batch, rows, 32);
  TileReadout out;
  tile.forward(x, key_of(1), out);
  const MatrixD exact = exact_normalised(tile, x);
  std::vector<double> z;
  double corr = 0;  // correlation of neighbouring columns: independent draws
  for (Index b = 0; b < batch; ++b)
    for (Index j = 0; j < cols; ++j) {
      z.push_back((out.reads[0](b, j) - exact(b, j)) / io.out_noise);
      if (j > 0) corr += z[z.size() - 1] * z[z.size() - 2];
    }
  expect_standard_normal(z, "output noise");
  const double pairs = double(batch) * (cols - 1);
  EXPECT_LT(std::fabs(corr / pairs), kSigmas / std::sqrt(pairs));
}

TEST(TileNoiseStatistics, PcmLikeReadNoiseFollowsSqrtSumAbsWX2) {
  const Index rows = 60, cols = 40, batch = 2500;
  const auto block = random_block(rows, cols, 1, 33);
  IoParams io = analog_only();
  io.read_noise = ReadNoise::pcm_like;
  io.w_noise = 0.03;
  Tile tile(block, io);
  const MatrixF x = random_input(batch, rows, 34);
  TileReadout out;
  tile.forward(x, key_of(2), out);
  const MatrixD exact = exact_normalised(tile, x);
  const MatrixD w = tile.group_weights(0).cast<double>();
  std::vector<double> z;
  for (Index b = 0; b < batch; ++b)
    for (Index j = 0; j < cols; ++j) {
      double s2 = 0;
      for (Index i = 0; i < rows; ++i) s2 += std::fabs(w(i, j)) * double(x(b, i)) * x(b, i);
      z.push_back((out.reads[0](b, j) - exact(b, j)) / (io.w_noise * std::sqrt(s2)));
    }
  expect_standard_normal(z, "pcm-like read noise");
  // The other law would not fit: under additive noise the std is w_noise*||x||, larger.
  std::vector<double> wrong;
  for (Index b = 0; b < batch; ++b)
    for (Index j = 0; j < cols; ++j)
      wrong.push_back((out.reads[0](b, j) - exact(b, j)) /
                      (io.w_noise * x.row(b).cast<double>().norm()));
  EXPECT_GT(std::fabs(moments(wrong).var - 1.0), 10 * kSigmas * std::sqrt(2.0 / wrong.size()));
}

TEST(TileNoiseStatistics, AdditiveReadNoiseFollowsTheInputNorm) {
  const Index rows = 30, cols = 40, batch = 2500;
  const auto block = random_block(rows, cols, 2, 35, PlaneReadout::analog);
  IoParams io = analog_only();
  io.read_noise = ReadNoise::additive;
  io.w_noise = 0.02;
  Tile tile(block, io);
  const MatrixF x = random_input(batch, rows, 36);
  TileReadout out;
  tile.forward(x, key_of(3), out);
  const MatrixD exact = exact_normalised(tile, x);
  std::vector<double> z;
  for (Index b = 0; b < batch; ++b) {
    const double sigma = io.w_noise * x.row(b).cast<double>().norm();
    for (Index j = 0; j < cols; ++j) z.push_back((out.reads[0](b, j) - exact(b, j)) / sigma);
  }
  expect_standard_normal(z, "additive read noise");
}

TEST(TileNoiseStatistics, InputNoisePropagatesAsSumOfSquaredWeights) {
  const Index rows = 50, cols = 30, batch = 3000;
  const auto block = random_block(rows, cols, 1, 37);
  IoParams io = analog_only();
  io.in_noise = 0.01;
  Tile tile(block, io);
  const MatrixF x = random_input(batch, rows, 38);
  TileReadout out;
  tile.forward(x, key_of(4), out);
  const MatrixD exact = exact_normalised(tile, x);
  const MatrixD w = tile.group_weights(0).cast<double>();
  std::vector<double> z;
  for (Index j = 0; j < cols; ++j) {
    const double sigma = io.in_noise * w.col(j).norm();  // sqrt(sum_i W_ij^2) * in_noise
    for (Index b = 0; b < batch; ++b) z.push_back((out.reads[0](b, j) - exact(b, j)) / sigma);
  }
  // Outputs of one sample share its input noise, so they are correlated across columns; the
  // variance test still holds per element, but only batch samples are independent: use the
  // per-sample count for the tolerance.
  const Moments m = moments(z);
  EXPECT_LT(std::fabs(m.mean), kSigmas / std::sqrt(double(batch)));
  EXPECT_LT(std::fabs(m.var - 1.0), kSigmas * std::sqrt(2.0 / batch));
}

TEST(TileNoiseStatistics, StochasticRoundingIsUnbiased) {
  // One weight of 1 (G+ = g_max): the output equals the input, so the ADC sees a fixed value
  // between two levels. Stochastic rounding must average to it; nearest rounding must not.
  ConductanceBlock block;
  block.g_max = 25e-6;
  ConductancePlane p;
  p.g_plus = MatrixF::Constant(1, 1, 25e-6f);
  p.g_minus = MatrixF::Zero(1, 1);
  block.planes.push_back(p);
  block.weight_scale = VectorD::Constant(1, 25e-6);
  IoParams io = analog_only();
  io.p_out = 4;
  io.out_bound = 1.0;  // step 2/14 = 0.142857
  io.rounding = Rounding::stochastic;
  Tile tile(block, io);
  const Index n = 200000;
  const float v = 0.3f;  // levels 0.2857 and 0.4286: rounds up with probability 0.1
  const MatrixF x = MatrixF::Constant(n, 1, v);
  TileReadout out;
  tile.forward(x, key_of(5), out);
  double mean = 0;
  for (Index b = 0; b < n; ++b) mean += out.reads[0](b, 0);
  mean /= n;
  const double step = QuantiserSpec{4, 1.0}.step();
  const double lo = std::floor(v / step) * step, frac = (v - lo) / step;
  const double sd = step * std::sqrt(frac * (1 - frac));  // Bernoulli(frac) times the step
  EXPECT_LT(std::fabs(mean - v), kSigmas * sd / std::sqrt(double(n))) << mean;
  io.rounding = Rounding::nearest;
  Tile(block, io).forward(x, key_of(5), out);
  EXPECT_GT(std::fabs(out.reads[0](0, 0) - v), 0.01);  // nearest is biased here

  // The DAC: abs-max off, static range 1, p_in = 3 (step 1/3): input 0.1 averages to 0.1.
  IoParams in = analog_only();
  in.p_in = 3;
  in.in_bound = 1.0;
  in.rounding = Rounding::stochastic;
  Tile dac_tile(block, in);
  const MatrixF xi = MatrixF::Constant(n, 1, 0.1f);
  dac_tile.forward(xi, key_of(6), out);
  double m2 = 0;
  for (Index b = 0; b < n; ++b) m2 += out.reads[0](b, 0);
  m2 /= n;
  const double s3 = 1.0 / 3.0, f3 = 0.1 / s3;
  EXPECT_LT(std::fabs(m2 - 0.1), kSigmas * s3 * std::sqrt(f3 * (1 - f3)) / std::sqrt(double(n)));
}
