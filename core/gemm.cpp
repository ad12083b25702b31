#include "core/gemm.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#ifdef PCMSIM_HAVE_OPENBLAS
#include <cblas.h>
extern "C" {
char* openblas_get_corename(void);
char* openblas_get_config(void);
}
#endif

namespace pcmsim::core {

namespace {

void eigen_product(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                   Index ldb, float* c, Index ldc, bool a_transposed = false) {
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<const MatrixF, 0, Stride> B(b, k, n, Stride(ldb));
  Eigen::Map<MatrixF, 0, Stride> C(c, m, n, Stride(ldc));
  if (a_transposed)
    C.noalias() = Eigen::Map<const MatrixF, 0, Stride>(a, k, m, Stride(lda)).transpose() * B;
  else
    C.noalias() = Eigen::Map<const MatrixF, 0, Stride>(a, m, k, Stride(lda)) * B;
}

#ifdef PCMSIM_HAVE_OPENBLAS
// OpenBLAS's own threads stay off: pcmsim parallelises over its work blocks, and a product
// split by OpenBLAS would depend on the thread count.
void ensure_single_thread() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void sgemm(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
           float* c, Index ldc, bool a_transposed = false) {
  cblas_sgemm(CblasRowMajor, a_transposed ? CblasTrans : CblasNoTrans, CblasNoTrans,
              static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), 0.0f, c,
              static_cast<blasint>(ldc));
}

#endif


// pcmsim's own product: every element is one fused multiply-add chain over k in order,
// c = fma(a_k, b_k, c) from c = 0, whatever the row's block, position or the number of rows
// (row invariant by construction, and the same bits on every CPU with FMA). B is packed once
// into panels of kNr columns (zero-padded), rows are taken kMr at a time.
constexpr Index kNr = 16;
constexpr Index kMr = 6;

// k zeros: the missing rows of a last, partial group of A.
const float* zero_row(Index k) {
  thread_local std::vector<float> zeros;
  if (static_cast<Index>(zeros.size()) < k) zeros.assign(static_cast<std::size_t>(k), 0.0f);
  return zeros.data();
}

// C rows [0, rows) x columns [0, cols) of one kMr x kNr block: `a[r]` is row r of A (k
// contiguous values; rows >= `rows` point at zeros), `panel` kNr columns of B. A is read in
// place: packing it would cost about as much as the product when B has few columns.
void micro_kernel(Index k, const float* const* a, const float* panel, float* c, Index ldc,
                  Index rows, Index cols) {
#if defined(__AVX2__) && defined(__FMA__)
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (Index kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(panel);
    const __m256 b1 = _mm256_loadu_ps(panel + 8);
    __m256 av = _mm256_broadcast_ss(a0 + kk);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a1 + kk);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a2 + kk);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a3 + kk);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a4 + kk);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a5 + kk);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    panel += kNr;
  }
  alignas(32) float tmp[kMr][kNr];
  const __m256 acc[kMr][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  if (cols == kNr) {
    for (Index r = 0; r < rows; ++r) {
      _mm256_storeu_ps(c + r * ldc, acc[r][0]);
      _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
    }
    return;
  }
  for (Index r = 0; r < rows; ++r) {
    _mm256_store_ps(tmp[r], acc[r][0]);
    _mm256_store_ps(tmp[r] + 8, acc[r][1]);
    std::memcpy(c + r * ldc, tmp[r], sizeof(float) * static_cast<std::size_t>(cols));
  }
#else
  float acc[kMr][kNr] = {};
  for (Index kk = 0; kk < k; ++kk)
    for (Index r = 0; r < kMr; ++r)
      for (Index j = 0; j < kNr; ++j)
        acc[r][j] = std::fma(a[r][kk], panel[kk * kNr + j], acc[r][j]);
  for (Index r = 0; r < rows; ++r)
    std::memcpy(c + r * ldc, acc[r], sizeof(float) * static_cast<std::size_t>(cols));
#endif
}

