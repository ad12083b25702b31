// The float32 GEMM engine of every product pcmsim computes (tile MVMs, the FP32 reference
// path): OpenBLAS `sgemm` on the calling thread when the build found it (CMake option
// PCMSIM_BLAS), Eigen's GEMM otherwise (core::gemm_engine() says which).
//
// Row invariance: gemm_rows() computes every row of C from its row of A alone, with the same
// operations whatever the number of rows of the call, the row's position in it or the other
// rows, so a caller may cut a batch into any blocks (per thread, per work block, per bound
// management round) and get the same bits. OpenBLAS's kernels round a row differently by its
// position modulo their register block (its tail kernels split the sum differently); gemm_rows
// therefore calls sgemm only with a multiple of the row quantum of the shape (found once per
// (n, k) by comparing calls of every candidate size against one larger call, kept for the
// process) and passes the remaining rows through a zero-padded scratch block. Shapes for
// which no quantum is found use Eigen (a plain fused multiply-add chain per element, row
// invariant by construction).
//
// The bits depend on the engine and, for OpenBLAS, on the kernel it picked for this CPU
// (gemm_engine() names it): the same seed gives the same bits for any thread count and batch
// size on one machine; another CPU may differ by float rounding.
#pragma once

#include <string>

#include "core/types.h"

namespace pcmsim::core {

// C (m x n, row stride ldc) = A (m x k, row stride lda) * B (k x n, row stride ldb); all
// row-major float32, C must not alias A or B. Row invariant (see above). Single-threaded:
// call it from inside the caller's OpenMP work blocks.
void gemm_rows(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
               float* c, Index ldc);

// The same on Eigen objects (row-major MatrixF): c = a * b, c resized when its shape differs.
void gemm_rows(const Eigen::Ref<const MatrixF>& a, const Eigen::Ref<const MatrixF>& b,
               MatrixF& c);

// One plain sgemm call on the calling thread (no row invariance): the baseline of benchmarks.
void gemm_plain(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
                float* c, Index ldc);
// Eigen's GEMM of the same product (for benchmark ratios against Eigen).
void gemm_plain_eigen(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                      Index ldb, float* c, Index ldc);

// "openblas <version> <core>" or "eigen".
std::string gemm_engine();
// True when the products go through OpenBLAS.
bool gemm_uses_blas();
// The row quantum gemm_rows uses for an (n, k) product (0 = Eigen for this shape; 1 when any
// row count is invariant). Exposed for tests and benchmarks.
int gemm_row_quantum(Index n, Index k);

}  // namespace pcmsim::core
