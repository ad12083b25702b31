// Global drift compensation (docs/physics.md §5).
//
// A known probe is applied through the FULL tile forward (noise management, DAC, analog product,
// noise, ADC): the identity (each row one-hot) or the all-ones vector. r = mean |Y| over the
// probe outputs (floored at r_floor); r0 is measured right after programming (the t = 0
// snapshot: the noisy, hardware-realistic reference, default) or computed from the ideal
// product of the unprogrammed weights ("exact reference"); after drift alpha = r0 / r(t) is
// multiplied digitally onto the tile's output (LayerAccumulator::add). One alpha per tile
// (default) or per column.
//
// Low output precision. Read naively, an identity probe through a 4-bit ADC (+-10 full scale,
// LSB 1.43) rounds every single-row output (|w| <= 1) to zero once the weights have drifted,
// r(t) hits the floor and alpha over-corrects by orders of magnitude. Two measures keep alpha
// sound, both hardware-realistic:
//  1. Auto-ranged probe reads (auto_range, default on). The probe reads use their own ADC
//     full scale per column, as a chip's calibration reads use another gain/integration time:
//     starting from the tile's bounds, a column whose reads clip gets a 4x larger range, a
//     column whose reads all round to zero gets a range of half an LSB, and otherwise the range
//     is set to headroom x (largest |read|), until the largest read fills between 1/(2 headroom)
//     and 1 of the range. The ranging is redone at every time, so drifted outputs fill the ADC
//     again. The tile's own bounds are restored afterwards (also on an exception).
//     A 4-bit grid has only 7 positive levels, so rounding errors do not average out by
//     themselves: the outputs of S sit in a steep tail, and each bin's values lie mostly
//     below its level. The measurement is therefore the mean of range_dither reads at ranges
//     B * 2^(k/K) (range dithering): the grid moves against every value by over an LSB and the
//     rounding errors average out (measured alpha bias, identity probe, 4-bit ADC, one day of
//     PCM-like drift: +6.6 % without dithering, +0.5 % with; tests/unit/core/test_gdc.cpp).
//     Cost: the ranging reads (usually 2-3) plus K dithered reads of the probe batch, about
//     three batch-512 forwards of a 512 x 512 tile per alpha.
//  2. Only resolved outputs count (min_codes). r0 and r(t) are means over the same set S of
//     probe outputs, fixed at the reference: those whose reference value is at least min_codes
//     LSBs of its read (the coarsest read, for multi-read tiles). Rounding errors of values
//     well above an LSB average out over the many outputs of S; values near zero, which round
//     to zero and bias r(t) low, are left out. For the exact reference the LSB is that of an
//     auto-ranged read of the exact values (headroom x column max / max level), or the tile's
//     own LSB without auto-ranging.
// With the ADC off (p_out = 0) S is every non-zero reference output and no ranging happens, so
// with deterministic drift (one nu for all devices, no read or output noise) alpha is exactly
// the inverse drift factor and GDC restores the pre-drift output.
// Values are in normalised output units (weight units / output_scale), where the floor 1e-4
// is meaningful whatever the weight scale.
#pragma once

#include <cstdint>
#include <string>

#include "core/rng.h"
#include "core/settings.h"
#include "core/tile.h"
#include "core/types.h"

namespace pcmsim::core {

enum class GdcGranularity { per_tile, per_column };
enum class GdcProbe { identity, all_ones };
enum class GdcReferenceKind {
  programmed,  // r0 read through the tile right after programming (t = 0 snapshot), default
  exact,       // r0 from the ideal product of the unprogrammed weights
};

std::string to_string(GdcGranularity v);
std::string to_string(GdcProbe v);
std::string to_string(GdcReferenceKind v);
GdcGranularity gdc_granularity_from_string(const std::string& text);  // "per_tile", "per_column"
GdcProbe gdc_probe_from_string(const std::string& text);              // "identity", "all_ones"
GdcReferenceKind gdc_reference_from_string(const std::string& text);  // "programmed", "exact"
PCMSIM_ENUM_TEXT(GdcGranularity, gdc_granularity_from_string, "per_tile", "per_column");
PCMSIM_ENUM_TEXT(GdcProbe, gdc_probe_from_string, "identity", "all_ones");
PCMSIM_ENUM_TEXT(GdcReferenceKind, gdc_reference_from_string, "programmed", "exact");

struct GdcParams {
  GdcGranularity granularity = GdcGranularity::per_tile;
  GdcProbe probe = GdcProbe::identity;
  GdcReferenceKind reference = GdcReferenceKind::programmed;
  // Floor of r0 and r(t), normalised output units (finite, > 0).
  double r_floor = 1e-4;
  // Auto-ranged probe reads (see above). Off: the probe goes through the tile's own ADC range.
  bool auto_range = true;
  // Range = headroom x largest |read| (finite, > 1).
  double headroom = 1.25;
  // Outputs below this many LSBs at the reference are left out of r0 and r(t) (finite, >= 0;
  // 0 = every output, the textbook formula).
  double min_codes = 2.0;
  // Most probe reads per ranging (1..32).
  int max_range_reads = 8;
  // Auto-ranged measurements average this many reads at bounds B * 2^(k/K), k < K (1..64;
  // 1 = one read at B). Read k draws its noise from key.with_sub(key.sub + k).
  int range_dither = 8;

