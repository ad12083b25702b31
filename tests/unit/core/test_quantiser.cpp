#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <vector>

#include "core/quantiser.h"

using namespace pcmsim::core;

// step = 2*bound/(2^p - 2): for bound = 0.125*(2^p-2) the step is exactly 0.25, so every level
// and every tie is exactly representable and the quantiser can be checked bit for bit.
static QuantiserSpec exact_spec(int p) { return {p, 0.125 * double((1 << p) - 2)}; }

TEST(Quantiser, LevelsStepAndTopLevelAreThePhysicsFormula) {
  for (int p : {2, 3, 4, 8, 12, 16}) {
    const QuantiserSpec q{p, 10.0};
    EXPECT_EQ(q.max_level(), (1 << (p - 1)) - 1);
    EXPECT_DOUBLE_EQ(q.step(), 20.0 / double((1 << p) - 2));
    EXPECT_NEAR(q.max_level() * q.step(), 10.0, 1e-12);  // the top level is the bound
  }
  EXPECT_EQ((QuantiserSpec{0, 1.0}.max_level()), 0);
  EXPECT_EQ((QuantiserSpec{0, 1.0}.step()), 0.0);
}

TEST(Quantiser, LevelsAreFixedPointsAndTiesGoAwayFromZero) {
  for (int p : {2, 3, 5, 8}) {
    const QuantiserSpec q = exact_spec(p);
    const int kmax = q.max_level();
    for (int k = -kmax; k <= kmax; ++k) {
      const double level = k * 0.25;
      EXPECT_EQ(quantise_nearest(q, level), level);
      float f = static_cast<float>(level), out;
      quantise_nearest(q, &f, &out, 1);
      EXPECT_EQ(out, static_cast<float>(level));
    }
    for (int k = 0; k < kmax; ++k) {
      const double tie = (k + 0.5) * 0.25;
      EXPECT_EQ(quantise_nearest(q, tie), (k + 1) * 0.25) << "p=" << p << " k=" << k;
      EXPECT_EQ(quantise_nearest(q, -tie), -(k + 1) * 0.25);
      const float in[2] = {float(tie), float(-tie)};
      float out[2];
      quantise_nearest(q, in, out, 2);
      EXPECT_EQ(out[0], float((k + 1) * 0.25));
      EXPECT_EQ(out[1], float(-(k + 1) * 0.25));
      // Just below a tie rounds towards zero.
      EXPECT_EQ(quantise_nearest(q, std::nextafter(tie, 0.0)), k * 0.25);
    }
  }
}

TEST(Quantiser, ClipsExactlyAtTheBound) {
  const QuantiserSpec q{8, 10.0};
  EXPECT_DOUBLE_EQ(quantise_nearest(q, 1e30), 127 * q.step());
  EXPECT_DOUBLE_EQ(quantise_nearest(q, -11.0), -127 * q.step());
  EXPECT_DOUBLE_EQ(quantise_nearest(q, 10.0), 127 * q.step());
  const QuantiserSpec off{0, 2.5};
  EXPECT_EQ(quantise_nearest(off, 7.0), 2.5);
  EXPECT_EQ(quantise_nearest(off, -7.0), -2.5);
  EXPECT_EQ(quantise_nearest(off, 1.2345), 1.2345);  // off: no rounding inside the range
  const float in[4] = {3e38f, -3e38f, 1.2345f, -2.5f};
  float out[4];
  quantise_nearest(off, in, out, 4);
  EXPECT_EQ(out[0], 2.5f);
  EXPECT_EQ(out[1], -2.5f);
  EXPECT_EQ(out[2], 1.2345f);
  EXPECT_EQ(out[3], -2.5f);
  const QuantiserSpec unbounded{0, INFINITY};
  EXPECT_EQ(quantise_nearest(unbounded, 1e300), 1e300);
}

TEST(Quantiser, HasExactly2PowPMinus1DistinctLevels) {
  for (int p : {2, 3, 4, 6}) {
    const QuantiserSpec q{p, 1.0};
    std::vector<float> in(20001), out(20001);
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = -1.5f + 3.0f * float(i) / 20000.0f;
    quantise_nearest(q, in.data(), out.data(), in.size());
    std::set<float> levels(out.begin(), out.end());
    EXPECT_EQ(levels.size(), std::size_t((1 << p) - 1)) << "p=" << p;
  }
}

