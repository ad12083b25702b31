// Helpers for the nets tests: temporary files, random weights, a small residual CNN that uses
// every layer kind, and a naive double-precision forward pass to check the optimised one.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <string>

#include "nets/network.h"

namespace pcmsim::nets::test {

// A fresh temporary folder per test, removed at the end.
class TempDir {
 public:
  TempDir() {
    auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "_" + info->name() : "x";
    path_ = std::filesystem::temp_directory_path() /
            ("pcmsim_nets_" + std::to_string(::getpid()) + "_" + name);
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline Tensor random_tensor(std::vector<Index> shape, std::mt19937& rng, float scale = 0.5f,
                            float offset = 0.f) {
  Tensor t;
  t.shape = std::move(shape);
  std::normal_distribution<float> nd(0.f, 1.f);
  t.data.resize(static_cast<std::size_t>(t.numel()));
  for (auto& v : t.data) v = offset + scale * nd(rng);
  return t;
}

inline void fill_weights(Layer& L, std::mt19937& rng) {
  switch (L.kind) {
    case LayerKind::linear: {
      const float s = 1.f / std::sqrt(static_cast<float>(L.in_features));
      L.weight = random_tensor({L.out_features, L.in_features}, rng, s);
      L.bias = random_tensor({L.out_features}, rng, 0.1f);
      break;
    }
    case LayerKind::conv2d: {
      const Index fan = L.in_channels / L.groups * L.kernel_size[0] * L.kernel_size[1];
      L.weight = random_tensor(
          {L.out_channels, L.in_channels / L.groups, L.kernel_size[0], L.kernel_size[1]}, rng,
          1.f / std::sqrt(static_cast<float>(fan)));
      L.bias = random_tensor({L.out_channels}, rng, 0.1f);
      break;
    }
    case LayerKind::batchnorm1d:
    case LayerKind::batchnorm2d: {
      L.running_mean = random_tensor({L.num_features}, rng, 0.2f);
      L.running_var = random_tensor({L.num_features}, rng, 0.2f, 1.f);
      for (auto& v : L.running_var.data) v = std::fabs(v) + 0.1f;
      L.weight = random_tensor({L.num_features}, rng, 0.2f, 1.f);
      L.bias = random_tensor({L.num_features}, rng, 0.1f);
      break;
    }
    default:
      break;
  }
}

// A residual CNN on (2, 9, 9) images exercising every layer family: padding, ceil-mode
// pooling, a depthwise dilated conv, a grouped strided asymmetric conv, BN 1d/2d, residual add,
// avg pooling without padded counts, global pooling, flatten, linear, parametrised activation.
inline Network tiny_resnet(unsigned seed = 1) {
  std::mt19937 rng(seed);
  Network net;
  net.name = "tiny_resnet";
  net.input_shape = {2, 9, 9};
  net.num_classes = 3;
  net.input_mean = {0.5f, 0.25f};
  net.input_std = {0.5f, 2.0f};
  net.class_names = {"a", "b", "c"};
  auto add = [&](Layer L) {
    fill_weights(L, rng);
    net.layers.push_back(std::move(L));
  };
  add(Layer::make_conv2d("conv1", 2, 4, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, Activation::relu));
  Layer bn = Layer::make("bn1", LayerKind::batchnorm2d);
  bn.num_features = 4;
  bn.eps = 1e-3;
  add(bn);
  add(Layer::make_conv2d("dw", 4, 4, {3, 3}, {1, 1}, {2, 2}, {2, 2}, 4));  // depthwise, dilated
  Layer sum = Layer::make("add1", LayerKind::add);
  sum.inputs = {1, 2};
  sum.activation = Activation::relu;
  add(sum);
  Layer mp = Layer::make("pool1", LayerKind::maxpool2d);
  mp.kernel_size = {2, 2};
  mp.stride = {2, 2};
  mp.ceil_mode = true;  // 9 -> 5
  add(mp);
  add(Layer::make_conv2d("conv3", 4, 6, {2, 3}, {2, 1}, {1, 0}, {1, 1}, 2));  // -> (6, 3, 3)
  Layer ap = Layer::make("pool2", LayerKind::avgpool2d);
  ap.kernel_size = {2, 2};
  ap.stride = {1, 1};
  ap.padding = {1, 1};
  ap.count_include_pad = false;  // -> (6, 4, 4)
  add(ap);
  add(Layer::make("gap", LayerKind::global_avgpool));
  add(Layer::make("flat", LayerKind::flatten));
  add(Layer::make_linear("fc1", 6, 5));
  Layer bn1d = Layer::make("bn2", LayerKind::batchnorm1d);
  bn1d.num_features = 5;
  add(bn1d);
  Layer lr = Layer::make("act", LayerKind::leaky_relu);
  lr.negative_slope = 0.1;
  add(lr);
  add(Layer::make_linear("fc2", 5, 3));
  return net;
}

// ---------------------------------------------------------------------------------------------
// Naive double-precision reference: direct convolution and pooling by definition.

using Vec = std::vector<double>;

inline double act_ref(LayerKind k, const Layer& L, double x) {
  switch (k) {
    case LayerKind::relu:
      return x > 0 ? x : 0;
    case LayerKind::relu6:
      return std::min(std::max(x, 0.0), 6.0);
    case LayerKind::leaky_relu:
      return x >= 0 ? x : L.negative_slope * x;
    case LayerKind::sigmoid:
      return 1 / (1 + std::exp(-x));
    case LayerKind::tanh:
      return std::tanh(x);
    case LayerKind::gelu:
      return L.gelu_tanh
                 ? 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)))
                 : 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case LayerKind::silu:
      return x / (1 + std::exp(-x));
    case LayerKind::elu:
      return x > 0 ? x : L.alpha * (std::exp(x) - 1);
    case LayerKind::hardtanh:
      return std::min(std::max(x, L.min_val), L.max_val);
    case LayerKind::hardswish:
      return x * std::min(std::max(x + 3, 0.0), 6.0) / 6;
    case LayerKind::hardsigmoid:
      return std::min(std::max(x + 3, 0.0), 6.0) / 6;
    default:
      return x;
  }
}

