// Slow, obviously correct oracle of the digital unit's accumulation (core/digital_unit.h):
// one output element at a time, the list of its terms written out, then summed by the
// configured accumulator. Used only by tests.
#pragma once

#include <vector>

#include "core/digital_unit.h"
#include "core/tile.h"
#include "core/types.h"

namespace pcmsim::core::reference {

// One tile readout of a layer, its column offset and its drift compensation
// (one factor per readout column; empty = 1).
struct PlacedReadout {
  const TileReadout* readout = nullptr;
  Index col0 = 0;
  VectorD alpha;
};

// The layer output (batch x cols) the digital unit must produce, as double (the float32
// accumulator's result is a float value held in a double). `saturations` (optional) receives
// the number of saturating additions of the fixed-point accumulator.
MatrixD accumulate(const DigitalParams& params, Index batch, Index cols,
                   const std::vector<PlacedReadout>& parts, long long* saturations = nullptr);

}  // namespace pcmsim::core::reference
