// One crossbar tile: the analog matrix-vector product of a batch of inputs against a block of
// programmed conductances, with its converters and per-MVM noise (docs/physics.md §4 steps 1-6).
// The digital de-scaling and accumulation (step 7) belong to the digital unit; the tile hands
// it a TileReadout.
//
// Random numbers: every draw is a pure function of (key, draw number, element index), where
// the draw number encodes (bound-management round, read, kind of noise) and the element index is
// (batch row * rows + row) for input-side draws and (batch row * cols + column) for output-side
// draws, the batch row counted from forward()'s first_row. See tile_draw() below;
// core/reference/tile_reference.h draws exactly the same numbers.
//
// Performance and determinism: the batch is cut into fixed blocks of kBlockRows rows (independent of
// the thread count), processed in one OpenMP parallel region; per block, noise management and
// the DAC are one vectorised pass, the product is one GEMM (core/gemm.h, row invariant) per plane group, output noise
// and the ADC one more pass. Bound management redoes only the samples that clipped, again in
// fixed blocks. Results are bit-identical for any number of threads.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/conductance_block.h"
#include "core/gemm.h"
#include "core/io_params.h"
#include "core/rng.h"
#include "core/types.h"

namespace pcmsim::core {

// Kinds of random draw of a tile forward.
enum class TileNoiseKind : std::uint32_t {
  input_noise = 0,       // element index b*rows + i
  read_noise = 1,        // element index b*cols + j
  output_noise = 2,      // element index b*cols + j
  dac_stochastic = 3,    // element index b*rows + i (one per sample and row, shared by cycles)
  adc_stochastic = 4,    // element index b*cols + j
};

// The draw number of one kind of noise in one read (r = group * cycles + cycle; input-side
// draws use r = cycle, since the input of a cycle is shared by all groups) of one
// bound-management round.
inline std::uint32_t tile_draw(int round, int read, TileNoiseKind kind) {
  return (static_cast<std::uint32_t>(round) * 1024u + static_cast<std::uint32_t>(read)) * 8u +
         static_cast<std::uint32_t>(kind);
}

namespace detail {
struct TileWorkspace;  // scratch buffers of a forward, reused across calls
// Owns a TileWorkspace; copying a readout gives the copy an empty one (scratch is not data).
class TileWorkspaceHolder {
 public:
  TileWorkspaceHolder();
  ~TileWorkspaceHolder();
  TileWorkspaceHolder(const TileWorkspaceHolder&);
  TileWorkspaceHolder& operator=(const TileWorkspaceHolder&);
  TileWorkspaceHolder(TileWorkspaceHolder&&) noexcept;
  TileWorkspaceHolder& operator=(TileWorkspaceHolder&&) noexcept;
  TileWorkspace& get();

 private:
  std::unique_ptr<TileWorkspace> ptr_;
};
}  // namespace detail

// Raw result of one tile forward for a batch, before the digital unit.
struct TileReadout {
  // One per (group, input cycle), index r = group * cycles + cycle, where a group is one
  // conductance plane (PlaneReadout::digital) or all planes combined in analog
  // (PlaneReadout::analog). Each batch x cols: ADC output values in normalised units (integer
  // multiples of the column's ADC step when the ADC is on).
  std::vector<MatrixF> reads;
  // Per read: the factor the digital unit multiplies it by (plane significance or the sum of
  // significances of an analog group, times 2^(b_in*c) * (2^b_in - 1) * dac_step / in_bound for
  // bit-serial cycle c; 1 for a single-plane, single-cycle tile).
  std::vector<double> read_weight;
  // Per sample: the scale the input was divided by (noise management times the bound-management
  // factor). 0 when the input vector was all zeros under abs_max (the output is then 0).
  VectorF input_scale;
  // ADC LSB in normalised units (0 = ADC off). With per-column bounds (Tile::set_output_bounds)
  // this is the largest column LSB; adc_steps holds each column's.
  double adc_step = 0;
  VectorD adc_steps;  // per column ADC LSB (0 = ADC off)
  // Per column: normalised units -> weight units (g_max / s_G of the column).
  VectorD output_scale;
  // Per sample: the number of bound-management rounds applied (0 = none).
  std::vector<std::uint8_t> bm_rounds;
  // Per sample: 1 when an output still clipped after the last bound-management round (or, with
  // bound management off, when any output clipped).
  std::vector<std::uint8_t> clipped;

  // Scratch reused by the next forward into this readout (not part of the result).
  detail::TileWorkspaceHolder workspace;

