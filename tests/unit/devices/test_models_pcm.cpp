// PcmModel: parameter validation, exact limits (zero noise, t = 0, nu = 0), the per-device
// formulas against a double-precision re-computation from the same random numbers, and the
// split invariance that makes results independent of the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"
#include "devices/pcm_model.h"
#include "tests/unit/devices/devices_test_util.h"

using namespace pcmsim;
using namespace pcmsim::devices;

using test::expect_invalid;
using test::spanning_targets;
using test::State;

namespace {

const core::RngKey kProgKey{11, core::Stage::programming, 2, 3, 0, 0};
const core::RngKey kSnapKey{11, core::Stage::snapshot, 2, 3, 0, 1};

}  // namespace

TEST(PcmParams, DefaultsArePhysicsMd) {
  PcmParams p;
  EXPECT_EQ(p.g_max, 25e-6);
  EXPECT_EQ(p.t0, 20.0);
  EXPECT_EQ(p.t_read, 250e-9);
  EXPECT_EQ(p.prog_noise_scale, 1.0);
  EXPECT_EQ(p.drift_scale, 1.0);
  EXPECT_EQ(p.read_noise_scale, 1.0);
  EXPECT_EQ(p.read_noise_reference, ReadNoiseReference::target);
  EXPECT_NO_THROW(p.validate());
}

TEST(PcmParams, ValidateNamesEachBadParameter) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto check = [](auto mutate, const char* name, const char* value) {
    PcmParams p;
    mutate(p);
    expect_invalid([&] { p.validate(); }, {"[devices::PcmParams]", name, value});
    expect_invalid([&] { PcmModel m(p); }, {name});
  };
  check([](PcmParams& p) { p.g_max = -1e-6; }, "g_max_uS", "= -1");
  check([](PcmParams& p) { p.g_max = 0; }, "g_max_uS", "= 0");
  check([&](PcmParams& p) { p.g_max = nan; }, "g_max_uS", "nan");
  check([](PcmParams& p) { p.t0 = 0; }, "t0", "= 0");
  check([](PcmParams& p) { p.t0 = -20; }, "t0", "= -20");
  check([&](PcmParams& p) { p.t_read = inf; }, "t_read", "inf");
  check([](PcmParams& p) { p.t_read = -1e-9; }, "t_read", "= -1e-09");
  check([](PcmParams& p) { p.prog_noise_scale = -0.5; }, "prog_noise_scale", "= -0.5");
  check([&](PcmParams& p) { p.drift_scale = nan; }, "drift_scale", "nan");
  check([](PcmParams& p) { p.read_noise_scale = -2; }, "read_noise_scale", "= -2");
  check([](PcmParams& p) { p.read_noise_reference = static_cast<ReadNoiseReference>(7); },
        "read_noise_reference", "= 7");
  expect_invalid([] { read_noise_reference_from_string("median"); },
                 {"read_noise_reference", "'median'", "target", "programmed"});
  EXPECT_EQ(read_noise_reference_from_string("programmed"), ReadNoiseReference::programmed);
  EXPECT_EQ(to_string(ReadNoiseReference::target), "target");
}

TEST(PcmModel, RejectsTargetsOutsideRangeAndBadTimes) {
  PcmModel m;
  State s(8);
  std::vector<float> g(8, 10e-6f);
  g[5] = 26e-6f;
  expect_invalid([&] { m.program(g.data(), 8, kProgKey, 100, s.view()); },
                 {"g_target[105]", "= 25.99", "[0, 25]"});
  g[5] = -1e-7f;
  expect_invalid([&] { m.program(g.data(), 8, kProgKey, 0, s.view()); }, {"g_target[5]", "-0.1"});
  g[5] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid([&] { m.program(g.data(), 8, kProgKey, 0, s.view()); }, {"g_target[5]", "nan"});
  g[5] = 25e-6f;  // g_max itself is allowed
  EXPECT_NO_THROW(m.program(g.data(), 8, kProgKey, 0, s.view()));
  std::vector<float> out(8);
  expect_invalid([&] { m.read(s.cview(), 8, -1.0, kSnapKey, 0, out.data()); },
                 {"t_inference", "= -1"});
  expect_invalid(
      [&] { m.read(s.cview(), 8, std::numeric_limits<double>::quiet_NaN(), kSnapKey, 0, out.data()); },
      {"t_inference", "nan"});
  expect_invalid(
      [&] { m.read(s.cview(), 8, std::numeric_limits<double>::infinity(), kSnapKey, 0, out.data()); },
      {"t_inference", "inf"});
}