// One sample through the network by the textbook definitions (x: C*H*W, normalised).
inline Vec naive_forward(const Network& net, const Vec& x) {
  auto shapes = infer_shapes(net);
  std::vector<Vec> outs(net.layers.size());
  for (int i = 0; i < static_cast<int>(net.layers.size()); ++i) {
    const Layer& L = net.layers[i];
    auto ins = net.layer_inputs(i);
    const Vec& in = ins[0] < 0 ? x : outs[ins[0]];
    const auto& is = shapes[i].inputs[0].dims;
    const auto& os = shapes[i].output.dims;
    Vec y;
    switch (L.kind) {
      case LayerKind::linear:
        y.assign(L.out_features, 0);
        for (Index o = 0; o < L.out_features; ++o) {
          double s = L.bias.empty() ? 0 : L.bias.data[o];
          for (Index k = 0; k < L.in_features; ++k)
            s += double(L.weight.data[o * L.in_features + k]) * in[k];
          y[o] = s;
        }
        break;
      case LayerKind::conv2d: {
        const Index C = is[0], H = is[1], W = is[2], O = os[0], Ho = os[1], Wo = os[2];
        const Index G = L.groups, Cg = C / G, Og = O / G, kh = L.kernel_size[0],
                    kw = L.kernel_size[1];
        y.assign(O * Ho * Wo, 0);
        for (Index o = 0; o < O; ++o) {
          const Index g = o / Og;
          for (Index oh = 0; oh < Ho; ++oh)
            for (Index ow = 0; ow < Wo; ++ow) {
              double s = L.bias.empty() ? 0 : L.bias.data[o];
              for (Index c = 0; c < Cg; ++c)
                for (Index ky = 0; ky < kh; ++ky)
                  for (Index kx = 0; kx < kw; ++kx) {
                    Index ih = oh * L.stride[0] - L.padding[0] + ky * L.dilation[0];
                    Index iw = ow * L.stride[1] - L.padding[1] + kx * L.dilation[1];
                    if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                    s += double(L.weight.data[((o * Cg + c) * kh + ky) * kw + kx]) *
                         in[((g * Cg + c) * H + ih) * W + iw];
                  }
              y[(o * Ho + oh) * Wo + ow] = s;
            }
        }
        break;
      }
      case LayerKind::batchnorm1d:
      case LayerKind::batchnorm2d: {
        const Index C = L.num_features, P = Index(in.size()) / C;
        y.resize(in.size());
        for (Index c = 0; c < C; ++c)
          for (Index p = 0; p < P; ++p) {
            double g = L.weight.empty() ? 1 : L.weight.data[c];
            double b = L.bias.empty() ? 0 : L.bias.data[c];
            y[c * P + p] = (in[c * P + p] - L.running_mean.data[c]) /
                               std::sqrt(double(L.running_var.data[c]) + L.eps) * g +
                           b;
          }
        break;
      }
      case LayerKind::maxpool2d:
      case LayerKind::avgpool2d: {
        const Index C = is[0], H = is[1], W = is[2], Ho = os[1], Wo = os[2];
        y.assign(C * Ho * Wo, 0);
        for (Index c = 0; c < C; ++c)
          for (Index oh = 0; oh < Ho; ++oh)
            for (Index ow = 0; ow < Wo; ++ow) {
              double best = -INFINITY, sum = 0;
              Index inside = 0, padded = 0;
              for (Index ky = 0; ky < L.kernel_size[0]; ++ky)
                for (Index kx = 0; kx < L.kernel_size[1]; ++kx) {
                  Index ih = oh * L.stride[0] - L.padding[0] + ky * L.dilation[0];
                  Index iw = ow * L.stride[1] - L.padding[1] + kx * L.dilation[1];
                  // positions inside input+padding count for count_include_pad
                  if (ih < H + L.padding[0] && iw < W + L.padding[1]) ++padded;
                  if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                  double v = in[(c * H + ih) * W + iw];
                  best = std::max(best, v);
                  sum += v;
                  ++inside;
                }
              y[(c * Ho + oh) * Wo + ow] =
                  L.kind == LayerKind::maxpool2d
                      ? best
                      : sum / double(L.count_include_pad ? padded : inside);
            }
        break;
      }
      case LayerKind::global_avgpool: {
        const Index C = is[0], P = is[1] * is[2];
        y.assign(C, 0);
        for (Index c = 0; c < C; ++c) {
          for (Index p = 0; p < P; ++p) y[c] += in[c * P + p];
          y[c] /= double(P);
        }
        break;
      }
      case LayerKind::softmax:
      case LayerKind::log_softmax: {
        double mx = *std::max_element(in.begin(), in.end()), s = 0;
        for (double v : in) s += std::exp(v - mx);
        y.resize(in.size());
        for (std::size_t k = 0; k < in.size(); ++k)
          y[k] = L.kind == LayerKind::softmax ? std::exp(in[k] - mx) / s : in[k] - mx - std::log(s);
        break;
      }
      case LayerKind::add: {
        const Vec& b = outs[ins[1]];
        y.resize(in.size());
        for (std::size_t k = 0; k < in.size(); ++k) y[k] = in[k] + b[k];
        break;
      }
      default:
        y = in;
        for (auto& v : y) v = act_ref(L.kind, L, v);
        break;
    }
    for (auto& v : y) v = act_ref(activation_kind(L.activation), L, v);
    outs[i] = std::move(y);
  }
  return outs.back();
}

}  // namespace pcmsim::nets::test
