// The digital unit (docs/physics.md §4 step 7 and §6): turns the raw readouts of the tiles that hold
// one layer into the layer's pre-bias output, at a configurable accumulator precision.
//
// Each read r of a tile readout placed at column offset col0 contributes, to output (b, j),
// the partial sum ("term")
//     term = ((reads[r](b, j') * read_weight[r]) * input_scale[b]) * (output_scale[j'] * alpha[j'])
// with j' = j - col0 (the product is evaluated in exactly this order, so the reference oracle
// can reproduce it bit for bit). The terms of all reads of all tiles added for the layer are
// accumulated, in the order the readouts were added and reads within a readout, by one of:
//  - float64 (default): terms and sum in double, result rounded once to float32;
//  - float32: terms and sum in float;
//  - fixed_point: a saturating two's-complement accumulator of `acc_bits` bits whose LSB is
//    2^-acc_frac_bits output units (output units = weight units x input units, i.e. the units
//    of the layer's float product x.W). Every term is rounded to the nearest LSB (ties away from
//    zero) and added with saturation at +-(2^(acc_bits-1) - 1) LSB after each addition (a
//    saturating adder; the bound is symmetric like the converters'). Choose acc_frac_bits for a
//    range with frac_bits_for_range();
//  - block_floating_point: the terms of one output are aligned to the largest exponent among
//    them: with E such that max|term| < 2^E (frexp), each term is rounded to the nearest
//    multiple of 2^(E - w) (w = bfp_window_bits, ties away from zero) and the aligned integers
//    are summed exactly (an adder tree wide enough not to overflow). Error bound per output:
//    |y - sum terms| <= K * 2^(E - w - 1) for K terms, i.e. <= K * max|term| * 2^-w.
// The result is batch x cols float32.
//
// Parallelism: OpenMP over fixed blocks of batch rows; every output element is computed by the
// same operations in the same order whatever the thread count, so results are bit-identical.
#pragma once

#include <string>
#include <vector>

#include "core/settings.h"
#include "core/tile.h"
#include "core/types.h"

namespace pcmsim::core {

enum class Accumulator {
  float64,               // default
  float32,
  fixed_point,           // saturating integer of acc_bits, LSB 2^-acc_frac_bits
  block_floating_point,  // terms aligned to the largest exponent within a w-bit window
};

std::string to_string(Accumulator a);
// "float64", "float32", "fixed_point", "block_floating_point"; throws naming the text.
Accumulator accumulator_from_string(const std::string& text);
PCMSIM_ENUM_TEXT(Accumulator, accumulator_from_string, "float64", "float32", "fixed_point",
                 "block_floating_point");

struct DigitalParams {
  Accumulator accumulator = Accumulator::float64;
  // fixed_point: accumulator width in bits including the sign, 2..53 (53: the integer values
  // are held exactly in a double, wider than any hardware accumulator).
  int acc_bits = 32;
  // fixed_point: the LSB is 2^-acc_frac_bits output units, -128..128. Default 16: with 32 bits
  // the range is about +-32768 at a resolution of 1.5e-5.
  int acc_frac_bits = 16;
  // block_floating_point: bits of the aligned window below the block's leading exponent, 1..32.
  int bfp_window_bits = 16;

  // Throws std::invalid_argument "[core::DigitalParams] <field> = <value>: ...".
  void validate() const;

  template <class V>
  static void fields(V& v) {
    using S = DigitalParams;
    const Affects c = Affects::converter;
    v.field({"accumulator", "", "", "digital accumulation of the tiles' partial sums", c},
            [](S& s) -> auto& { return s.accumulator; });
    v.field({"acc_bits", "bits", "2..53", "fixed_point: accumulator width including the sign", c},
            [](S& s) -> auto& { return s.acc_bits; });
    v.field({"acc_frac_bits", "bits", "-128..128",
             "fixed_point: fractional bits, LSB = 2^-acc_frac_bits output units (range "
             "+-2^(acc_bits-1-acc_frac_bits))", c},
            [](S& s) -> auto& { return s.acc_frac_bits; });
    v.field({"bfp_window_bits", "bits", "1..32",
             "block_floating_point: bits of the aligned window below the leading exponent", c},
            [](S& s) -> auto& { return s.bfp_window_bits; });
  }

