// Global drift compensation with the device models: program once, snapshot at several times,
// measure alpha per tile, compensate in the digital unit.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <vector>

#include "core/calibration.h"
#include "core/digital_unit.h"
#include "core/gdc.h"
#include "core/tile.h"
#include "devices/pcm_model.h"
#include "devices/programming.h"
#include "devices/state_independent_model.h"
#include "devices/unit_cell.h"

using namespace pcmsim;
using core::Index;
using core::MatrixF;

namespace {

MatrixF gaussian(Index rows, Index cols, unsigned seed, float sd = 1.f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> n(0.f, sd);
  MatrixF m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = n(gen);
  return m;
}

// A layer programmed on a row/column grid of tiles, its GDC references and calibrated ranges.
struct ChipLayer {
  struct Slot {
    Index row0, col0;
    MatrixF weights;
    devices::ProgrammedBlock programmed;
    std::unique_ptr<core::Tile> tile;
    core::GdcReference gdc;
  };
  std::vector<Slot> slots;
  Index cols = 0;
  core::GdcParams gdc_params;

  ChipLayer(const MatrixF& w, Index tile, std::shared_ptr<const devices::DeviceModel> model,
            const core::IoParams& io, const core::GdcParams& gp,
            const std::vector<MatrixF>* calibration_data = nullptr)
      : cols(w.cols()), gdc_params(gp) {
    std::uint32_t slice = 0;
    for (Index r0 = 0; r0 < w.rows(); r0 += tile)
      for (Index c0 = 0; c0 < w.cols(); c0 += tile, ++slice) {
        const Index nr = std::min(tile, w.rows() - r0), nc = std::min(tile, w.cols() - c0);
        Slot s{r0, c0, w.block(r0, c0, nr, nc), {}, nullptr, {}};
        const core::ConductanceBlock targets =
            devices::weights_to_targets(s.weights, devices::UnitCellSpec{}, model->g_max());
        s.programmed = devices::program_block(targets, model, core::RngKey{11, core::Stage::programming, 0, slice});
        s.tile = std::make_unique<core::Tile>(devices::at_time(s.programmed, 0.0, {}), io);
        slots.push_back(std::move(s));
      }
    if (calibration_data) {  // converter ranges from data, right after programming
      std::vector<core::TilePlacement> places;
      std::vector<core::Tile*> tiles;
      for (auto& s : slots) {
        places.push_back({s.tile.get(), s.row0});
        tiles.push_back(s.tile.get());
      }
      core::apply_ranges(core::calibrate_ranges(places, *calibration_data, {}, core::RngKey{12}),
                         tiles);
    }
    for (std::size_t k = 0; k < slots.size(); ++k) {  // GDC reference at t = 0
      auto& s = slots[k];
      const core::RngKey key{13, core::Stage::tile_forward, 0, static_cast<std::uint32_t>(k), 0, 1000};
      s.gdc = gp.reference == core::GdcReferenceKind::exact
                  ? core::gdc_reference_exact(*s.tile, s.weights, gp, key)
                  : core::gdc_reference(*s.tile, gp, key);
    }
  }

  // Snapshot at t_inf; returns the layer output with and without GDC.
  std::pair<MatrixF, MatrixF> forward(const MatrixF& x, double t_inf) {
    core::LayerAccumulator with, without;
    with.begin(x.rows(), cols);
    without.begin(x.rows(), cols);
    core::TileReadout ro;
    for (std::size_t k = 0; k < slots.size(); ++k) {
      auto& s = slots[k];
      const auto slice = static_cast<std::uint32_t>(k);
      s.tile->set_conductances(
          devices::at_time(s.programmed, t_inf, core::RngKey{14, core::Stage::snapshot, 0, slice}));
      const core::GdcResult g = core::gdc_alpha(
          *s.tile, s.gdc, core::RngKey{13, core::Stage::tile_forward, 0, slice, 0, 2000});
      s.tile->forward(x.middleCols(s.row0, s.tile->rows()),
                      core::RngKey{15, core::Stage::tile_forward, 0, slice}, ro);
      with.add(ro, s.col0, &g.alpha);
      without.add(ro, s.col0);
    }
    return {with.finish(), without.finish()};
  }
};

double rel(const MatrixF& y, const MatrixF& ref) { return (y - ref).norm() / ref.norm(); }

// The error of the best single scale factor for the whole layer (least squares): what a
// perfect global compensation could reach; the rest is device noise.
double rel_best_scale(const MatrixF& y, const MatrixF& ref) {
  const double c = static_cast<double>(y.cwiseProduct(ref).sum()) / y.squaredNorm();
  return (y * static_cast<float>(c) - ref).norm() / ref.norm();
}

}  // namespace