TEST(PcmModel, ZeroNoiseScalesGiveExactlyTheTargets) {
  PcmParams p;
  p.prog_noise_scale = p.drift_scale = p.read_noise_scale = 0;
  PcmModel m(p);
  const std::size_t n = 3001;
  const auto g = spanning_targets(n, p.g_max);
  State s(n);
  m.program(g.data(), n, kProgKey, 0, s.view());
  std::vector<float> out(n);
  for (double t : {0.0, 1.0, 3600.0, 86400.0, 31536000.0, 1e12}) {
    m.read(s.cview(), n, t, kSnapKey, 0, out.data());
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(out[i], g[i]) << "t = " << t << ", i = " << i;
  }
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(s.g_prog[i], g[i]);
    ASSERT_EQ(s.nu[i], 0.0f);
    ASSERT_EQ(s.q[i], 0.0f);
  }
}

TEST(PcmModel, TimeZeroIsTheProgrammedStateExactly) {
  PcmModel m;
  const std::size_t n = 2000;
  const auto g = spanning_targets(n, 25e-6);
  State s(n);
  m.program(g.data(), n, kProgKey, 0, s.view());
  std::vector<float> out(n, -1.0f);
  m.read(s.cview(), n, 0.0, kSnapKey, 0, out.data());
  EXPECT_EQ(std::memcmp(out.data(), s.g_prog.data(), n * sizeof(float)), 0);
  // ... and programming noise is really on: g_prog differs from the targets.
  std::size_t differ = 0;
  for (std::size_t i = 0; i < n; ++i) differ += s.g_prog[i] != g[i];
  EXPECT_GT(differ, n * 9 / 10);
}

TEST(PcmModel, ZeroDriftExponentIsTimeInvariant) {
  PcmParams p;
  p.drift_scale = 0;       // nu = 0
  p.read_noise_scale = 0;  // and no read noise: nothing left that depends on time
  PcmModel m(p);
  const std::size_t n = 1500;
  const auto g = spanning_targets(n, p.g_max);
  State s(n);
  m.program(g.data(), n, kProgKey, 0, s.view());
  std::vector<float> out(n);
  for (double t : {1.0, 3600.0, 31536000.0, 1e15}) {
    m.read(s.cview(), n, t, kSnapKey, 0, out.data());
    EXPECT_EQ(std::memcmp(out.data(), s.g_prog.data(), n * sizeof(float)), 0) << "t = " << t;
  }
}

// The model's float loops against docs/physics.md §2 evaluated in double from the same variates.
TEST(PcmModel, PerDeviceFormulasMatchDoublePrecision) {
  for (auto ref : {ReadNoiseReference::target, ReadNoiseReference::programmed}) {
    PcmParams p;
    p.g_max = 40e-6;
    p.prog_noise_scale = 1.5;
    p.drift_scale = 0.7;
    p.read_noise_scale = 1.3;
    p.read_noise_reference = ref;
    PcmModel m(p);
    const std::size_t n = 4099;
    const std::uint64_t first = 77;
    const auto g = spanning_targets(n, p.g_max);
    State s(n);
    m.program(g.data(), n, kProgKey, first, s.view());
    std::vector<float> xi_p(n), xi_nu(n), xi_r(n), out(n);
    core::fill_normal(kProgKey, kDrawProgramming, first, n, xi_p.data());
    core::fill_normal(kProgKey, kDrawDriftExponent, first, n, xi_nu.data());
    core::fill_normal(kSnapKey, kDrawReadNoise, first, n, xi_r.data());
    const double t = 86400.0;
    m.read(s.cview(), n, t, kSnapKey, first, out.data());
    for (std::size_t i = 0; i < n; ++i) {
      const double x = g[i] / p.g_max;
      const double gp = std::max(0.0, g[i] + 1.5 * pcm_prog_noise_std(x, p.g_max) * xi_p[i]);
      ASSERT_NEAR(s.g_prog[i], gp, 2e-6 * p.g_max) << i;
      const double nu = 0.7 * std::fabs(pcm_nu_mean(x) + pcm_nu_std(x) * xi_nu[i]);
      ASSERT_NEAR(s.nu[i], nu, 1e-6) << i;
      const double xq = ref == ReadNoiseReference::target ? x : s.g_prog[i] / p.g_max;
      const double q = 1.3 * pcm_read_noise_q(xq);
      ASSERT_NEAR(s.q[i], q, 2e-6 * q) << i;
      // Snapshot from the stored state (its own float rounding is not the point here).
      const double gd = s.g_prog[i] * drift_factor(t, p.t0, s.nu[i]);
      const double expect =
          std::max(0.0, gd + gd * s.q[i] * read_noise_time_factor(t, p.t0, p.t_read) * xi_r[i]);
      ASSERT_NEAR(out[i], expect, 1e-5 * p.g_max) << i;
    }
  }
}

