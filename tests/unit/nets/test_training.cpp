// nets/training.h: the training settings (defined once, text form), the drift-time draw, the
// training forward (with noise off: the ideal product) and the straight-through backward.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "core/settings.h"
#include "nets/training.h"

namespace pcmsim::nets {
namespace {

TEST(TrainingParams, NamesAreUniqueBesideTheSimulationConfigAndSurviveText) {
  std::set<std::string> names;
  for (const auto& s : core::settings<SimulationConfig>()) names.insert(s.info.external_name());
  TrainingParams p;
  p.t_train_min = 2.5;
  p.t_train_max = 7e6;
  p.calibration_rows = 77;
  TrainingParams copy;
  for (const auto& s : core::settings<TrainingParams>()) {
    EXPECT_TRUE(names.insert(s.info.external_name()).second) << s.info.external_name();
    s.set_text(copy, s.text(p));
  }
  EXPECT_EQ(copy.t_train_min, 2.5);
  EXPECT_EQ(copy.t_train_max, 7e6);
  EXPECT_EQ(copy.calibration_rows, 77);
}

TEST(TrainingParams, ValidateNamesTheField) {
  TrainingParams p;
  p.t_train_min = 10;
  p.t_train_max = 1;
  EXPECT_THROW(p.validate(), std::invalid_argument);
  p = TrainingParams{};
  p.t_train_min = 0;
  try {
    p.validate();
    FAIL() << "t_train_min = 0 with t_train_max > 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("t_train_min = 0"), std::string::npos) << e.what();
  }
  p.t_train_max = 0;  // both 0: the programmed state
  EXPECT_NO_THROW(p.validate());
  SimulationConfig c;
  c.calibrate = true;
  c.io.p_out = 0;
  try {
    TrainingParams{}.check_trainable(c);
    FAIL() << "p_out = 0 with calibrated ADC ranges accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("io.p_out = 0"), std::string::npos) << e.what();
  }
}

TEST(TrainingTime, LogUniformOneTimePerStep) {
  TrainingParams p;  // 1 h .. 1 year
  double sum_log = 0;
  const int n = 2000;
  for (int s = 0; s < n; ++s) {
    const double t = training_time(p, training_key(4, 0, static_cast<std::uint64_t>(s)));
    ASSERT_GE(t, p.t_train_min * (1 - 1e-12));
    ASSERT_LE(t, p.t_train_max * (1 + 1e-12));
    EXPECT_EQ(t, training_time(p, training_key(4, 7, static_cast<std::uint64_t>(s))));
    sum_log += std::log(t);
  }
  const double mid = 0.5 * (std::log(p.t_train_min) + std::log(p.t_train_max));
  EXPECT_NEAR(sum_log / n, mid, 0.15);  // std of the mean: 2.2 / sqrt(2000) = 0.05
  p.t_train_min = p.t_train_max = 86400;
  EXPECT_EQ(training_time(p, training_key(4, 0, 3)), 86400.0);
}

SimulationConfig quiet() {
  SimulationConfig c;
  c.device.model = "ideal";
  c.io.out_noise = 0;
  c.io.p_in = 0;
  c.io.p_out = 0;
  return c;
}

TEST(TrainingForward, NoiseOffIsTheProductAndBackwardIsTheTransposedProduct) {
  const Index out = 5, in = 300, batch = 7;  // 300 rows: two tiles of the 256-row default
  MatrixF w = MatrixF::Random(out, in);
  MatrixF x = MatrixF::Random(batch, in);
  TrainingParams p;
  p.t_train_min = p.t_train_max = 0;
  const TrainingForward f =
      analog_train_forward(w, x, {"fc", in, out, 0, 0}, quiet(), p, training_key(1, 0, 0));
  const MatrixF ref = x * w.transpose();
  ASSERT_EQ(f.y.rows(), batch);
  ASSERT_EQ(f.y.cols(), out);
  EXPECT_LT((f.y - ref).cwiseAbs().maxCoeff(), 1e-4f * ref.cwiseAbs().maxCoeff());
  EXPECT_EQ(f.input_clip, 0.0);
  MatrixF gy = MatrixF::Random(batch, out), gx(batch, in), gw(out, in);
  analog_train_backward(w, x, gy, 0.0, gx, gw);
  EXPECT_LT((gx - gy * w).cwiseAbs().maxCoeff(), 1e-5f);
  EXPECT_LT((gw - gy.transpose() * x).cwiseAbs().maxCoeff(), 1e-5f);
  // A wrong weight shape names the layer.
  try {
    analog_train_forward(w, x, {"fc", in, out + 1, 0, 0}, quiet(), p, training_key(1, 0, 0));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'fc'"), std::string::npos) << e.what();
  }
}

TEST(TrainingForward, NoiseOnIsKeyedByTheStep) {
  const Index out = 4, in = 20, batch = 3;
  MatrixF w = MatrixF::Random(out, in);
  MatrixF x = MatrixF::Random(batch, in);
  const SimulationConfig c;  // PCM, 8-bit, output noise
  const TrainingParams p;
  const auto a = analog_train_forward(w, x, {"fc", in, out, 0, 0}, c, p, training_key(1, 0, 5));
  const auto b = analog_train_forward(w, x, {"fc", in, out, 0, 0}, c, p, training_key(1, 0, 5));
  const auto d = analog_train_forward(w, x, {"fc", in, out, 0, 0}, c, p, training_key(1, 0, 6));
  EXPECT_TRUE(a.y == b.y);
  EXPECT_FALSE(a.y == d.y);
  EXPECT_EQ(a.t_inference, b.t_inference);
  EXPECT_NE(a.t_inference, d.t_inference);
}

}  // namespace
}  // namespace pcmsim::nets
