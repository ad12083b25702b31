// Nested dissection of the crossbar grid with dense Schur complements (circuit/grid_schur.h).
//
// Nodes: word-line node wl(i, j) = i n + j, bit-line node bl(i, j) = m n + i n + j. A rectangle
// of cells R = rows [i0, i1) x columns [j0, j1) holds the 2 |R| nodes of its cells. Its *ports*
// are the nodes with an edge leaving R (wl on its left and right columns, bl on its top and
// bottom rows, where a neighbour exists) and the terminals: wl(i, 0), tied to source i, and
// bl(m - 1, j), tied to ground j. The source and ground conductances are fixed potentials: they
// add to the diagonal only. Every other node of R has all its edges inside R.
//
// reduce(R) returns the Schur complement of R's nodal matrix onto its ports (dense, SPD): a leaf
// (a few cells) assembles its dense matrix and eliminates its inner nodes; a larger R is split in
// half across its longer side, both halves are reduced (in parallel as OpenMP tasks), their
// complements are placed side by side, joined by the wire segments crossing the cut, and the
// nodes that are no longer ports of R (the two sides of the cut) are eliminated: one dense
// Cholesky, one triangular solve and one symmetric rank-k update. The whole array's ports are the
// m + n terminals; with S its complement, W_eff = g_src g_gnd (S^-1)[wl terminals, bl terminals].
#include "circuit/grid_schur.h"

#include <omp.h>

#include <Eigen/Cholesky>
#include <algorithm>
#include <exception>
#include <tuple>
#include <utility>
#include <vector>

#include "core/error.h"

namespace pcmsim::circuit::detail {
namespace {

using core::Index;
using core::MatrixD;
using Dense = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;

constexpr const char* kTag = "circuit::crossbar";
constexpr Index kLeafCells = 16;     // a rectangle of at most this many cells is a leaf
constexpr Index kTaskCells = 4096;   // rectangles at least this large reduce a half as a task

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
    const Eigen::LLT<Dense, Eigen::Lower> llt(top.S);
    if (llt.info() != Eigen::Success)
      core::throw_invalid(kTag, "the nodal matrix is not positive definite (a floating node?)");
    Dense bs = Dense::Zero(s, m_), cs = Dense::Zero(s, n_);
    for (Index i = 0; i < m_; ++i) bs(i, i) = g_src_;
    for (Index j = 0; j < n_; ++j) cs(m_ + j, j) = g_gnd_;
    llt.matrixL().solveInPlace(bs);
    llt.matrixL().solveInPlace(cs);
    return bs.transpose() * cs;
  }

 private:
  int wl(Index i, Index j) const { return static_cast<int>(i * n_ + j); }
  int bl(Index i, Index j) const { return static_cast<int>(m_ * n_ + i * n_ + j); }

  bool is_port(int node, const Region& R) const {
    const Index mn = m_ * n_;
    if (node < mn) {
      const Index j = node % n_;
      return j == 0 || (j == R.j0 && j > 0) || (j == R.j1 - 1 && j < n_ - 1);
    }
    const Index i = (node - mn) / n_;
    return i == m_ - 1 || (i == R.i0 && i > 0) || (i == R.i1 - 1 && i < m_ - 1);
  }

