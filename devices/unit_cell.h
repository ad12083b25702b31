// Unit cells: how a block of weights becomes target conductances, and the read-back of a
// conductance block to the weights it represents (docs/physics.md §1).
//
// Every cell type is expressed in one form: a block has planes k = 0..P-1, each a differential
// device pair per weight with significance F_k, and a per-column scale s_j (siemens per weight
// unit), so that
//     W_ij = sum_k F_k * (G+_k,ij - G-_k,ij) / s_j.
//  - pair        one plane, F = {1}: s = g_max / max|W|, G+ = clip(sW, 0, g_max),
//                G- = clip(-sW, 0, g_max).
//  - multi_pair  planes with F_0 < F_1 < ...: sum_k F_k g_max maps to max|W|. The
//                lowest-significance pair is filled first (up to g_max), the next only takes
//                the remainder, and so on.
//  - bit_sliced  W is quantised to a signed `weight_bits` integer q (levels q*max|W|/Q,
//                Q = 2^(weight_bits-1)-1, round to nearest, ties away from zero); |q| is split
//                into slices of `slice_bits` bits, slice k (value d_k in [0, 2^b-1]) on pair k
//                with d_k * g_max/(2^b-1) on the device the sign selects; F_k = 2^(b*k).
//                The top slice holds the remaining weight_bits-1 - b*(P-1) magnitude bits.
//
// Scaling: max|W| is taken over the whole block (WeightScaling::block) or per column
// (WeightScaling::column).
//
// All-zero block or column (max|W| = 0): the scale is defined as 1 S per weight unit and every
// device of it targets 0 S; the read-back is exactly 0.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Core>

#include "core/conductance_block.h"
#include "core/settings.h"
#include "core/types.h"

namespace pcmsim::devices {

enum class CellKind {
  pair,        // one differential pair per weight (default)
  multi_pair,  // N pairs with significance factors
  bit_sliced,  // quantised weight split into bit slices, one pair per slice
};

enum class WeightScaling {
  block,   // one scale for the whole block: max|W| over the block
  column,  // one scale per column (output): max|W| over the column
};

struct UnitCellSpec {
  CellKind kind = CellKind::pair;
  WeightScaling scaling = WeightScaling::block;

  // multi_pair: explicit significance factors F_0 < F_1 < ..., all finite and > 0. When empty,
  // the geometric series F_k = significance_factor^k, k < num_pairs, is used
  // (4 devices = num_pairs 2, factor 2 -> F = {1, 2}).
  std::vector<double> significances;
  int num_pairs = 2;                 // multi_pair with empty `significances`; in [1, 16]
  double significance_factor = 2.0;  // multi_pair geometric factor; finite, > 1

  // bit_sliced: signed weight precision in [2, 24] bits (sign + magnitude bits, so
  // Q = 2^(weight_bits-1)-1 magnitude levels) and bits per slice in [1, weight_bits-1].
  int weight_bits = 8;
  int slice_bits = 2;

  // How the planes of a block are combined: digital (each plane read by its own ADC, then
  // shift-and-add; the usual choice for bit slices) or analog (currents summed with their
  // significance, e.g. current mirrors). Applies to every kind; with one plane both coincide.
  core::PlaneReadout readout = core::PlaneReadout::digital;

  // Throws std::invalid_argument naming the field and its value; also a field that has no
  // effect for the chosen kind and differs from its default (pairs for a pair cell, ...).
  void validate() const;

  template <class V>
  static void fields(V& v);

  // The significance F_k of each plane, in plane order (ascending). Validates first.
  std::vector<double> plane_significances() const;
  int num_planes() const { return static_cast<int>(plane_significances().size()); }
};

// "pair", "multi_pair", "bit_sliced" and back; parse throws std::invalid_argument naming the
// string and the accepted values.
std::string to_string(CellKind kind);
CellKind parse_cell_kind(const std::string& name);
std::string to_string(WeightScaling scaling);
// "block" (or "per_tile"), "column" (or "per_column", the mapper's names).
WeightScaling parse_weight_scaling(const std::string& name);

PCMSIM_ENUM_TEXT(CellKind, parse_cell_kind, "pair", "multi_pair", "bit_sliced");
PCMSIM_ENUM_TEXT(WeightScaling, parse_weight_scaling, "block", "column");

template <class V>
void UnitCellSpec::fields(V& v) {
  using S = UnitCellSpec;
  const core::Affects p = core::Affects::programming;
  v.field({"kind", "", "", "unit cell: one differential pair, several pairs with significance, "
           "or bit slices", p, "cell"}, [](S& s) -> auto& { return s.kind; });
  v.field({"scaling", "", "", "weight-to-conductance scale: max|W| per block (tile) or per "
           "column (per_tile/per_column accepted)", p, "weight_scaling"},
          [](S& s) -> auto& { return s.scaling; });
  v.field({"significances", "", "ascending, > 0", "multi_pair: explicit significance factors "
           "(empty: significance_factor^k, k < num_pairs)", p},
          [](S& s) -> auto& { return s.significances; });
  v.field({"num_pairs", "", "1..16", "multi_pair: device pairs per weight", p},
          [](S& s) -> auto& { return s.num_pairs; });
  v.field({"significance_factor", "", "> 1, finite", "multi_pair: geometric significance "
           "factor between pairs", p}, [](S& s) -> auto& { return s.significance_factor; });
  v.field({"weight_bits", "bits", "2..24", "bit_sliced: signed weight precision", p},
          [](S& s) -> auto& { return s.weight_bits; });
  v.field({"slice_bits", "bits", "1..weight_bits-1", "bit_sliced: bits per slice", p},
          [](S& s) -> auto& { return s.slice_bits; });
  v.field({"readout", "", "", "planes combined by the digital unit (one ADC read each) or in "
           "analog (one read)", p, "plane_readout"},
          [](S& s) -> auto& { return s.readout; });
}

// Target conductances of a weight block W (rows = inputs, cols = outputs) for a cell type and a
// largest conductance g_max (siemens, finite, > 0; usually DeviceModel::g_max()). The result
// holds one plane per pair (targets in [0, g_max]), the per-column weight scale and the readout.
// Throws std::invalid_argument for an empty block, a NaN/inf weight (naming its position and
// value), a bad g_max or a bad spec.
core::ConductanceBlock weights_to_targets(const Eigen::Ref<const core::MatrixF>& weights,
                                          const UnitCellSpec& spec, double g_max);

// The weights a conductance block represents: W_ij = sum_k F_k (G+_k - G-_k)_ij / s_j, summed in
// double precision. Throws std::invalid_argument for an empty block, planes of different shapes,
// a weight_scale of the wrong length or a scale that is not finite and > 0.
core::MatrixF effective_weights(const core::ConductanceBlock& block);

// Checks the shapes and scales of a conductance block (what effective_weights and programming
// rely on); `where` tags the error message.
void validate_block(const core::ConductanceBlock& block, const char* where);

}  // namespace pcmsim::devices