TEST(PcmModel, AnySplitOfABlockGivesTheSameBits) {
  PcmModel m;
  const std::size_t n = 5003;
  const auto g = spanning_targets(n, 25e-6);
  State whole(n);
  m.program(g.data(), n, kProgKey, 9, whole.view());
  std::vector<float> out_whole(n);
  m.read(whole.cview(), n, 3600.0, kSnapKey, 9, out_whole.data());
  for (std::size_t split : {1u, 3u, 4u, 1023u, 1024u, 1025u, 4000u}) {
    State parts(n);
    m.program(g.data(), split, kProgKey, 9, parts.view());
    m.program(g.data() + split, n - split, kProgKey, 9 + split,
              {parts.g_prog.data() + split, parts.nu.data() + split, parts.q.data() + split});
    ASSERT_EQ(std::memcmp(parts.g_prog.data(), whole.g_prog.data(), n * 4), 0) << split;
    ASSERT_EQ(std::memcmp(parts.nu.data(), whole.nu.data(), n * 4), 0) << split;
    ASSERT_EQ(std::memcmp(parts.q.data(), whole.q.data(), n * 4), 0) << split;
    std::vector<float> out(n);
    m.read(whole.cview(), split, 3600.0, kSnapKey, 9, out.data());
    m.read({whole.g_prog.data() + split, whole.nu.data() + split, whole.q.data() + split},
           n - split, 3600.0, kSnapKey, 9 + split, out.data() + split);
    ASSERT_EQ(std::memcmp(out.data(), out_whole.data(), n * 4), 0) << split;
  }
}

TEST(PcmModel, SnapshotKeySelectsTheReadNoiseDraw) {
  PcmModel m;
  const std::size_t n = 512;
  const auto g = spanning_targets(n, 25e-6);
  State s(n);
  m.program(g.data(), n, kProgKey, 0, s.view());
  std::vector<float> a(n), b(n), c(n);
  m.read(s.cview(), n, 3600.0, kSnapKey, 0, a.data());
  m.read(s.cview(), n, 3600.0, kSnapKey, 0, b.data());
  m.read(s.cview(), n, 3600.0, kSnapKey.with_sub(2), 0, c.data());
  EXPECT_EQ(a, b);  // same key: same snapshot
  std::size_t differ = 0;
  for (std::size_t i = 0; i < n; ++i) differ += a[i] != c[i] && s.g_prog[i] > 0;
  EXPECT_GT(differ, n * 8 / 10);  // fresh key: fresh read noise on (almost) every device
}

TEST(PcmModel, ConductancesAreNeverNegative) {
  PcmModel m;
  const std::size_t n = 20000;
  std::vector<float> g(n, 0.0f);  // "off" devices: half of them would go negative unclipped
  State s(n);
  m.program(g.data(), n, kProgKey, 0, s.view());
  std::vector<float> out(n);
  m.read(s.cview(), n, 31536000.0, kSnapKey, 0, out.data());
  std::size_t zeros = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_GE(s.g_prog[i], 0.0f);
    ASSERT_GE(out[i], 0.0f);
    zeros += s.g_prog[i] == 0.0f;
  }
  // About half the off devices are clipped at 0 (binomial: 5 sigma = 5*sqrt(n/4) ~ 354).
  EXPECT_NEAR(static_cast<double>(zeros), n / 2.0, 5 * std::sqrt(n / 4.0));
}
