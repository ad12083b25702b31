// The configuration under which the analog product is the float product: ideal devices,
// converters off, no noise, no GDC. Tests switch on the one effect they study.
#pragma once

#include <cstdint>
#include <limits>

#include "nets/simulation.h"

namespace pcmsim::nets {

inline SimulationConfig ideal_config(Index tile_rows, Index tile_cols, std::uint64_t seed) {
  SimulationConfig c;
  c.chip.tile_rows = tile_rows;
  c.chip.tile_cols = tile_cols;
  c.device.model = "ideal";
  c.io.p_in = 0;
  c.io.p_out = 0;
  c.io.out_noise = 0;
  c.io.in_noise = 0;
  c.io.out_bound = std::numeric_limits<double>::infinity();
  c.gdc = false;
  c.seed = seed;
  return c;
}

}  // namespace pcmsim::nets
