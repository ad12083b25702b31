// The batched forward pass against a naive double-precision implementation (direct
// convolution and pooling by their definitions), the MatmulProvider seam, and thread-count
// independence.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>

#include "nets/forward.h"
#include "nets_test_util.h"

namespace pcmsim::nets {
namespace {

using test::naive_forward;
using test::Vec;

MatrixF random_images(Index n, Index d, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.f, 1.f);
  MatrixF x(n, d);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = nd(rng);
  return x;
}

// float32 GEMMs of length <= ~50 against a double reference: relative error ~1e-6; the
// tolerance 1e-4 (relative to the output's scale) leaves ample margin yet catches any
// indexing error (which changes values by O(1)).
void expect_matches_naive(const Network& net, const MatrixF& x, const MatrixF& y) {
  ASSERT_EQ(y.rows(), x.rows());
  ASSERT_EQ(y.cols(), net.num_classes);
  for (Index n = 0; n < x.rows(); ++n) {
    Vec in(x.cols());
    for (Index k = 0; k < x.cols(); ++k) in[k] = x(n, k);
    Vec ref = naive_forward(net, in);
    double scale = 1e-3;
    for (double v : ref) scale = std::max(scale, std::fabs(v));
    for (Index c = 0; c < net.num_classes; ++c)
      EXPECT_NEAR(y(n, c), ref[c], 1e-4 * scale) << "sample " << n << " class " << c;
  }
}

// A network of one layer under test, then flatten and an identity linear head, so the
// logits are the layer's whole output (nothing hidden by a reduction).
Network single_layer_net(Layer core_layer, std::array<Index, 3> input, unsigned seed) {
  std::mt19937 rng(seed);
  Network net;
  net.name = "single";
  net.input_shape = input;
  net.input_mean.assign(input[0], 0.f);
  net.input_std.assign(input[0], 1.f);
  test::fill_weights(core_layer, rng);
  net.layers.push_back(core_layer);
  net.layers.push_back(Layer::make("flat", LayerKind::flatten));
  net.num_classes = 1;
  const Index F = infer_shapes(net, false).back().output.size();
  Layer lin = Layer::make_linear("head", F, F);
  lin.weight.shape = {F, F};
  lin.weight.data.assign(F * F, 0.f);
  for (Index k = 0; k < F; ++k) lin.weight.data[k * F + k] = 1.f;
  net.layers.push_back(lin);
  net.num_classes = F;
  return net;
}

TEST(Forward, TinyResnetMatchesNaive) {
  Network net = test::tiny_resnet(3);
  net.validate();
  MatrixF x = random_images(7, net.input_size(), 11);
  Fp32Matmul mm(net);
  MatrixF y = forward(net, x, mm);
  expect_matches_naive(net, x, y);
}

struct ConvCase {
  Index cin, cout, kh, kw, sh, sw, ph, pw, dh, dw, groups, H, W;
};

TEST(Forward, ConvolutionsMatchDirectImplementation) {
  const ConvCase cases[] = {
      {3, 5, 3, 3, 1, 1, 0, 0, 1, 1, 1, 7, 6},    // plain valid
      {3, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1, 8, 9},    // stride + padding
      {2, 3, 3, 2, 1, 3, 2, 1, 2, 1, 1, 9, 8},    // dilation, asymmetric everything
      {4, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, 6, 6},    // grouped
      {6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 6, 5, 7},    // depthwise
      {3, 6, 5, 5, 2, 1, 2, 2, 2, 1, 3, 11, 10},  // depthwise multiplier 2, dilation, stride
      {5, 2, 1, 1, 1, 1, 0, 0, 1, 1, 1, 4, 4},    // 1x1
      // Eight channels and eight taps at a time (AVX2), the rest one by one:
      {16, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 6, 5},     // 3x3, padding: 2 x 8 channels, tap 9 apart
      {20, 2, 5, 5, 2, 2, 2, 1, 1, 1, 1, 9, 8},     // 5x5: taps 8 + 8 + 8 + 1, channels 8 + 8 + 4
      {24, 4, 3, 3, 1, 2, 1, 0, 2, 1, 2, 7, 9},     // grouped (12 per group), dilation, stride
      {16, 3, 1, 1, 1, 1, 0, 0, 1, 1, 1, 4, 4},     // 1x1 with 16 channels
      {8, 2, 3, 3, 1, 1, 3, 3, 1, 1, 1, 3, 3},      // padding wider than the image
      {2, 2, 9, 9, 1, 1, 1, 1, 1, 1, 1, 10, 10},    // 81 taps: the strided loop
  };
  unsigned seed = 100;
  for (const auto& c : cases) {
    Layer L = Layer::make_conv2d("conv", c.cin, c.cout, {c.kh, c.kw}, {c.sh, c.sw}, {c.ph, c.pw},
                                 {c.dh, c.dw}, c.groups);
    Network net = single_layer_net(L, {c.cin, c.H, c.W}, seed++);
    MatrixF x = random_images(3, net.input_size(), seed++);
    Fp32Matmul mm(net);
    SCOPED_TRACE(testing::Message() << "cin " << c.cin << " cout " << c.cout << " k " << c.kh << "x"
                                    << c.kw << " groups " << c.groups);
    expect_matches_naive(net, x, forward(net, x, mm));
  }
}

// The conv's rows are produced block by block (kPositionBlock positions in Fp32Matmul): blocks
// that start inside a sample, or inside an output row, must continue its positions correctly.
TEST(Forward, ConvRowsProducedInBlocksThatStartMidSample) {
  Layer L = Layer::make_conv2d("conv", 16, 3, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1);
  Network net = single_layer_net(L, {16, 9, 7}, 7);  // 63 positions per sample
  MatrixF x = random_images(11, net.input_size(), 8);  // 693 rows: blocks start at 256, 512
  ASSERT_NE(256 % 63, 0);
  Fp32Matmul mm(net);
  expect_matches_naive(net, x, forward(net, x, mm));
}

TEST(Forward, PoolingMatchesDirectImplementation) {
  struct PoolCase {
    LayerKind kind;
    Index kh, kw, sh, sw, ph, pw, dh, dw;
    bool ceil, include_pad;
    Index H, W;
  };
  const PoolCase cases[] = {
      {LayerKind::maxpool2d, 2, 2, 2, 2, 0, 0, 1, 1, false, true, 8, 8},
      {LayerKind::maxpool2d, 3, 3, 2, 2, 1, 1, 1, 1, false, true, 9, 7},
      {LayerKind::maxpool2d, 2, 3, 2, 2, 1, 1, 1, 1, true, true, 7, 8},
      {LayerKind::maxpool2d, 3, 2, 1, 2, 0, 1, 2, 1, true, true, 9, 9},  // dilation
      {LayerKind::avgpool2d, 2, 2, 2, 2, 0, 0, 1, 1, false, true, 8, 6},
      {LayerKind::avgpool2d, 3, 3, 2, 2, 1, 1, 1, 1, false, true, 7, 7},
      {LayerKind::avgpool2d, 3, 3, 2, 2, 1, 1, 1, 1, false, false, 7, 7},
      {LayerKind::avgpool2d, 3, 2, 2, 2, 1, 1, 1, 1, true, true, 8, 7},
      {LayerKind::avgpool2d, 3, 3, 2, 2, 1, 1, 1, 1, true, false, 8, 8},
  };
  unsigned seed = 200;
  for (const auto& c : cases) {
    Layer L = Layer::make("pool", c.kind);
    L.kernel_size = {c.kh, c.kw};
    L.stride = {c.sh, c.sw};
    L.padding = {c.ph, c.pw};
    L.dilation = {c.dh, c.dw};
    L.ceil_mode = c.ceil;
    L.count_include_pad = c.include_pad;
    Network net = single_layer_net(L, {3, c.H, c.W}, seed++);
    MatrixF x = random_images(2, net.input_size(), seed++);
    Fp32Matmul mm(net);
    SCOPED_TRACE(testing::Message() << kind_name(c.kind) << " k " << c.kh << "x" << c.kw << " ceil "
                                    << c.ceil << " include_pad " << c.include_pad);
    expect_matches_naive(net, x, forward(net, x, mm));
  }
}

TEST(Forward, PoolOutputSizesFollowPytorch) {
  // Values computed with torch.nn.MaxPool2d / AvgPool2d output shapes.
  Layer L = Layer::make("pool", LayerKind::maxpool2d);
  L.kernel_size = {3, 3};
  L.stride = {2, 2};
  L.ceil_mode = true;
  Network net = single_layer_net(L, {1, 8, 8}, 1);  // floor: 3, ceil: 4 (window at 6 starts inside)
  auto s = infer_shapes(net);
  EXPECT_EQ(s[0].output, (Shape{{1, 4, 4}}));
  net.layers[0].ceil_mode = false;
  net = single_layer_net(net.layers[0], {1, 8, 8}, 1);
  EXPECT_EQ(infer_shapes(net)[0].output, (Shape{{1, 3, 3}}));
  // ceil_mode window that would start in the right padding only is dropped: H=5,k=2,s=2,p=1:
  // floor (5+2-2)/2+1 = 3, ceil would be 4 but (4-1)*2 = 6 >= 5+1 -> 3.
  Layer M = Layer::make("pool", LayerKind::maxpool2d);
  M.kernel_size = {2, 2};
  M.stride = {2, 2};
  M.padding = {1, 1};
  M.ceil_mode = true;
  EXPECT_EQ(infer_shapes(single_layer_net(M, {1, 5, 5}, 1))[0].output, (Shape{{1, 3, 3}}));
}

TEST(Forward, ActivationsMatchDefinitions) {
  const LayerKind kinds[] = {LayerKind::relu,      LayerKind::relu6,       LayerKind::leaky_relu,
                             LayerKind::sigmoid,   LayerKind::tanh,        LayerKind::gelu,
                             LayerKind::silu,      LayerKind::elu,         LayerKind::hardtanh,
                             LayerKind::hardswish, LayerKind::hardsigmoid, LayerKind::identity,
                             LayerKind::dropout};
  for (LayerKind k : kinds) {
    for (bool tanh_approx : {false, true}) {
      if (tanh_approx && k != LayerKind::gelu) continue;
      Layer L = Layer::make("act", k);
      L.negative_slope = 0.2;
      L.alpha = 0.7;
      L.min_val = -0.5;
      L.max_val = 2.0;
      L.gelu_tanh = tanh_approx;
      Network net = single_layer_net(L, {2, 3, 4}, 5);
      MatrixF x = random_images(4, net.input_size(), 6) * 4.0f;  // cover the saturating ranges
      Fp32Matmul mm(net);
      SCOPED_TRACE(kind_name(k));
      expect_matches_naive(net, x, forward(net, x, mm));
    }
  }
}

TEST(Forward, SoftmaxAndLogSoftmax) {
  for (LayerKind k : {LayerKind::softmax, LayerKind::log_softmax}) {
    Network net = test::tiny_resnet(8);
    net.layers.push_back(Layer::make("sm", k));
    MatrixF x = random_images(5, net.input_size(), 9) * 3.0f;
    Fp32Matmul mm(net);
    MatrixF y = forward(net, x, mm);
    expect_matches_naive(net, x, y);
    if (k == LayerKind::softmax) {
      for (Index n = 0; n < y.rows(); ++n) EXPECT_NEAR(y.row(n).sum(), 1.f, 1e-6f);
    }
  }
  Layer sm = Layer::make("sm", LayerKind::softmax);
  sm.axis = 3;  // an image has per-sample axes 0..2 (-3..-1)
  Network bad = test::tiny_resnet(8);
  bad.layers.insert(bad.layers.begin() + 8, sm);  // before flatten: over an image
  EXPECT_THROW(bad.validate(), std::invalid_argument);
  bad.layers[8].axis = -4;
  EXPECT_THROW(bad.validate(), std::invalid_argument);
}

TEST(Forward, FusedActivationsEqualSeparateLayers) {
  for (Activation a :
       {Activation::relu, Activation::relu6, Activation::sigmoid, Activation::tanh,
        Activation::gelu, Activation::silu, Activation::hardswish, Activation::hardsigmoid}) {
    Layer c = Layer::make_conv2d("c", 2, 3, {3, 3}, {1, 1}, {1, 1});
    Network fused = single_layer_net(c, {2, 5, 5}, 9);
    fused.layers[0].activation = a;
    Network sep = single_layer_net(c, {2, 5, 5}, 9);
    LayerKind k = *parse_kind(activation_name(a));
    sep.layers.insert(sep.layers.begin() + 1, Layer::make("a", k));
    MatrixF x = random_images(3, fused.input_size(), 10);
    Fp32Matmul m1(fused), m2(sep);
    MatrixF y1 = forward(fused, x, m1), y2 = forward(sep, x, m2);
    EXPECT_EQ(y1, y2) << activation_name(a);
  }
}

// A provider that records the calls and delegates to FP32.
class RecordingMatmul : public MatmulProvider {
 public:
  explicit RecordingMatmul(const Network& n) : fp32(n) {}
  void begin_batch(Index first, Index size) override { batches.emplace_back(first, size); }
  void matmul(int mi, int g, const core::RowSource& x, MatrixF& y) override {
    calls.push_back({mi, g, x.rows(), x.cols()});
    fp32.matmul(mi, g, x, y);
  }
  struct Call {
    int mi, g;
    Index rows, cols;
  };
  Fp32Matmul fp32;
  std::vector<Call> calls;
  std::vector<std::pair<Index, Index>> batches;
};

TEST(Forward, ProviderSeesOneGemmPerGroupOverTheWholeBatch) {
  Network net = test::tiny_resnet(4);
  auto mats = matrix_layers(net);
  ASSERT_EQ(mats.size(), 5u);  // conv1, dw, conv3, fc1, fc2
  RecordingMatmul rec(net);
  MatrixF x = random_images(10, net.input_size(), 1);
  MatrixF y = logits(net, x, rec, 4);  // batches 4, 4, 2
  ASSERT_EQ(rec.batches.size(), 3u);
  EXPECT_EQ(rec.batches[1], (std::pair<Index, Index>(4, 4)));
  EXPECT_EQ(rec.batches[2], (std::pair<Index, Index>(8, 2)));
  // Per batch: conv1 1 group, dw 4 groups, conv3 2 groups, fc1, fc2 = 9 calls.
  ASSERT_EQ(rec.calls.size(), 27u);
  // First batch: conv1 gets 4 images * 81 positions x (2*3*3) rows.
  EXPECT_EQ(rec.calls[0].mi, 0);
  EXPECT_EQ(rec.calls[0].rows, 4 * 81);
  EXPECT_EQ(rec.calls[0].cols, 18);
  EXPECT_EQ(rec.calls[1].mi, 1);  // depthwise: rows = 1*3*3
  EXPECT_EQ(rec.calls[1].cols, 9);
  EXPECT_EQ(rec.calls[4].g, 3);
  EXPECT_EQ(rec.calls[5].mi, 2);  // conv3: 2 groups of (2*2*3) rows, 9 positions
  EXPECT_EQ(rec.calls[5].rows, 4 * 9);
  EXPECT_EQ(rec.calls[5].cols, 12);
  EXPECT_EQ(rec.calls[8].mi, 4);
  EXPECT_EQ(rec.calls[8].rows, 4);
  // Batching does not change the result: the same rows through one batch.
  Fp32Matmul mm(net);
  MatrixF y_one = forward(net, x, mm);
  EXPECT_TRUE(y.isApprox(y_one, 1e-6f));
}

TEST(Forward, MatrixLayersUseIm2colOrder) {
  Network net = test::tiny_resnet(5);
  auto mats = matrix_layers(net);
  const Layer& conv3 = net.layers[5];
  const MatrixLayer& m = mats[2];
  EXPECT_EQ(m.name, "conv3");
  EXPECT_EQ(m.layer_index, 5);
  EXPECT_EQ(m.groups, 2);
  EXPECT_EQ(m.rows, 2 * 2 * 3);
  EXPECT_EQ(m.cols, 3);
  EXPECT_EQ(m.positions, 9);
  // W_g[(c*kh + i)*kw + j][o] = weight[g*O_g + o][c][i][j]
  for (Index g = 0; g < 2; ++g)
    for (Index o = 0; o < 3; ++o)
      for (Index c = 0; c < 2; ++c)
        for (Index i = 0; i < 2; ++i)
          for (Index j = 0; j < 3; ++j)
            EXPECT_EQ(m.weights[g]((c * 2 + i) * 3 + j, o),
                      conv3.weight.data[(((g * 3 + o) * 2 + c) * 2 + i) * 3 + j]);
  const MatrixLayer& fc1 = mats[3];
  EXPECT_EQ(fc1.rows, 6);
  EXPECT_EQ(fc1.cols, 5);
  EXPECT_EQ(fc1.weights[0](4, 2), net.layers[9].weight.data[2 * 6 + 4]);
  auto lm = layer_matrices(net);
  ASSERT_EQ(lm.size(), 5u);
  EXPECT_EQ(lm[1].groups, 4);
  EXPECT_EQ(lm[1].rows, 9);
  EXPECT_EQ(lm[1].kernel_h, 3);
}

TEST(Forward, SameBitsForAnyThreadCount) {
  Network net = test::tiny_resnet(6);
  MatrixF x = random_images(300, net.input_size(), 2);  // conv1: 300*81 positions, many blocks
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Fp32Matmul m1(net);
  MatrixF y1 = logits(net, x, m1, 150);
  omp_set_num_threads(2);
  Fp32Matmul m2(net);
  MatrixF y2 = logits(net, x, m2, 150);
  omp_set_num_threads(saved);
  ASSERT_EQ(y1.size(), y2.size());
  EXPECT_EQ(std::memcmp(y1.data(), y2.data(), sizeof(float) * y1.size()), 0);
}

TEST(Forward, PredictAndAccuracy) {
  MatrixF l(3, 3);
  l << 0, 2, 1,  //
      5, 5, 1,   // tie: first maximum, as torch.argmax
      -1, -2, -0.5;
  EXPECT_EQ(argmax_rows(l), (std::vector<int>{1, 0, 2}));
  EXPECT_DOUBLE_EQ(accuracy({1, 0, 2, 2}, {1, 1, 2, 0}), 0.5);
  EXPECT_THROW(accuracy({1}, {1, 2}), std::invalid_argument);
  EXPECT_THROW(accuracy({}, {}), std::invalid_argument);
}

TEST(Forward, RejectsWrongImageSize) {
  Network net = test::tiny_resnet(7);
  Fp32Matmul mm(net);
  MatrixF x(2, net.input_size() + 1);
  x.setZero();
  try {
    forward(net, x, mm);
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("163"), std::string::npos) << e.what();
  }
  EXPECT_THROW(logits(net, MatrixF::Zero(2, net.input_size()), mm, 0), std::invalid_argument);
}

}  // namespace
}  // namespace pcmsim::nets
