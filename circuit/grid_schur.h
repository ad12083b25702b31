// The effective matrix of a crossbar with resistive word and bit lines (r_row > 0 and r_col > 0)
// by nested dissection of the grid into rectangles and dense Schur complements (docs/ir-drop.md,
// "How it is solved"). Internal to circuit/: crossbar_effective_weights picks it.
#pragma once

#include "circuit/ir_drop.h"
#include "core/types.h"

namespace pcmsim::circuit::detail {

// W_eff (m x n, siemens) of the circuit of circuit/crossbar.h. Requires r.r_row > 0 and
// r.r_col > 0 and G finite and >= 0 (the caller checks). Independent rectangles are reduced as
// OpenMP tasks (inside an enclosing parallel region, or in its own when there is none); every
// Schur complement is computed whole by one thread, so the bits do not depend on the thread count.
core::MatrixD grid_schur_effective_weights(const Eigen::Ref<const core::MatrixD>& G,
                                           const IrDropParams& r);

}  // namespace pcmsim::circuit::detail
