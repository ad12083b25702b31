// The digital sum of several tiles' readouts over a batch (the tiles that share a layer's output
// columns), computed in chunks of batch rows small enough that a chunk's readouts and
// accumulator stay in cache: each chunk runs every tile's forward and adds its reads on one
// thread, and the chunks run in parallel. Without chunks the float64 accumulator of a
// 1024 x 256 output (2 MB) is streamed through memory once per tile.
//
// The result is, bit for bit, Tile::forward over the whole batch followed by
// LayerAccumulator::add of each readout in the terms' order: every draw is keyed by the global
// batch row and every output element is added in the same order, whatever the chunks.
#pragma once

#include <cstdint>
#include <vector>

#include "core/digital_unit.h"
#include "core/rng.h"
#include "core/row_source.h"
#include "core/tile.h"
#include "core/types.h"

namespace pcmsim::core {

// One tile's part of the sum.
struct TiledTerm {
  const Tile* tile = nullptr;
  Index row0 = 0;  // the first input column it reads (its rows of the layer's matrix)
  Index col0 = 0;  // the first output column it adds to
  RngKey key;      // the draws of its forward
  const VectorD* alpha = nullptr;  // drift compensation per tile column (nullptr = 1)
};

class TiledSum {
 public:
  explicit TiledSum(DigitalParams digital = {});  // validates

  // y (x.rows() x the layer's output columns, e.g. a block of columns of a wider output) =
  // the sum of the terms' readouts of x; row b of x is row first_row + b for the draws. Rows
  // that x produces on demand are produced chunk by chunk, on the chunk's thread.
  // Throws std::invalid_argument on a wrong shape of y and as Tile::forward and
  // LayerAccumulator::add do (a non-finite input: the first failing chunk's).
  void run(const std::vector<TiledTerm>& terms, const RowSource& x, std::uint64_t first_row,
           Eigen::Ref<MatrixF> y);
  void run(const std::vector<TiledTerm>& terms, const Eigen::Ref<const MatrixF>& x,
           std::uint64_t first_row, Eigen::Ref<MatrixF> y) {
    run(terms, MatrixRows(x), first_row, y);
  }

 private:
  struct PerThread {
    explicit PerThread(const DigitalParams& digital) : accumulator(digital) {}
    std::vector<TileReadout> readouts;  // one per term
    LayerAccumulator accumulator;
    MatrixF partial;
    MatrixF input;  // the chunk's rows of an input produced on demand
  };
  DigitalParams digital_;
  std::vector<PerThread> per_thread_;
};

}  // namespace pcmsim::core
