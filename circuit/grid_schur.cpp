// Nested dissection of the crossbar grid with dense Schur complements (circuit/grid_schur.h).
//
// Nodes: word-line node wl(i, j) = i n + j, bit-line node bl(i, j) = m n + i n + j. A rectangle
// of cells R = rows [i0, i1) x columns [j0, j1) owns the 2 |R| nodes of its cells and every edge
// at an owned node except the two that leave R to the right (wl(i, j1 - 1) -> wl(i, j1)) and
// downwards (bl(i1 - 1, j) -> bl(i1, j)): those belong to the neighbour. So R's edges also reach
// the nodes just left of it (wl(i, j0 - 1)) and just above it (bl(i0 - 1, j)). R's *ports* are
// the nodes of its edges that an edge outside R also touches: the external ones on its left and
// top, its own right column of wl and bottom row of bl (where a neighbour exists), and the
// terminals wl(i, 0), tied to source i, and bl(m - 1, j), tied to ground j. Source and ground
// are fixed potentials: they add to the diagonal only. Every other node has all its edges in R.
//
// reduce(R) returns the Schur complement onto R's ports of the nodal matrix of R's edges (dense,
// symmetric positive definite: every word line of R reaches a port at its left end, every bit
// line at its bottom end). A leaf (a few cells) assembles its dense matrix and eliminates its
// inner nodes; a larger R is split in half across its longer side, both halves are reduced (in
// parallel, as OpenMP tasks), their complements are summed on the union of their ports (the two
// halves share exactly the nodes along the cut: one per line crossing it) and the nodes that are
// no longer ports of R, those along the cut, are eliminated: one dense Cholesky, one triangular
// solve and one symmetric rank-k update. The whole array's ports are the m + n terminals; with S
// its complement, W_eff = g_src g_gnd (S^-1)[wl terminals, bl terminals].
#include "circuit/grid_schur.h"

#include <omp.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <climits>
#include <exception>
#include <initializer_list>
#include <utility>
#include <vector>

#include "core/error.h"

namespace pcmsim::circuit::detail {
namespace {

using core::Index;
using core::MatrixD;
using Dense = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

constexpr const char* kTag = "circuit::crossbar";
constexpr Index kLeafCells = 16;    // a rectangle of at most this many cells is a leaf
constexpr Index kTaskCells = 4096;  // rectangles at least this large reduce a half as a task

struct Region {
  Index i0, i1, j0, j1;
  Index cells() const { return (i1 - i0) * (j1 - j0); }
};

// The Schur complement of a region onto its ports (node ids, ascending).
struct Reduced {
  std::vector<int> ports;
  Dense S;
};

class GridSchur {
 public:
  GridSchur(const Eigen::Ref<const MatrixD>& G, const IrDropParams& r)
      : G_(G),
        m_(G.rows()),
        n_(G.cols()),
        g_row_(1.0 / r.r_row),
        g_col_(1.0 / r.r_col),
        g_src_(1.0 / (r.r_row + r.r_driver)),
        g_gnd_(1.0 / (r.r_col + r.r_sense)) {}

  MatrixD effective_weights() {
    const Region all{0, m_, 0, n_};
    Reduced top;
    if (omp_in_parallel()) {
      top = reduce(all);
    } else {
      std::exception_ptr error;
#pragma omp parallel
#pragma omp single
      {
        try {
          top = reduce(all);
        } catch (...) {
          error = std::current_exception();
        }
      }
      if (error) std::rethrow_exception(error);
    }
    // Ports: the m word-line terminals wl(i, 0) = i n, then the n bit-line terminals.
    const Index s = m_ + n_;
    if (static_cast<Index>(top.ports.size()) != s)
      core::throw_invalid(kTag, "internal: the reduced array does not have m + n terminals");
    // W_eff = g_src g_gnd (S^-1)_wb = -g_src g_gnd S_ww^-1 S_wb T^-1, T = S_bb - S_bw S_ww^-1 S_wb
    // (the blocks of the inverse; a quarter of the work of inverting S through its Cholesky).
    Dense swb = top.S.topRightCorner(m_, n_), t = top.S.bottomRightCorner(n_, n_);
    const Eigen::LLT<Dense, Eigen::Lower> lw(top.S.topLeftCorner(m_, m_));
    if (lw.info() != Eigen::Success)
      core::throw_invalid(kTag, "the nodal matrix is not positive definite (a floating node?)");
    lw.matrixL().solveInPlace(swb);  // L_w^-1 S_wb
    t.selfadjointView<Eigen::Lower>().rankUpdate(swb.transpose(), -1.0);
    const Eigen::LLT<Dense, Eigen::Lower> lt(t);
    if (lt.info() != Eigen::Success)
      core::throw_invalid(kTag, "the nodal matrix is not positive definite (a floating node?)");
    lw.matrixU().solveInPlace(swb);  // S_ww^-1 S_wb
    const Dense wt = lt.solve(swb.transpose());
    return (-g_src_ * g_gnd_) * wt.transpose();
  }

