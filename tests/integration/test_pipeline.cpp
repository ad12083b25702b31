// End to end through the zoo: load a model file, plan, program, snapshot, run the test images
// through tiles and the digital unit, and check what the physics and the pipeline promise.
//
// - With an ideal device and every converter and noise off the analog path IS the FP32 path
//   (only float rounding differs), whatever the tile size splits the layers into.
// - The ResNet's tile count matches a count by hand.
// - Same seed, same accuracies and logits (bit for bit) for 1 and 2 threads.
// - GDC recovers most of the one-year drift loss; accuracy does not fall when precision rises.
//
// The statistical claims use paired per-image outcomes on the same images and the same programmed
// chip (same seed), so the Monte Carlo error of a difference is the standard error of the mean
// of per-image differences, se = sd(d_i)/sqrt(N); every claim must hold with a margin of
// kSigmas * se (one-sided 3 sigma: a false failure about once in 700 seed choices).
//
// Zoo files that are not present (yet) are skipped with the reason.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "mapping/mapping_plan.h"
#include "nets/dataset.h"
#include "nets/evaluation.h"
#include "nets/forward.h"
#include "nets/model_io.h"
#include "nets/simulation.h"
#include "tests/integration/ideal_config.h"

namespace pcmsim::nets {
namespace {

constexpr double kSigmas = 3.0;
const char* const kZoo[] = {"mlp",    "mlp_hwa",    "lenet5", "lenet5_hwa",
                            "resnet", "resnet_hwa", "vit",    "vit_hwa"};

std::string zoo_path(const std::string& name) {
  const char* src = std::getenv("PCMSIM_SOURCE_DIR");
  return (std::filesystem::path(src ? src : ".") / "zoo" / (name + ".h5")).string();
}

bool have_fashion_mnist() {
  return std::filesystem::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz");
}

// The first `n` test images, normalised for `net`, with their labels.
struct TestData {
  MatrixF images;
  std::vector<int> labels;
};
TestData test_data(const Network& net, Index n) {
  const Dataset data = load_dataset("fashion-mnist:t10k", n);
  check_compatible(data, net);
  return {normalized_images(data, net), data.labels};
}


// Per-image correctness (1/0) of predictions.
std::vector<double> correct(const std::vector<int>& pred, const std::vector<int>& labels) {
  std::vector<double> c(pred.size());
  for (std::size_t i = 0; i < pred.size(); ++i) c[i] = pred[i] == labels[i] ? 1.0 : 0.0;
  return c;
}

// Mean and standard error of per-image values d_i.
struct MeanSe {
  double mean = 0, se = 0;
};
MeanSe mean_se(const std::vector<double>& d) {
  const double n = static_cast<double>(d.size());
  double sum = 0;
  for (double v : d) sum += v;
  const double mean = sum / n;
  double sq = 0;
  for (double v : d) sq += (v - mean) * (v - mean);
  return {mean, std::sqrt(sq / (n - 1) / n)};
}

std::vector<int> predict_on_chip(const Network& net, const TestData& data,
                                 const SimulationConfig& config, double t_inference) {
  const ProgrammedChip chip(net, config, 0);
  const ConverterSetup converters(chip, config);
  ChipForward chip_forward(chip, converters, chip.at(t_inference));
  return predict(net, data.images, chip_forward, 128);
}

// ---------------------------------------------------------------------------------------------
// Ideal analog path == FP32 path, for every zoo model and tile sizes that split layers
// differently (256x256: HERMES; 64x32 and 100x70 split rows and columns at odd places).

class IdealEqualsFp32 : public ::testing::TestWithParam<const char*> {};

TEST_P(IdealEqualsFp32, LogitsAndPredictionsForSeveralTileSizes) {
  const std::string path = zoo_path(GetParam());
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " not present yet";
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const Network net = load_network(path);
  const TestData data = test_data(net, 300);
  Fp32Matmul fp32(net);
  const MatrixF ref = logits(net, data.images, fp32, 128);
  const std::vector<int> ref_pred = argmax_rows(ref);

  const std::pair<Index, Index> tiles[] = {{256, 256}, {64, 32}, {100, 70}};
  Index split_layers = 0;
  for (const auto& [rows, cols] : tiles) {
    SCOPED_TRACE(testing::Message() << GetParam() << " on " << rows << "x" << cols << " tiles");
    const SimulationConfig config = ideal_config(rows, cols, 3);
    const ProgrammedChip chip(net, config, 0);
    // The tile size must actually change how layers are cut, or the test proves little (checked
    // over the small tile sizes together: the ViT's matrices, at most 64 wide, fit 100x70).
    if (rows < 256)
      for (const auto& layer : chip.plan().layers) split_layers += layer.slices.size() > 1;
    const ConverterSetup converters(chip, config);
    // The ideal device does not drift; time must not matter.
    ChipForward chip_forward(chip, converters, chip.at(3600.0));
    const MatrixF out = logits(net, data.images, chip_forward, 128);
    ASSERT_EQ(out.rows(), ref.rows());
    ASSERT_EQ(out.cols(), ref.cols());
    // Relative to each image's largest logit: float32 GEMMs in a different summation order and
    // the exact-in-theory scaling x/s * (W*s_G) / s_G differ by a few ulps per layer.
    double worst = 0;
    for (Index i = 0; i < ref.rows(); ++i) {
      const double scale = std::max(1e-3, double(ref.row(i).cwiseAbs().maxCoeff()));
      worst = std::max(worst, double((out.row(i) - ref.row(i)).cwiseAbs().maxCoeff()) / scale);
    }
    EXPECT_LT(worst, 1e-5);
    const std::vector<int> pred = argmax_rows(out);
    int flips = 0;
    for (Index i = 0; i < ref.rows(); ++i) flips += pred[i] != ref_pred[i];
    EXPECT_EQ(flips, 0);
    std::printf("[ ideal    ] %-11s %3ldx%-3ld tiles: %3ld tiles, max rel. logit error %.2e, "
                "%d flips\n",
                GetParam(), long(rows), long(cols), long(chip.plan().tiles_used), worst, flips);
  }
  EXPECT_GT(split_layers, 0);
}

INSTANTIATE_TEST_SUITE_P(Zoo, IdealEqualsFp32, ::testing::ValuesIn(kZoo),
                         [](const auto& info) { return std::string(info.param); });

// ---------------------------------------------------------------------------------------------
// Tile counts by hand (zoo/models.py), whole-kernel conv splits (the default).
//
// 256x256: a 3x3 conv keeps floor(256/9) = 28 input channels (252 rows) per tile.
//   stem 1x3x3 -> 16: 9 rows                              1
//   block1 conv1, conv2 16x3x3 -> 16: 144 rows            1 + 1
//   block2 conv1 16x3x3 -> 32: 144 rows                   1
//          conv2 32x3x3 -> 32: 288 = 252 + 36 rows        2
//          down 16x1x1 -> 32                              1
//   block3 conv1 32x3x3 -> 64: 288 rows                   2
//          conv2 64x3x3 -> 64: 576 = 252 + 252 + 72      3
//          down 32x1x1 -> 64                              1
//   fc 64 -> 10                                           1      total 14
// 64x32: 7 channels (63 rows) per tile; columns in blocks of 32.
//   stem 1; block1 3 + 3 (144 = 63+63+18); block2 conv1 3, conv2 5 (288 = 4*63+36), down 1;
//   block3 conv1 5x2 = 10, conv2 10x2 = 20 (576 = 9*63+9), down 1x2 = 2; fc 1  total 49
// MLP 784-256-128-10 on 256x256: fc1 784 = 3*256+16 rows -> 4, fc2 1, fc3 1   total 6
// LeNet-5 on 256x256: conv1 25 rows 1, conv2 150 rows 1, fc1 400 rows 2, fc2 1, fc3 1  total 6

TEST(Pipeline, TileCountsMatchHandCounts) {
  const std::map<std::string, std::vector<std::pair<std::pair<Index, Index>, Index>>> expected = {
      {"resnet", {{{256, 256}, 14}, {{64, 32}, 49}}},
      {"resnet_hwa", {{{256, 256}, 14}, {{64, 32}, 49}}},
      {"mlp", {{{256, 256}, 6}}},
      {"lenet5", {{{256, 256}, 6}}},
  };
  int checked = 0;
  for (const auto& [name, cases] : expected) {
    const std::string path = zoo_path(name);
    if (!std::filesystem::exists(path)) continue;
    const Network net = load_network(path);
    for (const auto& [tile, count] : cases) {
      mapping::ChipSpec chip;
      chip.tile_rows = tile.first;
      chip.tile_cols = tile.second;
      const auto shapes = layer_matrices(net);
      const mapping::MappingPlan plan = mapping::plan(shapes, chip, mapping::MapperOptions{});
      mapping::check_plan(plan, shapes);
      EXPECT_EQ(plan.tiles_used, count) << name << " on " << tile.first << "x" << tile.second;
      ++checked;
    }
  }
  if (!std::filesystem::exists(zoo_path("resnet")) &&
      !std::filesystem::exists(zoo_path("resnet_hwa")))
    GTEST_SKIP() << "no zoo ResNet present yet (" << checked << " other counts checked)";
}

// ---------------------------------------------------------------------------------------------
// Same seed -> same bits for 1 and 2 OpenMP threads: evaluate() accuracies and the logits of
// one chip at one year (PCM, 8-bit converters, GDC, the defaults).

std::string first_present(std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (std::filesystem::exists(zoo_path(n))) return zoo_path(n);
  return "";
}

TEST(Pipeline, SameSeedSameResultsForOneAndTwoThreads) {
  const std::string path = first_present({"lenet5_hwa", "lenet5", "mlp_hwa", "mlp"});
  if (path.empty()) GTEST_SKIP() << "no zoo MLP or LeNet-5 present yet";
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const Network net = load_network(path);
  const TestData data = test_data(net, 200);
  SimulationConfig config;
  config.seed = 42;
  EvaluationOptions options;
  options.t_inference = {3600.0, 31536000.0};
  options.trials = 2;
  options.batch_size = 64;

  const int before = omp_get_max_threads();
  std::vector<EvaluationResult> results;
  std::vector<MatrixF> out;
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    results.push_back(evaluate(net, data.images, data.labels, config, options, MatrixF()));
    const ProgrammedChip chip(net, config, 1);
    const ConverterSetup converters(chip, config);
    ChipForward chip_forward(chip, converters, chip.at(31536000.0));
    out.push_back(logits(net, data.images, chip_forward, 64));
  }
  omp_set_num_threads(before);
  ASSERT_EQ(results[0].times.size(), 2u);
  for (std::size_t t = 0; t < 2; ++t)
    for (int k = 0; k < 2; ++k)
      EXPECT_EQ(results[0].times[t].accuracy.at(k), results[1].times[t].accuracy.at(k))
          << "time " << t << " trial " << k;
  EXPECT_EQ(results[0].fp32_accuracy, results[1].fp32_accuracy);
  ASSERT_EQ(out[0].size(), out[1].size());
  EXPECT_EQ(0, std::memcmp(out[0].data(), out[1].data(), sizeof(float) * out[0].size()))
      << "logits differ between 1 and 2 threads";
  // Different trials are different chips: the results must not all coincide.
  MatrixF other;
  {
    const ProgrammedChip chip(net, config, 0);
    const ConverterSetup converters(chip, config);
    ChipForward chip_forward(chip, converters, chip.at(31536000.0));
    other = logits(net, data.images, chip_forward, 64);
  }
  EXPECT_NE(0, std::memcmp(out[0].data(), other.data(), sizeof(float) * other.size()));
}

// ---------------------------------------------------------------------------------------------
// GDC recovers most of the drift loss at one year. Same programmed chip (seed, trial) with GDC
// on and off; reference = the same chip at t = 1 s with GDC on. Claims, per image i with
// correctness c_ref, c_on, c_off:
//   the loss without GDC is real:    mean(c_ref - c_off) > 3 se
//   GDC recovers more than half:     mean(c_on - c_off - 0.5 (c_ref - c_off)) > 3 se

TEST(Pipeline, GdcRecoversMostOfTheDriftLossAtOneYear) {
  const std::string path = first_present({"lenet5", "resnet", "mlp"});
  if (path.empty()) GTEST_SKIP() << "no zoo model present yet";
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const Network net = load_network(path);
  const TestData data = test_data(net, 1000);
  SimulationConfig on;
  on.seed = 5;
  SimulationConfig off = on;
  off.gdc = false;
  const auto c_ref = correct(predict_on_chip(net, data, on, 1.0), data.labels);
  const auto c_on = correct(predict_on_chip(net, data, on, 31536000.0), data.labels);
  const auto c_off = correct(predict_on_chip(net, data, off, 31536000.0), data.labels);
  std::vector<double> loss(c_ref.size()), excess(c_ref.size());
  for (std::size_t i = 0; i < c_ref.size(); ++i) {
    loss[i] = c_ref[i] - c_off[i];
    excess[i] = c_on[i] - c_off[i] - 0.5 * (c_ref[i] - c_off[i]);
  }
  const MeanSe l = mean_se(loss), e = mean_se(excess);
  const MeanSe a_ref = mean_se(c_ref), a_on = mean_se(c_on), a_off = mean_se(c_off);
  std::printf("[ gdc      ] %s, %zu images, 1 year: t=1s %.4f, GDC on %.4f, GDC off %.4f; "
              "loss %.4f +- %.4f, excess over half recovery %.4f +- %.4f\n",
              net.name.c_str(), c_ref.size(), a_ref.mean, a_on.mean, a_off.mean, l.mean, l.se,
              e.mean, e.se);
  EXPECT_GT(l.mean, kSigmas * l.se) << "no significant drift loss without GDC";
  EXPECT_GT(e.mean, kSigmas * e.se) << "GDC recovers less than half of the drift loss";
}

// ---------------------------------------------------------------------------------------------
// Accuracy does not fall when precision rises: p = 4 -> 6 -> 8 -> off (converters off), same
// programmed chip, t = 1 s, GDC on. For each step, mean(c_hi - c_lo) > -3 se (se floored at
// 1/N, for steps where no prediction changes).

TEST(Pipeline, AccuracyDoesNotFallWhenPrecisionRises) {
  const std::string path = first_present({"lenet5", "mlp", "resnet"});
  if (path.empty()) GTEST_SKIP() << "no zoo model present yet";
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const Network net = load_network(path);
  const TestData data = test_data(net, 1000);
  std::vector<std::vector<double>> c;
  const int bits[] = {4, 6, 8, 0};
  for (int p : bits) {
    SimulationConfig config;
    config.seed = 9;
    config.io.p_in = config.io.p_out = p;
    c.push_back(correct(predict_on_chip(net, data, config, 1.0), data.labels));
  }
  for (std::size_t k = 0; k + 1 < c.size(); ++k) {
    std::vector<double> d(c[k].size());
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = c[k + 1][i] - c[k][i];
    const MeanSe gain = mean_se(d);
    std::printf("[ precision] %s: p %d -> %d: accuracy %.4f -> %.4f (gain %.4f +- %.4f)\n",
                net.name.c_str(), bits[k], bits[k + 1], mean_se(c[k]).mean,
                mean_se(c[k + 1]).mean, gain.mean, gain.se);
    EXPECT_GT(gain.mean, -kSigmas * std::max(gain.se, 1.0 / d.size()))
        << "accuracy fell from p = " << bits[k] << " to p = " << bits[k + 1];
  }
}

}  // namespace
}  // namespace pcmsim::nets
