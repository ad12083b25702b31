// Evaluation throughput (images per second) of every zoo model (zoo/*.h5) on the simulated
// PCM chip against the FP32 digital path, measured alternately in the same iterations.
//
// Analog: the default chip of `pcmsim run` (256 x 256 tiles, PCM model, 8-bit DAC/ADC, output
// noise, GDC on), programmed once, snapshot one day after programming; an iteration runs the
// images through nets::predict with the chip's provider (tiles + digital unit). FP32: the same
// images through nets::predict with Fp32Matmul. Programming and snapshots are not timed (a
// drift or precision sweep reuses them; see bench_devices for their cost).
//
// Reported per model (manual time = the analog pass):
//   analog_img_s  images per second through the analog chip
//   fp32_img_s    images per second through the FP32 path (same threads, same batches)
//   slowdown      sum of analog times / sum of FP32 times over the iterations
//   cpu_slowdown  the same with process CPU time (robust on a machine shared with other jobs)
//
// Run: build-*/bin/bench_evaluate [--benchmark_filter=resnet] ; env PCMSIM_BENCH_IMAGES
// (default 512) sets the number of images per pass.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/memory.h"
#include "nets/dataset.h"
#include "nets/forward.h"
#include "nets/model_io.h"
#include "nets/simulation.h"

namespace {

using namespace pcmsim;

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

core::Index bench_images() {
  const char* env = std::getenv("PCMSIM_BENCH_IMAGES");
  const long n = env ? std::atol(env) : 512;
  return n > 0 ? n : 512;
}

// The first n Fashion-MNIST test images normalised for `net`, or (without the data set)
// standard-normal images of the model's input size: throughput does not depend on the pixels.
core::MatrixF images_for(const nets::Network& net, core::Index n) {
  if (std::filesystem::exists(std::string(nets::kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz")) {
    const nets::Dataset data = nets::load_dataset("fashion-mnist:t10k", n);
    nets::check_compatible(data, net);
    return nets::normalized_images(data, net);
  }
  std::mt19937 gen(3);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  core::MatrixF x(n, net.input_size());
  for (core::Index i = 0; i < x.size(); ++i) x.data()[i] = dist(gen);
  return x;
}

void bm_evaluate(benchmark::State& state, const std::string& path) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  const nets::Network net = nets::load_network(path);
  const core::MatrixF x = images_for(net, bench_images());
  nets::SimulationConfig config;  // the defaults of `pcmsim run`
  config.seed = 1;
  const nets::ProgrammedChip chip(net, config, 0);
  const nets::ConverterSetup converters(chip, config);
  nets::ChipForward chip_forward(chip, converters, chip.at(86400.0));
  nets::Fp32Matmul fp32(net);
  const core::Index batch = 256;
  std::vector<int> p_analog, p_fp32;
  auto analog = [&] { p_analog = nets::predict(net, x, chip_forward, batch); };
  auto digital = [&] { p_fp32 = nets::predict(net, x, fp32, batch); };
  analog();
  digital();  // warm-up (buffers sized)

  using clock = std::chrono::steady_clock;
  double a_s = 0, f_s = 0, a_cpu = 0, f_cpu = 0;
  for (auto _ : state) {
    const double c0 = cpu_seconds();
    const auto t0 = clock::now();
    analog();
    const auto t1 = clock::now();
    const double c1 = cpu_seconds();
    digital();
    const auto t2 = clock::now();
    const double c2 = cpu_seconds();
    const double a = std::chrono::duration<double>(t1 - t0).count();
    const double f = std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(a);
    a_s += a;
    f_s += f;
    a_cpu += c1 - c0;
    f_cpu += c2 - c1;
    benchmark::DoNotOptimize(p_analog.data());
    benchmark::DoNotOptimize(p_fp32.data());
  }
  const double n = static_cast<double>(x.rows()) * state.iterations();
  state.counters["analog_img_s"] = n / a_s;
  state.counters["fp32_img_s"] = n / f_s;
  state.counters["slowdown"] = a_s / f_s;
  state.counters["cpu_slowdown"] = a_cpu / f_cpu;
  state.counters["tiles"] = static_cast<double>(chip.plan().tiles_used);
  state.SetItemsProcessed(static_cast<std::int64_t>(n));
}

std::vector<std::string> zoo_models() {
  // The source tree: $PCMSIM_SOURCE_DIR, else where this file was compiled from.
  const char* env = std::getenv("PCMSIM_SOURCE_DIR");
  const std::filesystem::path root =
      env ? std::filesystem::path(env) : std::filesystem::path(__FILE__).parent_path().parent_path();
  const std::filesystem::path dir = root / "zoo";
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".h5") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  pcmsim::core::keep_freed_memory();  // as `pcmsim` does (core/memory.h)
  const auto models = zoo_models();
  if (models.empty()) std::fprintf(stderr, "bench_evaluate: no zoo/*.h5 found\n");
  const int max_threads = omp_get_max_threads();
  for (const auto& path : models) {
    const std::string name = std::filesystem::path(path).stem().string();
    auto* b = benchmark::RegisterBenchmark(("BM_Evaluate/" + name).c_str(), bm_evaluate, path);
    b->ArgName("threads")->Arg(1);
    if (max_threads > 1) b->Arg(max_threads);
    b->UseManualTime()->Unit(benchmark::kMillisecond)->MinTime(1.0);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
