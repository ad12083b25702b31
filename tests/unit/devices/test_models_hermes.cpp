// HermesModel: the characterised defaults, parameter validation, the published fits at chosen
// points, the per-device formulas against a double-precision re-computation from the same random
// numbers, split invariance, and a Monte Carlo check of the programming-noise std.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "devices/device_factory.h"
#include "devices/hermes_model.h"
#include "devices/pcm_model.h"
#include "tests/unit/devices/devices_test_util.h"

using namespace pcmsim;
using namespace pcmsim::devices;

using test::expect_invalid;
using test::spanning_targets;
using test::State;

namespace {

const core::RngKey kProgKey{5, core::Stage::programming, 1, 2, 0, 0};
const core::RngKey kSnapKey{5, core::Stage::snapshot, 1, 2, 0, 1};

}  // namespace

TEST(HermesParams, ZeroMeansTheCharacterisedValues) {
  HermesModel two;
  EXPECT_DOUBLE_EQ(two.g_max(), 20.7e-6);
  EXPECT_DOUBLE_EQ(two.t0(), 300.0);
  HermesParams p;
  p.hermes_devices = 1;
  HermesModel one(p);
  EXPECT_DOUBLE_EQ(one.g_max(), 10.35e-6);
  EXPECT_DOUBLE_EQ(one.t0(), 200.0);
  p.g_max = 8e-6;
  p.t0 = 20;
  HermesModel set(p);
  EXPECT_DOUBLE_EQ(set.g_max(), 8e-6);
  EXPECT_DOUBLE_EQ(set.t0(), 20.0);
}

TEST(HermesParams, ValidateNamesEachBadParameter) {
  const auto check = [](auto mutate, const char* name, const char* value) {
    HermesParams p;
    mutate(p);
    expect_invalid([&] { p.validate(); }, {"[devices::HermesParams]", name, value});
  };
  check([](HermesParams& p) { p.hermes_devices = 3; }, "hermes_devices", "= 3");
  check([](HermesParams& p) { p.g_max = 25e-6; }, "g_max_uS", "= 25");  // above 20.7 uS
  check([](HermesParams& p) { p.hermes_devices = 1, p.g_max = 12e-6; }, "g_max_uS", "10.35");
  check([](HermesParams& p) { p.g_max = NAN; }, "g_max_uS", "nan");
  check([](HermesParams& p) { p.t0 = -1; }, "t0", "= -1");
  check([](HermesParams& p) { p.t_read = 0; }, "t_read", "= 0");
  check([](HermesParams& p) { p.drift_scale = -1; }, "drift_scale", "= -1");
}

TEST(HermesModel, FitsAtChosenPointsAreThePublishedOnes) {
  // Hand evaluations of the published polynomials and branch laws (docs/physics.md §3b).
  EXPECT_NEAR(hermes_prog_noise_std(0.0, 20.7e-6, 2), 0.16603222e-6, 1e-15);
  EXPECT_NEAR(hermes_prog_noise_std(1.0, 20.7e-6, 2),
              (0.16603222 + 4.71806468 - 8.48101252 + 4.68961419) * 1e-6, 1e-15);
  EXPECT_NEAR(hermes_prog_noise_std(1.0, 10.35e-6, 2),  // scales with g_max
              0.5 * (0.16603222 + 4.71806468 - 8.48101252 + 4.68961419) * 1e-6, 1e-15);
  EXPECT_NEAR(hermes_prog_noise_std(0.5, 10.35e-6, 1),
              (0.15781817 + 2.32443916 * 0.5 - 2.16310839 * 0.25 + 0.68841818 * 0.125) * 1e-6,
              1e-15);
  EXPECT_NEAR(hermes_nu_mean(0.5), -0.0436 * 0.25 - 0.0126 * 0.5 + 0.0736, 1e-12);
  EXPECT_NEAR(hermes_nu_mean(0.05), -0.0387 * std::log(0.05) - 0.0182, 1e-12);
  EXPECT_DOUBLE_EQ(hermes_nu_mean(0.0), 0.13);  // clamped at its upper bound
  EXPECT_NEAR(hermes_nu_std(0.1, 2), -0.0117 * std::log(0.1) - 0.0057, 1e-12);
  EXPECT_NEAR(hermes_nu_std(0.1, 1), -0.0120 * std::log(0.1) - 0.0023, 1e-12);
  EXPECT_NEAR(hermes_nu_std(0.8, 2), -0.0118 * 0.64 + 0.0093 * 0.8 + 0.0073, 1e-12);
  EXPECT_NEAR(hermes_read_noise_q(0.5, 2),
              0.0069 * 0.125 - 0.0280 * 0.25 + 0.0211 * 0.5 + 0.0123, 1e-12);
  EXPECT_NEAR(hermes_read_noise_q(0.5, 1),
              0.0664 * 0.125 - 0.1352 * 0.25 + 0.0768 * 0.5 + 0.0088, 1e-12);
  EXPECT_DOUBLE_EQ(hermes_read_noise_q(0.0, 2), 0.04);
  EXPECT_NEAR(hermes_read_noise_q(0.1, 1), -0.0078 * std::log(0.1) + 0.0038, 1e-12);
}

