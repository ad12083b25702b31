#include "circuit/crossbar.h"

#include <cholmod.h>

#include <Eigen/CholmodSupport>
#include <Eigen/SparseCholesky>
#include <algorithm>
#include <cmath>
#include <exception>
#include <vector>

#include "circuit/grid_schur.h"
#include "core/error.h"

namespace pcmsim::circuit {
namespace {

constexpr const char* kTag = "circuit::crossbar";
using core::concat;
using core::Index;
using core::MatrixD;
using SpMat = Eigen::SparseMatrix<double, Eigen::ColMajor, int>;
using DenseCol = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

// Right-hand sides solved at once: bounds the dense N x k solution (2 m n x 64 doubles = 268 MB
// at 512 x 512) while keeping the blocked triangular solves efficient.
constexpr Index kRhsBlock = 64;

void check_g(const Eigen::Ref<const MatrixD>& G) {
  for (Index i = 0; i < G.rows(); ++i)
    for (Index j = 0; j < G.cols(); ++j)
      if (!(G(i, j) >= 0) || !std::isfinite(G(i, j)))
        core::throw_invalid(kTag, concat("G[", i, ", ", j, "] = ", G(i, j),
                                         " S: conductances must be finite and >= 0"));
}

// The nodal system of the circuit in crossbar.h: unknown node potentials x, K x = B v, bit-line
// currents I^T = C x (B: sources -> unknowns, C: unknowns -> ground currents).
struct NodalSystem {
  SpMat K;  // N x N, lower triangle only
  SpMat B;  // N x m
  SpMat C;  // n x N