 private:
  int wl(Index i, Index j) const { return static_cast<int>(i * n_ + j); }
  int bl(Index i, Index j) const { return static_cast<int>(m_ * n_ + i * n_ + j); }

  bool is_port(int node, const Region& R) const {
    const Index mn = m_ * n_;
    if (node < mn) {
      const Index j = node % n_;
      return j == 0 || j == R.j0 - 1 || (j == R.j1 - 1 && R.j1 < n_);
    }
    const Index i = (node - mn) / n_;
    return i == m_ - 1 || i == R.i0 - 1 || (i == R.i1 - 1 && R.i1 < m_);
  }

  // One summand of a system: the matrix S over some of its nodes; index[c] is node c's row in S,
  // or -1.
  struct Part {
    const Dense* S;
    const std::vector<Index>* index;
  };

  // A system of nodes[c], c in [0, p), its matrix the sum of `parts`: eliminates the nodes that
  // are not ports of R, S = K_PP - K_PE K_EE^-1 K_EP, gathering the blocks from the parts.
  Reduced eliminate(const std::vector<int>& nodes, std::initializer_list<Part> parts,
                    const Region& R) const {
    const Index p = static_cast<Index>(nodes.size());
    std::vector<std::pair<int, Index>> keep;  // (node, c)
    std::vector<Index> elim;
    for (Index c = 0; c < p; ++c) {
      if (is_port(nodes[static_cast<std::size_t>(c)], R))
        keep.emplace_back(nodes[static_cast<std::size_t>(c)], c);
      else
        elim.push_back(c);
    }
    std::sort(keep.begin(), keep.end());
    const Index np = static_cast<Index>(keep.size()), ne = static_cast<Index>(elim.size());
    Reduced out;
    out.ports.reserve(keep.size());
    for (const auto& q : keep) out.ports.push_back(q.first);
    out.S.setZero(np, np);
    Dense kee = Dense::Zero(ne, ne), kep = Dense::Zero(ne, np);
    std::vector<std::pair<Index, Index>> pk, pe;  // (position in keep / elim, row in the part)
    for (const Part& part : parts) {
      pk.clear();
      pe.clear();
      for (Index k = 0; k < np; ++k) {
        const Index r =
            (*part.index)[static_cast<std::size_t>(keep[static_cast<std::size_t>(k)].second)];
        if (r >= 0) pk.emplace_back(k, r);
      }
      for (Index k = 0; k < ne; ++k) {
        const Index r = (*part.index)[static_cast<std::size_t>(elim[static_cast<std::size_t>(k)])];
        if (r >= 0) pe.emplace_back(k, r);
      }
      for (const auto& [kb, rb] : pk) {
        const double* col = part.S->col(rb).data();
        double* dst = out.S.col(kb).data();
        for (const auto& [ka, ra] : pk) dst[ka] += col[ra];
        double* dste = kep.col(kb).data();
        for (const auto& [ka, ra] : pe) dste[ka] += col[ra];
      }
      for (const auto& [kb, rb] : pe) {
        const double* col = part.S->col(rb).data();
        double* dst = kee.col(kb).data();
        for (const auto& [ka, ra] : pe) dst[ka] += col[ra];
      }
    }
    if (ne == 0) return out;
    const Eigen::LLT<Dense, Eigen::Lower> llt(kee);
    if (llt.info() != Eigen::Success)
      core::throw_invalid(kTag, "the nodal matrix is not positive definite (a floating node?)");
    llt.matrixL().solveInPlace(kep);  // L^-1 K_EP
    out.S.selfadjointView<Eigen::Lower>().rankUpdate(kep.transpose(), -1.0);
    out.S.triangularView<Eigen::StrictlyUpper>() = out.S.transpose();
    return out;
  }

