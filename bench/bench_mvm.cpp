// The simulated analog MVM of a 512 x 512 layer on 2 x 2 tiles of 256 x 256 (8-bit DAC/ADC,
// output noise 0.04, PCM conductances one day after programming) against a plain float32 GEMM of
// the same shape (OpenBLAS sgemm when the build has it, core::gemm_plain) and Eigen's GEMM,
// measured alternately in the same iterations.
//
// Reported per benchmark (manual time = the simulated forward: every tile's Tile::forward plus
// the digital unit accumulating the partial sums into the layer output):
//   gemm_ms   median time of the plain GEMM Y = X W (same threads)
//   ratio     sum of simulated times / sum of GEMM times over the iterations (aim <= 1.3)
//   ratio_eigen  the same against Eigen's GEMM
//   cpu_ratio the same with process CPU time (robust on a machine shared with other jobs)
//
// Run: build-*/bin/bench_mvm [--benchmark_filter=batch:1024] [--benchmark_repetitions=3]
// The same measurement as one JSON line: pcmsim bench mvm --threads N --batch B.
#include <benchmark/benchmark.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>
#include <vector>

#include "core/gemm.h"
#include "core/io_params.h"
#include "core/rng.h"
#include "core/tile.h"
#include "core/tiled_sum.h"
#include "devices/pcm_model.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"

namespace {

using namespace pcmsim;

constexpr core::Index kRows = 512, kCols = 512, kTile = 256;
constexpr double kOneDay = 86400.0;

struct PlacedTile {
  core::Index row0, col0;
  std::unique_ptr<core::Tile> tile;
};

struct Layer {
  core::MatrixF w;
  std::vector<PlacedTile> tiles;
  Layer() {
    auto model = std::make_shared<devices::PcmModel>();
    std::mt19937 gen(1);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    w.resize(kRows, kCols);
    for (core::Index i = 0; i < w.size(); ++i) w.data()[i] = dist(gen);
    core::RngKey key;
    key.seed = 1;
    std::uint32_t slice = 0;
    for (core::Index r0 = 0; r0 < kRows; r0 += kTile)
      for (core::Index c0 = 0; c0 < kCols; c0 += kTile, ++slice) {
        const auto targets = devices::weights_to_targets(w.block(r0, c0, kTile, kTile),
                                                         devices::UnitCellSpec{}, model->g_max());
        const auto programmed = devices::program_block(targets, model, key.with_slice(slice));
        tiles.push_back({r0, c0,
                         std::make_unique<core::Tile>(
                             devices::at_time(programmed, kOneDay, key.with_slice(slice)),
                             core::IoParams{})});
      }
  }
};

Layer& layer() {
  static Layer l;
  return l;
}

double cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

void BM_TileMvm(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  omp_set_num_threads(threads);
  Layer& l = layer();
  std::mt19937 gen(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  core::MatrixF x(batch, kRows), y_sim(batch, kCols), y_gemm(batch, kCols);
  for (core::Index i = 0; i < x.size(); ++i) x.data()[i] = dist(gen);
  core::RngKey key;
  key.stage = core::Stage::tile_forward;
  // As the simulator runs a layer (nets::ChipForward): the tiles and the digital sum in cached
  // chunks of rows.
  core::TiledSum tiled_sum;
  std::vector<core::TiledTerm> terms;
  for (std::size_t t = 0; t < l.tiles.size(); ++t)
    terms.push_back({l.tiles[t].tile.get(), l.tiles[t].row0, l.tiles[t].col0,
                     key.with_slice(std::uint32_t(t)), nullptr});
  auto simulate = [&] { tiled_sum.run(terms, x, 0, y_sim); };
  auto gemm = [&] {
    const int parts = std::min(threads, batch);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < parts; ++t) {
      const core::Index b0 = core::Index(batch) * t / parts;
      const core::Index b1 = core::Index(batch) * (t + 1) / parts;
      core::gemm_plain(b1 - b0, kCols, kRows, x.data() + b0 * kRows, kRows, l.w.data(), kCols,
                       y_gemm.data() + b0 * kCols, kCols);
    }
  };
  core::MatrixF y_eigen(batch, kCols);
  auto gemm_eigen = [&] {
    const int parts = std::min(threads, batch);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < parts; ++t) {
      const core::Index b0 = core::Index(batch) * t / parts;
      const core::Index b1 = core::Index(batch) * (t + 1) / parts;
      y_eigen.middleRows(b0, b1 - b0).noalias() = x.middleRows(b0, b1 - b0) * l.w;
    }
  };
  simulate();
  gemm();  // warm-up

