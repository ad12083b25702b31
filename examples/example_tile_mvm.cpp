// Programs one 64 x 32 weight block onto a PCM crossbar tile and runs a batch of
// matrix-vector multiplications through 8-bit converters, one second and one year after
// programming, with and without global drift compensation.
//
// Build and run: make build && build/bin/example_tile_mvm
#include <cstdio>

#include "core/digital_unit.h"
#include "core/gdc.h"
#include "core/tile.h"
#include "devices/pcm_model.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"

using namespace pcmsim;

int main() {
  const core::Index rows = 64, cols = 32, batch = 128;
  // A weight block and a batch of inputs, drawn from the library's counter-based generator.
  core::MatrixF weights(rows, cols), inputs(batch, rows);
  core::fill_normal(core::RngKey{1}, 0, 0, weights.size(), weights.data());
  core::fill_uniform(core::RngKey{2}, 0, 0, inputs.size(), inputs.data());
  weights *= 0.1f;
  const core::MatrixF exact = inputs * weights;

  // Stage 3: weights -> target conductances of one differential pair each -> programmed PCM.
  auto pcm = std::make_shared<devices::PcmModel>(devices::PcmParams{});
  const core::ConductanceBlock targets =
      devices::weights_to_targets(weights, devices::UnitCellSpec{}, pcm->g_max());
  const core::RngKey chip_key{42};
  const devices::ProgrammedBlock programmed = devices::program_block(targets, pcm, chip_key);

  // The tile at the programmed state gives the drift compensation's reference.
  core::Tile tile(devices::at_time(programmed, 0.0, chip_key.with_sub(0)), core::IoParams{});
  const core::GdcReference reference = core::gdc_reference(tile, core::GdcParams{}, chip_key);

  core::TileReadout readout;
  core::LayerAccumulator accumulator;
  std::printf("%-10s %-5s %s\n", "time", "GDC", "relative error of the MVM (Frobenius)");
  const double times[] = {1.0, 31536000.0};
  for (int k = 0; k < 2; ++k) {
    // Stage 4: the conductances at this time (drift + read noise), without re-programming.
    tile.set_conductances(devices::at_time(programmed, times[k], chip_key.with_sub(k + 1)));
    const core::VectorD alpha = core::gdc_alpha(tile, reference, chip_key.with_sub(10 + k)).alpha;
    for (bool gdc : {false, true}) {
      // Stage 5: one GEMM for the whole batch, converters and noise, then the digital unit.
      tile.forward(inputs, chip_key.with_sub(100 + k), readout);
      accumulator.begin(batch, cols);
      accumulator.add(readout, 0, gdc ? &alpha : nullptr);
      const core::MatrixF y = accumulator.finish();
      std::printf("%-10s %-5s %.4f\n", k == 0 ? "1 s" : "1 year", gdc ? "on" : "off",
                  (y - exact).norm() / exact.norm());
    }
  }
  return 0;
}
