// IdealModel, StateIndependentModel, the factory and the device report's input checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/rng.h"
#include "devices/device_factory.h"
#include "devices/device_report.h"
#include "tests/unit/devices/devices_test_util.h"

using namespace pcmsim;
using namespace pcmsim::devices;

using test::expect_invalid;
using test::spanning_targets;
using test::State;

namespace {

const core::RngKey kProgKey{5, core::Stage::programming, 0, 0, 0, 0};
const core::RngKey kSnapKey{5, core::Stage::snapshot, 0, 0, 0, 1};

}  // namespace

TEST(IdealModel, AlwaysTheTarget) {
  IdealModel m;
  EXPECT_EQ(m.name(), "ideal");
  EXPECT_EQ(m.g_max(), 25e-6);
  const std::size_t n = 999;
  const auto g = spanning_targets(n, 25e-6);
  State s(n);
  m.program(g.data(), n, kProgKey, 0, s.view());
  std::vector<float> out(n);
  for (double t : {0.0, 3600.0, 1e9}) {
    m.read(s.cview(), n, t, kSnapKey, 0, out.data());
    ASSERT_EQ(out, g) << t;
  }
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_EQ(s.nu[i], 0.0f);
    ASSERT_EQ(s.q[i], 0.0f);
  }
  std::vector<float> bad = {1e-6f, 30e-6f};
  expect_invalid([&] { m.program(bad.data(), 2, kProgKey, 0, s.view()); }, {"g_target[1]", "must be in [0, 25]"});
  expect_invalid([&] { m.read(s.cview(), 2, -5.0, kSnapKey, 0, out.data()); },
                 {"t_inference", "-5"});
  expect_invalid([] { IdealModel bad_model(IdealParams{-3e-6}); }, {"g_max_uS", "-3"});
}