  NodalSystem(const Eigen::Ref<const MatrixD>& G, const IrDropParams& r) {
    const Index m = G.rows(), n = G.cols();
    // A circuit terminal: an unknown node, a row source or a bit line's ground.
    enum Kind { unknown, source, ground };
    struct Node {
      Kind kind;
      Index index;
    };
    Index N = 0;
    const bool wl_full = r.r_row > 0, wl_merged = !wl_full && r.r_driver > 0;
    const bool bl_full = r.r_col > 0, bl_merged = !bl_full && r.r_sense > 0;
    const Index wl0 = N;
    N += wl_full ? m * n : wl_merged ? m : 0;
    const Index bl0 = N;
    N += bl_full ? m * n : bl_merged ? n : 0;
    auto wl = [&](Index i, Index j) -> Node {
      if (wl_full) return {unknown, wl0 + i * n + j};
      if (wl_merged) return {unknown, wl0 + i};
      return {source, i};
    };
    auto bl = [&](Index i, Index j) -> Node {
      if (bl_full) return {unknown, bl0 + i * n + j};
      if (bl_merged) return {unknown, bl0 + j};
      return {ground, j};
    };

    std::vector<Eigen::Triplet<double, int>> k, b, c;
    k.reserve(static_cast<std::size_t>(N + 3 * m * n));
    auto stamp = [&](Node p, Node q, double g) {
      if (g == 0) return;
      if (p.kind != unknown) std::swap(p, q);
      if (p.kind != unknown)
        core::throw_invalid(kTag, "internal: an edge between two fixed potentials");
      k.emplace_back(int(p.index), int(p.index), g);
      if (q.kind == unknown) {
        k.emplace_back(int(q.index), int(q.index), g);
        const auto [lo, hi] = std::minmax(p.index, q.index);
        k.emplace_back(int(hi), int(lo), -g);  // lower triangle
      } else if (q.kind == source) {
        b.emplace_back(int(p.index), int(q.index), g);
      } else {
        c.emplace_back(int(q.index), int(p.index), g);
      }
    };
    for (Index i = 0; i < m; ++i)
      for (Index j = 0; j < n; ++j) stamp(wl(i, j), bl(i, j), G(i, j));
    if (wl_full) {
      for (Index i = 0; i < m; ++i) {
        stamp(Node{source, i}, wl(i, 0), 1.0 / (r.r_row + r.r_driver));
        for (Index j = 0; j + 1 < n; ++j) stamp(wl(i, j), wl(i, j + 1), 1.0 / r.r_row);
      }
    } else if (wl_merged) {
      for (Index i = 0; i < m; ++i) stamp(Node{source, i}, wl(i, 0), 1.0 / r.r_driver);
    }
    if (bl_full) {
      for (Index j = 0; j < n; ++j) {
        for (Index i = 0; i + 1 < m; ++i) stamp(bl(i, j), bl(i + 1, j), 1.0 / r.r_col);
        stamp(bl(m - 1, j), Node{ground, j}, 1.0 / (r.r_col + r.r_sense));
      }
    } else if (bl_merged) {
      for (Index j = 0; j < n; ++j) stamp(bl(0, j), Node{ground, j}, 1.0 / r.r_sense);
    }
    K.resize(N, N);
    K.setFromTriplets(k.begin(), k.end());
    K.makeCompressed();
    B.resize(N, m);
    B.setFromTriplets(b.begin(), b.end());
    C.resize(n, N);
    C.setFromTriplets(c.begin(), c.end());
  }
};

// Solves K X = R block by block and hands each solution block to `use(first column, X)`.
template <class Use>
void solve_blocks(const SpMat& K, const SpMat& R, SparseSolver solver, Use use) {
  auto run = [&](auto& llt) {
    llt.compute(K);
    if (llt.info() != Eigen::Success)
      core::throw_invalid(kTag, "the nodal matrix is not positive definite (a floating node?)");
    for (Index c0 = 0; c0 < R.cols(); c0 += kRhsBlock) {
      const Index k = std::min(kRhsBlock, R.cols() - c0);
      const DenseCol rhs = DenseCol(R.middleCols(c0, k));
      const DenseCol x = llt.solve(rhs);
      use(c0, x);
    }
  };
  if (solver != SparseSolver::eigen) {
    Eigen::CholmodSupernodalLLT<SpMat, Eigen::Lower> llt;
    run(llt);
  } else {
    Eigen::SimplicialLLT<SpMat, Eigen::Lower, Eigen::AMDOrdering<int>> llt;
    run(llt);
  }
}

// Nodes that touch a source or a ground (rows of B, columns of C): the boundary S.
std::vector<int> boundary_nodes(const NodalSystem& sys) {
  const Index N = sys.K.rows();
  std::vector<char> in(static_cast<std::size_t>(N), 0);
  for (Index c = 0; c < sys.B.outerSize(); ++c)
    for (SpMat::InnerIterator it(sys.B, c); it; ++it) in[static_cast<std::size_t>(it.row())] = 1;
  for (Index c = 0; c < sys.C.outerSize(); ++c)
    for (SpMat::InnerIterator it(sys.C, c); it; ++it) in[static_cast<std::size_t>(it.col())] = 1;
  std::vector<int> nodes;
  for (Index k = 0; k < N; ++k)
    if (in[static_cast<std::size_t>(k)]) nodes.push_back(static_cast<int>(k));
  return nodes;
}

// W_eff = B^T K^-1 C^T through the boundary: with the s boundary nodes ordered last, P K P^T =
// L L^T has L^-1 P B and L^-1 P C^T supported on the last s rows, so W_eff = (L_SS^-1 B_S)^T
// (L_SS^-1 C_S) with L_SS the trailing s x s block of L. One factorisation (CHOLMOD, CAMD
// ordering constrained to put S last) and two dense s x s triangular solves: no N-long
// right-hand sides at all.
MatrixD effective_weights_boundary(const NodalSystem& sys, const std::vector<int>& boundary) {
  const Index N = sys.K.rows(), s = static_cast<Index>(boundary.size());
  const Index m = sys.B.cols(), n = sys.C.rows();
  struct Common {
    cholmod_common c;
    cholmod_factor* L = nullptr;
    Common() { cholmod_start(&c); }
    ~Common() {
      if (L) cholmod_free_factor(&L, &c);
      cholmod_finish(&c);
    }
  } cm;
  cholmod_common& c = cm.c;
  SpMat& K = const_cast<SpMat&>(sys.K);  // CHOLMOD reads it through a non-const struct only
  cholmod_sparse A{};
  A.nrow = A.ncol = static_cast<std::size_t>(N);
  A.nzmax = static_cast<std::size_t>(K.nonZeros());
  A.p = K.outerIndexPtr();
  A.i = K.innerIndexPtr();
  A.x = K.valuePtr();
  A.stype = -1;  // lower triangle stored
  A.itype = CHOLMOD_INT;
  A.xtype = CHOLMOD_REAL;
  A.dtype = CHOLMOD_DOUBLE;
  A.sorted = 1;
  A.packed = 1;
  std::vector<int> cmember(static_cast<std::size_t>(N), 0), perm(static_cast<std::size_t>(N));
  for (int k : boundary) cmember[static_cast<std::size_t>(k)] = 1;
  if (!cholmod_camd(&A, nullptr, 0, cmember.data(), perm.data(), &c))
    core::throw_invalid(kTag, concat("CHOLMOD ordering failed (status ", c.status, ")"));
  c.nmethods = 1;
  c.method[0].ordering = CHOLMOD_GIVEN;
  c.postorder = 0;  // keep S last
  c.supernodal = CHOLMOD_SUPERNODAL;
  cm.L = cholmod_analyze_p(&A, perm.data(), nullptr, 0, &c);
  if (!cm.L || !cholmod_factorize(&A, cm.L, &c) || c.status != CHOLMOD_OK)
    core::throw_invalid(kTag, concat("CHOLMOD factorisation failed (status ", c.status,
                                     "): the nodal matrix is not positive definite"));
  // Simplicial, packed, LL^T: column k's rows and values are L->i, L->x over L->p[k]..p[k+1].
  if (!cholmod_change_factor(CHOLMOD_REAL, 1, 0, 1, 1, cm.L, &c))
    core::throw_invalid(kTag, concat("CHOLMOD factor conversion failed (status ", c.status, ")"));
  const int* L_perm = static_cast<const int*>(cm.L->Perm);
  std::vector<Index> pos(static_cast<std::size_t>(N), -1);  // node -> position in S, or -1
  for (Index k = N - s; k < N; ++k) pos[static_cast<std::size_t>(L_perm[k])] = k - (N - s);
  for (int k : boundary)
    if (pos[static_cast<std::size_t>(k)] < 0)
      core::throw_invalid(kTag, "internal: the constrained ordering did not put the boundary last");
  const int* Lp = static_cast<const int*>(cm.L->p);
  const int* Li = static_cast<const int*>(cm.L->i);
  const double* Lx = static_cast<const double*>(cm.L->x);
  DenseCol lss = DenseCol::Zero(s, s);
  for (Index k = N - s; k < N; ++k)
    for (int q = Lp[k]; q < Lp[k + 1]; ++q) lss(Li[q] - (N - s), k - (N - s)) = Lx[q];
  DenseCol bs = DenseCol::Zero(s, m), cs = DenseCol::Zero(s, n);
  for (Index col = 0; col < sys.B.outerSize(); ++col)
    for (SpMat::InnerIterator it(sys.B, col); it; ++it)
      bs(pos[static_cast<std::size_t>(it.row())], col) += it.value();
  for (Index col = 0; col < sys.C.outerSize(); ++col)
    for (SpMat::InnerIterator it(sys.C, col); it; ++it)
      cs(pos[static_cast<std::size_t>(col)], it.row()) += it.value();
  lss.triangularView<Eigen::Lower>().solveInPlace(bs);
  lss.triangularView<Eigen::Lower>().solveInPlace(cs);
  return bs.transpose() * cs;
}

}  // namespace

void IrDropParams::validate() const {
  constexpr const char* where = "circuit::IrDropParams";
  core::require_non_negative(where, "r_row", r_row);
  core::require_non_negative(where, "r_col", r_col);
  core::require_non_negative(where, "r_driver", r_driver);
  core::require_non_negative(where, "r_sense", r_sense);
}

MatrixD crossbar_effective_weights(const Eigen::Ref<const MatrixD>& G, const IrDropParams& r,
                                   SparseSolver solver) {
  r.validate();
  check_g(G);
  if (r.ideal() || G.size() == 0) return G;
  const Index m = G.rows(), n = G.cols();
  if (solver == SparseSolver::schur) {
    if (r.r_row > 0 && r.r_col > 0) return detail::grid_schur_effective_weights(G, r);
    solver = SparseSolver::cholmod;  // merged lines: the terminals-last factorisation below
  }
  const NodalSystem sys(G, r);
  // The boundary is the first column of word-line nodes and the last row of bit-line nodes
  // (m + n) unless a line is tied to its source or ground; then the circuit falls apart into
  // independent lines, and plain right-hand sides are cheap.
  if (solver == SparseSolver::cholmod) {
    const std::vector<int> boundary = boundary_nodes(sys);
    if (static_cast<Index>(boundary.size()) <= 2 * (m + n))
      return effective_weights_boundary(sys, boundary);
  }
  MatrixD w(m, n);
  // W_eff = B^T K^-1 C^T: solve for the side with fewer right-hand sides.
  if (n <= m) {
    const SpMat rhs = sys.C.transpose();
    const SpMat bt = sys.B.transpose();
    solve_blocks(sys.K, rhs, solver, [&](Index c0, const DenseCol& x) {
      w.middleCols(c0, x.cols()) = bt * x;
    });
  } else {
    solve_blocks(sys.K, sys.B, solver, [&](Index c0, const DenseCol& x) {
      w.middleRows(c0, x.cols()) = (sys.C * x).transpose();
    });
  }
  return w;
}

MatrixD crossbar_currents(const Eigen::Ref<const MatrixD>& G, const Eigen::Ref<const MatrixD>& V,
                          const IrDropParams& r, SparseSolver solver) {
  r.validate();
  if (V.cols() != G.rows())
    core::throw_invalid(kTag, concat("V: ", V.rows(), " x ", V.cols(), " does not match G: ",
                                     G.rows(), " x ", G.cols(), " (V must be batch x ", G.rows(),
                                     ")"));
  for (Index b = 0; b < V.rows(); ++b)
    for (Index i = 0; i < V.cols(); ++i)
      if (!std::isfinite(V(b, i)))
        core::throw_invalid(kTag, concat("V[", b, ", ", i, "] = ", V(b, i), " V: must be finite"));
  check_g(G);
  if (r.ideal() || G.size() == 0 || V.rows() >= std::min(G.rows(), G.cols()))
    return V * crossbar_effective_weights(G, r, solver);
  const NodalSystem sys(G, r);
  const SpMat rhs = (sys.B * V.transpose()).sparseView();
  MatrixD out(V.rows(), G.cols());
  solve_blocks(sys.K, rhs, solver, [&](Index c0, const DenseCol& x) {
    out.middleRows(c0, x.cols()) = (sys.C * x).transpose();
  });
  return out;
}

void apply_ir_drop(const IrDropParams& params, core::ConductanceBlock& block) {
  params.validate();
  if (params.ideal()) return;
  std::vector<core::MatrixF*> arrays;
  for (core::ConductancePlane& plane : block.planes) {
    arrays.push_back(&plane.g_plus);
    arrays.push_back(&plane.g_minus);
  }
  // Arrays are independent circuits, each computed whole by one thread (own CHOLMOD workspace),
  // so the result does not depend on the thread count. Exceptions must not leave the region.
  std::vector<std::exception_ptr> errors(arrays.size());
  const int n = static_cast<int>(arrays.size());
#pragma omp parallel for schedule(dynamic) if (n > 1)
  for (int k = 0; k < n; ++k) {
    try {
      *arrays[k] = crossbar_effective_weights(arrays[k]->cast<double>(), params).cast<float>();
    } catch (...) {
      errors[static_cast<std::size_t>(k)] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace pcmsim::circuit
