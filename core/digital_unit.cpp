#include "core/digital_unit.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pcmsim::core {

namespace {
constexpr const char* kParams = "core::DigitalParams";
constexpr const char* kAcc = "core::LayerAccumulator";
// Batch rows per work block: fixed, so the split never depends on the thread count (and the
// per-element arithmetic does not depend on the split anyway).
constexpr Index kRowBlock = 16;

Index num_blocks(Index batch) { return (batch + kRowBlock - 1) / kRowBlock; }
}  // namespace

std::string to_string(Accumulator a) {
  switch (a) {
    case Accumulator::float64: return "float64";
    case Accumulator::float32: return "float32";
    case Accumulator::fixed_point: return "fixed_point";
    case Accumulator::block_floating_point: return "block_floating_point";
  }
  return "unknown";
}

Accumulator accumulator_from_string(const std::string& text) {
  for (Accumulator a : {Accumulator::float64, Accumulator::float32, Accumulator::fixed_point,
                        Accumulator::block_floating_point})
    if (text == to_string(a)) return a;
  throw_invalid("core::accumulator_from_string",
                concat("accumulator = '", text,
                       "': must be one of float64, float32, fixed_point, block_floating_point"));
}

void DigitalParams::validate() const {
  switch (accumulator) {
    case Accumulator::float64:
    case Accumulator::float32:
    case Accumulator::fixed_point:
    case Accumulator::block_floating_point: break;
    default:
      throw_invalid(kParams, concat("accumulator = ", static_cast<int>(accumulator),
                                    ": not a known Accumulator"));
  }
  if (acc_bits < 2 || acc_bits > 53)
    throw_invalid(kParams, concat("acc_bits = ", acc_bits, ": must be in [2, 53]"));
  if (acc_frac_bits < -128 || acc_frac_bits > 128)
    throw_invalid(kParams, concat("acc_frac_bits = ", acc_frac_bits, ": must be in [-128, 128]"));
  if (bfp_window_bits < 1 || bfp_window_bits > 32)
    throw_invalid(kParams,
                  concat("bfp_window_bits = ", bfp_window_bits, ": must be in [1, 32]"));
}

double DigitalParams::acc_lsb() const { return std::ldexp(1.0, -acc_frac_bits); }
double DigitalParams::acc_max_int() const { return std::ldexp(1.0, acc_bits - 1) - 1.0; }

int frac_bits_for_range(double max_abs, int acc_bits) {
  require_positive("core::frac_bits_for_range", "max_abs", max_abs);
  if (acc_bits < 2 || acc_bits > 53)
    throw_invalid("core::frac_bits_for_range",
                  concat("acc_bits = ", acc_bits, ": must be in [2, 53]"));
  const double max_int = std::ldexp(1.0, acc_bits - 1) - 1.0;
  for (int f = 128; f >= -128; --f)
    if (max_int * std::ldexp(1.0, -f) >= max_abs) return f;
  throw_invalid("core::frac_bits_for_range",
                concat("max_abs = ", max_abs, ": not representable with acc_bits = ", acc_bits,
                       " and acc_frac_bits >= -128"));
}

LayerAccumulator::LayerAccumulator(DigitalParams params) : params_(params) { params_.validate(); }

void LayerAccumulator::set_params(const DigitalParams& params) {
  if (active_) throw_invalid(kAcc, "set_params() called between begin() and finish()");
  params.validate();
  params_ = params;
}

void LayerAccumulator::begin(Index batch, Index cols) {
  if (batch < 1) throw_invalid(kAcc, concat("batch = ", batch, ": must be >= 1"));
  if (cols < 1) throw_invalid(kAcc, concat("cols = ", cols, ": must be >= 1"));
  batch_ = batch;
  cols_ = cols;
  switch (params_.accumulator) {
    case Accumulator::float32:
      acc_f_.resize(batch, cols);
      acc_f_.setZero();
      break;
    case Accumulator::float64:  // zeroed lazily, per column (col_written_)
      acc_d_.resize(batch, cols);
      col_written_.assign(static_cast<std::size_t>(cols), 0);
      break;
    case Accumulator::fixed_point:
    case Accumulator::block_floating_point:  // holds the running max |term|
      acc_d_.resize(batch, cols);
      acc_d_.setZero();
      break;
  }
  stored_used_ = 0;
  block_saturations_.assign(static_cast<std::size_t>(num_blocks(batch)), 0);
  saturations_ = 0;
  active_ = true;
}

