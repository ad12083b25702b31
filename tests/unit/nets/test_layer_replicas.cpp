// SimulationConfig::layer_replicas: R copies of a layer's weights on more tile rows, the same
// input to each, the outputs averaged. With the noise off that is the product itself; with
// programming noise each weight is the mean of R independent devices' errors.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "nets/cost_input.h"
#include "nets/simulation.h"
#include "nets/training.h"

namespace pcmsim::nets {
namespace {

// One Linear layer `fc` (out x in) through the chip at t = 0 (training forward, no drift).
MatrixF chip_product(const MatrixF& w, const MatrixF& x, const SimulationConfig& config) {
  TrainingParams p;
  p.t_train_min = p.t_train_max = 0;
  return analog_train_forward(w, x, {"fc", w.cols(), w.rows(), 0, 0}, config, p,
                              training_key(3, 0, 0))
      .y;
}

SimulationConfig converters_off() {
  SimulationConfig c;
  c.io.p_in = 0;
  c.io.p_out = 0;
  c.io.out_noise = 0;
  c.io.out_bound = std::numeric_limits<double>::infinity();
  c.gdc = false;
  return c;
}

TEST(LayerReplicas, NoiseOffGivesTheProductAcrossTiles) {
  const Index out = 6, in = 300, batch = 5;  // 3 x 300 = 900 rows: four 256-row tiles
  const MatrixF w = MatrixF::Random(out, in), x = MatrixF::Random(batch, in);
  SimulationConfig c = converters_off();
  c.device.model = "ideal";
  c.layer_replicas["fc"] = 3;
  const MatrixF ref = x * w.transpose();
  const MatrixF y = chip_product(w, x, c);
  ASSERT_EQ(y.rows(), batch);
  ASSERT_EQ(y.cols(), out);
  EXPECT_LT((y - ref).cwiseAbs().maxCoeff(), 1e-4f * ref.cwiseAbs().maxCoeff());
}

TEST(LayerReplicas, ProgrammingErrorsAverageOverTheCopies) {
  // One-hot inputs read each weight once: y(i, j) = w(j, i) + its programming error, 2048
  // independent errors. Four copies divide the error variance by 4. Each variance is
  // estimated to a relative standard error of sqrt(2 / 2048) = 3.1 %, their ratio to
  // 4.4 %; 4 sigma: 0.25 +- 0.045 (the PCM programming noise depends on the target state,
  // which is the same in both).
  const Index out = 32, in = 64;
  const MatrixF w = MatrixF::Random(out, in);
  const MatrixF x = MatrixF::Identity(in, in);
  const MatrixF ref = w.transpose();
  SimulationConfig c = converters_off();  // PCM devices, t = 0: programming and read noise
  const double var1 = (chip_product(w, x, c) - ref).squaredNorm() / double(ref.size());
  c.layer_replicas["fc"] = 4;
  const double var4 = (chip_product(w, x, c) - ref).squaredNorm() / double(ref.size());
  ASSERT_GT(var1, 0.0);
  EXPECT_NEAR(var4 / var1, 0.25, 0.045) << var1 << " " << var4;
}

TEST(LayerReplicas, TextAndErrorsNameTheItem) {
  const auto m = parse_layer_replicas({"stem:16", "fc:2"});
  EXPECT_EQ(m.at("stem"), 16);
  EXPECT_EQ(layer_replicas_text(m), (std::vector<std::string>{"fc:2", "stem:16"}));
  const auto expect_error = [](const std::vector<std::string>& items, const std::string& text) {
    try {
      parse_layer_replicas(items);
      ADD_FAILURE() << "accepted " << items.front();
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
  };
  expect_error({"stem:1"}, "layer_replicas['stem'] = 1: must be 2..64");
  expect_error({"stem:65"}, "layer_replicas['stem'] = 65");
  expect_error({"stem"}, "layer_replicas = 'stem': expected NAME:R");
  expect_error({"stem:x"}, "layer_replicas['stem']");
  expect_error({"a:2", "a:3"}, "names layer 'a' twice");
  SimulationConfig c;
  c.layer_replicas["fc"] = 0;  // set directly, not parsed
  EXPECT_THROW(c.validate(), std::invalid_argument);
  // A replicated layer kept digital: the chip and the cost model refuse it.
  Network net;
  net.name = "one";
  net.input_shape = {3, 1, 1};
  net.layers.push_back(Layer::make("flatten", LayerKind::flatten));
  net.layers.push_back(Layer::make_linear("fc", 3, 2));
  net.layers.back().weight.shape = {2, 3};
  net.layers.back().weight.data.assign(6, 0.5f);
  net.num_classes = 2;
  net.input_mean = {0, 0, 0};
  net.input_std = {1, 1, 1};
  c = converters_off();
  c.layer_replicas["fc"] = 2;
  EXPECT_EQ(ProgrammedChip(net, c, 0).plan().layers.at(0).layer.rows, 6);  // 2 copies of 3 rows
  c.mapper.digital_layers = {"fc"};
  for (int use_cost = 0; use_cost < 2; ++use_cost) {
    try {
      if (use_cost)
        cost_input(net, c);
      else
        ProgrammedChip(net, c, 0);
      ADD_FAILURE() << "a replicated digital layer was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("layer_replicas names layer 'fc', which is kept digital"),
                std::string::npos)
          << e.what();
    }
  }
  // A layer the network does not have.
  c = converters_off();
  c.layer_replicas["conv9"] = 2;
  try {
    chip_product(MatrixF::Random(2, 3), MatrixF::Random(1, 3), c);
    ADD_FAILURE() << "an unknown layer was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer_replicas names layer 'conv9'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace pcmsim::nets
