// Slow, obviously correct double-precision oracle of Tile::forward (docs/physics.md §4 steps 1-6):
// one sample at a time, one output at a time, the formulas written out. It draws the same random
// numbers as the optimised tile (same key, draw numbers and element indices, see core/tile.h),
// so noise-on results match too. Used only by tests.
#pragma once

#include <cstdint>
#include <vector>

#include "core/conductance_block.h"
#include "core/io_params.h"
#include "core/rng.h"
#include "core/types.h"

namespace pcmsim::core::reference {

struct TileReadoutRef {
  std::vector<MatrixD> reads;  // r = group * cycles + cycle, batch x cols
  std::vector<double> read_weight;
  VectorD input_scale;
  VectorD adc_steps;  // per column (0 = ADC off)
  VectorD output_scale;
  std::vector<int> bm_rounds;
  std::vector<int> clipped;
};

// first_row: the global index of x's first row, as for Tile::forward.
// input_range: the static input range (NoiseManagement::static_range); out_bounds: per-column
// ADC bounds, or empty for the uniform io.out_bound.
TileReadoutRef tile_forward(const ConductanceBlock& block, const IoParams& io, double input_range,
                            const VectorF& out_bounds, const MatrixF& x, const RngKey& key,
                            std::uint64_t first_row = 0);

// The layer output the digital unit would form from a readout, in double (for tests):
// y[b,j] = input_scale[b] * output_scale[j] * sum_r read_weight[r] * reads[r](b,j).
MatrixD descale(const TileReadoutRef& readout);

}  // namespace pcmsim::core::reference
