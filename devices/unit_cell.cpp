#include "devices/unit_cell.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.h"

namespace pcmsim::devices {
namespace {

constexpr const char* kSpecTag = "devices::UnitCellSpec";
constexpr const char* kTargetsTag = "devices::weights_to_targets";

// Scale of a block or column whose largest |w| is max_abs, for a full range of
// `range` siemens per unit of |w| / max|w|. Zero blocks get the documented scale 1.
double scale_for(double range, double max_abs) { return max_abs > 0 ? range / max_abs : 1.0; }

// Round to nearest, ties away from zero (the converter convention of docs/physics.md §4).
double round_half_away(double x) { return std::round(x); }

}  // namespace

void UnitCellSpec::validate() const {
  // A field of another kind that differs from its default would be silently ignored.
  const UnitCellSpec defaults;
  const auto no_effect = [&](const char* field, bool differs, const char* used_by) {
    if (differs)
      core::throw_invalid(kSpecTag, core::concat(field, " is set but has no effect for kind = ",
                                                 to_string(kind), " (only for ", used_by, ")"));
  };
  if (kind != CellKind::multi_pair) {
    no_effect("num_pairs", num_pairs != defaults.num_pairs, "multi_pair");
    no_effect("significance_factor", significance_factor != defaults.significance_factor,
              "multi_pair");
    no_effect("significances", !significances.empty(), "multi_pair");
  }
  if (kind != CellKind::bit_sliced) {
    no_effect("weight_bits", weight_bits != defaults.weight_bits, "bit_sliced");
    no_effect("slice_bits", slice_bits != defaults.slice_bits, "bit_sliced");
  }
  switch (kind) {
    case CellKind::pair:
      break;
    case CellKind::multi_pair:
      if (significances.empty()) {
        if (num_pairs < 1 || num_pairs > 16)
          core::throw_invalid(kSpecTag,
                              core::concat("num_pairs = ", num_pairs, ": must be in [1, 16]"));
        if (!(significance_factor > 1.0) || !std::isfinite(significance_factor))
          core::throw_invalid(kSpecTag, core::concat("significance_factor = ", significance_factor,
                                                     ": must be finite and > 1"));
      } else {
        if (significances.size() > 16)
          core::throw_invalid(kSpecTag, core::concat("significances has ", significances.size(),
                                                     " entries: at most 16"));
        for (std::size_t k = 0; k < significances.size(); ++k) {
          const double f = significances[k];
          if (!(f > 0) || !std::isfinite(f))
            core::throw_invalid(kSpecTag, core::concat("significances[", k, "] = ", f,
                                                       ": must be finite and > 0"));
          if (k > 0 && !(f > significances[k - 1]))
            core::throw_invalid(kSpecTag,
                                core::concat("significances[", k, "] = ", f,
                                             ": must be > significances[", k - 1,
                                             "] = ", significances[k - 1],
                                             " (lowest significance first)"));
        }
      }
      break;
    case CellKind::bit_sliced:
      if (weight_bits < 2 || weight_bits > 24)
        core::throw_invalid(kSpecTag,
                            core::concat("weight_bits = ", weight_bits, ": must be in [2, 24]"));
      if (slice_bits < 1 || slice_bits > weight_bits - 1)
        core::throw_invalid(kSpecTag, core::concat("slice_bits = ", slice_bits,
                                                   ": must be in [1, weight_bits - 1 = ",
                                                   weight_bits - 1, "]"));
      break;
    default:
      core::throw_invalid(kSpecTag,
                          core::concat("kind = ", static_cast<int>(kind), ": unknown cell kind"));
  }
  if (scaling != WeightScaling::block && scaling != WeightScaling::column)
    core::throw_invalid(kSpecTag,
                        core::concat("scaling = ", static_cast<int>(scaling), ": unknown scaling"));
  if (readout != core::PlaneReadout::analog && readout != core::PlaneReadout::digital)
    core::throw_invalid(kSpecTag,
                        core::concat("readout = ", static_cast<int>(readout), ": unknown readout"));
}

std::vector<double> UnitCellSpec::plane_significances() const {
  validate();
  switch (kind) {
    case CellKind::multi_pair: {
      if (!significances.empty()) return significances;
      std::vector<double> f(static_cast<std::size_t>(num_pairs));
      for (int k = 0; k < num_pairs; ++k) f[k] = std::pow(significance_factor, k);
      return f;
    }
    case CellKind::bit_sliced: {
      const int magnitude_bits = weight_bits - 1;
      const int slices = (magnitude_bits + slice_bits - 1) / slice_bits;
      std::vector<double> f(static_cast<std::size_t>(slices));
      for (int k = 0; k < slices; ++k) f[k] = std::ldexp(1.0, slice_bits * k);
      return f;
    }
    case CellKind::pair:
    default:
      return {1.0};
  }
}

std::string to_string(CellKind kind) {
  switch (kind) {
    case CellKind::pair: return "pair";
    case CellKind::multi_pair: return "multi_pair";
    case CellKind::bit_sliced: return "bit_sliced";
  }
  return "unknown";
}

CellKind parse_cell_kind(const std::string& name) {
  if (name == "pair") return CellKind::pair;
  if (name == "multi_pair") return CellKind::multi_pair;
  if (name == "bit_sliced") return CellKind::bit_sliced;
  core::throw_invalid("devices::parse_cell_kind",
                      core::concat("cell kind '", name,
                                   "': unknown (expected pair, multi_pair or bit_sliced)"));
}

std::string to_string(WeightScaling scaling) {
  return scaling == WeightScaling::column ? "column" : "block";
}

WeightScaling parse_weight_scaling(const std::string& name) {
  // Also the mapper's spelling (mapping::WeightScaling per_tile / per_column).
  if (name == "block" || name == "per_tile" || name == "per-tile") return WeightScaling::block;
  if (name == "column" || name == "per_column" || name == "per-column")
    return WeightScaling::column;
  core::throw_invalid("devices::parse_weight_scaling",
                      core::concat("scaling '", name, "': unknown (expected block or column)"));
}

core::ConductanceBlock weights_to_targets(const Eigen::Ref<const core::MatrixF>& weights,
                                          const UnitCellSpec& spec, double g_max) {
  spec.validate();
  core::require_positive(kTargetsTag, "g_max", g_max);
  const core::Index rows = weights.rows();
  const core::Index cols = weights.cols();
  if (rows == 0 || cols == 0)
    core::throw_invalid(kTargetsTag,
                        core::concat("weight block is ", rows, "x", cols, ": must not be empty"));

  // Largest |w| per column (and check every weight is finite, naming the first bad one).
  core::VectorD col_max = core::VectorD::Zero(cols);
  for (core::Index i = 0; i < rows; ++i)
    for (core::Index j = 0; j < cols; ++j) {
      const float w = weights(i, j);
      if (!std::isfinite(w))
        core::throw_invalid(kTargetsTag, core::concat("weight (", i, ", ", j, ") = ", w,
                                                      ": must be finite"));
      col_max[j] = std::max(col_max[j], static_cast<double>(std::fabs(w)));
    }
  if (spec.scaling == WeightScaling::block) col_max.setConstant(col_max.maxCoeff());

  const std::vector<double> sig = spec.plane_significances();
  const std::size_t planes = sig.size();

  core::ConductanceBlock block;
  block.g_max = g_max;
  block.readout = spec.readout;
  block.planes.resize(planes);
  for (std::size_t k = 0; k < planes; ++k) {
    block.planes[k].g_plus.setZero(rows, cols);
    block.planes[k].g_minus.setZero(rows, cols);
    block.planes[k].significance = sig[k];
  }
  block.weight_scale.resize(cols);

  if (spec.kind == CellKind::bit_sliced) {
    const double q_max = std::ldexp(1.0, spec.weight_bits - 1) - 1.0;  // magnitude levels
    const std::uint32_t digit_max = (1u << spec.slice_bits) - 1u;
    const double g_step = g_max / static_cast<double>(digit_max);  // conductance per digit
    for (core::Index j = 0; j < cols; ++j)
      block.weight_scale[j] = scale_for(g_step * q_max, col_max[j]);
    for (core::Index i = 0; i < rows; ++i)
      for (core::Index j = 0; j < cols; ++j) {
        const double w = weights(i, j);
        if (w == 0.0 || col_max[j] == 0.0) continue;
        // w * q_max is exact in double (24-bit float times <= 23-bit integer) and the division
        // is monotone, so |q| <= q_max without a clip and exact ties round away from zero.
        const double q = round_half_away(w * q_max / col_max[j]);
        std::uint32_t mag = static_cast<std::uint32_t>(std::fabs(q));
        for (std::size_t k = 0; k < planes && mag != 0; ++k) {
          const std::uint32_t digit = mag & digit_max;
          mag >>= spec.slice_bits;
          const float g = static_cast<float>(digit * g_step);
          (q > 0 ? block.planes[k].g_plus : block.planes[k].g_minus)(i, j) = g;
        }
      }
    return block;
  }

  // pair / multi_pair: sum_k F_k g_max maps to max|W|; fill the lowest significance first.
  double total = 0;
  for (double f : sig) total += f;
  for (core::Index j = 0; j < cols; ++j)
    block.weight_scale[j] = scale_for(total * g_max, col_max[j]);
  for (core::Index i = 0; i < rows; ++i)
    for (core::Index j = 0; j < cols; ++j) {
      const double w = weights(i, j);
      if (w == 0.0) continue;
      double rest = block.weight_scale[j] * std::fabs(w);  // siemens in units of F = 1
      for (std::size_t k = 0; k < planes && rest > 0; ++k) {
        const double g = std::min(rest / sig[k], g_max);  // clip: rounding at full scale
        rest -= sig[k] * g;
        (w > 0 ? block.planes[k].g_plus : block.planes[k].g_minus)(i, j) = static_cast<float>(g);
      }
    }
  return block;
}

void validate_block(const core::ConductanceBlock& block, const char* where) {
  if (block.planes.empty()) core::throw_invalid(where, "conductance block has no planes");
  const core::Index rows = block.planes.front().g_plus.rows();
  const core::Index cols = block.planes.front().g_plus.cols();
  if (rows == 0 || cols == 0)
    core::throw_invalid(where, core::concat("conductance block is ", rows, "x", cols,
                                            ": must not be empty"));
  for (std::size_t k = 0; k < block.planes.size(); ++k) {
    const auto& p = block.planes[k];
    if (p.g_plus.rows() != rows || p.g_plus.cols() != cols || p.g_minus.rows() != rows ||
        p.g_minus.cols() != cols)
      core::throw_invalid(where, core::concat("plane ", k, " is ", p.g_plus.rows(), "x",
                                              p.g_plus.cols(), " (G+) / ", p.g_minus.rows(), "x",
                                              p.g_minus.cols(), " (G-): expected ", rows, "x",
                                              cols));
    if (!(p.significance > 0) || !std::isfinite(p.significance))
      core::throw_invalid(where, core::concat("plane ", k, " significance = ", p.significance,
                                              ": must be finite and > 0"));
  }
  if (block.weight_scale.size() != cols)
    core::throw_invalid(where, core::concat("weight_scale has ", block.weight_scale.size(),
                                            " entries: expected one per column (", cols, ")"));
  for (core::Index j = 0; j < cols; ++j)
    if (!(block.weight_scale[j] > 0) || !std::isfinite(block.weight_scale[j]))
      core::throw_invalid(where, core::concat("weight_scale[", j, "] = ", block.weight_scale[j],
                                              ": must be finite and > 0"));
  core::require_positive(where, "g_max", block.g_max);
}

core::MatrixF effective_weights(const core::ConductanceBlock& block) {
  validate_block(block, "devices::effective_weights");
  const core::Index rows = block.rows();
  const core::Index cols = block.cols();
  core::MatrixD acc = core::MatrixD::Zero(rows, cols);
  for (const auto& p : block.planes)
    acc.array() += p.significance * (p.g_plus.cast<double>() - p.g_minus.cast<double>()).array();
  // A division (not a product with 1/s) keeps the noise-free round trip exact to float rounding.
  for (core::Index i = 0; i < rows; ++i) acc.row(i).array() /= block.weight_scale.transpose().array();
  return acc.cast<float>();
}

}  // namespace pcmsim::devices