TEST(Quantiser, FloatArrayMatchesScalarDoubleOnRandomValues) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-12.0f, 12.0f);
  for (int p : {2, 4, 8, 13}) {
    const QuantiserSpec q = exact_spec(p);  // power-of-two step: float and double agree exactly
    std::vector<float> in(1003), out(1003);
    for (auto& v : in) v = u(gen) * float(q.bound) / 10.0f;
    quantise_nearest(q, in.data(), out.data(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i)
      ASSERT_EQ(double(out[i]), quantise_nearest(q, double(in[i]))) << in[i];
    std::vector<std::int32_t> k(in.size());
    quantise_levels_nearest(q, in.data(), k.data(), in.size());
    for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(k[i] * 0.25, double(out[i]));
  }
}

TEST(Quantiser, StochasticRoundsToAnAdjacentLevel) {
  const QuantiserSpec q = exact_spec(4);  // step 0.25, kmax 7
  const float in[5] = {0.3f, -0.3f, 0.25f, 5.0f, -0.1f};
  const float u_lo[5] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  const float u_hi[5] = {0.999f, 0.999f, 0.999f, 0.999f, 0.999f};
  float lo[5], hi[5];
  quantise_stochastic(q, in, u_lo, lo, 5);
  quantise_stochastic(q, in, u_hi, hi, 5);
  EXPECT_EQ(lo[0], 0.25f);  EXPECT_EQ(hi[0], 0.5f);
  EXPECT_EQ(lo[1], -0.5f);  EXPECT_EQ(hi[1], -0.25f);
  EXPECT_EQ(lo[2], 0.25f);  EXPECT_EQ(hi[2], 0.25f);  // a level stays put
  EXPECT_EQ(lo[3], 1.75f);  EXPECT_EQ(hi[3], 1.75f);  // clipped to the top level
  EXPECT_EQ(lo[4], -0.25f); EXPECT_EQ(hi[4], 0.0f);
  EXPECT_EQ(quantise_stochastic(q, 0.3, 0.0), 0.25);
  EXPECT_EQ(quantise_stochastic(q, 0.3, 0.999), 0.5);
  // 0.3 = 0.25 + 0.2*step: rounds up iff u >= 0.8.
  EXPECT_EQ(quantise_stochastic(q, 0.3, 0.79), 0.25);
  EXPECT_EQ(quantise_stochastic(q, 0.3, 0.81), 0.5);
}

TEST(Quantiser, ValidateRejectsBadSpecs) {
  EXPECT_THROW((QuantiserSpec{1, 1.0}.validate("t", "p")), std::invalid_argument);
  EXPECT_THROW((QuantiserSpec{17, 1.0}.validate("t", "p")), std::invalid_argument);
  EXPECT_THROW((QuantiserSpec{-1, 1.0}.validate("t", "p")), std::invalid_argument);
  EXPECT_THROW((QuantiserSpec{8, 0.0}.validate("t", "p")), std::invalid_argument);
  EXPECT_THROW((QuantiserSpec{8, NAN}.validate("t", "p")), std::invalid_argument);
  EXPECT_THROW((QuantiserSpec{8, INFINITY}.validate("t", "p")), std::invalid_argument);
  EXPECT_NO_THROW((QuantiserSpec{0, INFINITY}.validate("t", "p")));
  EXPECT_NO_THROW((QuantiserSpec{16, 3.0}.validate("t", "p")));
}

TEST(Quantiser, DividedEqualsDivideThenQuantiseBitForBit) {
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> u(-5.0f, 5.0f);
  std::vector<float> in(777), divided(777), a(777), b(777);
  for (auto& v : in) v = u(gen);
  for (float divisor : {0.37f, 1.0f, 3.9f}) {
    for (int p : {0, 2, 8, 16}) {
      const QuantiserSpec q{p, p == 0 ? 2.0 : 1.0};
      for (std::size_t i = 0; i < in.size(); ++i) divided[i] = in[i] / divisor;
      quantise_nearest(q, divided.data(), a.data(), in.size());
      quantise_nearest_divided(q, in.data(), divisor, b.data(), in.size());
      for (std::size_t i = 0; i < in.size(); ++i) ASSERT_EQ(a[i], b[i]) << p << " " << in[i];
    }
  }
}
