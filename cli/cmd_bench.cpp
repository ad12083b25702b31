// `pcmsim bench mvm`: cost of the simulated analog MVM relative to a plain float GEMM.
//
// Programs a rows x cols layer on a grid of tiles (device model, PCM by default; any unit cell,
// e.g. bit slices), takes the conductance snapshot at --t-inference, then times, in the same
// run and alternately, (a) the simulated layer forward: every tile's Tile::forward (noise
// management, DAC, the GEMMs of every plane and input cycle, read and output noise, ADC, bound
// management) plus the digital unit accumulating the tile partial sums into the layer output,
// (b) one float32 GEMM Y = X W of the same shape through the GEMM engine (OpenBLAS sgemm when
// the build has it, core/gemm.h) and (c) Eigen's GEMM of the same shape, both with the batch
// split into one part per thread. Prints one JSON line with the medians.
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <boost/program_options.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "circuit/ir_drop.h"
#include "cli/command.h"
#include "cli/setting_options.h"
#include "cli/util.h"
#include "core/settings.h"
#include "mapping/chip_spec.h"
#include "core/digital_unit.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/io_params.h"
#include "core/tile.h"
#include "core/tiled_sum.h"
#include "core/types.h"
#include "devices/device_factory.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"

namespace po = boost::program_options;

