// IR drop (circuit/crossbar.h): the effective matrix of one array per snapshot, and the tile MVM
// on effective conductances against the same tile on ideal ones.
//
// BM_EffectiveWeights/size/r_mohm/solver: one crossbar_effective_weights of a size x size array
// of PCM-like conductances (uniform 0..25 uS) at r_row = r_col = r_mohm / 1000 ohm, with CHOLMOD
// (solver 0: boundary-last factorisation, no long right-hand sides) or Eigen's SimplicialLLT
// (1: min(m, n) right-hand sides; 256 only, it takes minutes at 512). Reported: ms per array
// (manual time) and
//   gemm_ratio  that time / the time of one float64 GEMM of the same shape (size x size x size),
//               measured in the same iterations (a machine-independent scale of the cost).
// BM_MvmWithIrDrop/batch: Tile::forward of a 512 x 512 tile on IR-dropped conductances (1 ohm)
// against the same tile on the ideal ones, alternated in the same iterations:
//   ratio       time with IR drop / time without (the effective matrix is a plain matrix, so ~1)
//   us_per_vec  time per input vector with IR drop, once the effective matrix is known
//
// Run: build/bin/bench_circuit [--benchmark_filter=Effective]
#include <benchmark/benchmark.h>
#include <time.h>

#include <chrono>
#include <random>

#include "circuit/crossbar.h"
#include "core/io_params.h"
#include "core/tile.h"

namespace {

using namespace pcmsim;
using clock_type = std::chrono::steady_clock;

core::MatrixD random_g(core::Index m, core::Index n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 25e-6);
  core::MatrixD g(m, n);
  for (core::Index i = 0; i < g.size(); ++i) g.data()[i] = u(gen);
  return g;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void BM_EffectiveWeights(benchmark::State& state) {
  const core::Index n = state.range(0);
  const double r = state.range(1) * 1e-3;
  const auto solver = state.range(2) == 0   ? circuit::SparseSolver::schur
                     : state.range(2) == 1 ? circuit::SparseSolver::cholmod
                                           : circuit::SparseSolver::eigen;
  const core::MatrixD g = random_g(n, n, 1);
  const circuit::IrDropParams params{r, r, 0, 0};
  double solve_s = 0, gemm_s = 0;
  core::MatrixD prod;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    core::MatrixD w = circuit::crossbar_effective_weights(g, params, solver);
    const double s = seconds_since(t0);
    t0 = clock_type::now();
    prod.noalias() = g * w;
    gemm_s += seconds_since(t0);
    solve_s += s;
    state.SetIterationTime(s);
    benchmark::DoNotOptimize(w.data());
    benchmark::DoNotOptimize(prod.data());
  }
  state.counters["gemm_ratio"] = solve_s / gemm_s;
}

core::ConductanceBlock block_of(const core::MatrixD& gp, const core::MatrixD& gm) {
  core::ConductanceBlock b;
  b.planes.push_back({gp.cast<float>(), gm.cast<float>(), 1.0});
  b.g_max = 25e-6;
  b.weight_scale = core::VectorD::Constant(gp.cols(), 25e-6);
  return b;
}

void BM_MvmWithIrDrop(benchmark::State& state) {
  const core::Index n = 512, batch = state.range(0);
  const core::ConductanceBlock ideal = block_of(random_g(n, n, 2), random_g(n, n, 3));
  core::ConductanceBlock dropped = ideal;
  circuit::apply_ir_drop({1.0, 1.0, 0, 0}, dropped);
  const core::Tile tile_ideal(ideal, core::IoParams{}), tile_drop(dropped, core::IoParams{});
  std::mt19937 gen(4);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  core::MatrixF x(batch, n);
  for (core::Index i = 0; i < x.size(); ++i) x.data()[i] = dist(gen);
  core::TileReadout out_ideal, out_drop;
  core::RngKey key;
  key.stage = core::Stage::tile_forward;
  tile_ideal.forward(x, key, out_ideal);
  tile_drop.forward(x, key, out_drop);  // warm-up
  double with_s = 0, without_s = 0;
  for (auto _ : state) {
    auto t0 = clock_type::now();
    tile_drop.forward(x, key, out_drop);
    const double s = seconds_since(t0);
    t0 = clock_type::now();
    tile_ideal.forward(x, key, out_ideal);
    without_s += seconds_since(t0);
    with_s += s;
    state.SetIterationTime(s);
  }
  state.counters["ratio"] = with_s / without_s;
  state.counters["us_per_vec"] = 1e6 * with_s / (double(state.iterations()) * double(batch));
}

}  // namespace

BENCHMARK(BM_EffectiveWeights)
    ->ArgNames({"size", "r_mohm", "solver"})
    ->ArgsProduct({{256, 512}, {1000, 10000}, {0, 1}})
    ->Args({256, 1000, 2})
    ->Iterations(2)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MvmWithIrDrop)
    ->ArgNames({"batch"})
    ->Arg(64)
    ->Arg(1024)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