TEST(StateIndependentParams, DefaultsAndValidation) {
  StateIndependentParams p;
  EXPECT_EQ(p.prog_noise_std, 0.2e-6);
  EXPECT_EQ(p.nu_mean, 0.1);
  EXPECT_EQ(p.nu_std, 0.05);
  // The default Q_s is the PCM law at x = 0.5.
  EXPECT_NEAR(p.read_noise_q, pcm_read_noise_q(0.5), 1e-15);
  EXPECT_NO_THROW(p.validate());
  auto check = [](auto mutate, const char* name, const char* value) {
    StateIndependentParams q;
    mutate(q);
    expect_invalid([&] { q.validate(); }, {"[devices::StateIndependentParams]", name, value});
    expect_invalid([&] { StateIndependentModel m(q); }, {name});
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  check([](StateIndependentParams& q) { q.g_max = 0; }, "g_max_uS", "= 0");
  check([](StateIndependentParams& q) { q.prog_noise_std = -0.1e-6; }, "prog_noise_std_uS", "-0.1");
  check([&](StateIndependentParams& q) { q.nu_mean = nan; }, "nu_mean", "nan");
  check([](StateIndependentParams& q) { q.nu_std = -0.01; }, "nu_std", "-0.01");
  check([](StateIndependentParams& q) { q.read_noise_q = -1; }, "read_noise_q", "-1");
  check([](StateIndependentParams& q) { q.t0 = 0; }, "t0", "= 0");
  check([](StateIndependentParams& q) { q.t_read = 0; }, "t_read", "= 0");
  check([](StateIndependentParams& q) { q.prog_noise_scale = -1; }, "prog_noise_scale", "-1");
  check([](StateIndependentParams& q) { q.drift_scale = -1; }, "drift_scale", "-1");
  check([](StateIndependentParams& q) { q.read_noise_scale = -1; }, "read_noise_scale", "-1");
}

TEST(StateIndependentModel, ZeroScalesExactAndFormulas) {
  const std::size_t n = 2049;
  const auto g = spanning_targets(n, 25e-6);
  {
    StateIndependentParams p;
    p.prog_noise_scale = p.drift_scale = p.read_noise_scale = 0;
    StateIndependentModel m(p);
    State s(n);
    m.program(g.data(), n, kProgKey, 0, s.view());
    std::vector<float> out(n);
    for (double t : {0.0, 86400.0, 1e10}) {
      m.read(s.cview(), n, t, kSnapKey, 0, out.data());
      ASSERT_EQ(out, g) << t;
    }
  }
  StateIndependentModel m;
  State s(n);
  m.program(g.data(), n, kProgKey, 3, s.view());
  std::vector<float> xi_p(n), xi_nu(n);
  core::fill_normal(kProgKey, kDrawProgramming, 3, n, xi_p.data());
  core::fill_normal(kProgKey, kDrawDriftExponent, 3, n, xi_nu.data());
  for (std::size_t i = 0; i < n; ++i) {
    ASSERT_NEAR(s.g_prog[i], std::max(0.0, g[i] + 0.2e-6 * xi_p[i]), 1e-12) << i;
    ASSERT_NEAR(s.nu[i], std::fabs(0.1 + 0.05 * xi_nu[i]), 1e-7) << i;
    ASSERT_FLOAT_EQ(s.q[i], static_cast<float>(pcm_read_noise_q(0.5)));
  }
  std::vector<float> out(n);
  m.read(s.cview(), n, 0.0, kSnapKey, 0, out.data());
  EXPECT_EQ(out, s.g_prog);  // t = 0: the programmed state
}

TEST(DeviceFactory, BuildsEveryRegisteredModel) {
  const auto names = device_model_names();
  ASSERT_EQ(names, (std::vector<std::string>{"pcm", "hermes", "ideal", "state_independent",
                                             "tabulated"}));
  for (const auto& name : {"pcm", "ideal", "state_independent"}) {
    DeviceSpec spec;
    spec.model = name;
    const auto model = make_device_model(spec);
    ASSERT_TRUE(model);
    EXPECT_EQ(model->name(), name);
    EXPECT_EQ(model->g_max(), 25e-6);
  }
  DeviceSpec spec;
  spec.pcm.g_max = 50e-6;
  EXPECT_EQ(make_device_model(spec)->g_max(), 50e-6);
  spec.pcm.drift_scale = -1;  // the chosen model's parameters are validated
  expect_invalid([&] { make_device_model(spec); }, {"drift_scale"});
}

TEST(DeviceFactory, UnknownModelListsTheKnownNames) {
  DeviceSpec spec;
  spec.model = "memristor";
  expect_invalid([&] { make_device_model(spec); },
                 {"'memristor'", "unknown", "'pcm'", "'ideal'", "'state_independent'",
                  "'tabulated'", "'hermes'"});
  spec.model = "tabulated";  // no table given
  expect_invalid([&] { make_device_model(spec); }, {"tabulated", "table"});
}

TEST(DeviceReport, ValidatesItsInput) {
  IdealModel m;
  DeviceReportConfig c;
  EXPECT_NO_THROW(c.validate(m.g_max()));
  c.g_targets = {1e-6, 26e-6};
  expect_invalid([&] { device_report(m, c); }, {"g_target_uS = 26", "[0, 25]"});
  c.g_targets = {-1e-6};
  expect_invalid([&] { device_report(m, c); }, {"g_target_uS = -1"});
  c.g_targets = {std::numeric_limits<double>::quiet_NaN()};
  expect_invalid([&] { device_report(m, c); }, {"g_target_uS = nan"});
  c = DeviceReportConfig{};
  c.t_inference = {0, -3600};
  expect_invalid([&] { device_report(m, c); }, {"t_inference_s = -3600"});
  c.t_inference = {std::numeric_limits<double>::quiet_NaN()};
  expect_invalid([&] { device_report(m, c); }, {"t_inference_s = nan"});
  c = DeviceReportConfig{};
  c.samples = 0;
  expect_invalid([&] { device_report(m, c); }, {"samples = 0"});
  c = DeviceReportConfig{};
  c.g_targets.clear();
  expect_invalid([&] { device_report(m, c); }, {"g_targets", "empty"});
}

TEST(DeviceReport, IdealModelRowsAndFormats) {
  IdealModel m;
  DeviceReportConfig c;
  c.samples = 40000;  // several chunks
  const auto rows = device_report(m, c);
  ASSERT_EQ(rows.size(), 16u);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    EXPECT_EQ(r.model, "ideal");
    EXPECT_EQ(r.g_target, c.g_targets[i / 4]);
    EXPECT_EQ(r.t_inference, c.t_inference[i % 4]);
    EXPECT_EQ(r.samples, 40000u);
    EXPECT_NEAR(r.mean, static_cast<float>(r.g_target), 1e-18);  // every device at its target
    EXPECT_NEAR(r.std, 0.0, 1e-18);
    EXPECT_EQ(r.nu_mean, 0.0);
    EXPECT_EQ(r.nu_std, 0.0);
  }
  const std::string csv = device_report_csv(rows);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "model,g_target_uS,t_inference_s,samples,mean_uS,std_uS,nu_mean,nu_std");
  EXPECT_NE(csv.find("\nideal,12.5,31536000,40000,12.5,0,0,0\n"), std::string::npos) << csv;
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 17);
  const std::string table = device_report_table(rows);
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 17);
  // Aligned: every line of the table has the same length (numbers right-aligned).
  std::size_t first_len = table.find('\n');
  for (std::size_t pos = 0; pos < table.size();) {
    const std::size_t end = table.find('\n', pos);
    EXPECT_EQ(end - pos, first_len);
    pos = end + 1;
  }
}
