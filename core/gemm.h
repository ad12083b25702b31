// The float32 products of pcmsim (tile MVMs, the FP32 reference path) and the GEMM baselines
// of the benchmarks.
//
// The products: pcmsim's own kernel (gemm_packed, gemm_rows). Every element of C is one fused
// multiply-add chain over k in order from zero, c = fma(a_ik, b_kj, c), whatever block of rows
// the row is computed in, its position in the block and the number of rows. So a caller may cut
// a batch into any blocks (per thread, per work block, per bound-management round) and get the
// same bits, and the bits are the same on every CPU with FMA (AVX2 kernel; the scalar fallback
// of a build without AVX2 gives the same bits, slowly). The weights are packed once
// (PackedWeights: panels of 16 columns), not per call.
//
// Why not OpenBLAS: its sgemm kernels round a row differently by the row's position in the
// call (OpenBLAS 0.3.21, Haswell kernel: rows 6..11 of every 12 differ from rows 0..5 in the
// last bits; its tail kernels differ again) and by CPU (kernels chosen at run time), so results
// would depend on the batch size and the machine. OpenBLAS (when the build finds it) is the
// baseline the benchmarks compare against: gemm_plain.
#pragma once

#include <string>
#include <vector>

#include "core/types.h"

namespace pcmsim::core {

// A k x n weight matrix packed for gemm_packed (panels of 16 columns, zero-padded).
class PackedWeights {
 public:
  void pack(const float* b, Index k, Index n, Index ldb);  // b: k x n row-major, row stride ldb
  void pack(const Eigen::Ref<const MatrixF>& b);
  Index k() const { return k_; }
  Index n() const { return n_; }
  const float* data() const { return data_.data(); }
  std::size_t bytes() const { return data_.size() * sizeof(float); }

 private:
  Index k_ = 0, n_ = 0;
  std::vector<float> data_;
};

// C (m x n, row stride ldc) = A (m x k, row stride lda) * B; row-major float32; C must not alias
// A. Row invariant (see above). Single-threaded: call it inside the caller's work blocks.
void gemm_packed(Index m, const float* a, Index lda, const PackedWeights& b, float* c, Index ldc);

// The same with B unpacked (packed on each call into a per-thread buffer).
void gemm_rows(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
               float* c, Index ldc);
// On Eigen objects: c = a * b, c resized when its shape differs.
void gemm_rows(const Eigen::Ref<const MatrixF>& a, const Eigen::Ref<const MatrixF>& b,
               MatrixF& c);

// One plain sgemm call on the calling thread (no row invariance): the benchmarks' baseline and
// the training backward's products, OpenBLAS when the build found it (CMake PCMSIM_BLAS), else
// Eigen.
void gemm_plain(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
                float* c, Index ldc);
// The same with A stored k x m (row stride lda): C = A^T B.
void gemm_plain_at(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                   Index ldb, float* c, Index ldc);
// Eigen's GEMM of the same product (benchmark ratios against Eigen).
void gemm_plain_eigen(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                      Index ldb, float* c, Index ldc);

// The kernel of the products ("pcmsim fma avx2") and the baseline ("openblas 0.3.21 Haswell"
// or "eigen").
std::string gemm_engine();
std::string gemm_baseline();
bool gemm_uses_blas();  // the baseline is OpenBLAS

}  // namespace pcmsim::core
