#include "core/rng.h"

#include <algorithm>
#if defined(__AVX2__)
#include <immintrin.h>
#endif
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

#if defined(__AVX2__)
// 32x32 -> 64-bit products of 8 lanes (vpmuludq on the even and on the odd lanes).
inline void mulhilo8(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}
#endif

// Philox over `count` consecutive 64-bit block numbers starting at `first_block`, counter
// words (block_lo, block_hi, draw, 0). Results land in four lane arrays. All ten rounds of a
// block run back to back in registers; with AVX2, 8 blocks at a time (same arithmetic, same
// bits as the scalar rounds; GCC's auto-vectorisation of the round-major form was ~2x slower).
void philox_chunk(std::uint64_t key, std::uint32_t draw, std::uint64_t first_block,
                  std::size_t count, std::uint32_t* x0, std::uint32_t* x1, std::uint32_t* x2,
                  std::uint32_t* x3) {
  std::uint32_t k0[10], k1[10];
  k0[0] = static_cast<std::uint32_t>(key);
  k1[0] = static_cast<std::uint32_t>(key >> 32);
  for (int round = 1; round < 10; ++round) {
    k0[round] = k0[round - 1] + kWeyl0;
    k1[round] = k1[round - 1] + kWeyl1;
  }
  std::size_t b = 0;
#if defined(__AVX2__)
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMul0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kMul1));
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (; b + 8 <= count; b += 8) {
    const std::uint64_t block = first_block + b;
    __m256i c0 = _mm256_add_epi32(
        _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(block))), lane);
    __m256i c1;
    if (static_cast<std::uint32_t>(block) > 0xFFFFFFFFu - 7u) {  // the low word wraps here
      alignas(32) std::uint32_t h[8];
      for (int i = 0; i < 8; ++i) h[i] = static_cast<std::uint32_t>((block + i) >> 32);
      c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(h));
    } else {
      c1 = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(block >> 32)));
    }
    __m256i c2 = _mm256_set1_epi32(static_cast<int>(draw));
    __m256i c3 = _mm256_setzero_si256();
    for (int round = 0; round < 10; ++round) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo8(c0, m0, hi0, lo0);
      mulhilo8(c2, m1, hi1, lo1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1),
                                          _mm256_set1_epi32(static_cast<int>(k0[round])));
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3),
                                          _mm256_set1_epi32(static_cast<int>(k1[round])));
      c1 = lo1;
      c3 = lo0;
      c0 = n0;
      c2 = n2;
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x0 + b), c0);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x1 + b), c1);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x2 + b), c2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x3 + b), c3);
  }
#endif
  for (; b < count; ++b) {
    const std::uint64_t block = first_block + b;
    std::uint32_t c0 = static_cast<std::uint32_t>(block);
    std::uint32_t c1 = static_cast<std::uint32_t>(block >> 32);
    std::uint32_t c2 = draw;
    std::uint32_t c3 = 0;
    for (int round = 0; round < 10; ++round) {
      const std::uint64_t p0 = static_cast<std::uint64_t>(kMul0) * c0;
      const std::uint64_t p1 = static_cast<std::uint64_t>(kMul1) * c2;
      const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1 ^ k0[round];
      const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3 ^ k1[round];
      c1 = static_cast<std::uint32_t>(p1);
      c3 = static_cast<std::uint32_t>(p0);
      c0 = n0;
      c2 = n2;
    }
    x0[b] = c0;
    x1[b] = c1;
    x2[b] = c2;
    x3[b] = c3;
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
