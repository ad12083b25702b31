// Network::validate / infer_shapes on code-built networks: shapes and every rejection.
#include <gtest/gtest.h>

#include "nets/network.h"
#include "nets_test_util.h"

namespace pcmsim::nets {
namespace {

void expect_invalid(const Network& net, std::vector<std::string> parts) {
  try {
    net.validate();
    ADD_FAILURE() << "no exception";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    for (const auto& p : parts)
      EXPECT_NE(m.find(p), std::string::npos) << "missing '" << p << "' in: " << m;
  }
}

TEST(Network, ShapesOfTinyResnet) {
  Network net = test::tiny_resnet();
  auto s = infer_shapes(net);
  EXPECT_EQ(s[0].output, (Shape{{4, 9, 9}}));
  EXPECT_EQ(s[2].output, (Shape{{4, 9, 9}}));  // dilated depthwise keeps the size
  EXPECT_EQ(s[3].inputs.size(), 2u);
  EXPECT_EQ(s[4].output, (Shape{{4, 5, 5}}));  // ceil_mode
  EXPECT_EQ(s[5].output, (Shape{{6, 3, 3}}));
  EXPECT_EQ(s[6].output, (Shape{{6, 4, 4}}));
  EXPECT_EQ(s[7].output, (Shape{{6, 1, 1}}));
  EXPECT_EQ(s[8].output, (Shape{{6}}));
  EXPECT_EQ(s.back().output, (Shape{{3}}));
  EXPECT_EQ(net.find_layer("pool2"), 6);
  EXPECT_EQ(net.find_layer("nope"), -1);
  EXPECT_EQ(net.layer_inputs(0), (std::vector<int>{kNetworkInput}));
  EXPECT_EQ(net.layer_inputs(4), (std::vector<int>{3}));
}

TEST(Network, DescribeAndParameterCount) {
  Network net = test::tiny_resnet();
  // conv1 4*2*9+4, bn1 4*4, dw 4*9+4, conv3 6*2*2*3+6, fc1 6*5+5, bn2 5*4, fc2 5*3+3
  const Index expected = 76 + 16 + 40 + 78 + 35 + 20 + 18;
  EXPECT_EQ(parameter_count(net), expected);
  const std::string d = describe(net);
  EXPECT_NE(d.find("conv2d+relu"), std::string::npos) << d;
  EXPECT_NE(d.find("1,2"), std::string::npos) << d;  // the add's inputs
  EXPECT_NE(d.find("(6, 4, 4)"), std::string::npos) << d;
  EXPECT_NE(d.find("total parameters: " + std::to_string(expected)), std::string::npos) << d;
}

TEST(Network, KindNames) {
  for (const char* k :
       {"linear",     "conv2d",    "batchnorm1d", "batchnorm2d", "relu",      "relu6",
        "leaky_relu", "sigmoid",   "tanh",        "gelu",        "silu",      "elu",
        "hardtanh",   "hardswish", "hardsigmoid", "maxpool2d",   "avgpool2d", "global_avgpool",
        "flatten",    "add",       "identity",    "dropout",     "softmax",   "log_softmax"}) {
    auto kind = parse_kind(k);
    ASSERT_TRUE(kind.has_value()) << k;
    EXPECT_EQ(kind_name(*kind), k);
  }
  EXPECT_FALSE(parse_kind("Conv2d").has_value());
  EXPECT_FALSE(parse_activation("softmax").has_value());
  EXPECT_EQ(*parse_activation("gelu"), Activation::gelu);
}

TEST(Network, RejectsBadNetworks) {
  {
    Network n = test::tiny_resnet();
    n.layers[5].weight.data[7] = INFINITY;
    expect_invalid(n, {"layer 5 'conv3' (conv2d)", "weight[7] = inf"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[5].groups = 3;
    expect_invalid(n, {"'conv3'", "divisible by groups = 3"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[0].padding = {Index(1) << 40, 1};
    expect_invalid(n, {"'conv1'", "padding", "must be in [0, 16777216]"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[0].padding = {1 << 20, 1 << 20};  // legal numbers, absurd output
    n.layers[0].out_channels = 4;
    expect_invalid(n, {"'conv1'", "values per sample"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[3].inputs = {1, 7};
    expect_invalid(n, {"'add1'", "input 7 is not an earlier layer"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[3].inputs = {0, 0};  // add of conv1 with itself: the dw branch dangles
    expect_invalid(n, {"layer 2 'dw'", "never used"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[4].activation = Activation::relu;  // fused activation on a pool
    expect_invalid(n, {"'pool1'", "fused activation"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[7].name = "pool2";
    expect_invalid(n, {"layer 7 'pool2'", "already used by layer 6"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers.erase(n.layers.begin() + 8);  // no flatten before fc1
    expect_invalid(n, {"'fc1'", "last axis", "(6, 1, 1)", "flatten"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[1].running_var.data[2] = -0.5f;
    expect_invalid(n, {"'bn1'", "running_var[2] = -0.5"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[6].padding = {2, 2};  // kernel 2: padding must be <= 1
    expect_invalid(n, {"'pool2'", "at most half the kernel size"});
  }
  {
    Network n = test::tiny_resnet();
    n.input_mean.pop_back();
    expect_invalid(n, {"input_mean has 1 entries, expected 2"});
  }
  {
    Network n = test::tiny_resnet();
    n.layers[0].kernel_size = {13, 3};
    expect_invalid(n, {"'conv1'", "larger than the padded input"});
  }
  {
    Network n = test::tiny_resnet();
    n.source = "some/file.h5";
    n.layers.back().out_features = 4;
    n.layers.back().weight.shape = {4, 5};
    n.layers.back().weight.data.resize(20);
    n.layers.back().bias.shape = {4};
    n.layers.back().bias.data.resize(4);
    expect_invalid(n, {"some/file.h5", "the last layer 'fc2' outputs (4), expected (3)"});
  }
}

}  // namespace
}  // namespace pcmsim::nets
