#include <gtest/gtest.h>

#include <cmath>

#include "core/fastmath.h"

using namespace pcmsim::core;

TEST(FastMath, LogMatchesStd) {
  for (float x = 1e-7f; x < 1e7f; x *= 1.0137f)
    ASSERT_NEAR(fast_log(x), std::log(x), 2e-7 * std::max(1.0, std::abs(std::log(double(x))))) << x;
}

TEST(FastMath, ExpMatchesStdAndIsExactAtZero) {
  EXPECT_EQ(fast_exp(0.0f), 1.0f);
  EXPECT_EQ(fast_exp(-0.0f), 1.0f);
  for (float x = -80.f; x < 80.f; x += 0.0173f)
    ASSERT_NEAR(fast_exp(x) / std::exp(double(x)), 1.0, 4e-7) << x;
}

TEST(FastMath, SinCosMatchStd) {
  for (float u = 0; u < 1.0f; u += 1.0f / 4099) {
    float s, c;
    fast_sincos_2pi(u, s, c);
    ASSERT_NEAR(s, std::sin(2 * M_PI * u), 3e-7) << u;
    ASSERT_NEAR(c, std::cos(2 * M_PI * u), 3e-7) << u;
  }
}
