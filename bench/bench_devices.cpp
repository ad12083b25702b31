// Programming and time snapshots of a 10-million-device block with the PCM model, with 1 and 2
// OpenMP threads, beside a plain copy of the same block (the memory-bandwidth floor).
//
// Reported per benchmark:
//   devices_per_s        devices programmed / snapshot per second (all threads)
//   devices_per_s_core   the same per thread
//   devices_per_cpu_s    devices per CPU-second of the whole process (all threads): the
//                        per-core throughput, robust on a machine shared with other jobs
//   x_copy               time of the operation / time of the plain copy, both measured in
//                        this run with the same thread count (1 = as fast as a memcpy)
//
// Run: build-*/bin/bench_devices [--benchmark_filter=snapshot] [--benchmark_repetitions=3]
#include <benchmark/benchmark.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>

#include <time.h>

#include "core/conductance_block.h"
#include "core/rng.h"
#include "devices/pcm_model.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"

namespace {

using namespace pcmsim;

// 2 x 2000 x 2500 = 10 million devices (one differential pair per weight).
constexpr core::Index kRows = 2000;
constexpr core::Index kCols = 2500;
constexpr double kOneDay = 86400.0;

struct Block {
  std::shared_ptr<const devices::DeviceModel> model = std::make_shared<devices::PcmModel>();
  core::ConductanceBlock targets;
  devices::ProgrammedBlock programmed;
  core::ConductanceBlock out;  // snapshot / copy destination, reused

  Block() {
    // Normal weights, as in a trained layer; built once for all benchmarks.
    core::MatrixF w(kRows, kCols);
    std::mt19937 gen(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (core::Index i = 0; i < w.size(); ++i) w.data()[i] = dist(gen);
    targets = devices::weights_to_targets(w, devices::UnitCellSpec{}, model->g_max());
    core::RngKey key;
    key.seed = 7;
    devices::program_block(targets, model, key, programmed);
    devices::at_time(programmed, kOneDay, key, out);
  }
  std::size_t devices() const { return programmed.num_devices(); }
};

Block& block() {
  static Block b;
  return b;
}

// The plain copy: the programmed conductances into the output block, in the same fixed
// chunks and OpenMP schedule as programming and snapshots.
void copy_block(Block& b) {
  const std::size_t per_array = b.programmed.devices_per_array();
  const std::size_t chunks = (per_array + devices::kBlockChunk - 1) / devices::kBlockChunk;
  const long long tasks = static_cast<long long>(2 * b.programmed.num_planes() * chunks);
  const float* src = b.programmed.g_prog.data();
#pragma omp parallel for schedule(static)
  for (long long t = 0; t < tasks; ++t) {
    const std::size_t array = static_cast<std::size_t>(t) / chunks;
    const std::size_t first = (static_cast<std::size_t>(t) % chunks) * devices::kBlockChunk;
    const std::size_t count = std::min(devices::kBlockChunk, per_array - first);
    auto& plane = b.out.planes[array / 2];
    float* dst = (array % 2 == 0 ? plane.g_plus : plane.g_minus).data();
    std::memcpy(dst + first, src + array * per_array + first, count * sizeof(float));
  }
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double seconds_of(void (*fn)(Block&), Block& b, int reps) {
  double best = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn(b);
    benchmark::ClobberMemory();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Runs `op` in the benchmark loop and reports rates and the ratio to a copy timed right before.
template <class Op>
void run(benchmark::State& state, Op&& op) {
  const int threads = static_cast<int>(state.range(0));
  omp_set_num_threads(threads);
  Block& b = block();
  const double copy_s = seconds_of(copy_block, b, 5);
  double op_s = 0;
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    op(b);
    benchmark::ClobberMemory();
    op_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  const double cpu_s = process_cpu_seconds() - cpu0;
  const double n = static_cast<double>(b.devices()) * static_cast<double>(state.iterations());
  state.counters["devices_per_cpu_s"] = n / cpu_s;
  state.counters["devices_per_s"] = benchmark::Counter(n, benchmark::Counter::kIsRate);
  state.counters["devices_per_s_core"] = benchmark::Counter(n / threads, benchmark::Counter::kIsRate);
  state.counters["x_copy"] = op_s / static_cast<double>(state.iterations()) / copy_s;
  state.counters["threads"] = threads;
}

void BM_copy(benchmark::State& state) {
  run(state, [](Block& b) { copy_block(b); });
}

void BM_program(benchmark::State& state) {
  core::RngKey key;
  key.seed = 11;
  run(state, [&](Block& b) { devices::program_block(b.targets, b.model, key, b.programmed); });
}

void BM_snapshot_1day(benchmark::State& state) {
  core::RngKey key;
  key.seed = 11;
  std::uint32_t sub = 0;
  run(state, [&](Block& b) { devices::at_time(b.programmed, kOneDay, key.with_sub(++sub), b.out); });
}

}  // namespace

BENCHMARK(BM_copy)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_program)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_snapshot_1day)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
