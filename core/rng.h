// Counter-based random numbers (Philox4x32-10, Salmon et al., SC 2011).
//
// Every random number in pcmsim is a pure function of (key, draw, element index):
//  - the key derives from (seed, stage, layer, slice, trial, sub), so each pipeline stage,
//    layer, tile slice, Monte Carlo trial and snapshot has its own stream;
//  - `draw` separates several independent variates of one element (e.g. the programming noise
//    and the drift-exponent noise of one device);
//  - the element index is the position of the device, or of the output, in its block.
// Hence results are bit-identical for any thread count and any split of work across
// processes: nobody consumes a shared stream.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace pcmsim::core {

// The stages of the pipeline that draw random numbers.
enum class Stage : std::uint32_t {
  programming = 1,     // programming noise and drift exponents
  snapshot = 2,        // read noise accumulated up to a time snapshot
  tile_forward = 3,    // per-MVM noise: input, read, output noise, stochastic rounding
  calibration = 4,     // data drawn to calibrate converter ranges
  device_report = 5,   // the Monte Carlo of `pcmsim device`
  user = 100,          // free for examples and tests
};

struct RngKey {
  std::uint64_t seed = 0;
  Stage stage = Stage::user;
  std::uint32_t layer = 0;
  std::uint32_t slice = 0;
  std::uint32_t trial = 0;
  std::uint32_t sub = 0;  // e.g. the snapshot or batch-chunk number within a stage

  RngKey with_stage(Stage s) const { RngKey k = *this; k.stage = s; return k; }
  RngKey with_layer(std::uint32_t v) const { RngKey k = *this; k.layer = v; return k; }
  RngKey with_slice(std::uint32_t v) const { RngKey k = *this; k.slice = v; return k; }
  RngKey with_trial(std::uint32_t v) const { RngKey k = *this; k.trial = v; return k; }
  RngKey with_sub(std::uint32_t v) const { RngKey k = *this; k.sub = v; return k; }

  // The 64-bit Philox key: all fields mixed by a strong 64-bit hash (SplitMix64 finaliser).
  std::uint64_t philox_key() const;

  bool operator==(const RngKey& o) const {
    return seed == o.seed && stage == o.stage && layer == o.layer && slice == o.slice &&
           trial == o.trial && sub == o.sub;
  }
};

// One Philox4x32-10 block for counter (c0, c1, c2, c3) under a 64-bit key.
std::array<std::uint32_t, 4> philox4x32(std::uint64_t key, std::array<std::uint32_t, 4> counter);

// out[i] = standard normal variate of element (first_index + i), i < n.
// Four elements share one Philox block (two Box-Muller pairs); values depend only on
// (key, draw, element index).
void fill_normal(const RngKey& key, std::uint32_t draw, std::uint64_t first_index, std::size_t n,
                 float* out);

// out[i] = uniform variate in [0, 1) of element (first_index + i), 24-bit resolution.
void fill_uniform(const RngKey& key, std::uint32_t draw, std::uint64_t first_index, std::size_t n,
                  float* out);

}  // namespace pcmsim::core
