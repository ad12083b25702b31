// The device report: bit-identical for any thread count, and its statistics agree with
// docs/physics.md. Tolerances: k = 5 standard errors of the sample statistic (see
// test_device_physics.cpp for the formulas), N = samples.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "devices/device_factory.h"
#include "devices/device_report.h"

using namespace pcmsim;
using namespace pcmsim::devices;

namespace {

bool same_bits(double a, double b) { return std::memcmp(&a, &b, sizeof a) == 0; }

std::vector<DeviceReportRow> report_with_threads(const DeviceModel& m,
                                                 const DeviceReportConfig& c, int threads) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(threads);
  auto rows = device_report(m, c);
  omp_set_num_threads(before);
  return rows;
}

}  // namespace

TEST(DeviceReport, SameBitsForOneAndTwoThreads) {
  for (const char* name : {"pcm", "state_independent"}) {
    SCOPED_TRACE(name);
    DeviceSpec spec;
    spec.model = name;
    const auto model = make_device_model(spec);
    DeviceReportConfig c;
    c.samples = 100003;  // several chunks plus a ragged last one
    const auto one = report_with_threads(*model, c, 1);
    const auto two = report_with_threads(*model, c, 2);
    const auto three = report_with_threads(*model, c, 3);
    ASSERT_EQ(one.size(), 16u);
    ASSERT_EQ(two.size(), one.size());
    ASSERT_EQ(three.size(), one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      for (const auto* other : {&two[i], &three[i]}) {
        EXPECT_TRUE(same_bits(one[i].mean, other->mean)) << i;
        EXPECT_TRUE(same_bits(one[i].std, other->std)) << i;
        EXPECT_TRUE(same_bits(one[i].nu_mean, other->nu_mean)) << i;
        EXPECT_TRUE(same_bits(one[i].nu_std, other->nu_std)) << i;
      }
    }
    EXPECT_EQ(device_report_csv(one), device_report_csv(two));
    // A different seed gives different numbers (the seed is really used).
    c.seed = 8;
    const auto other_seed = report_with_threads(*model, c, 2);
    EXPECT_NE(other_seed[5].mean, one[5].mean);
  }
}

// E[(t/t0)^(-nu)] for nu = |mu + s z|, z ~ N(0,1), by the trapezoidal rule on [-12, 12].
double mean_drift_factor(double mu, double s, double L) {
  const double h = 1e-3;
  double sum = 0;
  for (double z = -12; z <= 12; z += h)
    sum += std::exp(-std::fabs(mu + s * z) * L) * std::exp(-0.5 * z * z);
  return sum * h / std::sqrt(2 * M_PI);
}

// The default report's rows against docs/physics.md: at t = 0 the spread is sigma_prog, the mean
// the target (the clip is 2.9 sigma away at 1 µS: it shifts the mean by 2e-4 µS, far below 5
// standard errors, and lowers the std by 0.16 %, hence a 1 % allowance below x = 0.1); later the mean is g_T E[(t/t0)^(-nu)] over the folded-normal nu
// (programming and read noise are zero-mean and independent of nu; their clips at 0 shift
// the mean by < 0.5 %, allowed on top of 5 standard errors); nu's mean is the folded normal's.
TEST(DeviceReport, PcmRowsAgreeWithPhysics) {
  PcmModel m;
  DeviceReportConfig c;
  c.samples = 200000;
  const auto rows = device_report(m, c);
  const double n = static_cast<double>(c.samples);
  for (std::size_t k = 0; k < c.g_targets.size(); ++k) {
    const double g_t = c.g_targets[k], x = g_t / 25e-6;
    SCOPED_TRACE(x);
    const auto& r0 = rows[4 * k];
    ASSERT_EQ(r0.t_inference, 0.0);
    const double sigma = pcm_prog_noise_std(x, 25e-6);
    EXPECT_NEAR(r0.mean, g_t, 5 * sigma / std::sqrt(n));
    EXPECT_NEAR(r0.std, sigma, 5 * sigma / std::sqrt(2 * (n - 1)) + 0.01 * sigma * (x < 0.1));
    const double mu = pcm_nu_mean(x), s = pcm_nu_std(x);
    const double fold_mean = s * std::sqrt(2.0 / M_PI) * std::exp(-mu * mu / (2 * s * s)) +
                             mu * std::erf(mu / (s * std::sqrt(2.0)));
    // The folded normal's std is below s: 5 s / sqrt(N) bounds 5 standard errors.
    EXPECT_NEAR(r0.nu_mean, fold_mean, 5 * s / std::sqrt(n));
    for (std::size_t j = 1; j < 4; ++j) {
      const auto& r = rows[4 * k + j];
      SCOPED_TRACE(r.t_inference);
      EXPECT_EQ(r.nu_mean, r0.nu_mean);  // program once, drift many: the same devices
      EXPECT_LT(r.mean, rows[4 * k + j - 1].mean);  // drift lowers the conductance
      const double expect = mean_drift_factor(mu, s, std::log((r.t_inference + 20.0) / 20.0));
      EXPECT_NEAR(r.mean / g_t, expect, 5 * r.std / g_t / std::sqrt(n) + 0.005 * expect);
    }
  }
}
