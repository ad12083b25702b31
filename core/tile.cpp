#include "core/tile.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "core/adc_transfer.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/quantiser.h"

namespace pcmsim::core {

// min/max as plain comparisons: std::fmin/fmax honour NaN and compile to libm calls that
// block vectorisation; inputs here are finite (validated).
static inline float fmin_fast(float a, float b) { return b < a ? b : a; }
static inline float fmax_fast(float a, float b) { return a < b ? b : a; }
static inline double fmin_fast(double a, double b) { return b < a ? b : a; }
static inline double fmax_fast(double a, double b) { return a < b ? b : a; }


namespace {
constexpr const char* kWhere = "core::Tile";
// Batch rows per work block. Fixed (never derived from the thread count) so that every block,
// and hence every GEMM and every result bit, is the same for any number of threads.
constexpr Index kBlockRows = Tile::kBlockRows;
// Reads per forward are limited so that tile_draw() numbers never collide across rounds.
constexpr int kMaxReads = 1024;
}  // namespace

namespace detail {

struct BlockScratch {
  MatrixF xq;                       // kBlockRows x rows: DAC output of the current cycle
  MatrixF xsq;                      // kBlockRows x rows: xq^2 (pcm-like read noise)
  MatrixF acc;                      // kBlockRows x cols: analog product
  MatrixF var;                      // kBlockRows x cols: read-noise variance / w_noise^2
  std::vector<float> xin;           // kBlockRows * rows: x / s before the DAC
  std::vector<std::int32_t> levels; // kBlockRows * rows: DAC levels (bit-serial)
  std::vector<float> rnd;           // kBlockRows * max(rows, cols): random draws
  std::vector<float> rnd2;          // kBlockRows * max(rows, cols): random draws
  Index hot[kBlockRows];            // one_hot_rows(): the non-zero column of each row, or -1
};

// Whether every row of the m x rows block x holds at most one non-zero value; if so, hot[i] is
// that value's column (-1 for an all-zero row). A dense row stops the scan at its second
// non-zero, so the check costs next to nothing on data; it pays on the GDC identity probe.
static bool one_hot_rows(const float* x, Index m, Index rows, Index* hot) {
  for (Index i = 0; i < m; ++i) {
    const float* xr = x + i * rows;
    Index k = 0;
    while (k < rows && xr[k] == 0.0f) ++k;
    hot[i] = k < rows ? k : -1;
    for (++k; k < rows; ++k)
      if (xr[k] != 0.0f) return false;
  }
  return true;
}

// The index of the first non-zero of x[k..n) (n if none): eight values per step (any bit but
// the sign set), then the exact one.
static Index first_nonzero(const float* x, Index k, Index n) {
#ifdef __AVX2__
  const __m256i magnitude = _mm256_set1_epi32(0x7fffffff);
  for (; k + 8 <= n; k += 8)
    if (!_mm256_testz_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + k)),
                            magnitude))
      break;
#endif
  while (k < n && x[k] == 0.0f) ++k;
  return k;
}

// Whether the row x[0..n) holds at most one non-zero; if so, *hot is its column (-1: none).
static bool single_nonzero(const float* x, Index n, Index* hot) {
  const Index k = first_nonzero(x, 0, n);
  if (k < n && first_nonzero(x, k + 1, n) < n) return false;
  *hot = k < n ? k : -1;
  return true;
}

// c = a * w for a block of one-hot rows (one_hot_rows): row i is a(i, hot_i) * w.row(hot_i).
// The same bits as gemm_packed, whose FMA chain adds nothing but exact zeros besides that one
// product; "+ 0.0f" turns a -0 product into the chain's +0 (-ffp-contract=off keeps it apart).
static void one_hot_product(Index m, const float* a, Index lda, const Index* hot,
                            const MatrixF& w, float* c, Index ldc) {
  const Index n = w.cols();
  for (Index i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (hot[i] < 0) {
      std::fill(ci, ci + n, 0.0f);
      continue;
    }
    const float v = a[i * lda + hot[i]];
    const float* wr = w.data() + hot[i] * n;
    for (Index j = 0; j < n; ++j) ci[j] = v * wr[j] + 0.0f;
  }
}

