// circuit/crossbar.h against an independent dense solve of the full nodal system (every word-
// and bit-line node an unknown, no merging), and the limits and errors of the definition.
#include <gtest/gtest.h>

#include <Eigen/LU>
#include <functional>
#include <omp.h>

#include <cmath>
#include <limits>
#include <random>

#include "circuit/crossbar.h"
#include "circuit/ir_drop.h"

namespace {

using namespace pcmsim;
using circuit::IrDropParams;
using circuit::SparseSolver;
using core::Index;
using core::MatrixD;

MatrixD random_g(Index m, Index n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 25e-6);
  MatrixD g(m, n);
  for (Index i = 0; i < g.size(); ++i) g.data()[i] = u(gen);
  return g;
}

MatrixD random_v(Index batch, Index m, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-0.2, 0.2);
  MatrixD v(batch, m);
  for (Index i = 0; i < v.size(); ++i) v.data()[i] = u(gen);
  return v;
}

// The circuit of crossbar.h written out node by node (all resistances > 0), dense LU in long
// double (so that the limit test below can use wire conductances 1e11 times the devices').
MatrixD dense_currents(const MatrixD& G, const MatrixD& V, const IrDropParams& r) {
  const Index m = G.rows(), n = G.cols(), N = 2 * m * n;
  auto wl = [&](Index i, Index j) { return i * n + j; };
  auto bl = [&](Index i, Index j) { return m * n + i * n + j; };
  using MatrixL = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;
  using VectorL = Eigen::Matrix<long double, Eigen::Dynamic, 1>;
  MatrixL K = MatrixL::Zero(N, N);
  auto connect = [&](Index a, Index b, long double g) {
    K(a, a) += g; K(b, b) += g; K(a, b) -= g; K(b, a) -= g;
  };
  for (Index i = 0; i < m; ++i)
    for (Index j = 0; j < n; ++j) {
      connect(wl(i, j), bl(i, j), G(i, j));
      if (j + 1 < n) connect(wl(i, j), wl(i, j + 1), 1 / r.r_row);
      if (i + 1 < m) connect(bl(i, j), bl(i + 1, j), 1 / r.r_col);
    }
  const long double g_src = 1 / ((long double)r.r_row + r.r_driver),
                    g_snk = 1 / ((long double)r.r_col + r.r_sense);
  for (Index i = 0; i < m; ++i) K(wl(i, 0), wl(i, 0)) += g_src;
  for (Index j = 0; j < n; ++j) K(bl(m - 1, j), bl(m - 1, j)) += g_snk;
  const Eigen::PartialPivLU<MatrixL> lu(K);
  MatrixD out(V.rows(), n);
  for (Index b = 0; b < V.rows(); ++b) {
    VectorL rhs = VectorL::Zero(N);
    for (Index i = 0; i < m; ++i) rhs(wl(i, 0)) = g_src * V(b, i);
    const VectorL x = lu.solve(rhs);
    for (Index j = 0; j < n; ++j) out(b, j) = double(g_snk * x(bl(m - 1, j)));
  }
  return out;
}

double max_rel_error(const MatrixD& got, const MatrixD& want) {
  return (got - want).cwiseAbs().maxCoeff() / want.cwiseAbs().maxCoeff();
}

struct Case {
  Index m, n;
  IrDropParams r;
};

TEST(Crossbar, MatchesDenseNodalSolve) {
  const std::vector<Case> cases = {
      {1, 1, {1.0, 1.0, 0, 0}},     {3, 7, {0.5, 2.0, 0, 0}},    {7, 3, {2.0, 0.5, 0, 0}},
      {8, 8, {10.0, 10.0, 0, 0}},   {6, 5, {0.1, 0.1, 50, 20}},  {5, 9, {1.0, 3.0, 0, 100}},
      // Larger than one leaf of the grid solver (16 cells): several levels of merges, odd halves.
      {12, 20, {1.0, 1.0, 0, 0}},   {17, 9, {0.1, 5.0, 30, 0}},  {1, 40, {2.0, 2.0, 0, 0}},
      {33, 1, {2.0, 0.5, 10, 10}},
  };
  unsigned seed = 1;
  for (const Case& c : cases) {
    const MatrixD G = random_g(c.m, c.n, seed++);
    const MatrixD V = random_v(4, c.m, seed++);
    const MatrixD want = dense_currents(G, V, c.r);
    for (SparseSolver solver :
         {SparseSolver::schur, SparseSolver::cholmod, SparseSolver::eigen}) {
      // Solving the batch directly and going through W_eff are two paths to the same currents;
      // both must agree with the dense LU to rounding (conditioning ~ (n g_wire / G)^1 ~ 1e6).
      const MatrixD direct = circuit::crossbar_currents(G, V.topRows(1), c.r, solver);
      const MatrixD w = circuit::crossbar_effective_weights(G, c.r, solver);
      EXPECT_LT(max_rel_error(direct, want.topRows(1)), 1e-9) << c.m << "x" << c.n;
      EXPECT_LT(max_rel_error(V * w, want), 1e-9) << c.m << "x" << c.n;
    }
  }
}