  // Throws std::invalid_argument "[core::GdcParams] <field> = <value>: ...".
  void validate() const;

  // Outside this struct the names carry the prefix gdc_ (--gdc-granularity).
  template <class V>
  static void fields(V& v) {
    using S = GdcParams;
    const Affects c = Affects::converter;
    v.field({"granularity", "", "", "one GDC factor per tile or per column", c,
             "gdc_granularity"}, [](S& s) -> auto& { return s.granularity; });
    v.field({"probe", "", "", "GDC probe input", c, "gdc_probe"},
            [](S& s) -> auto& { return s.probe; });
    v.field({"reference", "", "", "GDC reference: read at t = 0 (programmed) or the ideal "
             "weights (exact)", c, "gdc_reference"}, [](S& s) -> auto& { return s.reference; });
    v.field({"r_floor", "", "> 0, finite", "floor of r0 and r(t) (normalised output units)", c,
             "gdc_r_floor"}, [](S& s) -> auto& { return s.r_floor; });
    v.field({"auto_range", "", "", "auto-ranged probe reads", c, "gdc_auto_range"},
            [](S& s) -> auto& { return s.auto_range; });
    v.field({"headroom", "", "> 1, finite", "probe range = headroom x largest read", c,
             "gdc_headroom"}, [](S& s) -> auto& { return s.headroom; });
    v.field({"min_codes", "", ">= 0, finite", "probe outputs below this many LSBs are left out",
             c, "gdc_min_codes"}, [](S& s) -> auto& { return s.min_codes; });
    v.field({"max_range_reads", "", "1..32", "most probe reads per ranging", c,
             "gdc_max_range_reads"}, [](S& s) -> auto& { return s.max_range_reads; });
    v.field({"range_dither", "", "1..64", "reads averaged at dithered ranges", c,
             "gdc_range_dither"}, [](S& s) -> auto& { return s.range_dither; });
  }
};

// What GDC keeps of the reference, per tile (stored with the programmed chip).
struct GdcReference {
  GdcParams params;
  Index rows = 0, cols = 0;
  double probe_amplitude = 1;  // probe value driven on a row (input units)
  MatrixD y0;                  // reference probe outputs, probes x cols, normalised units
  // 1 where the output is in S (resolved at the reference), probes x cols.
  Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> selected;
  VectorD r0;                  // per column (per_column) or one value (per_tile), floored
  VectorD r0_count;            // |S| per column (per_column) or one value (per_tile)
  Index selected_count = 0;    // |S|
};

struct GdcResult {
  VectorD alpha;          // one per tile column (all equal for per_tile), pass to LayerAccumulator
  VectorD r_t;            // r(t), same layout as GdcReference::r0
  bool resolved = true;   // false when S is empty (nothing resolvable): alpha = 1
  double resolved_fraction = 0;  // |S| / number of probe outputs
};

// The probe (probes x rows): identity or one all-ones row, times the amplitude that drives
// the DAC at full scale under the tile's noise management (1 for abs_max and none, the input
// range for static_range).
MatrixF gdc_probe(const Tile& tile, GdcProbe probe);
double gdc_probe_amplitude(const Tile& tile);

// Reference measured through `tile`, which holds the t = 0 snapshot (params.reference must be
// programmed). Probe noise draws come from `key` (give each measurement its own key).
// `tile` is only borrowed for auto-ranged reads: its output bounds are restored.
GdcReference gdc_reference(Tile& tile, const GdcParams& params, const RngKey& key);
// Exact reference from the unprogrammed weights of the tile's block (rows x cols, weight
// units; params.reference must be exact). The tile (any snapshot) supplies the scales.
GdcReference gdc_reference_exact(Tile& tile, const Eigen::Ref<const MatrixF>& weights,
                                 const GdcParams& params, const RngKey& key);

// alpha at the tile's current snapshot. Throws std::invalid_argument when the tile's shape
// does not match the reference.
GdcResult gdc_alpha(Tile& tile, const GdcReference& reference, const RngKey& key);

// One probe measurement (exposed for tests and diagnostics): outputs in normalised units
// (input_scale * sum_r read_weight_r * read_r), the coarsest LSB of each output in the same
// units, and the per-column ADC bounds the reads used (empty when the ADC is off).
struct GdcProbeRead {
  MatrixD y;
  MatrixD lsb;
  VectorF bounds;
};
GdcProbeRead gdc_probe_read(Tile& tile, const MatrixF& probe, const GdcParams& params,
                            const RngKey& key);

}  // namespace pcmsim::core
