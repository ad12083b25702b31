// The GEMM engine (core/gemm.h): every row of C has the same bits whatever block of rows it is
// computed in (the property batch- and thread-invariance of the tiles rest on), and the product
// is the product (against double precision).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/gemm.h"

using namespace pcmsim::core;

namespace {
MatrixF random_matrix(Index r, Index c, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  MatrixF m(r, c);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = n(gen);
  return m;
}
}  // namespace

TEST(Gemm, EveryRowHasTheSameBitsInAnyBlockOfRows) {
  for (auto [k, n] : {std::pair<Index, Index>{256, 256}, {77, 19}, {512, 64}, {3, 5}, {300, 40}}) {
    SCOPED_TRACE(::testing::Message() << "k=" << k << " n=" << n);
    const Index rows = 211;
    const MatrixF a = random_matrix(rows, k, 1), b = random_matrix(k, n, 2);
    MatrixF full(rows, n);
    gemm_rows(rows, n, k, a.data(), k, b.data(), n, full.data(), n);
    for (Index block : {1, 2, 5, 7, 13, 24, 100, 128}) {
      MatrixF part(rows, n);
      for (Index r0 = 0; r0 < rows; r0 += block) {
        const Index len = std::min(block, rows - r0);
        gemm_rows(len, n, k, a.data() + r0 * k, k, b.data(), n, part.data() + r0 * n, n);
      }
      Index first = -1, count = 0;
      for (Index i = 0; i < rows; ++i)
        if (std::memcmp(part.row(i).data(), full.row(i).data(), sizeof(float) * n) != 0) {
          if (first < 0) first = i;
          ++count;
        }
      EXPECT_EQ(count, 0) << "block " << block << ": " << count << " rows differ, first " << first;
    }
    // A row on its own, at a row stride wider than k, into a wider C.
    MatrixF wide_a = MatrixF::Zero(1, k + 9), wide_c = MatrixF::Constant(1, n + 3, 7.0f);
    wide_a.leftCols(k) = a.row(150);
    gemm_rows(1, n, k, wide_a.data(), k + 9, b.data(), n, wide_c.data(), n + 3);
    EXPECT_EQ(std::memcmp(wide_c.data(), full.row(150).data(), sizeof(float) * n), 0);
    EXPECT_EQ(wide_c(0, n), 7.0f);  // nothing written past n
    const MatrixD exact = a.cast<double>() * b.cast<double>();
    const double err = (full.cast<double>() - exact).cwiseAbs().maxCoeff();
    EXPECT_LT(err, 1e-5 * std::sqrt(double(k)) * 4) << err;
  }
}

// The definition, exactly: each element is the chain c = fma(a_ik, b_kj, c), k in order. Shapes
// with a last panel of at most 8 columns (40, 17, 6, 10) take the narrow kernel there.
TEST(Gemm, EveryElementIsTheInOrderFusedMultiplyAddChain) {
  for (auto [k, n] :
       {std::pair<Index, Index>{256, 40}, {33, 17}, {1, 16}, {25, 6}, {84, 10}, {7, 8}}) {
    const MatrixF a = random_matrix(13, k, 5), b = random_matrix(k, n, 6);
    PackedWeights packed;
    packed.pack(b);
    MatrixF c(13, n);
    gemm_packed(13, a.data(), k, packed, c.data(), n);
    for (Index i = 0; i < 13; ++i)
      for (Index j = 0; j < n; ++j) {
        float acc = 0.0f;
        for (Index kk = 0; kk < k; ++kk) acc = std::fma(a(i, kk), b(kk, j), acc);
        ASSERT_EQ(std::memcmp(&acc, &c(i, j), sizeof acc), 0)
            << "k=" << k << " (" << i << "," << j << "): " << acc << " vs " << c(i, j);
      }
  }
}

TEST(Gemm, EngineIsNamedAndPlainProductsAgree) {
  EXPECT_EQ(gemm_engine().rfind("pcmsim fma", 0), 0u) << gemm_engine();
  EXPECT_EQ(gemm_uses_blas(), gemm_baseline() != "eigen");
  const MatrixF a = random_matrix(64, 100, 3), b = random_matrix(100, 30, 4);
  MatrixF c1(64, 30), c2(64, 30), c3;
  gemm_plain(64, 30, 100, a.data(), 100, b.data(), 30, c1.data(), 30);
  gemm_plain_eigen(64, 30, 100, a.data(), 100, b.data(), 30, c2.data(), 30);
  gemm_rows(a, b, c3);
  EXPECT_LT((c1 - c2).cwiseAbs().maxCoeff(), 1e-4f);
  EXPECT_LT((c1 - c3).cwiseAbs().maxCoeff(), 1e-4f);
  EXPECT_FALSE(gemm_baseline().empty());
}