void LayerAccumulator::add(const TileReadout& readout, Index col0, double alpha) {
  require_finite(kAcc, "alpha", alpha);
  const Index n = readout.output_scale.size();
  VectorD a = VectorD::Constant(n, alpha);
  add(readout, col0, &a);
}

bool LayerAccumulator::prepare(const TileReadout& ro, Index col0, const VectorD* alpha) {
  if (!active_) throw_invalid(kAcc, "add() called before begin()");
  const Index nreads = static_cast<Index>(ro.reads.size());
  if (nreads < 1) throw_invalid(kAcc, "readout has no reads");
  if (static_cast<Index>(ro.read_weight.size()) != nreads)
    throw_invalid(kAcc, concat("read_weight has ", ro.read_weight.size(), " entries for ", nreads,
                               " reads"));
  const Index ncols = ro.reads.front().cols();
  for (Index r = 0; r < nreads; ++r) {
    const MatrixF& m = ro.reads[static_cast<std::size_t>(r)];
    if (m.rows() != batch_ || m.cols() != ncols)
      throw_invalid(kAcc, concat("read ", r, " is ", m.rows(), "x", m.cols(), ", expected ",
                                 batch_, "x", ncols));
    require_finite(kAcc, "read_weight", r, ro.read_weight[static_cast<std::size_t>(r)]);
  }
  if (ro.input_scale.size() != batch_)
    throw_invalid(kAcc, concat("input_scale has ", ro.input_scale.size(), " entries, batch is ",
                               batch_));
  if (ro.output_scale.size() != ncols)
    throw_invalid(kAcc, concat("output_scale has ", ro.output_scale.size(),
                               " entries, the readout has ", ncols, " columns"));
  if (col0 < 0 || col0 + ncols > cols_)
    throw_invalid(kAcc, concat("col0 = ", col0, ": columns [", col0, ", ", col0 + ncols,
                               ") outside the layer's ", cols_, " columns"));
  if (alpha != nullptr) {
    if (alpha->size() != ncols)
      throw_invalid(kAcc, concat("alpha has ", alpha->size(), " entries, the readout has ", ncols,
                                 " columns"));
    for (Index j = 0; j < ncols; ++j) require_finite(kAcc, "alpha", j, (*alpha)(j));
  }
  colf_.resize(ncols);
  for (Index j = 0; j < ncols; ++j)
    colf_(j) = ro.output_scale(j) * (alpha != nullptr ? (*alpha)(j) : 1.0);
  if (params_.accumulator == Accumulator::float32) colf_f_ = colf_.cast<float>();
  if (params_.accumulator != Accumulator::float64) return false;
  // First add to every column of the range: acc = 0.0 + term (the same bits as adding to a
  // zeroed accumulator, -0.0 included) without reading acc. A range only partly written
  // before is zeroed where unwritten and takes the ordinary path.
  std::uint8_t* written = col_written_.data() + col0;
  bool fresh = true, any_fresh = false;
  for (Index j = 0; j < ncols; ++j) {
    fresh = fresh && !written[j];
    any_fresh = any_fresh || !written[j];
  }
  if (any_fresh && !fresh) {
    for (Index j = 0; j < ncols; ++j)
      if (!written[j])
        for (Index b = 0; b < batch_; ++b) acc_d_(b, col0 + j) = 0.0;
  }
  std::fill(written, written + ncols, std::uint8_t{1});
  return fresh;
}