#if defined(__AVX2__) && defined(__FMA__)
// micro_kernel for a last panel of at most 8 columns (a layer with 6 or 10 outputs): the same
// chains on one vector of B instead of two, half the FMAs of the 16-column kernel.
void micro_kernel_narrow(Index k, const float* const* a, const float* panel, float* c, Index ldc,
                         Index rows, Index cols) {
  const float *a0 = a[0], *a1 = a[1], *a2 = a[2], *a3 = a[3], *a4 = a[4], *a5 = a[5];
  __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0;
  for (Index kk = 0; kk < k; ++kk) {
    const __m256 b = _mm256_loadu_ps(panel);
    c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(a0 + kk), b, c0);
    c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(a1 + kk), b, c1);
    c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(a2 + kk), b, c2);
    c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(a3 + kk), b, c3);
    c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(a4 + kk), b, c4);
    c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(a5 + kk), b, c5);
    panel += kNr;
  }
  alignas(32) float tmp[kMr][8];
  const __m256 acc[kMr] = {c0, c1, c2, c3, c4, c5};
  for (Index r = 0; r < rows; ++r) {
    _mm256_store_ps(tmp[r], acc[r]);
    std::memcpy(c + r * ldc, tmp[r], sizeof(float) * static_cast<std::size_t>(cols));
  }
}
#endif

// One row (batch 1): four panels at a time, so that eight independent chains hide the FMA
// latency; each element is the same chain as in micro_kernel.
void row_product(Index k, const float* a, const PackedWeights& b, float* c) {
  const Index n = b.n(), panels = (n + kNr - 1) / kNr;
  Index p = 0;
#if defined(__AVX2__) && defined(__FMA__)
  for (; p + 4 <= panels; p += 4) {
    const float* b0 = b.data() + p * k * kNr;
    const float* b1 = b0 + k * kNr;
    const float* b2 = b1 + k * kNr;
    const float* b3 = b2 + k * kNr;
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (Index kk = 0; kk < k; ++kk) {
      const __m256 av = _mm256_broadcast_ss(a + kk);
      const Index o = kk * kNr;
      c0 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b0 + o), c0);
      c1 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b0 + o + 8), c1);
      c2 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b1 + o), c2);
      c3 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b1 + o + 8), c3);
      c4 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + o), c4);
      c5 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b2 + o + 8), c5);
      c6 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b3 + o), c6);
      c7 = _mm256_fmadd_ps(av, _mm256_loadu_ps(b3 + o + 8), c7);
    }
    alignas(32) float tmp[4 * kNr];
    _mm256_store_ps(tmp, c0);
    _mm256_store_ps(tmp + 8, c1);
    _mm256_store_ps(tmp + 16, c2);
    _mm256_store_ps(tmp + 24, c3);
    _mm256_store_ps(tmp + 32, c4);
    _mm256_store_ps(tmp + 40, c5);
    _mm256_store_ps(tmp + 48, c6);
    _mm256_store_ps(tmp + 56, c7);
    std::memcpy(c + p * kNr, tmp, sizeof(float) * static_cast<std::size_t>(std::min(4 * kNr, n - p * kNr)));
  }
#endif
  // The remaining panels (fewer than four, or all without AVX2): A as a zero-padded group.
  if (p < panels) {
    const float* zeros = zero_row(k);
    const float* rows[kMr] = {a, zeros, zeros, zeros, zeros, zeros};
    for (; p < panels; ++p)
      micro_kernel(k, rows, b.data() + p * k * kNr, c + p * kNr, 0, 1, std::min(kNr, n - p * kNr));
  }
}

