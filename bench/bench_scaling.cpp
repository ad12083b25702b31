// Scaling: a ResNet-18-shaped network (CIFAR layout: 3 x 32 x 32 inputs, a 3x3 stem, four
// stages of two basic blocks at widths w, 2w, 4w, 8w with strides 1, 2, 2, 2, global average
// pooling, a linear classifier; random weights) at base widths 16, 32 and 64 (= ResNet-18), on the
// default chip of `pcmsim run` one day after programming against pcmsim's FP32 path, alternately.
//
// Prints one JSON line per width: weights, analog and FP32 images per second and their ratio
// (slowdown), and the simulator state: resident memory grown by programming the chip and taking
// one snapshot (ProgrammedChip + ConverterSetup + ChipForward), in bytes per weight.
//
// Run: build/bin/bench_scaling  (env PCMSIM_BENCH_IMAGES, default 64; PCMSIM_SCALING_WIDTHS,
// default "16,32,64").
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/memory.h"
#include "nets/forward.h"
#include "nets/network.h"
#include "nets/simulation.h"

namespace {

using namespace pcmsim;
using nets::Activation;
using nets::Layer;
using nets::LayerKind;

long rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6) * 1024L;
  return 0;
}

nets::Network resnet18(core::Index w) {
  nets::Network net;
  net.name = "resnet18_w" + std::to_string(w);
  net.input_shape = {3, 32, 32};
  net.num_classes = 10;
  net.input_mean = {0.0f, 0.0f, 0.0f};
  net.input_std = {1.0f, 1.0f, 1.0f};
  std::mt19937 gen(7);
  auto fill = [&](nets::Tensor& t, std::vector<core::Index> shape, double fan_in) {
    t.shape = shape;
    core::Index n = 1;
    for (auto d : shape) n *= d;
    std::normal_distribution<float> dist(0.0f, static_cast<float>(std::sqrt(2.0 / fan_in)));
    t.data.resize(static_cast<std::size_t>(n));
    for (auto& v : t.data) v = dist(gen);
  };
  auto conv = [&](std::string name, core::Index in, core::Index out, core::Index k,
                  core::Index stride, Activation act, std::vector<int> inputs = {}) {
    Layer l = Layer::make_conv2d(name, in, out, {k, k}, {stride, stride}, {k / 2, k / 2},
                                 {1, 1}, 1, act);
    fill(l.weight, {out, in, k, k}, double(in * k * k));
    l.bias.shape = {out};
    l.bias.data.assign(static_cast<std::size_t>(out), 0.0f);
    l.inputs = inputs;
    net.layers.push_back(l);
    return static_cast<int>(net.layers.size()) - 1;
  };
  int x = conv("stem", 3, w, 3, 1, Activation::relu);
  core::Index ch = w;
  const core::Index widths[4] = {w, 2 * w, 4 * w, 8 * w};
  for (int s = 0; s < 4; ++s)
    for (int b = 0; b < 2; ++b) {
      const core::Index out = widths[s], stride = (s > 0 && b == 0) ? 2 : 1;
      const std::string n = "s" + std::to_string(s) + "b" + std::to_string(b);
      const int a = conv(n + "a", ch, out, 3, stride, Activation::relu, {x});
      const int c = conv(n + "b", out, out, 3, 1, Activation::none, {a});
      int shortcut = x;
      if (stride != 1 || ch != out) shortcut = conv(n + "s", ch, out, 1, stride, Activation::none, {x});
      Layer add = Layer::make(n + "add", LayerKind::add);
      add.inputs = {c, shortcut};
      add.activation = Activation::relu;
      net.layers.push_back(add);
      x = static_cast<int>(net.layers.size()) - 1;
      ch = out;
    }
  net.layers.push_back(Layer::make("pool", LayerKind::global_avgpool));
  net.layers.push_back(Layer::make("flatten", LayerKind::flatten));
  Layer fc = Layer::make_linear("fc", ch, 10);
  fill(fc.weight, {10, ch}, double(ch));
  fill(fc.bias, {10}, 1e6);
  net.layers.push_back(fc);
  return net;
}

}  // namespace

int main() {
  pcmsim::core::keep_freed_memory();  // as `pcmsim` does (core/memory.h)
  const char* env_n = std::getenv("PCMSIM_BENCH_IMAGES");
  const core::Index images = env_n ? std::max(1L, std::atol(env_n)) : 64;
  const char* env_w = std::getenv("PCMSIM_SCALING_WIDTHS");
  std::stringstream widths(env_w ? env_w : "16,32,64");
  std::string item;
  while (std::getline(widths, item, ',')) {
    const core::Index w = std::atol(item.c_str());
    const nets::Network net = resnet18(w);
    std::mt19937 gen(3);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    core::MatrixF x(images, net.input_size());
    for (core::Index i = 0; i < x.size(); ++i) x.data()[i] = dist(gen);
    nets::Fp32Matmul fp32(net);
    long weights = 0;
    for (const auto& m : fp32.layers()) weights += m.rows * m.cols * m.groups;
    nets::SimulationConfig config;
    config.seed = 1;
    const long rss0 = rss_bytes();
    const nets::ProgrammedChip chip(net, config, 0);
    const nets::ConverterSetup converters(chip, config);
    nets::ChipForward chip_forward(chip, converters, chip.at(86400.0));
    const long state = rss_bytes() - rss0;
    const core::Index batch = 64;
    using clock = std::chrono::steady_clock;
    double a_s = 0, f_s = 0;
    for (int rep = 0; rep < 2; ++rep) {
      const auto t0 = clock::now();
      const auto pa = nets::predict(net, x, chip_forward, batch);
      const auto t1 = clock::now();
      const auto pf = nets::predict(net, x, fp32, batch);
      const auto t2 = clock::now();
      if (rep == 0) continue;  // warm-up
      a_s += std::chrono::duration<double>(t1 - t0).count();
      f_s += std::chrono::duration<double>(t2 - t1).count();
    }
    std::printf("{\"net\":\"%s\",\"threads\":%d,\"weights\":%ld,\"tiles\":%ld,\"images\":%ld,"
                "\"analog_img_s\":%.1f,\"fp32_img_s\":%.1f,\"slowdown\":%.3f,"
                "\"state_bytes\":%ld,\"state_bytes_per_weight\":%.1f,\"rss_bytes\":%ld}\n",
                net.name.c_str(), omp_get_max_threads(), weights,
                static_cast<long>(chip.plan().tiles_used), static_cast<long>(images),
                images / a_s, images / f_s, a_s / f_s, state, double(state) / double(weights),
                rss_bytes());
    std::fflush(stdout);
  }
  return 0;
}