TEST(HermesModel, PerDeviceFormulasMatchDoublePrecision) {
  for (int devices : {1, 2}) {
    HermesParams p;
    p.hermes_devices = devices;
    p.prog_noise_scale = 1.5;
    p.drift_scale = 0.7;
    p.read_noise_scale = 1.3;
    HermesModel m(p);
    const double g_max = m.g_max();
    const std::size_t n = 4099;
    const std::uint64_t first = 31;
    const auto g = spanning_targets(n, g_max);
    State s(n);
    m.program(g.data(), n, kProgKey, first, s.view());
    std::vector<float> xi_p(n), xi_nu(n), xi_r(n), out(n);
    core::fill_normal(kProgKey, kDrawProgramming, first, n, xi_p.data());
    core::fill_normal(kProgKey, kDrawDriftExponent, first, n, xi_nu.data());
    core::fill_normal(kSnapKey, kDrawReadNoise, first, n, xi_r.data());
    const double t = 86400.0;
    m.read(s.cview(), n, t, kSnapKey, first, out.data());
    for (std::size_t i = 0; i < n; ++i) {
      const double x = g[i] / g_max;
      const double gp =
          std::max(0.0, g[i] + 1.5 * hermes_prog_noise_std(x, g_max, devices) * xi_p[i]);
      ASSERT_NEAR(s.g_prog[i], gp, 2e-6 * g_max) << i;
      const double nu = 0.7 * std::fabs(hermes_nu_mean(x) + hermes_nu_std(x, devices) * xi_nu[i]);
      ASSERT_NEAR(s.nu[i], nu, 1e-6) << i;
      const double q = 1.3 * hermes_read_noise_q(s.g_prog[i] / g_max, devices);
      ASSERT_NEAR(s.q[i], q, 2e-6 * q) << i;
      const double gd = s.g_prog[i] * drift_factor(t, m.t0(), s.nu[i]);
      const double expect =
          std::max(0.0, gd + gd * s.q[i] * read_noise_time_factor(t, m.t0(), p.t_read) * xi_r[i]);
      ASSERT_NEAR(out[i], expect, 1e-5 * g_max) << i;
    }
  }
}

TEST(HermesModel, AnySplitOfABlockGivesTheSameBits) {
  HermesModel m;
  const std::size_t n = 3001;
  const auto g = spanning_targets(n, m.g_max());
  State whole(n);
  m.program(g.data(), n, kProgKey, 4, whole.view());
  for (std::size_t split : {1u, 1023u, 1024u, 2000u}) {
    State parts(n);
    m.program(g.data(), split, kProgKey, 4, parts.view());
    m.program(g.data() + split, n - split, kProgKey, 4 + split,
              {parts.g_prog.data() + split, parts.nu.data() + split, parts.q.data() + split});
    ASSERT_EQ(std::memcmp(parts.g_prog.data(), whole.g_prog.data(), n * 4), 0) << split;
    ASSERT_EQ(std::memcmp(parts.nu.data(), whole.nu.data(), n * 4), 0) << split;
    ASSERT_EQ(std::memcmp(parts.q.data(), whole.q.data(), n * 4), 0) << split;
  }
}

// N devices at one target: the sample std of g_prog estimates sigma_prog with a relative
// standard error of 1/sqrt(2(N-1)); 5 of those is the tolerance (fixed seed, so no flakiness).
TEST(HermesModel, ProgrammingNoiseStdMatchesTheFit) {
  HermesModel m;
  const std::size_t n = 200000;
  for (double x : {0.25, 0.5, 0.9}) {
    std::vector<float> g(n, static_cast<float>(x * m.g_max()));
    State s(n);
    m.program(g.data(), n, kProgKey, 0, s.view());
    double sum = 0, sum2 = 0;
    for (float v : s.g_prog) sum += v;
    const double mean = sum / n;
    for (float v : s.g_prog) sum2 += (v - mean) * (v - mean);
    const double sd = std::sqrt(sum2 / (n - 1));
    const double expect = hermes_prog_noise_std(x, m.g_max(), 2);
    EXPECT_NEAR(sd / expect, 1.0, 5.0 / std::sqrt(2.0 * (n - 1))) << "x = " << x;
  }
}

TEST(HermesModel, RegisteredAndSelectedBySettings) {
  DeviceSpec spec;
  spec.model = "hermes";
  spec.hermes.hermes_devices = 1;
  const auto model = make_device_model(spec);
  EXPECT_EQ(model->name(), "hermes");
  EXPECT_DOUBLE_EQ(model->g_max(), 10.35e-6);
  DeviceSpec pcm;
  pcm.hermes.hermes_devices = 1;  // a hermes setting on another model is refused
  expect_invalid([&] { pcm.validate(); }, {"hermes_devices", "model hermes"});
}
