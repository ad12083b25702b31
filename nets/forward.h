// Stage 5 (network side): the batched forward pass.
//
// The network code does everything except the matrix products of linear and conv2d layers:
// im2col, bias, batch norm (eval), activations, pooling, residual adds, all in float32. The
// products go through a MatmulProvider, the seam where the analog path (tiles + digital unit)
// plugs in; Fp32Matmul is the digital FP32 reference.
#pragma once

#include <vector>

#include "core/gemm.h"
#include "core/row_source.h"
#include "nets/network.h"

namespace pcmsim::nets {

// Computes y = x * W for one group of one matrix layer (nets::matrix_layers order):
// x is positions x rows: all output positions of the whole batch (linear: one per sample;
// conv2d: sample-major, then output row, then output column, i.e. position n*H'*W' + oh*W' + ow),
// rows in im2col order (channel of the group, then kernel row, then kernel column).
// y is positions x cols and arrives sized. A conv's x is produced block by block on demand
// (core/row_source.h): implementations take its rows in blocks where they use them. Called from
// one thread at a time (outside any parallel region); implementations parallelise internally
// over fixed blocks.
class MatmulProvider {
 public:
  virtual ~MatmulProvider() = default;
  // Called once per forward() before any matmul: the batch covers samples
  // [first_sample, first_sample + batch_size) of the evaluated data set, so providers that draw
  // random numbers can key them by sample (same bits for any batch split or thread count).
  virtual void begin_batch(Index first_sample, Index batch_size) {}
  virtual void matmul(int matrix_layer_index, int group, const core::RowSource& x,
                      MatrixF& y) = 0;
};

// The FP32 digital reference: the GEMM kernel of core/gemm.h on weights packed once, OpenMP
// over fixed blocks of positions.
class Fp32Matmul : public MatmulProvider {
 public:
  explicit Fp32Matmul(const Network& net);
  void matmul(int matrix_layer_index, int group, const core::RowSource& x,
              MatrixF& y) override;
  const std::vector<MatrixLayer>& layers() const { return layers_; }

 private:
  std::vector<MatrixLayer> layers_;
  std::vector<std::vector<core::PackedWeights>> packed_;  // per layer and group
  std::vector<MatrixF> scratch_;                          // per thread: produced input rows
};

// Positions per OpenMP work block in Fp32Matmul and the network code. Fixed, so results do not
// depend on the thread count.
constexpr Index kPositionBlock = 256;

// images: batch x C*H*W, normalised (nets/dataset.h), C-order per sample. Returns the logits,
// batch x num_classes. `first_sample` is passed to MatmulProvider::begin_batch.
MatrixF forward(const Network& net, const Eigen::Ref<const MatrixF>& images,
                MatmulProvider& provider, Index first_sample = 0);

// Runs `images` through the network in batches of `batch_size` (memory: the largest layer
// output of a batch, batch*C*H*W floats, a few times over) and returns all logits, or the
// predicted classes (argmax, first maximum on ties).
MatrixF logits(const Network& net, const MatrixF& images, MatmulProvider& provider,
               Index batch_size = 128);
std::vector<int> predict(const Network& net, const MatrixF& images, MatmulProvider& provider,
                         Index batch_size = 128);
std::vector<int> argmax_rows(const MatrixF& logits);
// Fraction of predictions equal to labels (sizes must match).
double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels);

}  // namespace pcmsim::nets
