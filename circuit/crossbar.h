// Exact DC solution of a resistive crossbar with wire resistance (docs/ir-drop.md).
//
// The circuit: an m x n array. Device (i, j), conductance G[i, j], connects word-line node (i, j)
// to bit-line node (i, j). Word line i is driven at its left end by an ideal source v_i through
// r_driver + r_row to node (i, 0), and node (i, j) -> (i, j+1) through r_row. Bit line j: node
// (i, j) -> (i+1, j) through r_col, node (m-1, j) -> virtual ground through r_col + r_sense. The
// output is the current into ground of each bit line.
//
// For ohmic devices the circuit is linear: I = v W_eff with W_eff (m x n, siemens) a function of
// G and the resistances only. The nodal system K x = B v is symmetric positive definite (every
// node reaches a source or ground through positive conductances, so no node floats); W_eff =
// B^T K^-1 C^T, where C reads the ground currents, is one sparse Cholesky factorisation and one
// solve with min(m, n) right-hand sides. A zero resistance merges the nodes it joins (r_row = 0:
// a word line is one node, tied to its source when r_driver = 0 too); all zero is the ideal
// product, W_eff = G exactly.
#pragma once

#include "circuit/ir_drop.h"
#include "core/types.h"

namespace pcmsim::circuit {

// Sparse Cholesky used for the nodal system (bench/bench_circuit.cpp compares them).
enum class SparseSolver {
  schur,    // nested dissection of the grid, dense Schur complements (default; docs/ir-drop.md);
            // CHOLMOD where a zero resistance merges the nodes of a line
  cholmod,  // SuiteSparse CHOLMOD, supernodal, the m + n terminals ordered last
  eigen,    // Eigen's SimplicialLLT with AMD ordering
};

// W_eff (m x n, siemens): I = v W_eff for any row voltages v. G: m x n, finite, >= 0 (siemens).
// Throws std::invalid_argument naming the parameter and its value for a negative, NaN or infinite
// resistance or conductance.
core::MatrixD crossbar_effective_weights(const Eigen::Ref<const core::MatrixD>& G,
                                         const IrDropParams& r,
                                         SparseSolver solver = SparseSolver::schur);

// Bit-line currents (batch x n, amperes) for row voltages V (batch x m, volts, finite). Solves the
// nodal system with the batch as right-hand sides when the batch is smaller than min(m, n), else
// multiplies by W_eff; both exact.
core::MatrixD crossbar_currents(const Eigen::Ref<const core::MatrixD>& G,
                                const Eigen::Ref<const core::MatrixD>& V, const IrDropParams& r,
                                SparseSolver solver = SparseSolver::schur);

}  // namespace pcmsim::circuit