  // A system of p nodes, node(c) for c in [0, p), matrix entries val(x, y) plus the symmetric
  // stamps of `links` (x, y, g): eliminates the nodes that are not ports of R,
  // S = K_PP - K_PE K_EE^-1 K_EP, gathering the three blocks straight from val (no p x p copy).
  template <class Node, class Val>
  Reduced eliminate(Index p, Node node, Val val,
                    const std::vector<std::tuple<Index, Index, double>>& links,
                    const Region& R) const {
    std::vector<std::pair<int, Index>> keep;  // (node, c)
    std::vector<Index> elim;
    for (Index c = 0; c < p; ++c) {
      if (is_port(node(c), R))
        keep.emplace_back(node(c), c);
      else
        elim.push_back(c);
    }
    std::sort(keep.begin(), keep.end());
    const Index np = static_cast<Index>(keep.size()), ne = static_cast<Index>(elim.size());
    std::vector<Index> slot(static_cast<std::size_t>(p));  // c -> keep position, or -1 - elim's
    for (Index k = 0; k < np; ++k) slot[static_cast<std::size_t>(keep[static_cast<std::size_t>(k)].second)] = k;
    for (Index k = 0; k < ne; ++k) slot[static_cast<std::size_t>(elim[static_cast<std::size_t>(k)])] = -1 - k;
    Reduced out;
    out.ports.reserve(keep.size());
    for (const auto& q : keep) out.ports.push_back(q.first);
    out.S.resize(np, np);
    Dense kee(ne, ne), kep(ne, np);
    for (Index b = 0; b < np; ++b) {
      const Index cb = keep[static_cast<std::size_t>(b)].second;
      for (Index a = 0; a < np; ++a) out.S(a, b) = val(keep[static_cast<std::size_t>(a)].second, cb);
      for (Index a = 0; a < ne; ++a) kep(a, b) = val(elim[static_cast<std::size_t>(a)], cb);
    }
    for (Index b = 0; b < ne; ++b)
      for (Index a = 0; a < ne; ++a)
        kee(a, b) = val(elim[static_cast<std::size_t>(a)], elim[static_cast<std::size_t>(b)]);
    auto add = [&](Index x, Index y, double v) {
      const Index sx = slot[static_cast<std::size_t>(x)], sy = slot[static_cast<std::size_t>(y)];
      if (sx >= 0 && sy >= 0) out.S(sx, sy) += v;
      else if (sx < 0 && sy < 0) kee(-1 - sx, -1 - sy) += v;
      else if (sx < 0) kep(-1 - sx, sy) += v;  // (keep, elim) is the mirror of (elim, keep)
    };
    for (const auto& [x, y, g] : links) {
      add(x, x, g);
      add(y, y, g);
      add(x, y, -g);
      add(y, x, -g);
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
    std::vector<int> nodes(static_cast<std::size_t>(2 * c));
    Dense K = Dense::Zero(2 * c, 2 * c);
    auto lw = [&](Index i, Index j) { return (i - R.i0) * w + (j - R.j0); };
    auto lb = [&](Index i, Index j) { return c + (i - R.i0) * w + (j - R.j0); };
    auto stamp = [&](Index p, Index q, double g) {
      K(p, p) += g;
      K(q, q) += g;
      K(p, q) -= g;
      K(q, p) -= g;
    };
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
    return eliminate(
        2 * c, [&](Index x) { return nodes[static_cast<std::size_t>(x)]; },
        [&](Index x, Index y) { return K(x, y); }, {}, R);
  }

  static Index position(const std::vector<int>& ports, int node) {
    const auto it = std::lower_bound(ports.begin(), ports.end(), node);
    if (it == ports.end() || *it != node)
      core::throw_invalid(kTag, "internal: a cut node is not a port of its half");
    return static_cast<Index>(it - ports.begin());
  }

  // a and b: the halves of R, split across columns (a left of b) or rows (a above b). Node c of
  // the joined system is a's port c, or b's port c - pa; the cut's wire segments join them.
  Reduced merge(const Reduced& a, const Reduced& b, const Region& ra, const Region& rb,
                const Region& R, bool columns) const {
    const Index pa = static_cast<Index>(a.ports.size()), pb = static_cast<Index>(b.ports.size());
    std::vector<std::tuple<Index, Index, double>> links;
    if (columns) {
      for (Index i = R.i0; i < R.i1; ++i)
        links.emplace_back(position(a.ports, wl(i, ra.j1 - 1)), pa + position(b.ports, wl(i, rb.j0)),
                           g_row_);
    } else {
      for (Index j = R.j0; j < R.j1; ++j)
        links.emplace_back(position(a.ports, bl(ra.i1 - 1, j)), pa + position(b.ports, bl(rb.i0, j)),
                           g_col_);
    }
    return eliminate(
        pa + pb,
        [&](Index c) {
          return c < pa ? a.ports[static_cast<std::size_t>(c)]
                        : b.ports[static_cast<std::size_t>(c - pa)];
        },
        [&](Index x, Index y) -> double {
          if ((x < pa) != (y < pa)) return 0.0;
          return x < pa ? a.S(x, y) : b.S(x - pa, y - pa);
        },
        links, R);
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
    return merge(a, b, ra, rb, R, columns);
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