  Reduced leaf(const Region& R) const {
    const Index h = R.i1 - R.i0, w = R.j1 - R.j0, c = h * w;
    const Index left = R.j0 > 0 ? h : 0, top = R.i0 > 0 ? w : 0, p = 2 * c + left + top;
    std::vector<int> nodes(static_cast<std::size_t>(p));
    Dense K = Dense::Zero(p, p);
    auto lw = [&](Index i, Index j) { return (i - R.i0) * w + (j - R.j0); };
    auto lb = [&](Index i, Index j) { return c + (i - R.i0) * w + (j - R.j0); };
    auto stamp = [&](Index a, Index b, double g) {
      K(a, a) += g;
      K(b, b) += g;
      K(a, b) -= g;
      K(b, a) -= g;
    };
    for (Index i = R.i0; i < R.i1; ++i)
      if (left) {
        const Index e = 2 * c + (i - R.i0);  // wl(i, j0 - 1)
        nodes[static_cast<std::size_t>(e)] = wl(i, R.j0 - 1);
        stamp(e, lw(i, R.j0), g_row_);
      }
    for (Index j = R.j0; j < R.j1; ++j)
      if (top) {
        const Index e = 2 * c + left + (j - R.j0);  // bl(i0 - 1, j)
        nodes[static_cast<std::size_t>(e)] = bl(R.i0 - 1, j);
        stamp(e, lb(R.i0, j), g_col_);
      }
    for (Index i = R.i0; i < R.i1; ++i)
      for (Index j = R.j0; j < R.j1; ++j) {
        nodes[static_cast<std::size_t>(lw(i, j))] = wl(i, j);
        nodes[static_cast<std::size_t>(lb(i, j))] = bl(i, j);
        stamp(lw(i, j), lb(i, j), G_(i, j));
        if (j + 1 < R.j1) stamp(lw(i, j), lw(i, j + 1), g_row_);
        if (i + 1 < R.i1) stamp(lb(i, j), lb(i + 1, j), g_col_);
        if (j == 0) K(lw(i, j), lw(i, j)) += g_src_;
        if (i == m_ - 1) K(lb(i, j), lb(i, j)) += g_gnd_;
      }
    std::vector<Index> index(static_cast<std::size_t>(p));
    for (Index k = 0; k < p; ++k) index[static_cast<std::size_t>(k)] = k;
    return eliminate(nodes, {Part{&K, &index}}, R);
  }

  // The sum of the complements of R's two halves on the union of their ports (sorted; they
  // share the nodes along the cut), then the nodes that are no longer ports eliminated.
  Reduced merge(const Reduced& a, const Reduced& b, const Region& R) const {
    std::vector<int> nodes;
    std::vector<Index> ia, ib;  // node c -> its index in a's / b's ports, or -1
    nodes.reserve(a.ports.size() + b.ports.size());
    std::size_t x = 0, y = 0;
    while (x < a.ports.size() || y < b.ports.size()) {
      const int na = x < a.ports.size() ? a.ports[x] : INT_MAX;
      const int nb = y < b.ports.size() ? b.ports[y] : INT_MAX;
      const int node = std::min(na, nb);
      nodes.push_back(node);
      ia.push_back(na == node ? static_cast<Index>(x++) : -1);
      ib.push_back(nb == node ? static_cast<Index>(y++) : -1);
    }
    return eliminate(nodes, {Part{&a.S, &ia}, Part{&b.S, &ib}}, R);
  }

  Reduced reduce(const Region& R) const {
    if (R.cells() <= kLeafCells) return leaf(R);
    const bool columns = R.j1 - R.j0 >= R.i1 - R.i0;
    Region ra = R, rb = R;
    if (columns) {
      ra.j1 = rb.j0 = R.j0 + (R.j1 - R.j0) / 2;
    } else {
      ra.i1 = rb.i0 = R.i0 + (R.i1 - R.i0) / 2;
    }
    Reduced a, b;
    std::exception_ptr ea, eb;
#pragma omp task shared(a, ea) firstprivate(ra) if (R.cells() >= kTaskCells)
    {
      try {
        a = reduce(ra);
      } catch (...) {
        ea = std::current_exception();
      }
    }
    try {
      b = reduce(rb);
    } catch (...) {
      eb = std::current_exception();
    }
#pragma omp taskwait
    if (ea) std::rethrow_exception(ea);
    if (eb) std::rethrow_exception(eb);
    return merge(a, b, R);
  }

  const Eigen::Ref<const MatrixD>& G_;
  Index m_, n_;
  double g_row_, g_col_, g_src_, g_gnd_;
};

}  // namespace

MatrixD grid_schur_effective_weights(const Eigen::Ref<const MatrixD>& G, const IrDropParams& r) {
  if (!(r.r_row > 0) || !(r.r_col > 0))
    core::throw_invalid(kTag, "internal: the grid solver needs r_row > 0 and r_col > 0");
  return GridSchur(G, r).effective_weights();
}

}  // namespace pcmsim::circuit::detail