TEST(Crossbar, WireResistanceLowersCurrents) {
  // IR drop only loses voltage across each device: every effective entry is below G and the
  // column sums fall as r grows.
  const MatrixD G = random_g(16, 16, 3);
  const MatrixD w1 = circuit::crossbar_effective_weights(G, {1.0, 1.0, 0, 0});
  const MatrixD w5 = circuit::crossbar_effective_weights(G, {5.0, 5.0, 0, 0});
  EXPECT_LT(w1.colwise().sum().maxCoeff() / G.colwise().sum().minCoeff(), 10.0);
  for (Index j = 0; j < G.cols(); ++j) {
    EXPECT_LT(w1.col(j).sum(), G.col(j).sum());
    EXPECT_LT(w5.col(j).sum(), w1.col(j).sum());
  }
}

TEST(Crossbar, ZeroResistanceIsTheIdealProductExactly) {
  const MatrixD G = random_g(9, 11, 4);
  const MatrixD w = circuit::crossbar_effective_weights(G, IrDropParams{});
  EXPECT_EQ(w, G);
  const MatrixD V = random_v(3, 9, 5);
  EXPECT_EQ(circuit::crossbar_currents(G, V, IrDropParams{}), MatrixD(V * G));
}

TEST(Crossbar, ZeroSegmentsMergeNodesAsTheLimitOfSmallOnes) {
  // r_row = 0 (word lines equipotential), r_col = 0 (bit lines at ground), and each with a
  // driver/sense resistance: the merged formulation must be the r -> 0 limit of the full one.
  // With r = 1e-6 ohm the model difference is O(r n^2 G) ~ 1e-9 relative.
  const MatrixD G = random_g(8, 6, 6);
  const MatrixD V = random_v(5, 8, 7);
  const double tiny = 1e-6;
  const std::vector<std::pair<IrDropParams, IrDropParams>> pairs = {
      {{0, 2.0, 0, 0}, {tiny, 2.0, 0, 0}},     {{2.0, 0, 0, 0}, {2.0, tiny, 0, 0}},
      {{0, 2.0, 30, 0}, {tiny, 2.0, 30, 0}},   {{2.0, 0, 0, 40}, {2.0, tiny, 0, 40}},
      {{0, 0, 30, 40}, {tiny, tiny, 30, 40}},  {{0, 0, 0, 40}, {tiny, tiny, 0, 40}},
  };
  for (const auto& [merged, full] : pairs) {
    const MatrixD want = dense_currents(G, V, full);
    EXPECT_LT(max_rel_error(circuit::crossbar_currents(G, V, merged), want), 1e-7)
        << merged.r_row << " " << merged.r_col << " " << merged.r_driver << " " << merged.r_sense;
  }
}

TEST(Crossbar, ZeroConductancesAndOffLines) {
  // A word line whose devices are all off carries no current; a column of zeros reads 0.
  MatrixD G = random_g(5, 4, 8);
  G.row(2).setZero();
  G.col(1).setZero();
  const MatrixD w = circuit::crossbar_effective_weights(G, {1.0, 1.0, 0, 0});
  EXPECT_EQ(w.row(2).cwiseAbs().maxCoeff(), 0.0);
  EXPECT_EQ(w.col(1).cwiseAbs().maxCoeff(), 0.0);
  const MatrixD V = random_v(2, 5, 9);
  EXPECT_LT(max_rel_error(V * w, dense_currents(G, V, {1.0, 1.0, 0, 0})), 1e-9);
}