void LayerAccumulator::add_row(const TileReadout& ro, Index b, Index col0, bool fresh) {
  const Index nreads = static_cast<Index>(ro.reads.size());
  const Index ncols = colf_.size();
  if (params_.accumulator == Accumulator::float64) {
    const double* colf = colf_.data();
    double* acc = acc_d_.data() + b * cols_ + col0;
    const double s = static_cast<double>(ro.input_scale[b]);
    for (Index r = 0; r < nreads; ++r) {
      const float* rd = ro.reads[static_cast<std::size_t>(r)].data() + b * ncols;
      const double w = ro.read_weight[static_cast<std::size_t>(r)];
      if (fresh && r == 0) {
        for (Index j = 0; j < ncols; ++j)
          acc[j] = 0.0 + ((static_cast<double>(rd[j]) * w) * s) * colf[j];
      } else {
        for (Index j = 0; j < ncols; ++j) acc[j] += ((static_cast<double>(rd[j]) * w) * s) * colf[j];
      }
    }
  } else {  // float32
    const float* cf = colf_f_.data();
    float* acc = acc_f_.data() + b * cols_ + col0;
    const float s = ro.input_scale[b];
    for (Index r = 0; r < nreads; ++r) {
      const float* rd = ro.reads[static_cast<std::size_t>(r)].data() + b * ncols;
      const float w = static_cast<float>(ro.read_weight[static_cast<std::size_t>(r)]);
      for (Index j = 0; j < ncols; ++j) acc[j] += ((rd[j] * w) * s) * cf[j];
    }
  }
}

ReadoutSink& LayerAccumulator::sink(Index col0, const VectorD* alpha) {
  sink_.acc = this;
  sink_.col0 = col0;
  sink_.alpha = alpha;
  return sink_;
}

void LayerAccumulator::Sink::start(const TileReadout& ro) {
  if (acc->adds_rows()) fresh_ = acc->prepare(ro, col0, alpha);
}

void LayerAccumulator::Sink::take(const TileReadout& ro, const Index* ids, Index m) noexcept {
  if (!acc->adds_rows()) return;
  for (Index i = 0; i < m; ++i) acc->add_row(ro, ids[i], col0, fresh_);
}

void LayerAccumulator::Sink::end(const TileReadout& ro) {
  if (!acc->adds_rows()) acc->add(ro, col0, alpha);
}

void LayerAccumulator::add(const TileReadout& ro, Index col0, const VectorD* alpha) {
  const bool fresh = prepare(ro, col0, alpha);
  const Index nreads = static_cast<Index>(ro.reads.size());
  const Index ncols = colf_.size();
  const Index batch = batch_;
  const Index nblocks = num_blocks(batch);
  const double* colf = colf_.data();
  const float* in_scale = ro.input_scale.data();
  const bool parallel = batch * ncols * nreads >= 16384;

  switch (params_.accumulator) {
    case Accumulator::float64:
    case Accumulator::float32: {
#pragma omp parallel for schedule(static) if (parallel)
      for (Index blk = 0; blk < nblocks; ++blk) {
        const Index b_end = std::min(batch, (blk + 1) * kRowBlock);
        for (Index b = blk * kRowBlock; b < b_end; ++b) add_row(ro, b, col0, fresh);
      }
      break;
    }
    case Accumulator::fixed_point: {
      const double to_int = std::ldexp(1.0, params_.acc_frac_bits);  // exact power of two
      const double max_int = params_.acc_max_int();
#pragma omp parallel for schedule(static) if (parallel)
      for (Index blk = 0; blk < nblocks; ++blk) {
        const Index b_end = std::min(batch, (blk + 1) * kRowBlock);
        long long sat = 0;
        for (Index b = blk * kRowBlock; b < b_end; ++b) {
          double* acc = acc_d_.data() + b * cols_ + col0;
          const double s = static_cast<double>(in_scale[b]);
          for (Index r = 0; r < nreads; ++r) {
            const float* rd = ro.reads[static_cast<std::size_t>(r)].data() + b * ncols;
            const double w = ro.read_weight[static_cast<std::size_t>(r)];
            for (Index j = 0; j < ncols; ++j) {
              const double term = ((static_cast<double>(rd[j]) * w) * s) * colf[j];
              const double q = round_half_away(term * to_int);
              const double sum = acc[j] + q;  // exact while |q| <= 2^52; beyond, saturates anyway
              const bool over = sum > max_int || sum < -max_int;
              sat += over ? 1 : 0;
              acc[j] = std::min(max_int, std::max(-max_int, sum));
            }
          }
        }
        block_saturations_[static_cast<std::size_t>(blk)] += sat;
      }
      break;
    }
    case Accumulator::block_floating_point: {
      for (Index r = 0; r < nreads; ++r) {
        if (stored_used_ == stored_.size()) stored_.emplace_back();
        Stored& st = stored_[stored_used_++];
        st.col0 = col0;
        st.terms.resize(batch, ncols);
        const float* rd0 = ro.reads[static_cast<std::size_t>(r)].data();
        const double w = ro.read_weight[static_cast<std::size_t>(r)];
#pragma omp parallel for schedule(static) if (parallel)
        for (Index blk = 0; blk < nblocks; ++blk) {
          const Index b_end = std::min(batch, (blk + 1) * kRowBlock);
          for (Index b = blk * kRowBlock; b < b_end; ++b) {
            const float* rd = rd0 + b * ncols;
            const double s = static_cast<double>(in_scale[b]);
            double* t = st.terms.data() + b * ncols;
            double* mx = acc_d_.data() + b * cols_ + col0;
            for (Index j = 0; j < ncols; ++j) {
              t[j] = ((static_cast<double>(rd[j]) * w) * s) * colf[j];
              mx[j] = std::max(mx[j], std::abs(t[j]));
            }
          }
        }
      }
      break;
    }
  }
}