// Deterministic drift (state_independent model with one nu = 0.1 for every device, no read
// noise; programming noise stays: it is frozen), converters and output noise off: GDC restores
// the t = 0 output exactly at every time, per tile and per column.
TEST(GdcDrift, RestoresT0OutputUnderDeterministicDrift) {
  devices::StateIndependentParams sp;
  sp.nu_std = 0;
  sp.read_noise_scale = 0;
  auto model = std::make_shared<devices::StateIndependentModel>(sp);
  core::IoParams io;
  io.p_in = 0;
  io.p_out = 0;
  io.out_bound = INFINITY;
  io.out_noise = 0;
  const MatrixF w = gaussian(300, 200, 1, 0.05f);
  const MatrixF x = gaussian(20, 300, 2);
  for (auto gran : {core::GdcGranularity::per_tile, core::GdcGranularity::per_column}) {
    core::GdcParams gp;
    gp.granularity = gran;
    ChipLayer layer(w, 128, model, io, gp);
    const MatrixF y0 = layer.forward(x, 0.0).first;
    for (double t : {3600.0, 86400.0, 3.15e7}) {
      const auto [with, without] = layer.forward(x, t);
      const double drift = std::pow((t + 20) / 20, -0.1);
      EXPECT_NEAR(rel(without, y0), 1 - drift, 1e-4);  // the drift is real
      EXPECT_LT(rel(with, y0), 1e-6) << t;             // and GDC removes it
    }
  }
}

// The PCM model (programming noise, conductance-dependent nu, read noise), IBM default tile
// (8-bit converters, output noise 0.04): GDC recovers most of the drift loss at 1 day and
// 1 year against the t = 0 output; the residual is the device noise, which GDC cannot remove.
TEST(GdcDrift, RecoversMostOfThePcmDriftLoss) {
  auto model = std::make_shared<devices::PcmModel>();
  const MatrixF w = gaussian(512, 256, 3, 0.05f);
  const MatrixF x = gaussian(64, 512, 4);
  for (auto refk : {core::GdcReferenceKind::programmed, core::GdcReferenceKind::exact}) {
    core::GdcParams gp;
    gp.reference = refk;
    ChipLayer layer(w, 256, model, core::IoParams{}, gp);
    const MatrixF y0 = layer.forward(x, 0.0).first;
    for (double t : {86400.0, 3.15e7}) {
      const auto [with, without] = layer.forward(x, t);
      const double best = rel_best_scale(without, y0);
      std::printf("PCM, 8-bit, %s reference, t = %.0f s: error vs t0 without GDC %.3f, with %.3f,"
                  " best global scale %.3f\n",
                  core::to_string(refk).c_str(), t, rel(without, y0), rel(with, y0), best);
      EXPECT_GT(rel(without, y0), 0.3);                      // drift: ~0.66 at 1 day
      EXPECT_LT(rel(with, y0), 0.5 * rel(without, y0)) << t;  // most of it recovered
      // GDC is within 10 % of the best possible global scale; the residual is the spread of
      // nu and the read noise (sigma_nu * ln(t/t0) ~ 0.2-0.4 per device at 1 day).
      EXPECT_LT(rel(with, y0), 1.1 * best) << t;
    }
  }
}

// 4-bit ADC: calibrated ranges plus GDC, the full flow (program, calibrate at t = 0, GDC
// reference, snapshot at 1 day, alpha, forward). GDC still recovers the drift at p_out = 4.
TEST(GdcDrift, FourBitAdcWithCalibratedRanges) {
  auto model = std::make_shared<devices::PcmModel>();
  const Index n = 256, m = 128;
  std::mt19937 gen(5);
  std::normal_distribution<float> nd;
  auto relu = [&](Index b) {
    MatrixF x(b, n);
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = std::max(0.f, nd(gen));
    return x;
  };
  const MatrixF w = gaussian(n, m, 6, 0.05f);
  const std::vector<MatrixF> cal = {relu(256), relu(256)};
  const MatrixF x = relu(200);
  core::IoParams io;
  io.p_out = 4;
  for (auto gran : {core::GdcGranularity::per_tile, core::GdcGranularity::per_column}) {
    core::GdcParams gp;
    gp.granularity = gran;
    ChipLayer layer(w, 256, model, io, gp, &cal);
    const MatrixF y0 = layer.forward(x, 0.0).first;
    const MatrixF ideal = x * w;
    const auto [with, without] = layer.forward(x, 86400.0);
    const double best = rel_best_scale(without, ideal);
    std::printf("PCM, 4-bit calibrated, %s: error vs ideal at t0 %.3f; 1 day without GDC %.3f,"
                " with %.3f, best global scale %.3f\n", core::to_string(gran).c_str(),
                rel(y0, ideal), rel(without, ideal), rel(with, ideal), best);
    // The drifted outputs use only ~2/3 of the calibrated ADC range, so 4-bit rounding costs
    // more than at t = 0; GDC removes the scale error and gets close to the best global scale.
    EXPECT_GT(rel(without, ideal), 0.3);
    EXPECT_LT(rel(with, ideal), 0.8 * rel(without, ideal));
    EXPECT_LT(rel(with, ideal), 1.1 * best);
  }
}