TEST(Crossbar, ApplyIrDropReplacesEveryArray) {
  core::ConductanceBlock block;
  block.planes.push_back({random_g(6, 5, 10).cast<float>(), random_g(6, 5, 11).cast<float>(), 1});
  block.planes.push_back({random_g(6, 5, 12).cast<float>(), random_g(6, 5, 13).cast<float>(), 4});
  const core::ConductanceBlock before = block;
  circuit::apply_ir_drop(IrDropParams{}, block);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_EQ(block.planes[k].g_plus, before.planes[k].g_plus);
    EXPECT_EQ(block.planes[k].g_minus, before.planes[k].g_minus);
  }
  const IrDropParams r{2.0, 1.0, 0, 0};
  circuit::apply_ir_drop(r, block);
  for (std::size_t k = 0; k < 2; ++k) {
    const MatrixD wp =
        circuit::crossbar_effective_weights(before.planes[k].g_plus.cast<double>(), r);
    const MatrixD wm =
        circuit::crossbar_effective_weights(before.planes[k].g_minus.cast<double>(), r);
    EXPECT_EQ(block.planes[k].g_plus, wp.cast<float>());
    EXPECT_EQ(block.planes[k].g_minus, wm.cast<float>());
    EXPECT_EQ(block.planes[k].significance, before.planes[k].significance);
  }
}

void expect_error(const std::function<void()>& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "no exception, expected one naming " << needle;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(Crossbar, BadInputIsAClearError) {
  const MatrixD G = random_g(4, 3, 14);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  expect_error([&] { circuit::crossbar_effective_weights(G, {-1, 1, 0, 0}); }, "r_row = -1");
  expect_error([&] { circuit::crossbar_effective_weights(G, {1, nan, 0, 0}); }, "r_col = nan");
  expect_error([&] { circuit::crossbar_effective_weights(G, {1, 1, inf, 0}); }, "r_driver = inf");
  expect_error([&] { circuit::crossbar_effective_weights(G, {1, 1, 0, -2}); }, "r_sense = -2");
  MatrixD bad = G;
  bad(2, 1) = nan;
  expect_error([&] { circuit::crossbar_effective_weights(bad, {1, 1, 0, 0}); }, "G[2, 1] = nan");
  bad(2, 1) = -1e-6;
  expect_error([&] { circuit::crossbar_effective_weights(bad, {}); }, "G[2, 1] = -1e-06");
  expect_error([&] { circuit::crossbar_currents(G, random_v(2, 3, 1), {1, 1, 0, 0}); },
               "V: 2 x 3 does not match G: 4 x 3");
  MatrixD v = random_v(2, 4, 1);
  v(1, 3) = inf;
  expect_error([&] { circuit::crossbar_currents(G, v, {1, 1, 0, 0}); }, "V[1, 3] = inf");
}

TEST(Crossbar, GridSolverIsTheSameForAnyThreadCountAndAgreesWithCholmod) {
  // 96 x 80 cells: the top levels of the recursion (>= 4096 cells) run their halves as OpenMP
  // tasks. Every block is computed whole by one thread: the bits must not depend on the count.
  const MatrixD G = random_g(96, 80, 40);
  const IrDropParams r{1.0, 1.0, 0, 0};
  omp_set_num_threads(1);
  const MatrixD one = circuit::crossbar_effective_weights(G, r, SparseSolver::schur);
  omp_set_num_threads(2);
  const MatrixD two = circuit::crossbar_effective_weights(G, r, SparseSolver::schur);
  omp_set_num_threads(4);
  const MatrixD four = circuit::crossbar_effective_weights(G, r, SparseSolver::schur);
  EXPECT_EQ(one, two);
  EXPECT_EQ(one, four);
  // And the same circuit as CHOLMOD's factorisation, to rounding.
  const MatrixD ref = circuit::crossbar_effective_weights(G, r, SparseSolver::cholmod);
  EXPECT_LT(((one - ref).array() / ref.array()).abs().maxCoeff(), 1e-10);
}

}  // namespace

namespace {

TEST(Crossbar, ApplyIrDropIsTheSameForAnyThreadCountAndRethrowsErrors) {
  core::ConductanceBlock block;
  for (unsigned k = 0; k < 3; ++k)
    block.planes.push_back(
        {random_g(12, 10, 20 + 2 * k).cast<float>(), random_g(12, 10, 21 + 2 * k).cast<float>(),
         double(1u << k)});
  const IrDropParams r{1.0, 2.0, 10.0, 5.0};
  core::ConductanceBlock one = block, two = block;
  omp_set_num_threads(1);
  circuit::apply_ir_drop(r, one);
  omp_set_num_threads(2);
  circuit::apply_ir_drop(r, two);
  for (std::size_t k = 0; k < block.planes.size(); ++k) {
    EXPECT_EQ(one.planes[k].g_plus, two.planes[k].g_plus);
    EXPECT_EQ(one.planes[k].g_minus, two.planes[k].g_minus);
  }
  block.planes[1].g_minus(3, 4) = std::numeric_limits<float>::quiet_NaN();
  expect_error([&] { circuit::apply_ir_drop(r, block); }, "G[3, 4] = nan");
}

}  // namespace