namespace pcmsim::cli {
namespace {

constexpr const char* kWhere = "cli bench mvm";
constexpr const char* kUsage =
    "usage: pcmsim bench mvm [options]\n\n"
    "Times the simulated forward of one rows x cols layer mapped on a grid of tiles (every\n"
    "tile's converters, noise and GEMMs, plus the digital accumulation of the partial sums) and,\n"
    "in the same run, one float32 GEMM of the same shape through the GEMM engine (OpenBLAS\n"
    "sgemm when built with it) and through Eigen, on the same threads. Prints one JSON line:\n"
    "{\"case\", \"batch\", \"threads\", \"tiles\", \"engine\", \"sim_ms\", \"gemm_ms\",\n"
    "\"gemm_eigen_ms\", \"ratio\" (sim / engine GEMM), \"ratio_eigen\" (sim / Eigen GEMM),\n"
    "\"gemms\" (GEMM-sized products the case needs: planes x input cycles, twice with pcm_like\n"
    "read noise), \"ratio_per_gemm\" (sim / (gemms x engine GEMM)), \"gemms_done\" (gemms\n"
    "including the samples bound management redid), \"ratio_per_gemm_done\", \"sim_cpu_ms\",\n"
    "\"gemm_cpu_ms\", \"cpu_ratio\"}: medians over --repeats after one warm-up, wall time and\n"
    "process CPU time (the latter is robust on a machine shared with other jobs).\n"
    "Every tile setting (--read-noise, --w-noise, --b-in, --p-in, ...) and unit-cell setting\n"
    "(--cell bit_sliced --weight-bits 8 --slice-bits 4, ...) of `pcmsim run` is an option.\n"
    "With --r-row/--r-col (wire resistance, docs/ir-drop.md) it also computes every tile's\n"
    "effective matrices once and times the same forward on them, alternating with the ideal one;\n"
    "the line then adds \"weff_ms\" (computing them, wall), \"ir_ms\", \"ir_cpu_ms\", \"ir_ratio\"\n"
    "and \"ir_cpu_ratio\" (forward with IR drop / the same forward without).\n";

struct TilePlacement {
  core::Index row0, col0;
  std::unique_ptr<core::Tile> tile;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int run_bench_mvm(const std::vector<std::string>& args) {
  po::options_description opts("Options", 110, 60);
  opts.add_options()
      ("help,h", "show this help and exit")
      ("rows", po::value<int>()->default_value(512), "layer inputs, >= 1")
      ("cols", po::value<int>()->default_value(512), "layer outputs, >= 1")
      ("batch", po::value<int>()->default_value(1024), "input vectors per forward, >= 1")
      ("tile", po::value<std::string>()->default_value("256x256"),
       "tile size ROWSxCOLS; the layer is split over a row/column grid of tiles")
      ("device", po::value<std::string>()->default_value("pcm"),
       "device model: pcm, ideal or state_independent (default parameters)")
      ("t-inference", po::value<double>()->default_value(86400.0),
       "inference time of the conductance snapshot, seconds after programming")
      ("threads", po::value<int>(), "OpenMP threads (default: OMP_NUM_THREADS / all cores)")
      ("repeats", po::value<int>()->default_value(11), "timed repetitions, >= 1")
      ("r-row", po::value<double>()->default_value(0.0),
       "word-line wire resistance per cell segment, ohm (> 0 with --r-col: time IR drop too)")
      ("r-col", po::value<double>()->default_value(0.0),
       "bit-line wire resistance per cell segment, ohm")
      ("seed", po::value<std::string>()->default_value("1"), "random seed (0..2^64-1)");
  po::options_description tile_opts("Tile settings (core::IoParams)", 110, 60);
  add_setting_options<core::IoParams>(tile_opts);
  po::options_description cell_opts("Unit cell (devices::UnitCellSpec)", 110, 60);
  add_setting_options<devices::UnitCellSpec>(cell_opts);
  opts.add(tile_opts).add(cell_opts);
  po::variables_map vm;
  try {
    po::store(parse_arguments(args, opts), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    core::throw_invalid(kWhere, e.what());
  }
  if (vm.count("help")) {
    std::cout << kUsage << "\n" << opts;
    return 0;
  }
  const int rows = vm["rows"].as<int>(), cols = vm["cols"].as<int>();
  const int batch = vm["batch"].as<int>(), repeats = vm["repeats"].as<int>();
  // Upper bounds: a layer of a real network (and what fits in memory), not a typo's size.
  const auto check_range = [](const char* name, long value, long low, long high) {
    if (value < low || value > high)
      core::throw_invalid(
          kWhere, core::concat("--", name, " = ", value, ": must be in [", low, ", ", high, "]"));
  };
  check_range("rows", rows, 1, 65536);
  check_range("cols", cols, 1, 65536);
  check_range("batch", batch, 1, 1 << 20);
  if (repeats < 1)
    core::throw_invalid(kWhere, core::concat("--repeats = ", repeats, ": must be >= 1"));
  const auto tile_shape = mapping::parse_tile_shape(vm["tile"].as<std::string>(), "--tile");
  const int tile_rows = static_cast<int>(tile_shape.first);
  const int tile_cols = static_cast<int>(tile_shape.second);
  if (vm.count("threads")) {
    const int t = vm["threads"].as<int>();
    // libgomp crashes creating a million threads; more than kMaxThreads is never useful.
    check_range("threads", t, 1, kMaxThreads);
    omp_set_num_threads(t);
  }
  const int threads = omp_get_max_threads();
  const double t_inf = vm["t-inference"].as<double>();
  core::require_non_negative(kWhere, "--t-inference", t_inf);

  circuit::IrDropParams ir;
  ir.r_row = vm["r-row"].as<double>();
  ir.r_col = vm["r-col"].as<double>();
  if (!(ir.r_row >= 0) || !std::isfinite(ir.r_row))
    core::throw_invalid(kWhere, core::concat("--r-row = ", ir.r_row, ": must be finite and >= 0"));
  if (!(ir.r_col >= 0) || !std::isfinite(ir.r_col))
    core::throw_invalid(kWhere, core::concat("--r-col = ", ir.r_col, ": must be finite and >= 0"));
  const bool with_ir = !ir.ideal();

  core::IoParams io;
  apply_setting_options(vm, io);
  if (io.p_out == 0 && !given(vm, "out-bound")) io.out_bound = INFINITY;
  io.validate();
  devices::UnitCellSpec cell;
  apply_setting_options(vm, cell);
  cell.validate();

  devices::DeviceSpec spec;
  spec.model = vm["device"].as<std::string>();
  if (spec.model == "tabulated")
    core::throw_invalid(kWhere, "--device tabulated needs a table; use pcm, ideal or "
                                "state_independent here");
  const auto model = devices::make_device_model(spec);

  // The layer: Gaussian weights and inputs (fixed seed).
  const auto seed = std::get<std::uint64_t>(core::parse_value(
      "--seed", core::ValueType::unsigned_integer, vm["seed"].as<std::string>()));
  std::mt19937_64 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  core::MatrixF w(rows, cols), x(batch, rows);
  for (core::Index i = 0; i < w.size(); ++i) w.data()[i] = normal(gen);
  for (core::Index i = 0; i < x.size(); ++i) x.data()[i] = normal(gen);

  // Program the tiles (a row/column grid) and take the snapshot at t_inference.
  core::RngKey key;
  key.seed = seed;
  std::vector<TilePlacement> tiles, tiles_ir;
  double weff_ms = 0;
  std::uint32_t slice = 0;
  for (int r0 = 0; r0 < rows; r0 += tile_rows)
    for (int c0 = 0; c0 < cols; c0 += tile_cols, ++slice) {
      const int nr = std::min(tile_rows, rows - r0), nc = std::min(tile_cols, cols - c0);
      const auto targets =
          devices::weights_to_targets(w.block(r0, c0, nr, nc), cell,
                                      model->g_max());
      const auto programmed = devices::program_block(targets, model, key.with_slice(slice));
      const auto block = devices::at_time(programmed, t_inf, key.with_slice(slice));
      tiles.push_back({r0, c0, std::make_unique<core::Tile>(block, io)});
      if (with_ir) {
        core::ConductanceBlock dropped = block;
        const auto t0 = std::chrono::steady_clock::now();
        circuit::apply_ir_drop(ir, dropped);
        weff_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                       .count();
        tiles_ir.push_back(
            {r0, c0, std::make_unique<core::Tile>(dropped, io)});
      }
    }

  core::TiledSum tiled_sum;
  core::MatrixF y_sim(batch, cols), y_gemm(batch, cols);
  const core::RngKey fkey = key.with_stage(core::Stage::tile_forward);
  std::vector<core::TiledTerm> terms;
  auto simulate_on = [&](std::vector<TilePlacement>& set) {
    terms.clear();
    for (std::size_t t = 0; t < set.size(); ++t)
      terms.push_back({set[t].tile.get(), set[t].row0, set[t].col0,
                       fkey.with_slice(static_cast<std::uint32_t>(t)), nullptr});
    tiled_sum.run(terms, x, 0, y_sim);
  };
  auto simulate = [&] { simulate_on(tiles); };
  auto simulate_ir = [&] { simulate_on(tiles_ir); };
  // The baselines: the same product as one float32 GEMM through the engine (OpenBLAS sgemm)
  // and through Eigen, the batch split into one contiguous part per thread, each part one
  // single-threaded call.
  core::MatrixF y_eigen(batch, cols);
  auto split_gemm = [&](auto&& product, core::MatrixF& y) {
    const int parts = std::min(threads, batch);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < parts; ++t) {
      const core::Index b0 = core::Index(batch) * t / parts, b1 = core::Index(batch) * (t + 1) / parts;
      product(b1 - b0, core::Index(cols), core::Index(rows), x.data() + b0 * rows, core::Index(rows),
              w.data(), core::Index(cols), y.data() + b0 * cols, core::Index(cols));
    }
  };
  auto gemm = [&] { split_gemm(core::gemm_plain, y_gemm); };
  auto gemm_eigen = [&] { split_gemm(core::gemm_plain_eigen, y_eigen); };
  // GEMM-sized products per forward: one per plane group and input cycle, and one more for the
  // variance of pcm_like read noise.
  const int gemms = tiles.front().tile->groups() * tiles.front().tile->cycles() *
                    (io.read_noise == core::ReadNoise::pcm_like && io.w_noise > 0 ? 2 : 1);
  // Wall time (what a user waits) and process CPU time (all threads; robust when the machine
  // is shared with other jobs), medians over the repeats, sim and GEMM alternating.
  using clock = std::chrono::steady_clock;
  auto cpu_ms = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return 1e3 * ts.tv_sec + 1e-6 * ts.tv_nsec;
  };
  std::vector<double> sim_ms, gemm_ms, eigen_ms, sim_cpu, gemm_cpu, eigen_cpu, ir_ms, ir_cpu;
  auto measure = [&](auto&& f, std::vector<double>& wall, std::vector<double>& cpu) {
    const double c0 = cpu_ms();
    const auto t0 = clock::now();
    f();
    wall.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
    cpu.push_back(cpu_ms() - c0);
  };
  simulate();
  if (with_ir) simulate_ir();
  gemm();
  gemm_eigen();  // warm-up
  for (int r = 0; r < repeats; ++r) {
    measure(simulate, sim_ms, sim_cpu);
    if (with_ir) measure(simulate_ir, ir_ms, ir_cpu);
    measure(gemm, gemm_ms, gemm_cpu);
    measure(gemm_eigen, eigen_ms, eigen_cpu);
  }
  const double s = median(sim_ms), g = median(gemm_ms), ge = median(eigen_ms);
  const double sc = median(sim_cpu), gc = median(gemm_cpu);
  // Bound management redoes the clipped samples (every read again): the GEMM-sized products the
  // forward actually computed, averaged over the tiles.
  double redo = 0;
  core::TileReadout readout;
  for (std::size_t t = 0; t < tiles.size(); ++t) {
    const TilePlacement& p = tiles[t];
    p.tile->forward(x.middleCols(p.row0, p.tile->rows()),
                    fkey.with_slice(static_cast<std::uint32_t>(t)), readout);
    for (auto r : readout.bm_rounds) redo += r;
  }
  const double gemms_done = gemms * (1.0 + redo / (double(batch) * double(tiles.size())));
  std::string cell_text = devices::to_string(cell.kind);
  if (cell.kind == devices::CellKind::bit_sliced)
    cell_text += core::concat(" ", cell.weight_bits, "b/", cell.slice_bits, "b");
  char line[1024];
  std::snprintf(line, sizeof line,
                "{\"case\":\"%dx%d tiles %dx%d p_in %d p_out %d b_in %d out_noise %g read_noise %s "
                "w_noise %g cell %s %s t_inf %g\",\"batch\":%d,\"threads\":%d,\"tiles\":%zu,"
                "\"engine\":\"%s\",\"baseline\":\"%s\",\"sim_ms\":%.4f,\"gemm_ms\":%.4f,\"gemm_eigen_ms\":%.4f,"
                "\"ratio\":%.3f,\"ratio_eigen\":%.3f,\"gemms\":%d,\"ratio_per_gemm\":%.3f,"
                "\"gemms_done\":%.2f,\"ratio_per_gemm_done\":%.3f,"
                "\"sim_cpu_ms\":%.4f,\"gemm_cpu_ms\":%.4f,\"cpu_ratio\":%.3f}\n",
                rows, cols, tile_rows, tile_cols, io.p_in, io.p_out, io.b_in, io.out_noise,
                core::to_string(io.read_noise).c_str(), io.w_noise, cell_text.c_str(),
                spec.model.c_str(), t_inf, batch, threads, tiles.size(),
                core::gemm_engine().c_str(), core::gemm_baseline().c_str(), s, g, ge, s / g,
                s / ge, gemms, s / (gemms * g), gemms_done, s / (gemms_done * g), sc,
                gc, sc / gc);
  std::string out = line;
  if (with_ir) {
    const double i = median(ir_ms), ic = median(ir_cpu);
    char extra[320];
    std::snprintf(extra, sizeof extra,
                  ",\"r_row\":%g,\"r_col\":%g,\"weff_ms\":%.1f,\"ir_ms\":%.4f,\"ir_cpu_ms\":%.4f,"
                  "\"ir_ratio\":%.3f,\"ir_cpu_ratio\":%.3f}\n",
                  ir.r_row, ir.r_col, weff_ms, i, ic, i / s, ic / sc);
    out.resize(out.size() - 2);  // drop "}\n"
    out += extra;
  }
  std::cout << out;
  return 0;
}

}  // namespace

PCMSIM_COMMAND("bench mvm",
               "time the simulated tile MVM against a plain float GEMM of the same shape",
               run_bench_mvm);

}  // namespace pcmsim::cli
