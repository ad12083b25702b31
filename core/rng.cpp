#include "core/rng.h"

#include <algorithm>
#include <cmath>

#include "core/fastmath.h"

namespace pcmsim::core {
namespace {

constexpr std::uint32_t kMul0 = 0xD2511F53u;
constexpr std::uint32_t kMul1 = 0xCD9E8D57u;
constexpr std::uint32_t kWeyl0 = 0x9E3779B9u;
constexpr std::uint32_t kWeyl1 = 0xBB67AE85u;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Blocks processed per inner call: structure-of-arrays lanes that GCC vectorises.
constexpr std::size_t kChunkBlocks = 256;

// Philox over `count` consecutive 64-bit block numbers starting at `first_block`, counter
// words (block_lo, block_hi, draw, 0). Results land in four lane arrays.
void philox_chunk(std::uint64_t key, std::uint32_t draw, std::uint64_t first_block,
                  std::size_t count, std::uint32_t* x0, std::uint32_t* x1, std::uint32_t* x2,
                  std::uint32_t* x3) {
  for (std::size_t b = 0; b < count; ++b) {
    const std::uint64_t block = first_block + b;
    x0[b] = static_cast<std::uint32_t>(block);
    x1[b] = static_cast<std::uint32_t>(block >> 32);
    x2[b] = draw;
    x3[b] = 0;
  }
  std::uint32_t k0 = static_cast<std::uint32_t>(key);
  std::uint32_t k1 = static_cast<std::uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    for (std::size_t b = 0; b < count; ++b) {
      const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * x0[b];
      const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * x2[b];
      const std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32);
      const std::uint32_t lo0 = static_cast<std::uint32_t>(p0);
      const std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32);
      const std::uint32_t lo1 = static_cast<std::uint32_t>(p1);
      const std::uint32_t n0 = hi1 ^ x1[b] ^ k0;
      const std::uint32_t n2 = hi0 ^ x3[b] ^ k1;
      x0[b] = n0;
      x1[b] = lo1;
      x2[b] = n2;
      x3[b] = lo0;
    }
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
}

// 24-bit uniforms: [0,1) and (0,1].
inline float uniform_co(std::uint32_t x) { return static_cast<float>(x >> 8) * 0x1.0p-24f; }
inline float uniform_oc(std::uint32_t x) {
  return static_cast<float>((x >> 8) + 1u) * 0x1.0p-24f;
}

// Box-Muller of the lanes (x0, x1) and (x2, x3) of `count` blocks into 4*count normals,
// element order: block-major, lane-minor.
void box_muller_chunk(std::size_t count, const std::uint32_t* x0, const std::uint32_t* x1,
                      const std::uint32_t* x2, const std::uint32_t* x3, float* out) {
  float r01[kChunkBlocks], r23[kChunkBlocks];
  float s01[kChunkBlocks], c01[kChunkBlocks], s23[kChunkBlocks], c23[kChunkBlocks];
  for (std::size_t b = 0; b < count; ++b) {
    r01[b] = std::sqrt(-2.0f * fast_log(uniform_oc(x0[b])));
    r23[b] = std::sqrt(-2.0f * fast_log(uniform_oc(x2[b])));
    fast_sincos_2pi(uniform_co(x1[b]), s01[b], c01[b]);
    fast_sincos_2pi(uniform_co(x3[b]), s23[b], c23[b]);
  }
  for (std::size_t b = 0; b < count; ++b) {
    out[4 * b + 0] = r01[b] * c01[b];
    out[4 * b + 1] = r01[b] * s01[b];
    out[4 * b + 2] = r23[b] * c23[b];
    out[4 * b + 3] = r23[b] * s23[b];
  }
}

template <class ChunkToFloats>
void fill_blocks(const RngKey& key, std::uint32_t draw, std::uint64_t first_index, std::size_t n,
                 float* out, ChunkToFloats&& to_floats) {
  if (n == 0) return;
  const std::uint64_t philox_key = key.philox_key();
  alignas(64) std::uint32_t x0[kChunkBlocks], x1[kChunkBlocks], x2[kChunkBlocks],
      x3[kChunkBlocks];
  alignas(64) float values[4 * kChunkBlocks];
  const std::uint64_t last_index = first_index + n;  // exclusive
  std::uint64_t block = first_index / 4;
  const std::uint64_t end_block = (last_index + 3) / 4;
  while (block < end_block) {
    const std::size_t count =
        static_cast<std::size_t>(std::min<std::uint64_t>(kChunkBlocks, end_block - block));
    philox_chunk(philox_key, draw, block, count, x0, x1, x2, x3);
    to_floats(count, x0, x1, x2, x3, values);
    const std::uint64_t chunk_first = block * 4;
    const std::uint64_t copy_from = std::max(chunk_first, first_index);
    const std::uint64_t copy_to = std::min(chunk_first + 4 * count, last_index);
    std::copy(values + (copy_from - chunk_first), values + (copy_to - chunk_first),
              out + (copy_from - first_index));
    block += count;
  }
}

}  // namespace

std::uint64_t RngKey::philox_key() const {
  std::uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<std::uint64_t>(stage));
  h = splitmix64(h ^ layer);
  h = splitmix64(h ^ slice);
  h = splitmix64(h ^ trial);
  h = splitmix64(h ^ sub);
  return h;
}

std::array<std::uint32_t, 4> philox4x32(std::uint64_t key, std::array<std::uint32_t, 4> c) {
  std::uint32_t k0 = static_cast<std::uint32_t>(key);
  std::uint32_t k1 = static_cast<std::uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * c[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * c[2];
    c = {static_cast<std::uint32_t>(p1 >> 32) ^ c[1] ^ k0, static_cast<std::uint32_t>(p1),
         static_cast<std::uint32_t>(p0 >> 32) ^ c[3] ^ k1, static_cast<std::uint32_t>(p0)};
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return c;
}

void fill_normal(const RngKey& key, std::uint32_t draw, std::uint64_t first_index, std::size_t n,
                 float* out) {
  fill_blocks(key, draw, first_index, n, out, box_muller_chunk);
}

void fill_uniform(const RngKey& key, std::uint32_t draw, std::uint64_t first_index, std::size_t n,
                  float* out) {
  fill_blocks(key, draw, first_index, n, out,
              [](std::size_t count, const std::uint32_t* x0, const std::uint32_t* x1,
                 const std::uint32_t* x2, const std::uint32_t* x3, float* values) {
                for (std::size_t b = 0; b < count; ++b) {
                  values[4 * b + 0] = uniform_co(x0[b]);
                  values[4 * b + 1] = uniform_co(x1[b]);
                  values[4 * b + 2] = uniform_co(x2[b]);
                  values[4 * b + 3] = uniform_co(x3[b]);
                }
              });
}

}  // namespace pcmsim::core
