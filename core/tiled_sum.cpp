#include "core/tiled_sum.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <exception>

#include "core/error.h"

namespace pcmsim::core {

namespace {
constexpr const char* kWhere = "core::TiledSum";
// A chunk is a whole number of the tile's blocks, sized so that its float64 accumulator and
// the tiles' reads take about this much cache per thread.
constexpr Index kChunkGranule = Tile::kBlockRows;
constexpr Index kChunkBytes = 192 * 1024;
}  // namespace

TiledSum::TiledSum(DigitalParams digital) : digital_(digital) { digital_.validate(); }

void TiledSum::run(const std::vector<TiledTerm>& terms, const RowSource& x,
                   std::uint64_t first_row, Eigen::Ref<MatrixF> y) {
  if (terms.empty()) throw_invalid(kWhere, "no tiles to sum");
  const Index cols = y.cols();
  if (y.rows() != x.rows() || cols < 1)
    throw_invalid(kWhere, concat("output is ", y.rows(), "x", cols, ": expected ", x.rows(),
                                 " rows (one per input row) and >= 1 column"));
  Index tile_bytes = 0;  // the largest tile readout per batch row
  for (const TiledTerm& t : terms) {
    if (t.tile == nullptr) throw_invalid(kWhere, "a term has no tile");
    if (t.row0 < 0 || t.row0 + t.tile->rows() > x.cols())
      throw_invalid(kWhere, concat("row0 = ", t.row0, ": tile rows [", t.row0, ", ",
                                   t.row0 + t.tile->rows(), ") outside the input's ", x.cols(),
                                   " columns"));
    tile_bytes = std::max<Index>(
        tile_bytes, t.tile->cols() * t.tile->groups() * t.tile->cycles() * Index{sizeof(float)});
  }
  const Index batch = x.rows();
  if (batch == 0) return;

  const int threads = std::max(1, omp_get_max_threads());
  // A tile's reads are added while hot; the accumulator row is reused by every tile, and so is
  // a produced input row.
  const Index bytes_per_row = cols * Index{sizeof(double)} + tile_bytes +
                              (x.stored() ? 0 : x.cols() * Index{sizeof(float)});
  Index chunk = std::max<Index>(1, kChunkBytes / std::max<Index>(1, bytes_per_row * kChunkGranule)) *
                kChunkGranule;
  // Enough chunks to keep every thread busy.
  const Index per_thread = (batch + threads - 1) / threads;
  chunk = std::min(chunk, (per_thread + kChunkGranule - 1) / kChunkGranule * kChunkGranule);
  const Index n_chunks = (batch + chunk - 1) / chunk;

  while (static_cast<int>(per_thread_.size()) < threads) per_thread_.emplace_back(digital_);
  for (PerThread& p : per_thread_) p.readouts.resize(terms.size());
  std::vector<std::exception_ptr> errors(static_cast<std::size_t>(n_chunks));

#pragma omp parallel for schedule(static) if (n_chunks > 1)
  for (Index c = 0; c < n_chunks; ++c) {
    PerThread& p = per_thread_[static_cast<std::size_t>(omp_get_thread_num())];
    const Index r0 = c * chunk;
    const Index n = std::min(chunk, batch - r0);
    try {
      const RowBlock rows = x.block(r0, n, p.input);
      p.accumulator.begin(n, cols);
      for (std::size_t t = 0; t < terms.size(); ++t) {
        const TiledTerm& term = terms[t];
        term.tile->forward(rows.middleCols(term.row0, term.tile->rows()), term.key,
                           p.readouts[t], first_row + static_cast<std::uint64_t>(r0),
                           &p.accumulator.sink(term.col0, term.alpha));
      }
      p.accumulator.finish(p.partial);
      y.middleRows(r0, n) = p.partial;
    } catch (...) {
      errors[static_cast<std::size_t>(c)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (!e) continue;
    // A chunk's tile names the bad value by its row in the chunk: name it in the whole input,
    // as the tiles' forwards over the whole batch would (first tile, first row, first column).
    MatrixF scratch;
    for (const TiledTerm& t : terms)
      for (Index b = 0; b < batch; ++b) {
        const RowBlock row = x.block(b, 1, scratch);
        for (Index i = 0; i < t.tile->rows(); ++i)
          if (!std::isfinite(row(0, t.row0 + i)))
            throw_invalid("core::Tile", concat("input(", b, ",", i, ") = ", row(0, t.row0 + i),
                                               ": must be finite"));
      }
    std::rethrow_exception(e);
  }
}

}  // namespace pcmsim::core
