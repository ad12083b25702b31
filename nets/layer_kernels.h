// The float32 kernels of forward() (private to nets/): element-wise work (elementwise.cpp) and
// one kernel per layer kind (layer_kernels.cpp), on the two activation layouts below.
#pragma once

#include <algorithm>
#include <vector>

#include "nets/forward.h"

namespace pcmsim::nets::detail {

constexpr const char* kTag = "nets::forward";

// Activations live in one of two layouts inside forward():
// - image (channels-last): a per-sample tensor (C, positions...) of a batch is a
//   (B*positions) x C matrix (row = sample, then position; column = channel). The conv GEMM
//   produces exactly this layout (no transposes), and per-channel operations (bias, BN) and
//   pooling work on contiguous channel vectors, which the compiler vectorises. H, W: the spatial
//   size (conv1d: H = 1).
// - plain: B x numel, each sample in PyTorch's C order. Feature vectors (F) are B x F either way;
//   other ranks (sequences (T, D), attention maps) are reshaped views of the same memory.
// Layers convert their input to the layout they need (as_image / as_plain).
struct Act {
  MatrixF m;
  bool image = false;
  Index H = 1, W = 1;  // image only
};

// Rows per OpenMP work block for element-wise work: fixed, so the split never depends on the
// thread count (each element is computed by the same operations anyway).
constexpr Index kRowBlock = 64;
// Below this many values a parallel region costs more than it saves.
constexpr Index kParallelMin = 32768;

template <class F>
void for_row_blocks(Index rows, Index cols, F f) {
  const Index blocks = (rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin && blocks > 1)
  for (Index b = 0; b < blocks; ++b) f(b * kRowBlock, std::min(kRowBlock, rows - b * kRowBlock));
}

template <class F>
void map_inplace(MatrixF& m, F f) {
  const Index cols = m.cols();
  for_row_blocks(m.rows(), cols, [&](Index r0, Index n) {
    float* p = m.data() + r0 * cols;
    const Index len = n * cols;
    for (Index i = 0; i < len; ++i) p[i] = f(p[i]);
  });
}

// ---- element-wise (elementwise.cpp)
void apply_elementwise(MatrixF& m, LayerKind kind, const Layer& L);
void apply_fused(MatrixF& m, const Layer& L);
void channel_affine(MatrixF& y, const std::vector<float>& scale, const std::vector<float>& shift);

// ---- layouts (layer_kernels.cpp)
Act flatten(const Act& x, Index B);
Act from_chw(const Eigen::Ref<const MatrixF>& images, Index C, Index H, Index W);
const Act& as_image(const Act& x, Index B, Index C, Index H, Index W, Act& tmp);
const Act& as_plain(const Act& x, Index B, Act& tmp);
void split_axis(const Shape& s, Index axis, Index& outer, Index& n, Index& inner);
Index normalise_axis(Index a, Index rank);

// ---- image layout kernels (layer_kernels.cpp)
Act run_conv(const Layer& L, const Shape& in_shape, const Shape& out_shape, const Act& x, Index B,
             int matrix_index, MatmulProvider& provider);
Act run_batchnorm(const Layer& L, const Act& x);
Act run_pool(const Layer& L, const Shape& in_shape, const Shape& out_shape, const Act& x, Index B);
void run_softmax(MatrixF& m, bool log);
Act run_global_avgpool(const Act& x, Index B);
Act run_adaptive_avgpool(const Act& x, Index B, Index C, Index H, Index W, Index OH, Index OW);

// ---- plain layout kernels (layer_kernels.cpp)
void softmax_strided(float* base, Index vectors, Index inner, Index n, bool log);
void run_layernorm(MatrixF& m, const Layer& L, Index N);
MatrixF run_transpose(const MatrixF& x, Index B, const Shape& in, const std::vector<Index>& perm);
MatrixF run_pad(const MatrixF& x, Index B, const Shape& in, const Shape& out, const Layer& L);
MatrixF run_concat(const std::vector<const MatrixF*>& xs, const std::vector<Shape>& shapes, Index B,
                   Index axis, const Shape& out);
MatrixF run_matmul(const MatrixF& a, const MatrixF& b, Index B, const Shape& sa, const Shape& sb);
MatrixF run_embedding(const MatrixF& x, const Layer& L);
MatrixF run_binary(LayerKind kind, const MatrixF& a, const MatrixF& b, Index B, const Shape& sa,
                   const Shape& sb, const Shape& out);
MatrixF run_reduce_mean(const MatrixF& x, Index B, const Shape& in, const std::vector<Index>& axes,
                        Index out_numel);

}  // namespace pcmsim::nets::detail
