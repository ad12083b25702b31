// The vectorised Philox of core/rng.cpp (8 counters per AVX2 step, used for every per-MVM
// noise draw of the tile) against the scalar philox4x32, including a group of 8 counters in
// which the low counter word wraps from 2^32-1 to 0.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/rng.h"

using namespace pcmsim::core;

namespace {
float uniform_from_word(std::uint32_t w) { return static_cast<float>(w >> 8) * 0x1.0p-24f; }
}  // namespace

TEST(TileRng, VectorisedPhiloxEqualsTheScalarRoundsAcrossTheCounterWrap) {
  RngKey key;
  key.seed = 42;
  key.stage = Stage::tile_forward;
  const std::uint64_t k = key.philox_key();
  const std::uint32_t draw = 77;
  for (std::uint64_t first_block : {std::uint64_t{0}, std::uint64_t{12345},
                                    (std::uint64_t{1} << 32) - 5, (std::uint64_t{7} << 32) - 3}) {
    const std::size_t blocks = 300;  // > one 256-block chunk, not a multiple of 8
    std::vector<float> u(4 * blocks);
    fill_uniform(key, draw, 4 * first_block, u.size(), u.data());
    for (std::size_t b = 0; b < blocks; ++b) {
      const std::uint64_t block = first_block + b;
      const auto w = philox4x32(k, {static_cast<std::uint32_t>(block),
                                    static_cast<std::uint32_t>(block >> 32), draw, 0u});
      for (int lane = 0; lane < 4; ++lane)
        ASSERT_EQ(u[4 * b + lane], uniform_from_word(w[lane]))
            << "block " << block << " lane " << lane;
    }
  }
}