  // Derived (fixed_point): LSB in output units and the saturation bound (max_int * LSB).
  double acc_lsb() const;
  double acc_max_int() const;  // 2^(acc_bits-1) - 1
  double acc_bound() const { return acc_max_int() * acc_lsb(); }
};

// The largest acc_frac_bits such that an acc_bits accumulator still represents +-max_abs
// (finite, > 0) without saturating. Throws on bad arguments or when no value in -128..128 fits.
int frac_bits_for_range(double max_abs, int acc_bits);

// Accumulates the readouts of the tiles of one layer:
//   acc.begin(batch, cols);
//   for each tile: tile.forward(x_slice, key, readout); acc.add(readout, col0, &alpha);
//   MatrixF y = acc.finish();
// Buffers are reused across begin()/finish() cycles.
class LayerAccumulator {
 public:
  explicit LayerAccumulator(DigitalParams params = {});  // validates

  const DigitalParams& params() const { return params_; }
  void set_params(const DigitalParams& params);  // validates; only between finish() and begin()

  // Starts a layer output of batch x cols (both >= 1), all zeros.
  void begin(Index batch, Index cols);
  // Adds every read of `readout` to columns [col0, col0 + readout cols). `alpha` (one factor
  // per column of the readout, finite; nullptr = 1) is the drift compensation of the tile.
  // The readout may be reused by the caller right after the call (it is not referenced).
  // Throws std::invalid_argument on a shape mismatch, a column range outside the layer, a
  // non-finite read weight or alpha, or when begin() was not called.
  void add(const TileReadout& readout, Index col0, const VectorD* alpha = nullptr);
  // Same with one alpha for every column of the tile (per-tile GDC).
  void add(const TileReadout& readout, Index col0, double alpha);
  // add() fused into the tile's pass: give the returned sink to Tile::forward, which adds each
  // sample's reads while they are still in cache (float64 and float32; the other accumulators
  // add the whole readout when the forward ends). The result is add()'s, bit for bit. `alpha`
  // must stay alive until the forward returns; one sink at a time.
  ReadoutSink& sink(Index col0, const VectorD* alpha = nullptr);

  // The layer output (batch x cols, float32). Ends the layer (begin() again for the next one).
  MatrixF finish();
  void finish(MatrixF& out);  // writes into `out`, resized only when its shape differs

  // fixed_point: the number of additions that saturated in the last layer (valid after
  // finish()); 0 for the other accumulators.
  long long saturations() const { return saturations_; }

 private:
  class Sink final : public ReadoutSink {
   public:
    void start(const TileReadout& ro) override;
    void take(const TileReadout& ro, const Index* ids, Index m) noexcept override;
    void end(const TileReadout& ro) override;
    LayerAccumulator* acc = nullptr;  // set by sink(), so copies of the accumulator stay apart
    Index col0 = 0;
    const VectorD* alpha = nullptr;

   private:
    bool fresh_ = false;
  };
  // Checks a readout against the layer and sets colf_; float64: marks its columns written and
  // returns whether they were all unwritten before (the first add stores 0.0 + term).
  bool prepare(const TileReadout& ro, Index col0, const VectorD* alpha);
  // float64 or float32: adds every read of sample b (prepared).
  void add_row(const TileReadout& ro, Index b, Index col0, bool fresh);
  // Whether the accumulator adds sample by sample (add_row); the others need whole readouts.
  bool adds_rows() const {
    return params_.accumulator == Accumulator::float64 ||
           params_.accumulator == Accumulator::float32;
  }

  struct Stored {  // block_floating_point: one term matrix (batch x ncols) and its offset
    Index col0 = 0;
    MatrixD terms;
  };
  DigitalParams params_;
  bool active_ = false;
  Index batch_ = 0, cols_ = 0;
  MatrixD acc_d_;   // float64 and fixed_point (integer values in LSB units)
  MatrixF acc_f_;   // float32
  // float64: columns of acc_d_ written since begin() (the rest is uninitialised and reads
  // as 0); the first add to a column stores 0.0 + term instead of zeroing the matrix first.
  std::vector<std::uint8_t> col_written_;
  std::vector<Stored> stored_;  // block_floating_point
  std::size_t stored_used_ = 0;
  std::vector<long long> block_saturations_;
  long long saturations_ = 0;
  VectorD colf_;    // scratch: output_scale * alpha of the current readout
  VectorF colf_f_;  // float32: the same in float
  Sink sink_;
};

// Rounding to the nearest integer, ties away from zero, written so that GCC vectorises it.
inline double round_half_away(double v) {
  const double t = __builtin_trunc(v);
  const double d = v - t;  // exact
  const double one = v < 0 ? -1.0 : 1.0;
  return (d >= 0.5 || d <= -0.5) ? t + one : t;
}

}  // namespace pcmsim::core