// Panel-outer: one panel of B stays in L1 while every group of kMr rows of A passes over it.
void packed_product(Index m, const float* a, Index lda, const PackedWeights& b, float* c,
                    Index ldc) {
  const Index k = b.k(), n = b.n();
  if (m == 1) return row_product(k, a, b, c);
  const Index panels = (n + kNr - 1) / kNr, groups = (m + kMr - 1) / kMr;
  const float* zeros = zero_row(k);
  for (Index p = 0; p < panels; ++p) {
    const float* panel = b.data() + p * k * kNr;
    const Index cols = std::min(kNr, n - p * kNr);
    for (Index g = 0; g < groups; ++g) {
      const Index rows = std::min(kMr, m - g * kMr);
      const float* a_rows[kMr];
      for (Index r = 0; r < kMr; ++r) a_rows[r] = r < rows ? a + (g * kMr + r) * lda : zeros;
#if defined(__AVX2__) && defined(__FMA__)
      if (cols <= 8) {
        micro_kernel_narrow(k, a_rows, panel, c + g * kMr * ldc + p * kNr, ldc, rows, cols);
        continue;
      }
#endif
      micro_kernel(k, a_rows, panel, c + g * kMr * ldc + p * kNr, ldc, rows, cols);
    }
  }
}

}  // namespace

void gemm_rows(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
               float* c, Index ldc) {
  if (m <= 0 || n <= 0) return;
  thread_local PackedWeights packed;
  packed.pack(b, k, n, ldb);
  gemm_packed(m, a, lda, packed, c, ldc);
}

void gemm_rows(const Eigen::Ref<const MatrixF>& a, const Eigen::Ref<const MatrixF>& b,
               MatrixF& c) {
  if (c.rows() != a.rows() || c.cols() != b.cols()) c.resize(a.rows(), b.cols());
  gemm_rows(a.rows(), b.cols(), a.cols(), a.data(), a.outerStride(), b.data(), b.outerStride(),
            c.data(), c.outerStride());
}

namespace {
void plain_product(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                   Index ldb, float* c, Index ldc, bool a_transposed) {
#ifdef PCMSIM_HAVE_OPENBLAS
  ensure_single_thread();
  sgemm(m, n, k, a, lda, b, ldb, c, ldc, a_transposed);
#else
  eigen_product(m, n, k, a, lda, b, ldb, c, ldc, a_transposed);
#endif
}
}  // namespace

void gemm_plain(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
                float* c, Index ldc) {
  plain_product(m, n, k, a, lda, b, ldb, c, ldc, false);
}

void gemm_plain_at(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                   Index ldb, float* c, Index ldc) {
  plain_product(m, n, k, a, lda, b, ldb, c, ldc, true);
}

void gemm_plain_eigen(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                      Index ldb, float* c, Index ldc) {
  eigen_product(m, n, k, a, lda, b, ldb, c, ldc);
}

void PackedWeights::pack(const float* b, Index k, Index n, Index ldb) {
  k_ = k;
  n_ = n;
  const Index panels = (n + kNr - 1) / kNr;
  data_.assign(static_cast<std::size_t>(panels * k * kNr), 0.0f);
  for (Index p = 0; p < panels; ++p) {
    const Index cols = std::min(kNr, n - p * kNr);
    float* dst = data_.data() + p * k * kNr;
    for (Index kk = 0; kk < k; ++kk)
      std::memcpy(dst + kk * kNr, b + kk * ldb + p * kNr, sizeof(float) * cols);
  }
}

void PackedWeights::pack(const Eigen::Ref<const MatrixF>& b) {
  pack(b.data(), b.rows(), b.cols(), b.outerStride());
}

void gemm_packed(Index m, const float* a, Index lda, const PackedWeights& b, float* c,
                 Index ldc) {
  if (m <= 0 || b.n() <= 0) return;
  if (b.k() <= 0) {
    for (Index i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + b.n(), 0.0f);
    return;
  }
  packed_product(m, a, lda, b, c, ldc);
}

std::string gemm_engine() {
#if defined(__AVX2__) && defined(__FMA__)
  return "pcmsim fma avx2";
#else
  return "pcmsim fma scalar";
#endif
}

std::string gemm_baseline() {
#ifdef PCMSIM_HAVE_OPENBLAS
  std::string config = openblas_get_config();
  const std::string version = config.substr(0, config.find(' ', 9));  // "OpenBLAS 0.3.21"
  return "openblas " + version.substr(version.find(' ') + 1) + " " + openblas_get_corename();
#else
  return "eigen";
#endif
}

bool gemm_uses_blas() {
#ifdef PCMSIM_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

}  // namespace pcmsim::core
