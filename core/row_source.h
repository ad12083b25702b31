// The input rows of a matrix product: a stored matrix, or rows produced block by block where
// they are used. A convolution's input matrix (im2col: one row of C*kh*kw values per output
// position) is kh*kw times the image it comes from; stored whole it is written to and read back
// from memory (ResNet: a third of the FP32 path's time), produced per block it stays in cache.
#pragma once

#include "core/types.h"

namespace pcmsim::core {

// Rows [r0, r0 + n) of the input, row-major with a row stride.
using RowBlock = Eigen::Map<const MatrixF, 0, Eigen::OuterStride<>>;

class RowSource {
 public:
  virtual ~RowSource() = default;
  virtual Index rows() const = 0;
  virtual Index cols() const = 0;
  // Whether block() is a view of stored rows (nothing to produce, nothing to keep in cache).
  virtual bool stored() const = 0;
  // Rows [r0, r0 + n) (0 <= r0, r0 + n <= rows()): a view of the stored rows, or the rows
  // produced into `scratch` (resized to n x cols()). Safe to call from several threads, each
  // with its own scratch.
  virtual RowBlock block(Index r0, Index n, MatrixF& scratch) const = 0;
};

// A stored matrix, read in place.
class MatrixRows final : public RowSource {
 public:
  explicit MatrixRows(const Eigen::Ref<const MatrixF>& m) : m_(m) {}
  Index rows() const override { return m_.rows(); }
  Index cols() const override { return m_.cols(); }
  bool stored() const override { return true; }
  RowBlock block(Index r0, Index n, MatrixF&) const override {
    return RowBlock(m_.data() + r0 * m_.outerStride(), n, m_.cols(),
                    Eigen::OuterStride<>(m_.outerStride()));
  }

 private:
  Eigen::Ref<const MatrixF> m_;
};

// Another source's rows, each repeated `copies` times side by side (the input of a layer whose
// weights are programmed onto several copies of tiles).
class RepeatedRows final : public RowSource {
 public:
  RepeatedRows(const RowSource& rows, Index copies) : rows_(rows), copies_(copies) {}
  Index rows() const override { return rows_.rows(); }
  Index cols() const override { return rows_.cols() * copies_; }
  bool stored() const override { return false; }
  RowBlock block(Index r0, Index n, MatrixF& scratch) const override {
    MatrixF one;
    const RowBlock x = rows_.block(r0, n, one);
    scratch.resize(n, cols());
    for (Index c = 0; c < copies_; ++c) scratch.middleCols(c * x.cols(), x.cols()) = x;
    return RowBlock(scratch.data(), n, scratch.cols(), Eigen::OuterStride<>(scratch.cols()));
  }

 private:
  const RowSource& rows_;
  Index copies_;
};

// All rows of `x` as one matrix (for the few consumers that need them at once).
inline MatrixF all_rows(const RowSource& x) {
  MatrixF scratch;
  return MatrixF(x.block(0, x.rows(), scratch));
}

}  // namespace pcmsim::core
