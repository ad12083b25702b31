#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

#include "core/fastmath.h"
#include "core/rng.h"

using namespace pcmsim::core;

// Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
TEST(Philox, KnownAnswers) {
  auto zero = philox4x32(0, {0, 0, 0, 0});
  EXPECT_EQ(zero[0], 0x6627e8d5u);
  EXPECT_EQ(zero[1], 0xe169c58du);
  EXPECT_EQ(zero[2], 0xbc57ac4cu);
  EXPECT_EQ(zero[3], 0x9b00dbd8u);
  auto ones = philox4x32(0xffffffffffffffffull, {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu});
  EXPECT_EQ(ones[0], 0x408f276du);
  EXPECT_EQ(ones[1], 0x41c83b0eu);
  EXPECT_EQ(ones[2], 0xa20bc7c6u);
  EXPECT_EQ(ones[3], 0x6d5451fdu);
  auto pi = philox4x32(0x299f31d0a4093822ull, {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u});
  EXPECT_EQ(pi[0], 0xd16cfe09u);
  EXPECT_EQ(pi[1], 0x94fdccebu);
  EXPECT_EQ(pi[2], 0x5001e420u);
  EXPECT_EQ(pi[3], 0x24126ea1u);
}

// Any split of an index range gives the same values as one call: the property behind
// "same seed, same bits for any thread count".
TEST(Rng, ValuesDependOnlyOnIndex) {
  RngKey key{42, Stage::programming, 3, 1, 2, 0};
  std::vector<float> whole(1001);
  fill_normal(key, 5, 17, whole.size(), whole.data());
  for (std::size_t split : {1u, 2u, 3u, 4u, 5u, 333u, 1000u}) {
    std::vector<float> parts(whole.size());
    fill_normal(key, 5, 17, split, parts.data());
    fill_normal(key, 5, 17 + split, whole.size() - split, parts.data() + split);
    for (std::size_t i = 0; i < whole.size(); ++i) ASSERT_EQ(whole[i], parts[i]) << i;
  }
}

TEST(Rng, KeysAndDrawsAreIndependentStreams) {
  RngKey a{1, Stage::programming, 0, 0, 0, 0};
  std::vector<float> x(64), y(64), z(64);
  fill_normal(a, 0, 0, 64, x.data());
  fill_normal(a.with_trial(1), 0, 0, 64, y.data());
  fill_normal(a, 1, 0, 64, z.data());
  EXPECT_NE(x, y);
  EXPECT_NE(x, z);
  EXPECT_NE(a.philox_key(), a.with_layer(1).philox_key());
  EXPECT_NE(a.with_layer(1).philox_key(), a.with_slice(1).philox_key());
}

// Moments of 2^20 normals: the standard error of the mean is 1/sqrt(N) ~ 0.001, of the
// variance sqrt(2/N) ~ 0.0014; 5 sigma bounds keep the false-failure rate negligible.
TEST(Rng, NormalMoments) {
  const std::size_t n = 1u << 20;
  std::vector<float> v(n);
  fill_normal(RngKey{7}, 0, 0, n, v.data());
  double sum = 0, sum2 = 0, sum4 = 0;
  std::size_t beyond_2sigma = 0;
  for (float x : v) {
    sum += x;
    sum2 += double(x) * x;
    sum4 += double(x) * x * x * x;
    beyond_2sigma += std::abs(x) > 2.0f;
  }
  const double mean = sum / n, var = sum2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 5.0 / std::sqrt(double(n)));
  EXPECT_NEAR(var, 1.0, 5.0 * std::sqrt(2.0 / n));
  // E[x^4] = 3, Var[x^4] = 105 - 9 = 96.
  EXPECT_NEAR(sum4 / n, 3.0, 5.0 * std::sqrt(96.0 / n));
  // P(|x| > 2) = 0.0455003; binomial standard error.
  const double p = 0.04550026;
  EXPECT_NEAR(double(beyond_2sigma) / n, p, 5.0 * std::sqrt(p * (1 - p) / n));
}

TEST(Rng, UniformMoments) {
  const std::size_t n = 1u << 20;
  std::vector<float> v(n);
  fill_uniform(RngKey{9}, 0, 0, n, v.data());
  double sum = 0, sum2 = 0;
  for (float x : v) {
    ASSERT_GE(x, 0.0f);
    ASSERT_LT(x, 1.0f);
    sum += x;
    sum2 += double(x) * x;
  }
  // Var[U] = 1/12; Var[U^2] = 1/5 - 1/9 = 4/45.
  EXPECT_NEAR(sum / n, 0.5, 5.0 * std::sqrt(1.0 / 12 / n));
  EXPECT_NEAR(sum2 / n, 1.0 / 3, 5.0 * std::sqrt(4.0 / 45 / n));
}

// The batched generator (vectorised Philox + Box-Muller) against the definition, one element at
// a time: block i/4 of Philox4x32-10, lanes (0,1) and (2,3) as Box-Muller pairs of 24-bit
// uniforms. Covers unaligned starts and tails around the vector group sizes (32, 64).
TEST(Rng, FillNormalMatchesScalarDefinition) {
  const RngKey key{2024, Stage::tile_forward, 3, 5, 1, 77};
  const std::uint32_t draw = 9;
  auto scalar = [&](std::uint64_t i) {
    const std::uint64_t block = i / 4;
    const auto x = philox4x32(key.philox_key(), {static_cast<std::uint32_t>(block),
                                                 static_cast<std::uint32_t>(block >> 32), draw, 0});
    const int pair = static_cast<int>(i % 4) / 2;
    const float u1 = static_cast<float>((x[2 * pair] >> 8) + 1u) * 0x1.0p-24f;
    const float u2 = static_cast<float>(x[2 * pair + 1] >> 8) * 0x1.0p-24f;
    const float r = std::sqrt(-2.0f * fast_log(u1));
    float s, c;
    fast_sincos_2pi(u2, s, c);
    return (i % 2 == 0) ? r * c : r * s;
  };
  for (std::uint64_t first : {0ull, 1ull, 3ull, 31ull, 63ull, 64ull, 65ull, 4294967290ull * 4}) {
    for (std::size_t n : {1u, 5u, 33u, 64u, 129u, 1000u}) {
      std::vector<float> batch(n);
      fill_normal(key, draw, first, n, batch.data());
      for (std::size_t k = 0; k < n; ++k)
        ASSERT_EQ(batch[k], scalar(first + k)) << "first " << first << " n " << n << " k " << k;
    }
  }
}