MatrixF LayerAccumulator::finish() {
  MatrixF out;
  finish(out);
  return out;
}

void LayerAccumulator::finish(MatrixF& out) {
  if (!active_) throw_invalid(kAcc, "finish() called before begin()");
  active_ = false;
  if (out.rows() != batch_ || out.cols() != cols_) out.resize(batch_, cols_);
  const Index batch = batch_, cols = cols_;
  const Index nblocks = num_blocks(batch);
  switch (params_.accumulator) {
    case Accumulator::float64: {
      const bool all_written =
          std::find(col_written_.begin(), col_written_.end(), std::uint8_t{0}) ==
          col_written_.end();
      // Serial: a cheap cast; another parallel region costs more on a loaded machine.
      const std::uint8_t* written = col_written_.data();
      for (Index blk = 0; blk < nblocks; ++blk) {
        const Index b_end = std::min(batch, (blk + 1) * kRowBlock);
        for (Index b = blk * kRowBlock; b < b_end; ++b) {
          const double* a = acc_d_.data() + b * cols;
          float* o = out.data() + b * cols;
          if (all_written) {
            for (Index j = 0; j < cols; ++j) o[j] = static_cast<float>(a[j]);
          } else {  // columns never added to are 0
            for (Index j = 0; j < cols; ++j) o[j] = written[j] ? static_cast<float>(a[j]) : 0.0f;
          }
        }
      }
      break;
    }
    case Accumulator::float32: out = acc_f_; break;
    case Accumulator::fixed_point: {
      const double lsb = params_.acc_lsb();
      out = (acc_d_ * lsb).cast<float>();  // * 2^-f is exact
      saturations_ = 0;
      for (long long s : block_saturations_) saturations_ += s;
      break;
    }
    case Accumulator::block_floating_point: {
      const int w = params_.bfp_window_bits;
      // acc_d_ holds max|term|; replace it by the exponent scale 2^(E-w) (0 when all terms are 0).
#pragma omp parallel for schedule(static) if (batch * cols >= 16384)
      for (Index blk = 0; blk < nblocks; ++blk) {
        const Index b_end = std::min(batch, (blk + 1) * kRowBlock);
        std::vector<double> isum(static_cast<std::size_t>(cols));  // aligned integer sums
        for (Index b = blk * kRowBlock; b < b_end; ++b) {
          double* mx = acc_d_.data() + b * cols;
          float* o = out.data() + b * cols;
          // Integer sums of the aligned terms, in the order the terms were added.
          for (Index j = 0; j < cols; ++j) {
            int e = 0;
            if (mx[j] > 0) std::frexp(mx[j], &e);  // max|term| < 2^e
            mx[j] = mx[j] > 0 ? std::ldexp(1.0, e - w) : 0.0;  // the LSB
            o[j] = 0;
          }
          std::fill(isum.begin(), isum.end(), 0.0);
          for (std::size_t k = 0; k < stored_used_; ++k) {
            const Stored& st = stored_[k];
            const Index nc = st.terms.cols();
            const double* t = st.terms.data() + b * nc;
            for (Index j = 0; j < nc; ++j) {
              const double lsb = mx[st.col0 + j];
              if (lsb > 0) isum[static_cast<std::size_t>(st.col0 + j)] += round_half_away(t[j] / lsb);
            }
          }
          for (Index j = 0; j < cols; ++j)
            o[j] = static_cast<float>(isum[static_cast<std::size_t>(j)] * mx[j]);
        }
      }
      break;
    }
  }
}

}  // namespace pcmsim::core