  using clock = std::chrono::steady_clock;
  double sim_s = 0, gemm_s = 0, eigen_s = 0, sim_cpu = 0, gemm_cpu = 0;
  std::vector<double> gemm_times;
  for (auto _ : state) {
    const double c0 = cpu_seconds();
    const auto t0 = clock::now();
    simulate();
    const auto t1 = clock::now();
    const double c1 = cpu_seconds();
    gemm();
    const auto t2 = clock::now();
    const double c2 = cpu_seconds();
    gemm_eigen();
    eigen_s += std::chrono::duration<double>(clock::now() - t2).count();
    const double s = std::chrono::duration<double>(t1 - t0).count();
    const double g = std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(s);
    sim_s += s;
    gemm_s += g;
    sim_cpu += c1 - c0;
    gemm_cpu += c2 - c1;
    gemm_times.push_back(g);
    benchmark::DoNotOptimize(y_sim.data());
    benchmark::DoNotOptimize(y_gemm.data());
  }
  std::sort(gemm_times.begin(), gemm_times.end());
  state.counters["gemm_ms"] = 1e3 * gemm_times[gemm_times.size() / 2];
  state.counters["ratio"] = sim_s / gemm_s;
  state.counters["ratio_eigen"] = sim_s / eigen_s;
  state.counters["cpu_ratio"] = sim_cpu / gemm_cpu;
}

// The output-noise normals of the first case (1024 samples x 4 tiles x 256 columns = 1M draws,
// core::fill_normal) against the case's GEMM (1024 x 512 x 512, one thread), alternately:
//   normals_per_gemm  time of the draws / time of the GEMM (the floor they put under `ratio`)
//   normal_ns         time per draw
void BM_NormalsPerGemm(benchmark::State& state) {
  omp_set_num_threads(1);
  Layer& l = layer();
  constexpr core::Index kBatch = 1024;
  const std::size_t n = static_cast<std::size_t>(kBatch) * 4 * kTile;
  std::vector<float> z(n);
  core::MatrixF x = core::MatrixF::Ones(kBatch, kRows), y(kBatch, kCols);
  const core::RngKey key{1, core::Stage::tile_forward};
  std::uint32_t draw = 0;
  double normal_s = 0, gemm_s = 0;
  using clock = std::chrono::steady_clock;
  for (auto _ : state) {
    const auto t0 = clock::now();
    core::fill_normal(key, draw++, 0, n, z.data());
    const auto t1 = clock::now();
    core::gemm_plain(kBatch, kCols, kRows, x.data(), kRows, l.w.data(), kCols, y.data(), kCols);
    const auto t2 = clock::now();
    normal_s += std::chrono::duration<double>(t1 - t0).count();
    gemm_s += std::chrono::duration<double>(t2 - t1).count();
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    benchmark::DoNotOptimize(z.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["normals_per_gemm"] = normal_s / gemm_s;
  state.counters["normal_ns"] = 1e9 * normal_s / (double(n) * double(state.iterations()));
}

}  // namespace

BENCHMARK(BM_NormalsPerGemm)->UseManualTime()->Unit(benchmark::kMillisecond);

BENCHMARK(BM_TileMvm)
    ->ArgNames({"batch", "threads"})
    ->Args({1024, 1})
    ->Args({1024, 2})
    ->Args({1, 1})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
