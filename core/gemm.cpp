#include "core/gemm.h"

#include <algorithm>
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
                   Index ldb, float* c, Index ldc) {
  using Stride = Eigen::OuterStride<>;
  Eigen::Map<const MatrixF, 0, Stride> A(a, m, k, Stride(lda));
  Eigen::Map<const MatrixF, 0, Stride> B(b, k, n, Stride(ldb));
  Eigen::Map<MatrixF, 0, Stride> C(c, m, n, Stride(ldc));
  C.noalias() = A * B;
}

#ifdef PCMSIM_HAVE_OPENBLAS
// OpenBLAS's own threads stay off: pcmsim parallelises over its work blocks, and a product
// split by OpenBLAS would depend on the thread count.
void ensure_single_thread() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void sgemm(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
           float* c, Index ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<blasint>(m),
              static_cast<blasint>(n), static_cast<blasint>(k), 1.0f, a,
              static_cast<blasint>(lda), b, static_cast<blasint>(ldb), 0.0f, c,
              static_cast<blasint>(ldc));
}

// Deterministic test data in [-1, 1) (a 32-bit LCG; no dependence on the library's RNG).
void fill_test(std::vector<float>& v, std::uint32_t seed) {
  std::uint32_t s = seed * 2654435761u + 12345u;
  for (auto& x : v) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
}

// The smallest row count q such that every call of a multiple of q rows gives each row the
// bits of one larger call; 0 if none of the candidates does.
int calibrate(Index n, Index k) {
  constexpr Index kRef = 96;  // a multiple of every candidate
  static const int kCandidates[] = {1, 2, 4, 8, 12, 16, 24, 32, 48};
  std::vector<float> a(static_cast<std::size_t>(kRef * k)), b(static_cast<std::size_t>(k * n));
  fill_test(a, 1);
  fill_test(b, 2);
  std::vector<float> ref(static_cast<std::size_t>(kRef * n)), c(ref.size());
  sgemm(kRef, n, k, a.data(), k, b.data(), n, ref.data(), n);
  auto rows_equal = [&](Index r0, Index len) {
    return std::memcmp(c.data() + r0 * n, ref.data() + r0 * n,
                       sizeof(float) * static_cast<std::size_t>(len * n)) == 0;
  };
  for (int q : kCandidates) {
    bool ok = true;
    // Every segment of q rows, every segment of 2q rows, and one call of all rows but q.
    for (Index len : {Index(q), Index(2 * q)})
      for (Index r0 = 0; ok && r0 + len <= kRef; r0 += len) {
        sgemm(len, n, k, a.data() + r0 * k, k, b.data(), n, c.data() + r0 * n, n);
        ok = rows_equal(r0, len);
      }
    if (ok && kRef - q > 0) {
      sgemm(kRef - q, n, k, a.data() + q * k, k, b.data(), n, c.data() + q * n, n);
      ok = rows_equal(q, kRef - q);
    }
    if (ok) return q;
  }
  return 0;
}

struct Padded {
  std::vector<float> a, c;
};
#endif

}  // namespace

int gemm_row_quantum(Index n, Index k) {
#ifdef PCMSIM_HAVE_OPENBLAS
  ensure_single_thread();
  static std::mutex mu;
  static std::map<std::pair<Index, Index>, int> cache;
  std::lock_guard<std::mutex> lock(mu);
  const auto key = std::make_pair(n, k);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, calibrate(n, k)).first;
  return it->second;
#else
  (void)n;
  (void)k;
  return 0;
#endif
}

void gemm_rows(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
               float* c, Index ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (Index i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, 0.0f);
    return;
  }
#ifdef PCMSIM_HAVE_OPENBLAS
  const int q = gemm_row_quantum(n, k);
  if (q > 0) {
    const Index bulk = m / q * q;
    if (bulk > 0) sgemm(bulk, n, k, a, lda, b, ldb, c, ldc);
    const Index rest = m - bulk;
    if (rest > 0) {
      thread_local Padded pad;
      pad.a.assign(static_cast<std::size_t>(q * k), 0.0f);
      pad.c.resize(static_cast<std::size_t>(q * n));
      for (Index i = 0; i < rest; ++i)
        std::memcpy(pad.a.data() + i * k, a + (bulk + i) * lda, sizeof(float) * k);
      sgemm(q, n, k, pad.a.data(), k, b, ldb, pad.c.data(), n);
      for (Index i = 0; i < rest; ++i)
        std::memcpy(c + (bulk + i) * ldc, pad.c.data() + i * n, sizeof(float) * n);
    }
    return;
  }
#endif
  eigen_product(m, n, k, a, lda, b, ldb, c, ldc);
}

void gemm_rows(const Eigen::Ref<const MatrixF>& a, const Eigen::Ref<const MatrixF>& b,
               MatrixF& c) {
  if (c.rows() != a.rows() || c.cols() != b.cols()) c.resize(a.rows(), b.cols());
  gemm_rows(a.rows(), b.cols(), a.cols(), a.data(), a.outerStride(), b.data(), b.outerStride(),
            c.data(), c.outerStride());
}

void gemm_plain(Index m, Index n, Index k, const float* a, Index lda, const float* b, Index ldb,
                float* c, Index ldc) {
#ifdef PCMSIM_HAVE_OPENBLAS
  ensure_single_thread();
  sgemm(m, n, k, a, lda, b, ldb, c, ldc);
#else
  eigen_product(m, n, k, a, lda, b, ldb, c, ldc);
#endif
}

void gemm_plain_eigen(Index m, Index n, Index k, const float* a, Index lda, const float* b,
                      Index ldb, float* c, Index ldc) {
  eigen_product(m, n, k, a, lda, b, ldb, c, ldc);
}

std::string gemm_engine() {
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