  Index reads_count() const { return static_cast<Index>(reads.size()); }
};

// Takes the samples of a forward as soon as their reads are final, inside the forward's
// parallel region while those reads are still in cache (the digital unit's accumulation,
// LayerAccumulator::sink, fused into the tile's pass instead of a second pass over memory).
class ReadoutSink {
 public:
  virtual ~ReadoutSink() = default;
  // Once per forward, before any take(), outside any parallel region, when `out`'s reads are
  // sized and its read weights and output scale are set. May throw.
  virtual void start(const TileReadout& out) = 0;
  // Samples ids[0..m) are final: their reads and out.input_scale[id] will not change. Called
  // concurrently for disjoint samples, so it must not throw.
  virtual void take(const TileReadout& out, const Index* ids, Index m) noexcept = 0;
  // Once, after the last take(), outside any parallel region. May throw. Not called when the
  // forward throws.
  virtual void end(const TileReadout& out) = 0;
};

class Tile {
 public:
  // Batch rows per work block of forward(): a multiple of the GEMM's 6-row register block,
  // so no block computes padding rows. No result depends on it.
  static constexpr Index kBlockRows = 132;

  // Validates both (throws std::invalid_argument naming the field and value).
  Tile(ConductanceBlock block, IoParams io);

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  const IoParams& io() const { return io_; }
  // Number of reads per forward: groups * input cycles.
  int groups() const { return static_cast<int>(groups_.size()); }
  int cycles() const { return io_.input_cycles(); }

  // x: batch x rows (finite). Reuses `out`'s buffers. Random draws from `key` by element index,
  // where row b of x counts as row first_row + b: a caller that cuts a long run of inputs into
  // batches passes each batch's global first row, so the draws of an input do not depend on
  // the batch it came in. Throws std::invalid_argument on a wrong shape or a non-finite input.
  // A `sink` receives every sample once its reads are final (see ReadoutSink).
  void forward(const Eigen::Ref<const MatrixF>& x, const RngKey& key, TileReadout& out,
               std::uint64_t first_row = 0, ReadoutSink* sink = nullptr) const;

  // Calibrated converter ranges (stored with the programmed chip, used at every later time):
  // static input range for NoiseManagement::static_range (> 0, finite; default 1).
  void set_input_range(double range);
  double input_range() const { return input_range_; }
  // ADC full scale per column (normalised units, each > 0 and finite). An empty vector returns
  // to the uniform IoParams::out_bound.
  void set_output_bounds(const VectorF& per_column);
  const VectorF& output_bounds() const { return out_bounds_; }  // empty = uniform
  // The ADC errors of this tile on its chip (IoParams::adc_offset_std, adc_gain_std): gain and
  // offset per ADC drawn from `key` (element index = ADC number, column j / adc_columns; draw 0
  // the gain, 1 the offset). No draw and no change when both spreads are 0.
  void draw_adc_errors(const RngKey& key);
  const VectorF& adc_gain() const { return adc_gain_; }      // per column; empty = 1
  const VectorF& adc_offset() const { return adc_offset_; }  // per column; empty = 0
  // A new time snapshot: same shape, same planes (count and significances); buffers reused.
  void set_conductances(const ConductanceBlock& block);

  // The normalised weights of a group: sum_k F_k (G+_k - G-_k) / g_max, divided by sum_k F_k
  // for an analog group (so full scale stays 1). rows x cols.
  const MatrixF& group_weights(int group) const { return groups_.at(group).w; }
  double group_weight(int group) const { return groups_.at(group).weight; }
  const VectorD& output_scale() const { return output_scale_; }

 private:
  struct Group {
    std::vector<int> planes;  // plane indices combined in this group
    double weight = 1.0;      // read weight of the group (significance or sum of them)
    MatrixF w;                // normalised weights, rows x cols
    MatrixF w_abs;            // |w|, only for ReadNoise::pcm_like
    PackedWeights w_packed, w_abs_packed;  // w and w_abs packed for gemm_packed
  };
  void validate_block(const ConductanceBlock& block) const;
  void build_groups(const ConductanceBlock& block);
  void compute_group_weights(const ConductanceBlock& block);

  IoParams io_;
  Index rows_ = 0, cols_ = 0;
  PlaneReadout readout_ = PlaneReadout::digital;
  std::vector<double> significances_;
  std::vector<Group> groups_;
  VectorD output_scale_;
  double input_range_ = 1.0;
  VectorF out_bounds_;  // empty = uniform io_.out_bound
  VectorF adc_gain_, adc_offset_;  // per column; empty = ideal ADCs
  std::vector<float> inl_ideal_, inl_deviation_;  // IoParams::adc_inl_table; empty = none
};

}  // namespace pcmsim::core
