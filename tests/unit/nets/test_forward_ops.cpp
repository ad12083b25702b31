// The layer kinds for transformers and imported graphs against direct, hand-written references
// (PyTorch's semantics; tests/python/test_torch_ops.py checks them against PyTorch itself).
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "nets/forward.h"
#include "nets/model_io.h"
#include "nets_test_util.h"

namespace pcmsim::nets {
namespace {

// A network on input (C, H, W) whose layers end in a flatten (added here), run on `x`.
struct Case {
  Network net;
  explicit Case(std::array<Index, 3> in) {
    net.name = "ops";
    net.input_shape = in;
    net.input_mean.assign(static_cast<std::size_t>(in[0]), 0.f);
    net.input_std.assign(static_cast<std::size_t>(in[0]), 1.f);
  }
  int add(Layer L, std::vector<int> inputs = {}) {
    L.inputs = std::move(inputs);
    net.layers.push_back(std::move(L));
    return static_cast<int>(net.layers.size()) - 1;
  }
  // Flattens the last layer, runs, returns the per-sample outputs.
  MatrixF run(const MatrixF& x) {
    add(Layer::make("out", LayerKind::flatten));
    net.num_classes = 1;
    net.num_classes = infer_shapes(net, false).back().output.size();
    net.validate();
    Fp32Matmul mm(net);
    return forward(net, x, mm);
  }
};

MatrixF iota_input(Index B, Index n, float scale = 0.1f) {
  MatrixF x(B, n);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = std::sin(1.7f * i) * scale * (1 + i % 5);
  return x;
}

TEST(ForwardOps, PadModes) {
  for (PadMode mode : {PadMode::constant, PadMode::reflect, PadMode::replicate}) {
    Case c({2, 3, 4});
    Layer p = Layer::make("pad", LayerKind::pad);
    p.pads = {1, 2, 3, 1};  // H: 1 before, 2 after; W: 3 before, 1 after
    p.pad_mode = mode;
    p.pad_value = 0.5;
    c.add(p);
    const MatrixF x = iota_input(2, 24);
    const MatrixF y = c.run(x);
    ASSERT_EQ(y.cols(), 2 * 6 * 8);
    auto src = [&](Index i, Index n) -> Index {  // source index along an axis of size n, or -1
      if (i >= 0 && i < n) return i;
      if (mode == PadMode::constant) return -1;
      if (mode == PadMode::replicate) return i < 0 ? 0 : n - 1;
      return i < 0 ? -i : 2 * (n - 1) - i;
    };
    for (Index b = 0; b < 2; ++b)
      for (Index ch = 0; ch < 2; ++ch)
        for (Index h = 0; h < 6; ++h)
          for (Index w = 0; w < 8; ++w) {
            const Index sh = src(h - 1, 3), sw = src(w - 3, 4);
            const float want = sh < 0 || sw < 0 ? 0.5f : x(b, (ch * 3 + sh) * 4 + sw);
            EXPECT_EQ(y(b, (ch * 6 + h) * 8 + w), want) << int(mode) << " " << h << "," << w;
          }
  }
}

TEST(ForwardOps, AdaptiveAveragePoolingWindowsFollowPytorch) {
  Case c({3, 5, 7});
  Layer p = Layer::make("pool", LayerKind::adaptive_avgpool2d);
  p.output_size = {2, 3};
  c.add(p);
  const MatrixF x = iota_input(2, 3 * 35);
  const MatrixF y = c.run(x);
  for (Index b = 0; b < 2; ++b)
    for (Index ch = 0; ch < 3; ++ch)
      for (Index oh = 0; oh < 2; ++oh)
        for (Index ow = 0; ow < 3; ++ow) {
          // PyTorch: start = floor(i * in / out), end = ceil((i + 1) * in / out).
          const Index h0 = oh * 5 / 2, h1 = ((oh + 1) * 5 + 1) / 2;
          const Index w0 = ow * 7 / 3, w1 = ((ow + 1) * 7 + 2) / 3;
          double s = 0;
          for (Index h = h0; h < h1; ++h)
            for (Index w = w0; w < w1; ++w) s += x(b, (ch * 5 + h) * 7 + w);
          EXPECT_NEAR(y(b, (ch * 2 + oh) * 3 + ow), s / double((h1 - h0) * (w1 - w0)), 1e-6);
        }
}

TEST(ForwardOps, ConcatTransposeReshapeAndMatmul) {
  // x (2, 3, 4): cat along channels with itself scaled (image layout path), then along the
  // last axis (plain path); a transpose; a matmul of two activations.
  Case c({2, 3, 4});
  Layer s = Layer::make("s", LayerKind::scale);
  s.scale = 2;
  s.shift = -1;
  const int a = c.add(s, {kNetworkInput});
  Layer cat0 = Layer::make("cat0", LayerKind::concat);
  cat0.axis = 0;
  const int k0 = c.add(cat0, {kNetworkInput, a});  // (4, 3, 4)
  Layer r = Layer::make("r", LayerKind::reshape);
  r.shape = {4, 12};
  const int k1 = c.add(r, {k0});  // (4, 12)
  Layer t = Layer::make("t", LayerKind::transpose);
  t.perm = {1, 0};
  const int k2 = c.add(t, {k1});  // (12, 4)
  const int k3 = c.add(Layer::make("mm", LayerKind::matmul), {k1, k2});  // (4, 4)
  Layer cat1 = Layer::make("cat1", LayerKind::concat);
  cat1.axis = -1;
  c.add(cat1, {k3, k1});  // (4, 16)
  const MatrixF x = iota_input(3, 24);
  const MatrixF y = c.run(x);
  ASSERT_EQ(y.cols(), 64);
  for (Index b = 0; b < 3; ++b) {
    auto X = [&](Index ch, Index j) {  // (4, 12) after cat0 + reshape
      const float v = x(b, (ch % 2) * 12 + j);
      return ch < 2 ? v : 2 * v - 1;
    };
    for (Index i = 0; i < 4; ++i) {
      for (Index j = 0; j < 4; ++j) {
        double s2 = 0;
        for (Index k = 0; k < 12; ++k) s2 += double(X(i, k)) * X(j, k);
        EXPECT_NEAR(y(b, i * 16 + j), s2, 1e-5);
      }
      for (Index j = 0; j < 12; ++j) EXPECT_EQ(y(b, i * 16 + 4 + j), X(i, j));
    }
  }
}

TEST(ForwardOps, LayerNormSoftmaxAxisAndReduceMean) {
  Case c({2, 3, 4});
  std::mt19937 rng(3);
  Layer ln = Layer::make("ln", LayerKind::layernorm);
  ln.shape = {3, 4};
  ln.eps = 1e-3;
  ln.weight = test::random_tensor({3, 4}, rng, 0.3f, 1.f);
  ln.bias = test::random_tensor({3, 4}, rng, 0.1f);
  const int l = c.add(ln);
  Layer sm = Layer::make("sm", LayerKind::softmax);
  sm.axis = 1;  // over H of (C, H, W)
  const int s = c.add(sm, {l});
  Layer rm = Layer::make("rm", LayerKind::reduce_mean);
  rm.axes = {0, -1};
  rm.keepdims = false;
  c.add(rm, {s});  // (3)
  const MatrixF x = iota_input(2, 24, 1.f);
  const MatrixF y = c.run(x);
  ASSERT_EQ(y.cols(), 3);
  for (Index b = 0; b < 2; ++b) {
    double out[2][3][4];
    for (Index ch = 0; ch < 2; ++ch) {
      double mean = 0, var = 0;
      for (Index i = 0; i < 12; ++i) mean += x(b, ch * 12 + i) / 12.0;
      for (Index i = 0; i < 12; ++i) var += std::pow(x(b, ch * 12 + i) - mean, 2) / 12.0;
      for (Index i = 0; i < 12; ++i)
        out[ch][i / 4][i % 4] = (x(b, ch * 12 + i) - mean) / std::sqrt(var + 1e-3) *
                                    ln.weight.data[i] + ln.bias.data[i];
      for (Index w = 0; w < 4; ++w) {
        double z = 0;
        for (Index h = 0; h < 3; ++h) z += std::exp(out[ch][h][w]);
        for (Index h = 0; h < 3; ++h) out[ch][h][w] = std::exp(out[ch][h][w]) / z;
      }
    }
    for (Index h = 0; h < 3; ++h) {
      double m = 0;
      for (Index ch = 0; ch < 2; ++ch)
        for (Index w = 0; w < 4; ++w) m += out[ch][h][w] / 8.0;
      EXPECT_NEAR(y(b, h), m, 1e-6);
    }
  }
}

TEST(ForwardOps, BroadcastingArithmeticWithConstants) {
  Case c({1, 3, 4});
  Layer r = Layer::make("r", LayerKind::reshape);
  r.shape = {3, 4};
  const int x0 = c.add(r);
  Layer k = Layer::make("k", LayerKind::constant);
  k.weight.shape = {1, 4};
  k.weight.data = {1.f, -2.f, 0.5f, 4.f};
  const int kc = c.add(k, {});
  Layer col = Layer::make("col", LayerKind::constant);
  col.weight.shape = {3, 1};
  col.weight.data = {2.f, 3.f, -1.f};
  const int cc = c.add(col, {});
  const int d = c.add(Layer::make("sub", LayerKind::sub), {x0, kc});   // (3, 4)
  const int m = c.add(Layer::make("mul", LayerKind::mul), {cc, d});     // (3, 4)
  const int q = c.add(Layer::make("div", LayerKind::div), {m, kc});     // (3, 4)
  const int a = c.add(Layer::make("add", LayerKind::add), {q, cc});     // (3, 4)
  Layer p = Layer::make("p", LayerKind::pow);
  p.exponent = 2;
  const int pw = c.add(p, {a});
  const int sq = c.add(Layer::make("sqrt", LayerKind::sqrt), {pw});
  c.add(Layer::make("erf", LayerKind::erf), {sq});
  const MatrixF x = iota_input(2, 12, 1.f);
  const MatrixF y = c.run(x);
  for (Index b = 0; b < 2; ++b)
    for (Index i = 0; i < 3; ++i)
      for (Index j = 0; j < 4; ++j) {
        const float v = (col.weight.data[i] * (x(b, i * 4 + j) - k.weight.data[j])) /
                            k.weight.data[j] + col.weight.data[i];
        EXPECT_NEAR(y(b, i * 4 + j), std::erf(std::sqrt(v * v)), 1e-6);
      }
}

TEST(ForwardOps, Conv1dEqualsDirectConvolution) {
  Case c({4, 1, 9});
  Layer r = Layer::make("r", LayerKind::reshape);
  r.shape = {4, 9};
  c.add(r);
  Layer conv = Layer::make_conv2d("conv", 4, 6, {1, 3}, {1, 2}, {0, 2}, {1, 2}, 2);
  conv.kind = LayerKind::conv1d;
  std::mt19937 rng(5);
  conv.weight = test::random_tensor({6, 2, 3}, rng);
  conv.bias = test::random_tensor({6}, rng, 0.1f);
  c.add(conv);
  const MatrixF x = iota_input(2, 36, 1.f);
  const MatrixF y = c.run(x);
  const Index Lo = (9 + 4 - 2 * 2 - 1) / 2 + 1;
  ASSERT_EQ(y.cols(), 6 * Lo);
  for (Index b = 0; b < 2; ++b)
    for (Index o = 0; o < 6; ++o)
      for (Index l = 0; l < Lo; ++l) {
        double s = conv.bias.data[o];
        const Index g = o / 3;
        for (Index ci = 0; ci < 2; ++ci)
          for (Index k = 0; k < 3; ++k) {
            const Index pos = l * 2 - 2 + k * 2;
            if (pos >= 0 && pos < 9)
              s += double(conv.weight.data[(o * 2 + ci) * 3 + k]) * x(b, (g * 2 + ci) * 9 + pos);
          }
        EXPECT_NEAR(y(b, o * Lo + l), s, 1e-5);
      }
  EXPECT_EQ(matrix_layers(c.net).at(0).positions, Lo);
}

TEST(ForwardOps, EmbeddingLookupAndBadIndices) {
  Case c({1, 1, 3});
  Layer e = Layer::make("emb", LayerKind::embedding);
  e.num_embeddings = 5;
  e.embedding_dim = 2;
  e.weight.shape = {5, 2};
  e.weight.data = {0, 1, 10, 11, 20, 21, 30, 31, 40, 41};
  c.add(e);
  MatrixF x(1, 3);
  x << 4, 0, 2;
  const MatrixF y = c.run(x);
  MatrixF want(1, 6);
  want << 40, 41, 0, 1, 20, 21;
  EXPECT_EQ(y, want);
  Fp32Matmul mm(c.net);
  for (float bad : {5.f, -1.f, 1.5f, NAN}) {
    x(0, 1) = bad;
    EXPECT_THROW(forward(c.net, x, mm), std::invalid_argument) << bad;
  }
}

TEST(ForwardOps, ShapeErrorsNameTheLayer) {
  Case c({2, 3, 4});
  Layer t = Layer::make("t", LayerKind::transpose);
  t.perm = {0, 0, 1};
  c.add(t);
  c.net.num_classes = 24;
  EXPECT_THROW(c.net.validate(), std::invalid_argument);
  c.net.layers[0].perm = {2, 0, 1};
  c.add(Layer::make("f", LayerKind::flatten));
  EXPECT_NO_THROW(c.net.validate());
  Layer r = Layer::make("r", LayerKind::reshape);
  r.shape = {5, -1};  // 24 values do not split into rows of 5
  c.net.layers.insert(c.net.layers.begin() + 1, r);
  try {
    c.net.validate();
    ADD_FAILURE();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'r' (reshape)"), std::string::npos) << e.what();
  }
}

TEST(ForwardOps, NewKindsSurviveTheModelFile) {
  Case c({2, 3, 4});
  Layer p = Layer::make("pad", LayerKind::pad);
  p.pads = {1, 1};
  p.pad_mode = PadMode::reflect;
  c.add(p);
  Layer ln = Layer::make("ln", LayerKind::layernorm);
  ln.shape = {6};
  c.add(ln);
  Layer sm = Layer::make("sm", LayerKind::log_softmax);
  sm.axis = 0;
  c.add(sm);
  Layer rm = Layer::make("rm", LayerKind::reduce_mean);
  rm.axes = {1};
  c.add(rm);
  Layer pw = Layer::make("pw", LayerKind::pow);
  pw.exponent = 3;
  c.add(pw);
  const MatrixF x = iota_input(2, 24, 1.f);
  const MatrixF y = c.run(x);
  test::TempDir dir;
  save_network(c.net, dir.file("m.h5"));
  const Network back = load_network(dir.file("m.h5"));
  Fp32Matmul mm(back);
  EXPECT_EQ(forward(back, x, mm), y);
  for (std::size_t i = 0; i < back.layers.size(); ++i)
    EXPECT_EQ(back.layers[i].kind, c.net.layers[i].kind);
  EXPECT_EQ(back.layers[0].pads, (std::vector<Index>{1, 1}));
  EXPECT_EQ(back.layers[3].keepdims, true);
}

}  // namespace
}  // namespace pcmsim::nets
