#include "core/gdc.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/quantiser.h"

namespace pcmsim::core {

namespace {
constexpr const char* kParams = "core::GdcParams";
constexpr const char* kWhere = "core::gdc";

// Restores a tile's output bounds when the GDC read is done (also on an exception).
class BoundsGuard {
 public:
  explicit BoundsGuard(Tile& tile) : tile_(tile), saved_(tile.output_bounds()) {}
  ~BoundsGuard() { tile_.set_output_bounds(saved_); }
  BoundsGuard(const BoundsGuard&) = delete;
  BoundsGuard& operator=(const BoundsGuard&) = delete;

 private:
  Tile& tile_;
  VectorF saved_;
};

// y = input_scale * sum_r w_r read_r, and the coarsest LSB of each output.
void combine(const TileReadout& ro, GdcProbeRead& out) {
  const Index n = ro.input_scale.size();
  const Index cols = ro.output_scale.size();
  out.y.setZero(n, cols);
  out.lsb.setZero(n, cols);
  double max_w = 0;
  for (double w : ro.read_weight) max_w = std::max(max_w, std::abs(w));
  for (std::size_t r = 0; r < ro.reads.size(); ++r)
    out.y += ro.reads[r].cast<double>() * ro.read_weight[r];
  for (Index b = 0; b < n; ++b) {
    const double s = ro.input_scale(b);
    out.y.row(b) *= s;
    for (Index j = 0; j < cols; ++j) out.lsb(b, j) = s * max_w * ro.adc_steps(j);
  }
}

// |S| and mean |y| over S, per column.
void masked_column_stats(const MatrixD& y, const GdcReference& ref, VectorD& sum, VectorD& count) {
  sum.setZero(y.cols());
  count.setZero(y.cols());
  for (Index b = 0; b < y.rows(); ++b)
    for (Index j = 0; j < y.cols(); ++j)
      if (ref.selected(b, j)) {
        sum(j) += std::abs(y(b, j));
        count(j) += 1;
      }
}

void check_tile(const Tile& tile, const GdcReference& ref) {
  if (tile.rows() != ref.rows || tile.cols() != ref.cols)
    throw_invalid(kWhere, concat("tile is ", tile.rows(), "x", tile.cols(),
                                 ", the GDC reference was taken on ", ref.rows, "x", ref.cols));
}

// Selection S and r0 from reference outputs y0 and their LSBs.
void finish_reference(GdcReference& ref, const MatrixD& lsb) {
  const GdcParams& p = ref.params;
  ref.selected.resize(ref.y0.rows(), ref.y0.cols());
  ref.selected_count = 0;
  for (Index b = 0; b < ref.y0.rows(); ++b)
    for (Index j = 0; j < ref.y0.cols(); ++j) {
      const double v = std::abs(ref.y0(b, j));
      const bool in = v > 0 && v >= p.min_codes * lsb(b, j);
      ref.selected(b, j) = in ? 1 : 0;
      ref.selected_count += in ? 1 : 0;
    }
  VectorD sum, count;
  masked_column_stats(ref.y0, ref, sum, count);
  if (p.granularity == GdcGranularity::per_tile) {
    const double c = count.sum();
    ref.r0_count = VectorD::Constant(1, c);
    ref.r0 = VectorD::Constant(1, std::max(c > 0 ? sum.sum() / c : 0.0, p.r_floor));
  } else {
    ref.r0_count = count;
    ref.r0.resize(ref.cols);
    for (Index j = 0; j < ref.cols; ++j)
      ref.r0(j) = std::max(count(j) > 0 ? sum(j) / count(j) : 0.0, p.r_floor);
  }
}

}  // namespace

std::string to_string(GdcGranularity v) {
  return v == GdcGranularity::per_tile ? "per_tile" : "per_column";
}
std::string to_string(GdcProbe v) { return v == GdcProbe::identity ? "identity" : "all_ones"; }
std::string to_string(GdcReferenceKind v) {
  return v == GdcReferenceKind::programmed ? "programmed" : "exact";
}
GdcGranularity gdc_granularity_from_string(const std::string& text) {
  if (text == "per_tile") return GdcGranularity::per_tile;
  if (text == "per_column") return GdcGranularity::per_column;
  throw_invalid(kWhere, concat("granularity = '", text, "': must be per_tile or per_column"));
}
GdcProbe gdc_probe_from_string(const std::string& text) {
  if (text == "identity") return GdcProbe::identity;
  if (text == "all_ones") return GdcProbe::all_ones;
  throw_invalid(kWhere, concat("probe = '", text, "': must be identity or all_ones"));
}
GdcReferenceKind gdc_reference_from_string(const std::string& text) {
  if (text == "programmed") return GdcReferenceKind::programmed;
  if (text == "exact") return GdcReferenceKind::exact;
  throw_invalid(kWhere, concat("reference = '", text, "': must be programmed or exact"));
}

void GdcParams::validate() const {
  if (granularity != GdcGranularity::per_tile && granularity != GdcGranularity::per_column)
    throw_invalid(kParams, concat("granularity = ", static_cast<int>(granularity), ": unknown"));
  if (probe != GdcProbe::identity && probe != GdcProbe::all_ones)
    throw_invalid(kParams, concat("probe = ", static_cast<int>(probe), ": unknown"));
  if (reference != GdcReferenceKind::programmed && reference != GdcReferenceKind::exact)
    throw_invalid(kParams, concat("reference = ", static_cast<int>(reference), ": unknown"));
  require_positive(kParams, "r_floor", r_floor);
  if (!(headroom > 1) || !std::isfinite(headroom))
    throw_invalid(kParams, concat("headroom = ", headroom, ": must be finite and > 1"));
  require_non_negative(kParams, "min_codes", min_codes);
  if (max_range_reads < 1 || max_range_reads > 32)
    throw_invalid(kParams, concat("max_range_reads = ", max_range_reads, ": must be in [1, 32]"));
  if (range_dither < 1 || range_dither > 64)
    throw_invalid(kParams, concat("range_dither = ", range_dither, ": must be in [1, 64]"));
}

double gdc_probe_amplitude(const Tile& tile) {
  return tile.io().noise_management == NoiseManagement::static_range ? tile.input_range() : 1.0;
}

MatrixF gdc_probe(const Tile& tile, GdcProbe probe) {
  const float a = static_cast<float>(gdc_probe_amplitude(tile));
  if (probe == GdcProbe::identity) return MatrixF::Identity(tile.rows(), tile.rows()) * a;
  return MatrixF::Constant(1, tile.rows(), a);
}

GdcProbeRead gdc_probe_read(Tile& tile, const MatrixF& probe, const GdcParams& params,
                            const RngKey& key) {
  params.validate();
  GdcProbeRead out;
  TileReadout ro;
  const IoParams& io = tile.io();
  if (!params.auto_range || io.p_out == 0) {
    tile.forward(probe, key, ro);
    combine(ro, out);
    if (io.p_out != 0) out.bounds = tile.output_bounds().size() ? tile.output_bounds()
                                       : VectorF::Constant(tile.cols(), static_cast<float>(io.out_bound));
    return out;
  }
  BoundsGuard guard(tile);
  const Index cols = tile.cols();
  const double kmax = static_cast<double>(QuantiserSpec{io.p_out, 1.0}.max_level());
  const double amp = gdc_probe_amplitude(tile);
  VectorF bounds = tile.output_bounds().size()
                       ? tile.output_bounds()
                       : VectorF::Constant(cols, static_cast<float>(io.out_bound));
  const VectorF floor_bounds = bounds * 1e-9f;  // a dead column stops shrinking here
  for (int it = 0; it < params.max_range_reads; ++it) {
    tile.set_output_bounds(bounds);
    tile.forward(probe, key, ro);
    out.bounds = bounds;
    // Largest |read| per column, undoing bound management (which doubles the input scale of a
    // sample that clipped): the read the column would give at the probe's own scale.
    VectorD m = VectorD::Zero(cols);
    for (const MatrixF& rd : ro.reads)
      for (Index b = 0; b < rd.rows(); ++b) {
        const double undo = ro.input_scale(b) / amp;
        for (Index j = 0; j < cols; ++j) m(j) = std::max(m(j), std::abs(rd(b, j)) * undo);
      }
    bool changed = false;
    VectorF next = bounds;
    for (Index j = 0; j < cols; ++j) {
      const double bj = bounds(j);
      double nb = bj;
      if (m(j) >= bj * (1 - 1e-6)) {
        nb = 4 * bj;  // clipped: the true value is somewhere above
      } else if (m(j) == 0) {
        nb = std::max(bj / (2 * kmax), static_cast<double>(floor_bounds(j)));  // below half an LSB
      } else if (m(j) < bj / (2 * params.headroom)) {
        nb = params.headroom * m(j);
      }
      if (static_cast<float>(nb) != bounds(j)) {
        next(j) = static_cast<float>(nb);
        changed = true;
      }
    }
    if (!changed) break;
    if (it + 1 < params.max_range_reads) bounds = next;
  }
  if (params.range_dither <= 1) {
    combine(ro, out);
    return out;
  }
  // Range dithering: K reads at bounds B * 2^(k/K) shift the ADC grid against the values by
  // more than an LSB for any value above ~2 LSB, so the rounding errors of the K reads average
  // out instead of biasing every output the same way (a 4-bit grid has only 7 levels).
  const int K = params.range_dither;
  GdcProbeRead one;
  out.y.setZero(probe.rows(), cols);
  for (int k = 0; k < K; ++k) {
    const float d = static_cast<float>(std::exp2(static_cast<double>(k) / K));
    tile.set_output_bounds(bounds * d);
    tile.forward(probe, key.with_sub(key.sub + static_cast<std::uint32_t>(k)), ro);
    combine(ro, one);
    out.y += one.y;
    if (k == 0) out.lsb = one.lsb;  // the LSB of the base range B
  }
  out.y /= K;
  out.bounds = bounds;
  return out;
}

GdcReference gdc_reference(Tile& tile, const GdcParams& params, const RngKey& key) {
  params.validate();
  if (params.reference != GdcReferenceKind::programmed)
    throw_invalid(kWhere, "gdc_reference() measures the programmed reference; use "
                          "gdc_reference_exact() for reference = exact");
  GdcReference ref;
  ref.params = params;
  ref.rows = tile.rows();
  ref.cols = tile.cols();
  ref.probe_amplitude = gdc_probe_amplitude(tile);
  GdcProbeRead rd = gdc_probe_read(tile, gdc_probe(tile, params.probe), params, key);
  ref.y0 = std::move(rd.y);
  finish_reference(ref, rd.lsb);
  return ref;
}

GdcReference gdc_reference_exact(Tile& tile, const Eigen::Ref<const MatrixF>& weights,
                                 const GdcParams& params, const RngKey& key) {
  params.validate();
  if (params.reference != GdcReferenceKind::exact)
    throw_invalid(kWhere, "gdc_reference_exact() needs params.reference = exact");
  if (weights.rows() != tile.rows() || weights.cols() != tile.cols())
    throw_invalid(kWhere, concat("weights are ", weights.rows(), "x", weights.cols(),
                                 ", the tile is ", tile.rows(), "x", tile.cols()));
  if (!weights.allFinite()) throw_invalid(kWhere, "weights contain a NaN or infinite value");
  GdcReference ref;
  ref.params = params;
  ref.rows = tile.rows();
  ref.cols = tile.cols();
  ref.probe_amplitude = gdc_probe_amplitude(tile);
  const MatrixF probe = gdc_probe(tile, params.probe);
  // Ideal product in normalised units: (probe . W)_bj / output_scale_j.
  ref.y0 = probe.cast<double>() * weights.cast<double>();
  const VectorD& os = tile.output_scale();
  for (Index j = 0; j < ref.cols; ++j) ref.y0.col(j) /= os(j);
  MatrixD lsb;
  const IoParams& io = tile.io();
  if (io.p_out == 0) {
    lsb.setZero(ref.y0.rows(), ref.y0.cols());
  } else if (params.auto_range) {
    // The LSB of an auto-ranged read of these values: headroom x column max / max level.
    const double kmax = static_cast<double>(QuantiserSpec{io.p_out, 1.0}.max_level());
    lsb.resize(ref.y0.rows(), ref.y0.cols());
    for (Index j = 0; j < ref.cols; ++j)
      lsb.col(j).setConstant(params.headroom * ref.y0.col(j).cwiseAbs().maxCoeff() / kmax);
  } else {
    GdcParams p = params;
    p.auto_range = false;
    lsb = gdc_probe_read(tile, probe, p, key).lsb;  // the LSB depends on the scales only
  }
  finish_reference(ref, lsb);
  return ref;
}

GdcResult gdc_alpha(Tile& tile, const GdcReference& ref, const RngKey& key) {
  check_tile(tile, ref);
  const GdcParams& p = ref.params;
  GdcResult res;
  const double outputs = static_cast<double>(ref.y0.size());
  res.resolved_fraction = outputs > 0 ? static_cast<double>(ref.selected_count) / outputs : 0.0;
  res.resolved = ref.selected_count > 0;
  if (!res.resolved) {  // nothing the ADC resolves (e.g. an all-zero block): no compensation
    res.alpha = VectorD::Ones(ref.cols);
    res.r_t = ref.r0;
    return res;
  }
  const GdcProbeRead rd = gdc_probe_read(tile, gdc_probe(tile, p.probe), p, key);
  VectorD sum, count;
  masked_column_stats(rd.y, ref, sum, count);
  const double total = count.sum();
  const double r_tile = std::max(sum.sum() / total, p.r_floor);
  if (p.granularity == GdcGranularity::per_tile) {
    res.r_t = VectorD::Constant(1, r_tile);
    res.alpha = VectorD::Constant(ref.cols, ref.r0(0) / r_tile);
  } else {
    // A column without resolved outputs takes the tile's alpha (from all of S).
    double r0_sum = 0;
    for (Index b = 0; b < ref.y0.rows(); ++b)
      for (Index j = 0; j < ref.cols; ++j)
        if (ref.selected(b, j)) r0_sum += std::abs(ref.y0(b, j));
    const double alpha_tile = std::max(r0_sum / total, p.r_floor) / r_tile;
    res.r_t.resize(ref.cols);
    res.alpha.resize(ref.cols);
    for (Index j = 0; j < ref.cols; ++j) {
      res.r_t(j) = std::max(count(j) > 0 ? sum(j) / count(j) : 0.0, p.r_floor);
      res.alpha(j) = count(j) > 0 ? ref.r0(j) / res.r_t(j) : alpha_tile;
    }
  }
  return res;
}

}  // namespace pcmsim::core