struct TileWorkspace {
  std::vector<BlockScratch> per_thread;
  std::vector<Index> redo;       // samples to redo in the next bound-management round
  std::vector<float> round_scale;  // per sample: scale of the current round
  std::vector<std::uint8_t> clipped_now;
  std::vector<std::uint8_t> bad;  // per sample: a non-finite input
  std::vector<float> out_step, out_inv_step, out_clip;  // per column ADC step, 1/step, bound
  // What out_step..out_clip and adc_steps were computed from (p_out, per-column bounds): the
  // per-column divisions are redone only when these change (they cost ~10% at batch 1).
  int cached_p_out = -1;
  std::vector<double> cached_bounds;
  VectorD adc_steps;
  double max_step = 0;
};

TileWorkspaceHolder::TileWorkspaceHolder() = default;
TileWorkspaceHolder::~TileWorkspaceHolder() = default;
TileWorkspaceHolder::TileWorkspaceHolder(const TileWorkspaceHolder&) {}
TileWorkspaceHolder& TileWorkspaceHolder::operator=(const TileWorkspaceHolder&) { return *this; }
TileWorkspaceHolder::TileWorkspaceHolder(TileWorkspaceHolder&&) noexcept = default;
TileWorkspaceHolder& TileWorkspaceHolder::operator=(TileWorkspaceHolder&&) noexcept = default;
TileWorkspace& TileWorkspaceHolder::get() {
  if (!ptr_) ptr_ = std::make_unique<TileWorkspace>();
  return *ptr_;
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Construction and conductance snapshots

Tile::Tile(ConductanceBlock block, IoParams io) : io_(io) {
  io_.validate();
  if (!io_.adc_inl_table.empty()) {
    const AdcTransferTable t = read_adc_transfer_table(io_.adc_inl_table);
    inl_ideal_.assign(t.ideal.begin(), t.ideal.end());
    inl_deviation_.assign(t.deviation.begin(), t.deviation.end());
  }
  validate_block(block);
  rows_ = block.rows();
  cols_ = block.cols();
  readout_ = block.readout;
  significances_.clear();
  for (const auto& p : block.planes) significances_.push_back(p.significance);
  build_groups(block);
  if (static_cast<long long>(groups_.size()) * io_.input_cycles() > kMaxReads)
    throw_invalid(kWhere, concat("planes = ", block.planes.size(), " x input cycles = ",
                                 io_.input_cycles(), ": at most ", kMaxReads, " reads per MVM"));
  compute_group_weights(block);
}

void Tile::validate_block(const ConductanceBlock& block) const {
  if (block.planes.empty()) throw_invalid(kWhere, "conductance block has no planes");
  const Index r = block.planes.front().g_plus.rows();
  const Index c = block.planes.front().g_plus.cols();
  if (r < 1 || c < 1)
    throw_invalid(kWhere, concat("conductance block shape ", r, "x", c, ": must be at least 1x1"));
  require_positive(kWhere, "g_max", block.g_max);
  for (std::size_t k = 0; k < block.planes.size(); ++k) {
    const auto& p = block.planes[k];
    if (p.g_plus.rows() != r || p.g_plus.cols() != c || p.g_minus.rows() != r ||
        p.g_minus.cols() != c)
      throw_invalid(kWhere, concat("plane ", k, ": G+ is ", p.g_plus.rows(), "x",
                                   p.g_plus.cols(), " and G- is ", p.g_minus.rows(), "x",
                                   p.g_minus.cols(), ", expected ", r, "x", c));
    if (!(p.significance > 0) || !std::isfinite(p.significance))
      throw_invalid(kWhere, concat("plane ", k, ": significance = ", p.significance,
                                   ": must be finite and > 0"));
    for (const MatrixF* g : {&p.g_plus, &p.g_minus}) {
      const float* d = g->data();
      for (Index i = 0; i < g->size(); ++i) {
        if (!(d[i] >= 0.0f) || !std::isfinite(d[i]))
          throw_invalid(kWhere, concat("plane ", k, (g == &p.g_plus ? ": G+" : ": G-"), "(",
                                       i / c, ",", i % c, ") = ", d[i],
                                       " S: must be finite and >= 0"));
      }
    }
  }
  if (block.weight_scale.size() != c)
    throw_invalid(kWhere, concat("weight_scale has ", block.weight_scale.size(),
                                 " entries, expected one per column (", c, ")"));
  for (Index j = 0; j < c; ++j)
    if (!(block.weight_scale[j] > 0) || !std::isfinite(block.weight_scale[j]))
      throw_invalid(kWhere, concat("weight_scale(", j, ") = ", block.weight_scale[j],
                                   ": must be finite and > 0"));
  if (block.readout != PlaneReadout::analog && block.readout != PlaneReadout::digital)
    throw_invalid(kWhere, concat("readout = ", static_cast<int>(block.readout), ": unknown"));
}

void Tile::build_groups(const ConductanceBlock& block) {
  groups_.clear();
  const int n = static_cast<int>(block.planes.size());
  if (readout_ == PlaneReadout::analog) {
    Group g;
    g.weight = 0;
    for (int k = 0; k < n; ++k) {
      g.planes.push_back(k);
      g.weight += block.planes[k].significance;
    }
    groups_.push_back(std::move(g));
  } else {
    for (int k = 0; k < n; ++k) {
      Group g;
      g.planes.push_back(k);
      g.weight = block.planes[k].significance;
      groups_.push_back(std::move(g));
    }
  }
}

void Tile::compute_group_weights(const ConductanceBlock& block) {
  const double inv_gmax = 1.0 / block.g_max;
  for (auto& g : groups_) {
    g.w.resize(rows_, cols_);
    const double norm = inv_gmax / g.weight;  // analog: full scale stays 1
    for (Index i = 0; i < rows_; ++i)
      for (Index j = 0; j < cols_; ++j) {
        double v = 0;
        for (int k : g.planes) {
          const auto& p = block.planes[k];
          v += p.significance * (static_cast<double>(p.g_plus(i, j)) - p.g_minus(i, j));
        }
        g.w(i, j) = static_cast<float>(v * norm);
      }
    if (io_.read_noise == ReadNoise::pcm_like)
      g.w_abs = g.w.cwiseAbs();
    else
      g.w_abs.resize(0, 0);
    // Packed once per snapshot for the GEMM kernel (core/gemm.h), not per block.
    g.w_packed.pack(g.w);
    if (g.w_abs.size() > 0) g.w_abs_packed.pack(g.w_abs);
  }
  output_scale_.resize(cols_);
  for (Index j = 0; j < cols_; ++j) output_scale_[j] = block.g_max / block.weight_scale[j];
}

void Tile::set_conductances(const ConductanceBlock& block) {
  validate_block(block);
  if (block.rows() != rows_ || block.cols() != cols_)
    throw_invalid(kWhere, concat("set_conductances: block is ", block.rows(), "x", block.cols(),
                                 ", the tile is ", rows_, "x", cols_));
  if (block.planes.size() != significances_.size() || block.readout != readout_)
    throw_invalid(kWhere, concat("set_conductances: ", block.planes.size(),
                                 " planes, the tile has ", significances_.size(),
                                 " (planes and readout must not change between snapshots)"));
  for (std::size_t k = 0; k < significances_.size(); ++k)
    if (block.planes[k].significance != significances_[k])
      throw_invalid(kWhere, concat("set_conductances: plane ", k, " significance = ",
                                   block.planes[k].significance, ", the tile has ",
                                   significances_[k]));
  compute_group_weights(block);
}

void Tile::set_input_range(double range) { require_positive(kWhere, "input_range", range); input_range_ = range; }

void Tile::set_output_bounds(const VectorF& per_column) {
  if (per_column.size() == 0) {
    out_bounds_.resize(0);
    return;
  }
  if (per_column.size() != cols_)
    throw_invalid(kWhere, concat("output bounds: ", per_column.size(), " values, expected ",
                                 cols_, " (one per column)"));
  for (Index j = 0; j < cols_; ++j)
    if (!(per_column[j] > 0) || !std::isfinite(per_column[j]))
      throw_invalid(kWhere, concat("output bound(", j, ") = ", per_column[j],
                                   ": must be finite and > 0"));
  out_bounds_ = per_column;
}

void Tile::draw_adc_errors(const RngKey& key) {
  adc_gain_.resize(0);
  adc_offset_.resize(0);
  if (!(io_.adc_offset_std > 0) && !(io_.adc_gain_std > 0)) return;
  const Index n_adc = (cols_ + io_.adc_columns - 1) / io_.adc_columns;
  std::vector<float> z_gain(static_cast<std::size_t>(n_adc)), z_offset(z_gain.size());
  fill_normal(key, 0, 0, z_gain.size(), z_gain.data());
  fill_normal(key, 1, 0, z_offset.size(), z_offset.data());
  adc_gain_.resize(cols_);
  adc_offset_.resize(cols_);
  for (Index j = 0; j < cols_; ++j) {
    const auto a = static_cast<std::size_t>(j / io_.adc_columns);
    adc_gain_[j] = static_cast<float>(std::exp(io_.adc_gain_std * z_gain[a]));
    adc_offset_[j] = static_cast<float>(io_.adc_offset_std * z_offset[a]);
  }
}

// ---------------------------------------------------------------------------------------------
// Forward

namespace {

// Random draws for the samples `ids[0..m)` (element index id*width + k); one call when the
// samples are consecutive.
// One row of outputs through the output noise and the ADC: v = a + sigma*z (kNoise), clipped
// at +-clip; kMode 0: no quantisation, 1: nearest level (ties away from zero), 2: stochastic
// (u uniform). kErr: the ADC's transfer errors first (gain, offset and 1: INL bow, 2: INL table;
// IoParams).
// Returns whether any |v| exceeded its bound. One vectorised pass.
struct AdcRow {
  Index n;
  float sigma;
  const float* clip;
  const float* inv_step;
  const float* step;
  float kmax;
  const float* gain = nullptr;    // kErr: per column
  const float* offset = nullptr;  // kErr: per column
  float inl = 0;                  // kErr 1
  const float* table_x = nullptr;  // kErr 2: the transfer table's points (full-scale units)
  const float* table_d = nullptr;  //         and deviations there
  Index table_n = 0;

  // The table's deviation at c in [-1, 1] (covered by the table), interpolated linearly.
  float table_deviation(float c) const {
    Index lo = 0, hi = table_n - 1;
    while (hi - lo > 1) {
      const Index mid = (lo + hi) / 2;
      if (table_x[mid] <= c)
        lo = mid;
      else
        hi = mid;
    }
    const float t = (c - table_x[lo]) / (table_x[hi] - table_x[lo]);
    return table_d[lo] + t * (table_d[hi] - table_d[lo]);
  }

  template <bool kNoise, int kMode, int kErr = 0>
  int run(const float* a, const float* z, const float* u, float* dst) const {
    int clipped = 0;
    for (Index j = 0; j < n; ++j) {
      float v = a[j];
      if constexpr (kNoise) v += sigma * z[j];
      if constexpr (kErr == 1) {
        const float c = fmin_fast(fmax_fast(v, -clip[j]), clip[j]) / clip[j];
        v = gain[j] * v + offset[j] + inl * (1.0f - c * c);
      } else if constexpr (kErr == 2) {
        const float c = fmin_fast(fmax_fast(v, -clip[j]), clip[j]) / clip[j];
        v = gain[j] * v + offset[j] + clip[j] * table_deviation(c);
      }
      clipped |= std::fabs(v) > clip[j];
      if constexpr (kMode == 0) {
        dst[j] = fmin_fast(fmax_fast(v, -clip[j]), clip[j]);
      } else {
        const float t = fmin_fast(fmax_fast(v * inv_step[j], -kmax - 1.0f), kmax + 1.0f);
        float k;
        if constexpr (kMode == 1)
          k = round_ties_away(t);
        else
          k = std::floor(t + u[j]);
        k = fmin_fast(fmax_fast(k, -kmax), kmax);
        dst[j] = k * step[j];
      }
    }
    return clipped;
  }

  // run<> for a row's noise, quantiser mode (0, 1, 2) and ADC errors, chosen at run time.
  int run_any(bool noisy, int mode, bool err, const float* a, const float* z, const float* u,
              float* dst) const {
    if (err && table_n > 0)
      return noisy ? run_mode<true, 2>(mode, a, z, u, dst) : run_mode<false, 2>(mode, a, z, u, dst);
    if (err)
      return noisy ? run_mode<true, 1>(mode, a, z, u, dst) : run_mode<false, 1>(mode, a, z, u, dst);
    return noisy ? run_mode<true, 0>(mode, a, z, u, dst) : run_mode<false, 0>(mode, a, z, u, dst);
  }

  template <bool kNoise, int kErr>
  int run_mode(int mode, const float* a, const float* z, const float* u, float* dst) const {
    return mode == 0   ? run<kNoise, 0, kErr>(a, z, u, dst)
           : mode == 1 ? run<kNoise, 1, kErr>(a, z, u, dst)
                       : run<kNoise, 2, kErr>(a, z, u, dst);
  }
};

template <class Fill>
void fill_rows(Fill fill, const RngKey& key, std::uint32_t draw, std::uint64_t first_row,
               const Index* ids, Index m, Index width, float* out) {
  bool contiguous = true;
  for (Index i = 1; i < m; ++i) contiguous = contiguous && ids[i] == ids[0] + i;
  const auto w = static_cast<std::uint64_t>(width);
  if (contiguous) {
    fill(key, draw, (first_row + static_cast<std::uint64_t>(ids[0])) * w,
         static_cast<std::size_t>(m * width), out);
  } else {
    for (Index i = 0; i < m; ++i)
      fill(key, draw, (first_row + static_cast<std::uint64_t>(ids[i])) * w,
           static_cast<std::size_t>(width), out + i * width);
  }
}

}  // namespace

void Tile::forward(const Eigen::Ref<const MatrixF>& x, const RngKey& key, TileReadout& out,
                   std::uint64_t first_row, ReadoutSink* sink) const {
  if (x.cols() != rows_)
    throw_invalid(kWhere, concat("input is ", x.rows(), "x", x.cols(), ": expected batch x ", rows_,
                                 " (one column per tile row)"));
  const Index batch = x.rows();

  const int cycles = io_.input_cycles();
  const int n_groups = static_cast<int>(groups_.size());
  const int n_reads = n_groups * cycles;
  const bool bit_serial = io_.b_in > 0;
  const bool stochastic = io_.rounding == Rounding::stochastic;

  // --- The readout: sizes, weights, scales (resize is a no-op when the shape is unchanged).
  out.reads.resize(n_reads);
  for (auto& r : out.reads) r.resize(batch, cols_);
  QuantiserSpec dac{io_.p_in, io_.in_bound};
  const double dac_step = dac.step();
  out.read_weight.resize(n_reads);
  for (int g = 0; g < n_groups; ++g)
    for (int c = 0; c < cycles; ++c) {
      double w = groups_[g].weight;
      if (bit_serial)
        w *= std::ldexp(1.0, io_.b_in * c) * (std::ldexp(1.0, io_.b_in) - 1.0) * dac_step /
             io_.in_bound;
      out.read_weight[g * cycles + c] = w;
    }
  out.output_scale = output_scale_;
  out.input_scale.resize(batch);
  out.bm_rounds.assign(batch, 0);
  out.clipped.assign(batch, 0);
  out.adc_steps.resize(cols_);
  auto& ws = out.workspace.get();
  auto& out_step = ws.out_step;
  auto& out_inv_step = ws.out_inv_step;
  auto& out_clip = ws.out_clip;
  bool cached = ws.cached_p_out == io_.p_out &&
                static_cast<Index>(ws.cached_bounds.size()) == cols_;
  for (Index j = 0; cached && j < cols_; ++j) {
    const double bound = out_bounds_.size() ? out_bounds_[j] : io_.out_bound;
    cached = std::memcmp(&bound, &ws.cached_bounds[static_cast<std::size_t>(j)], sizeof bound) == 0;
  }
  if (!cached) {
    out_step.resize(cols_);
    out_inv_step.resize(cols_);
    out_clip.resize(cols_);
    ws.cached_bounds.resize(static_cast<std::size_t>(cols_));
    ws.adc_steps.resize(cols_);
    double max_step = 0;
    for (Index j = 0; j < cols_; ++j) {
      const double bound = out_bounds_.size() ? out_bounds_[j] : io_.out_bound;
      const QuantiserSpec adc{io_.p_out, bound};
      ws.adc_steps[j] = adc.step();
      max_step = std::max(max_step, adc.step());
      out_step[j] = static_cast<float>(adc.step());
      out_inv_step[j] = static_cast<float>(adc.inv_step());
      out_clip[j] = static_cast<float>(bound);
      ws.cached_bounds[static_cast<std::size_t>(j)] = bound;
    }
    ws.max_step = max_step;
    ws.cached_p_out = io_.p_out;
  }
  out.adc_steps = ws.adc_steps;
  out.adc_step = io_.p_out == 0 ? 0.0 : ws.max_step;
  const float out_kmax = static_cast<float>(QuantiserSpec{io_.p_out, 1.0}.max_level());
  // The ADCs' transfer errors: the drawn gains and offsets, or 1 and 0 with only an INL.
  const bool adc_err = io_.adc_errors();
  VectorF unit_gain, zero_offset;
  if (adc_err && adc_gain_.size() != cols_) {
    unit_gain = VectorF::Ones(cols_);
    zero_offset = VectorF::Zero(cols_);
  }
  const VectorF& adc_gain = adc_gain_.size() == cols_ ? adc_gain_ : unit_gain;
  const VectorF& adc_offset = adc_offset_.size() == cols_ ? adc_offset_ : zero_offset;

  if (sink != nullptr) sink->start(out);
  if (batch == 0) {
    if (sink != nullptr) sink->end(out);
    return;
  }

  const int n_threads = std::max(1, omp_get_max_threads());
  if (static_cast<int>(ws.per_thread.size()) < n_threads) ws.per_thread.resize(n_threads);
  const Index width = std::max(rows_, cols_);
  for (auto& s : ws.per_thread) {
    s.xq.resize(kBlockRows, rows_);
    s.acc.resize(kBlockRows, cols_);
    if (io_.read_noise == ReadNoise::pcm_like) {
      s.xsq.resize(kBlockRows, rows_);
      s.var.resize(kBlockRows, cols_);
    }
    s.xin.resize(kBlockRows * rows_);
    if (bit_serial) s.levels.resize(kBlockRows * rows_);
    s.rnd.resize(kBlockRows * width);
    s.rnd2.resize(kBlockRows * width);
  }
  ws.round_scale.resize(batch);
  ws.clipped_now.assign(batch, 0);

  // One pass over the input rows of a block: max|x| per sample (the abs-max scale) and the
  // finiteness check. For finite floats the bit pattern of |x| orders like the value, so both
  // are one integer max-reduction that vectorises; a result >= the bits of +inf means a NaN or
  // an inf (the sample is flagged, skipped, and reported after the parallel region).
  const Index n_blocks = (batch + kBlockRows - 1) / kBlockRows;
  ws.bad.assign(batch, 0);
  auto scan_block = [&](Index blk) {
    const Index b1 = std::min(batch, (blk + 1) * kBlockRows);
    for (Index b = blk * kBlockRows; b < b1; ++b) {
      const float* xr = x.row(b).data();
      std::uint32_t m = 0;
      for (Index k = 0; k < rows_; ++k) {
        std::uint32_t u;
        std::memcpy(&u, xr + k, sizeof u);
        u &= 0x7fffffffu;
        m = u > m ? u : m;
      }
      ws.bad[b] = m >= 0x7f800000u;
      float amax;
      std::memcpy(&amax, &m, sizeof amax);
      float s = 1.0f;
      switch (io_.noise_management) {
        case NoiseManagement::abs_max: s = ws.bad[b] ? 0.0f : amax; break;
        case NoiseManagement::static_range: s = static_cast<float>(input_range_); break;
        case NoiseManagement::none: s = 1.0f; break;
      }
      ws.round_scale[b] = s;
    }
  };

  const float in_noise = static_cast<float>(io_.in_noise);
  const float out_noise = static_cast<float>(io_.out_noise);
  const float w_noise = static_cast<float>(io_.w_noise);
  const float cycle_unit =
      bit_serial ? static_cast<float>(io_.in_bound / (std::ldexp(1.0, io_.b_in) - 1.0)) : 0.0f;
  const std::int32_t digit_mask = bit_serial ? (std::int32_t{1} << io_.b_in) - 1 : 0;
  const int rounds = io_.bm_rounds();
  // Whether bound management redoes sample b after a round that is not the last.
  auto redone = [&](Index b) { return ws.clipped_now[b] && ws.round_scale[b] > 0; };

  // Processes samples ids[0..m) (m <= kBlockRows) in bound-management round `round`.
  auto process = [&](const Index* ids, Index m, int round, detail::BlockScratch& s) {
    // 1. Noise management: x / s (s = 0 -> 0); with nearest rounding and no bit-serial input,
    // fused with the DAC in one pass.
    const bool fused_dac = !bit_serial && !stochastic;
    // A block of one-hot rows (the GDC probe) needs the DAC of its non-zero values only: every
    // zero maps to itself (sign included), so the rest of each row is a copy.
    bool hot_known = fused_dac;
    for (Index i = 0; hot_known && i < m; ++i)
      hot_known = ws.round_scale[ids[i]] > 0 && !ws.bad[ids[i]] &&
                  detail::single_nonzero(x.row(ids[i]).data(), rows_, &s.hot[i]);
    for (Index i = 0; hot_known && i < m; ++i) {
      const float* xr = x.row(ids[i]).data();
      float* dst = s.xq.data() + i * rows_;
      std::memcpy(dst, xr, static_cast<std::size_t>(rows_) * sizeof(float));
      if (s.hot[i] >= 0)
        quantise_nearest_divided(dac, xr + s.hot[i], ws.round_scale[ids[i]], dst + s.hot[i], 1);
    }
    for (Index i = 0; !hot_known && i < m; ++i) {
      const float sc = ws.round_scale[ids[i]];
      const float* xr = x.row(ids[i]).data();  // Ref<const MatrixF>: rows are contiguous
      float* dst = (fused_dac ? s.xq.data() : s.xin.data()) + i * rows_;
      if (fused_dac && sc > 0 && !ws.bad[ids[i]]) {
        quantise_nearest_divided(dac, xr, sc, dst, static_cast<std::size_t>(rows_));
      } else if (sc > 0 && !ws.bad[ids[i]]) {
        for (Index k = 0; k < rows_; ++k) dst[k] = xr[k] / sc;
      } else {
        std::fill(dst, dst + rows_, 0.0f);
      }
    }
    const std::size_t n_in = static_cast<std::size_t>(m * rows_);
    // 2. DAC (levels shared by all cycles).
    if (stochastic && io_.p_in != 0)
      fill_rows(fill_uniform, key, tile_draw(round, 0, TileNoiseKind::dac_stochastic), first_row,
                ids, m, rows_, s.rnd.data());
    if (bit_serial) {
      if (stochastic)
        quantise_levels_stochastic(dac, s.xin.data(), s.rnd.data(), s.levels.data(), n_in);
      else
        quantise_levels_nearest(dac, s.xin.data(), s.levels.data(), n_in);
    }
    for (int c = 0; c < cycles; ++c) {
      float* xq = s.xq.data();
      if (bit_serial) {
        const int shift = io_.b_in * c;
        const std::int32_t* lv = s.levels.data();
        for (std::size_t k = 0; k < n_in; ++k) {
          const std::int32_t a = lv[k] < 0 ? -lv[k] : lv[k];
          const float digit = static_cast<float>((a >> shift) & digit_mask);
          xq[k] = (lv[k] < 0 ? -digit : digit) * cycle_unit;
        }
      } else if (stochastic) {
        quantise_stochastic(dac, s.xin.data(), s.rnd.data(), xq, n_in);
      }  // else: quantised in step 1
      if (in_noise > 0) {
        fill_rows(fill_normal, key, tile_draw(round, c, TileNoiseKind::input_noise), first_row, ids,
                  m, rows_, s.rnd2.data());
        const float* z = s.rnd2.data();
        for (std::size_t k = 0; k < n_in; ++k) xq[k] += in_noise * z[k];
      }
      if (io_.read_noise == ReadNoise::pcm_like)
        s.xsq.topRows(m) = s.xq.topRows(m).cwiseProduct(s.xq.topRows(m));
      // Input noise fills the zeros; otherwise one-hot inputs stay one-hot through the DAC (a
      // value that rounds to 0 gives the same +0 product row as an all-zero row).
      const bool one_hot = (hot_known && !(in_noise > 0)) ||
                           detail::one_hot_rows(s.xq.data(), m, rows_, s.hot);

      for (int g = 0; g < n_groups; ++g) {
        const int r = g * cycles + c;
        // 3. The analog product: one GEMM for the block (a copy of weight rows for one-hot
        // inputs, such as the GDC probe).
        if (one_hot)
          detail::one_hot_product(m, s.xq.data(), rows_, s.hot, groups_[g].w, s.acc.data(),
                                  cols_);
        else
          gemm_packed(m, s.xq.data(), rows_, groups_[g].w_packed, s.acc.data(), cols_);
        float* acc = s.acc.data();
        const std::size_t n_out = static_cast<std::size_t>(m * cols_);
        // Read noise (output-referred).
        if (io_.read_noise != ReadNoise::none && w_noise > 0) {
          fill_rows(fill_normal, key, tile_draw(round, r, TileNoiseKind::read_noise), first_row,
                    ids, m, cols_, s.rnd.data());
          const float* z = s.rnd.data();
          if (io_.read_noise == ReadNoise::pcm_like) {
            if (one_hot)
              detail::one_hot_product(m, s.xsq.data(), rows_, s.hot, groups_[g].w_abs,
                                      s.var.data(), cols_);
            else
              gemm_packed(m, s.xsq.data(), rows_, groups_[g].w_abs_packed, s.var.data(), cols_);
            const float* v = s.var.data();
            for (std::size_t k = 0; k < n_out; ++k)
              acc[k] += w_noise * std::sqrt(fmax_fast(v[k], 0.0f)) * z[k];
          } else {
            for (Index i = 0; i < m; ++i) {
              const float sigma = w_noise * s.xq.row(i).norm();
              float* a = acc + i * cols_;
              const float* zi = z + i * cols_;
              for (Index j = 0; j < cols_; ++j) a[j] += sigma * zi[j];
            }
          }
        }
        // 4. Output noise and 5. the ADC with clipping, fused in one pass per row; note the
        // samples that clipped.
        const bool noisy = out_noise > 0;
        if (noisy)
          fill_rows(fill_normal, key, tile_draw(round, r, TileNoiseKind::output_noise), first_row,
                    ids, m, cols_, s.rnd.data());
        const int mode = io_.p_out == 0 ? 0 : (stochastic ? 2 : 1);
        if (mode == 2)
          fill_rows(fill_uniform, key, tile_draw(round, r, TileNoiseKind::adc_stochastic),
                    first_row, ids, m, cols_, s.rnd2.data());
        const AdcRow adc{cols_,    out_noise,  out_clip.data(),   out_inv_step.data(),
                         out_step.data(), out_kmax, adc_gain.data(), adc_offset.data(),
                         static_cast<float>(io_.adc_inl), inl_ideal_.data(),
                         inl_deviation_.data(), static_cast<Index>(inl_ideal_.size())};
        for (Index i = 0; i < m; ++i) {
          const float* a = acc + i * cols_;
          const float* z = s.rnd.data() + i * cols_;
          const float* u = s.rnd2.data() + i * cols_;
          float* dst = out.reads[r].row(ids[i]).data();
          const int clipped = adc.run_any(noisy, mode, adc_err, a, z, u, dst);
          if (clipped) ws.clipped_now[ids[i]] = 1;
        }
      }
    }
    // The samples that bound management will not redo are final: hand them to the sink.
    if (sink != nullptr) {
      Index final_ids[kBlockRows];
      Index n_final = 0;
      for (Index i = 0; i < m; ++i) {
        const Index b = ids[i];
        if (round < rounds && redone(b)) continue;
        out.input_scale[b] = ws.round_scale[b];
        final_ids[n_final++] = b;
      }
      if (n_final > 0) sink->take(out, final_ids, n_final);
    }
  };

  // Round 0: every sample, in fixed blocks of consecutive rows. One parallel region per
  // forward (none for a single block): on a busy machine every extra barrier can cost a
  // scheduler time slice.
#pragma omp parallel for schedule(static) if (n_blocks > 1 && !omp_in_parallel())
  for (Index blk = 0; blk < n_blocks; ++blk) {
    scan_block(blk);
    const Index b0 = blk * kBlockRows;
    const Index m = std::min(kBlockRows, batch - b0);
    Index ids[kBlockRows];
    for (Index i = 0; i < m; ++i) ids[i] = b0 + i;
    process(ids, m, 0, ws.per_thread[omp_get_thread_num()]);
  }
  for (Index b = 0; b < batch; ++b) {
    if (ws.bad[b]) {
      Index i = 0;
      while (i < rows_ && std::isfinite(x(b, i))) ++i;
      throw_invalid(kWhere, concat("input(", b, ",", i, ") = ", x(b, i), ": must be finite"));
    }
  }

  // Bound management: redo the samples that clipped, with the input scale doubled.
  for (int round = 1; round <= rounds; ++round) {
    ws.redo.clear();
    for (Index b = 0; b < batch; ++b)
      if (redone(b)) ws.redo.push_back(b);
    if (ws.redo.empty()) break;
    for (Index b : ws.redo) {
      ws.round_scale[b] *= 2.0f;
      ws.clipped_now[b] = 0;
      out.bm_rounds[b] = static_cast<std::uint8_t>(round);
    }
    const Index n_redo = static_cast<Index>(ws.redo.size());
    const Index n_redo_blocks = (n_redo + kBlockRows - 1) / kBlockRows;
#pragma omp parallel for schedule(static) if (n_redo_blocks > 1 && !omp_in_parallel())
    for (Index blk = 0; blk < n_redo_blocks; ++blk) {
      const Index i0 = blk * kBlockRows;
      const Index m = std::min(kBlockRows, n_redo - i0);
      process(ws.redo.data() + i0, m, round, ws.per_thread[omp_get_thread_num()]);
    }
  }

  for (Index b = 0; b < batch; ++b) {
    out.input_scale[b] = ws.round_scale[b];
    out.clipped[b] = ws.clipped_now[b];
  }
  if (sink != nullptr) sink->end(out);
}

}  // namespace pcmsim::core
