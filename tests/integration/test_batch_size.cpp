// Same seed -> same bits for any batch size: every random draw of a tile forward is keyed by the
// global sample index and output position (nets/forward.h, core/tile.h), not by the batch a
// sample happens to arrive in. A residual CNN (conv layers: many positions per sample) and an
// MLP, with noise strong enough that changed draws change predictions.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "nets/evaluation.h"
#include "nets/forward.h"
#include "tests/unit/nets/nets_test_util.h"

namespace pcmsim::nets {
namespace {

struct Case {
  Network net;
  MatrixF images;
  std::vector<int> labels;
};

// Labels = the FP32 predictions, so the accuracy measures agreement with FP32 and every flipped
// prediction shows.
Case make_case(Network net, Index n) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  Case c{std::move(net), MatrixF(n, 0), {}};
  c.images.resize(n, c.net.input_size());
  for (Index i = 0; i < c.images.size(); ++i) c.images.data()[i] = u(rng);
  Fp32Matmul fp32(c.net);
  c.labels = predict(c.net, c.images, fp32, 64);
  return c;
}

EvaluationResult run(const Case& c, Index batch, std::uint64_t seed) {
  SimulationConfig config;
  config.seed = seed;
  config.io.out_noise = 0.2;  // strong: about a third of the predictions move with the draws
  config.chip.tile_rows = config.chip.tile_cols = 16;  // several tiles per layer
  EvaluationOptions options;
  options.t_inference = {1.0, 86400.0};
  options.trials = 2;
  options.batch_size = batch;
  return evaluate(c.net, c.images, c.labels, config, options, MatrixF());
}

std::vector<double> accuracies(const EvaluationResult& r) {
  std::vector<double> a;
  for (const auto& t : r.times) a.insert(a.end(), t.accuracy.begin(), t.accuracy.end());
  return a;
}

void expect_same_for_any_batch(const Case& c) {
  const std::vector<double> whole = accuracies(run(c, c.images.rows(), 11));
  for (Index batch : {Index{1}, Index{7}}) {
    SCOPED_TRACE(::testing::Message() << c.net.name << " batch " << batch);
    EXPECT_EQ(accuracies(run(c, batch, 11)), whole);  // exact: the same bits
  }
  // The check can fail: another seed (other draws) changes some accuracy, so equal results
  // above are not noise too weak to move any prediction.
  EXPECT_NE(accuracies(run(c, c.images.rows(), 12)), whole) << c.net.name;
}

TEST(BatchSize, SameResultsForAnyBatchSizeConv) {
  expect_same_for_any_batch(make_case(test::tiny_resnet(2), 64));
}

TEST(BatchSize, SameResultsForAnyBatchSizeLinear) {
  std::mt19937 rng(5);
  Network net;
  net.name = "mlp";
  net.input_shape = {1, 6, 6};
  net.num_classes = 4;
  net.input_mean = {0.0f};
  net.input_std = {1.0f};
  net.layers.push_back(Layer::make("flatten", LayerKind::flatten));
  Layer fc1 = Layer::make_linear("fc1", 36, 20, Activation::relu);
  Layer fc2 = Layer::make_linear("fc2", 20, 4);
  test::fill_weights(fc1, rng);
  test::fill_weights(fc2, rng);
  net.layers.push_back(fc1);
  net.layers.push_back(fc2);
  expect_same_for_any_batch(make_case(net, 64));
}

}  // namespace
}  // namespace pcmsim::nets
