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

// The ten round keys of a 64-bit Philox key (Weyl sequence), computed once per call.
struct RoundKeys {
  std::uint32_t k0[10], k1[10];
  explicit RoundKeys(std::uint64_t key) {
    k0[0] = static_cast<std::uint32_t>(key);
    k1[0] = static_cast<std::uint32_t>(key >> 32);
    for (int round = 1; round < 10; ++round) {
      k0[round] = k0[round - 1] + kWeyl0;
      k1[round] = k1[round - 1] + kWeyl1;
    }
  }
};

#if defined(__AVX2__)
// 32x32 -> 64-bit products of 8 lanes (vpmuludq on the even and on the odd lanes).
inline void mulhilo8(__m256i a, __m256i m, __m256i& hi, __m256i& lo) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
}

// U independent sets of 8 blocks (block + 8u ..), their rounds interleaved: one set's ten
// rounds are a chain of dependent multiplies, so a lone set leaves the core idle waiting on
// latency.
template <int U>
inline void philox8x(const RoundKeys& keys, std::uint64_t block, std::uint32_t draw, __m256i* c0,
                     __m256i* c1, __m256i* c2, __m256i* c3) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMul0));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(kMul1));
  for (int u = 0; u < U; ++u) {
    const std::uint64_t first = block + 8 * static_cast<std::uint64_t>(u);
    c0[u] = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first))),
                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (static_cast<std::uint32_t>(first) > 0xFFFFFFFFu - 7u) {  // the low word wraps here
      alignas(32) std::uint32_t h[8];
      for (int i = 0; i < 8; ++i) h[i] = static_cast<std::uint32_t>((first + i) >> 32);
      c1[u] = _mm256_load_si256(reinterpret_cast<const __m256i*>(h));
    } else {
      c1[u] = _mm256_set1_epi32(static_cast<int>(static_cast<std::uint32_t>(first >> 32)));
    }
    c2[u] = _mm256_set1_epi32(static_cast<int>(draw));
    c3[u] = _mm256_setzero_si256();
  }
  for (int round = 0; round < 10; ++round) {
    const __m256i k0 = _mm256_set1_epi32(static_cast<int>(keys.k0[round]));
    const __m256i k1 = _mm256_set1_epi32(static_cast<int>(keys.k1[round]));
    for (int u = 0; u < U; ++u) {
      __m256i hi0, lo0, hi1, lo1;
      mulhilo8(c0[u], m0, hi0, lo0);
      mulhilo8(c2[u], m1, hi1, lo1);
      const __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[u]), k0);
      const __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[u]), k1);
      c1[u] = lo1;
      c3[u] = lo0;
      c0[u] = n0;
      c2[u] = n2;
    }
  }
}

// Philox4x32-10 of the 8 blocks block .. block+7, counter words (block_lo, block_hi, draw, 0);
// the same arithmetic as philox4x32(), one block per lane.
inline void philox8(const RoundKeys& keys, std::uint64_t block, std::uint32_t draw, __m256i& c0,
                    __m256i& c1, __m256i& c2, __m256i& c3) {
  philox8x<1>(keys, block, draw, &c0, &c1, &c2, &c3);
}
#endif

// Philox over `count` consecutive 64-bit block numbers starting at `first_block`, counter
// words (block_lo, block_hi, draw, 0). Results land in four lane arrays. All ten rounds of a
// block run back to back in registers; with AVX2, 8 blocks at a time (same arithmetic, same
// bits as the scalar rounds; GCC's auto-vectorisation of the round-major form was ~2x slower).
void philox_chunk(std::uint64_t key, std::uint32_t draw, std::uint64_t first_block,
                  std::size_t count, std::uint32_t* x0, std::uint32_t* x1, std::uint32_t* x2,
                  std::uint32_t* x3) {
  const RoundKeys keys(key);
  const std::uint32_t* k0 = keys.k0;
  const std::uint32_t* k1 = keys.k1;
  std::size_t b = 0;
#if defined(__AVX2__)
  for (; b + 8 <= count; b += 8) {
    const std::uint64_t block = first_block + b;
    __m256i c0, c1, c2, c3;
    philox8(keys, block, draw, c0, c1, c2, c3);
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

#if defined(__AVX2__)
// The AVX2 twins of fast_log and fast_sincos_2pi (core/fastmath.h): the same operations in
// the same order (no FMA), hence the same bits, 8 lanes at a time.
// N independent inputs at a time, every step interleaved across them: each polynomial is a
// chain of dependent multiplies and adds, so a lone chain waits on latency.
template <int N>
inline void log8n(const __m256* x, __m256* out) {
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 m[N], z[N], y[N], e[N];
  for (int n = 0; n < N; ++n) {
    const __m256i bits = _mm256_castps_si256(x[n]);
    __m256i exponent = _mm256_sub_epi32(
        _mm256_and_si256(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(0xff)),
        _mm256_set1_epi32(126));
    m[n] = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
    const __m256 below = _mm256_cmp_ps(m[n], _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
    exponent = _mm256_add_epi32(exponent, _mm256_castps_si256(below));  // -1 where below
    m[n] = _mm256_blendv_ps(_mm256_sub_ps(m[n], one), _mm256_sub_ps(_mm256_add_ps(m[n], m[n]), one),
                            below);
    e[n] = _mm256_cvtepi32_ps(exponent);
    z[n] = _mm256_mul_ps(m[n], m[n]);
    y[n] = _mm256_set1_ps(7.0376836292e-2f);
  }
  constexpr float kCoef[8] = {-1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f,
                              1.4249322787e-1f,  -1.6668057665e-1f, 2.0000714765e-1f,
                              -2.4999993993e-1f, 3.3333331174e-1f};
  for (int i = 0; i < 8; ++i) {
    // y*m - c for the negative coefficients, y*m + c for the positive ones: the same
    // operations (and bits) as the scalar fast_log.
    const __m256 c = _mm256_set1_ps(kCoef[i] < 0 ? -kCoef[i] : kCoef[i]);
    for (int n = 0; n < N; ++n)
      y[n] = kCoef[i] < 0 ? _mm256_sub_ps(_mm256_mul_ps(y[n], m[n]), c)
                          : _mm256_add_ps(_mm256_mul_ps(y[n], m[n]), c);
  }
  for (int n = 0; n < N; ++n) {
    y[n] = _mm256_mul_ps(_mm256_mul_ps(y[n], m[n]), z[n]);
    y[n] = _mm256_add_ps(y[n], _mm256_mul_ps(_mm256_set1_ps(-2.12194440e-4f), e[n]));
    y[n] = _mm256_add_ps(y[n], _mm256_mul_ps(_mm256_set1_ps(-0.5f), z[n]));
    out[n] = _mm256_add_ps(_mm256_add_ps(m[n], y[n]),
                           _mm256_mul_ps(_mm256_set1_ps(0.693359375f), e[n]));
  }
}

template <int N>
inline void sincos8n(const __m256* u, __m256* s, __m256* c) {
  __m256i quadrant[N];
  __m256 a[N], a2[N], sp[N], cp[N];
  for (int n = 0; n < N; ++n) {
    const __m256 v = _mm256_mul_ps(u[n], _mm256_set1_ps(4.0f));
    quadrant[n] = _mm256_cvttps_epi32(v);
    a[n] = _mm256_mul_ps(_mm256_sub_ps(v, _mm256_cvtepi32_ps(quadrant[n])),
                         _mm256_set1_ps(1.57079632679489662f));
    a2[n] = _mm256_mul_ps(a[n], a[n]);
    sp[n] = _mm256_set1_ps(-2.5052108385e-8f);
    cp[n] = _mm256_set1_ps(2.0876756988e-9f);
  }
  constexpr float kSin[4] = {2.7557319224e-6f, -1.9841269841e-4f, 8.3333333333e-3f,
                             -1.6666666667e-1f};
  constexpr float kCos[5] = {-2.7557319224e-7f, 2.4801587302e-5f, -1.3888888889e-3f,
                             4.1666666667e-2f, -0.5f};
  for (int i = 0; i < 5; ++i) {
    const __m256 cc = _mm256_set1_ps(kCos[i] < 0 ? -kCos[i] : kCos[i]);
    for (int n = 0; n < N; ++n)
      cp[n] = kCos[i] < 0 ? _mm256_sub_ps(_mm256_mul_ps(cp[n], a2[n]), cc)
                          : _mm256_add_ps(_mm256_mul_ps(cp[n], a2[n]), cc);
    if (i < 4) {
      const __m256 cs = _mm256_set1_ps(kSin[i] < 0 ? -kSin[i] : kSin[i]);
      for (int n = 0; n < N; ++n)
        sp[n] = kSin[i] < 0 ? _mm256_sub_ps(_mm256_mul_ps(sp[n], a2[n]), cs)
                            : _mm256_add_ps(_mm256_mul_ps(sp[n], a2[n]), cs);
    }
  }
  for (int n = 0; n < N; ++n) {
    const __m256 sin_a = _mm256_add_ps(a[n], _mm256_mul_ps(_mm256_mul_ps(a[n], a2[n]), sp[n]));
    const __m256 cos_a = _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_mul_ps(a2[n], cp[n]));
    // Quadrant q: odd swaps sin and cos; cos is negated for q in {1, 2}, sin for q in {2, 3}.
    const __m256 odd = _mm256_castsi256_ps(_mm256_slli_epi32(quadrant[n], 31));
    const __m256 c0 = _mm256_blendv_ps(cos_a, sin_a, odd);
    const __m256 s0 = _mm256_blendv_ps(sin_a, cos_a, odd);
    // sign of sin: bit 1 of q; sign of cos: bit 1 of (q + 1).
    const __m256i sign_sin = _mm256_slli_epi32(_mm256_srli_epi32(quadrant[n], 1), 31);
    const __m256i sign_cos = _mm256_slli_epi32(
        _mm256_srli_epi32(_mm256_add_epi32(quadrant[n], _mm256_set1_epi32(1)), 1), 31);
    c[n] = _mm256_xor_ps(c0, _mm256_castsi256_ps(sign_cos));
    s[n] = _mm256_xor_ps(s0, _mm256_castsi256_ps(sign_sin));
  }
}

// U groups of 8 blocks from `block`: 32 U normals to out (see normal_avx2).
template <int U>
inline void normal_groups(const RoundKeys& keys, std::uint32_t draw, std::uint64_t block,
                          float* out) {
  const __m256i mant = _mm256_set1_epi32(0x00ffffff);
  const __m256 scale = _mm256_set1_ps(0x1.0p-24f);
  const __m256 minus2 = _mm256_set1_ps(-2.0f);
  __m256i c0[U], c1[U], c2[U], c3[U];
  philox8x<U>(keys, block, draw, c0, c1, c2, c3);
  // uniform_oc of lanes 0 and 2, uniform_co of lanes 1 and 3 (24-bit, exact in float).
  __m256 u_oc[2 * U], u_co[2 * U], log_u[2 * U], sin_u[2 * U], cos_u[2 * U];
  for (int g = 0; g < U; ++g) {
    u_oc[2 * g] = _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(c0[g], 8), _mm256_set1_epi32(1))),
        scale);
    u_oc[2 * g + 1] = _mm256_mul_ps(
        _mm256_cvtepi32_ps(_mm256_add_epi32(_mm256_srli_epi32(c2[g], 8), _mm256_set1_epi32(1))),
        scale);
    u_co[2 * g] =
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(c1[g], 8), mant)), scale);
    u_co[2 * g + 1] =
        _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(c3[g], 8), mant)), scale);
  }
  log8n<2 * U>(u_oc, log_u);
  sincos8n<2 * U>(u_co, sin_u, cos_u);
  for (int g = 0; g < U; ++g) {
    const __m256 r01 = _mm256_sqrt_ps(_mm256_mul_ps(minus2, log_u[2 * g]));
    const __m256 r23 = _mm256_sqrt_ps(_mm256_mul_ps(minus2, log_u[2 * g + 1]));
    const __m256 s01 = sin_u[2 * g], c01 = cos_u[2 * g], s23 = sin_u[2 * g + 1],
                 c23 = cos_u[2 * g + 1];
    const __m256 a = _mm256_mul_ps(r01, c01), b = _mm256_mul_ps(r01, s01);
    const __m256 c = _mm256_mul_ps(r23, c23), d = _mm256_mul_ps(r23, s23);
    // 4x8 -> 8x4 transpose: out[4i..4i+3] = (a_i, b_i, c_i, d_i).
    const __m256 ab_lo = _mm256_unpacklo_ps(a, b), ab_hi = _mm256_unpackhi_ps(a, b);
    const __m256 cd_lo = _mm256_unpacklo_ps(c, d), cd_hi = _mm256_unpackhi_ps(c, d);
    const __m256 t0 = _mm256_castpd_ps(
        _mm256_unpacklo_pd(_mm256_castps_pd(ab_lo), _mm256_castps_pd(cd_lo)));  // 0 | 4
    const __m256 t1 = _mm256_castpd_ps(
        _mm256_unpackhi_pd(_mm256_castps_pd(ab_lo), _mm256_castps_pd(cd_lo)));  // 1 | 5
    const __m256 t2 = _mm256_castpd_ps(
        _mm256_unpacklo_pd(_mm256_castps_pd(ab_hi), _mm256_castps_pd(cd_hi)));  // 2 | 6
    const __m256 t3 = _mm256_castpd_ps(
        _mm256_unpackhi_pd(_mm256_castps_pd(ab_hi), _mm256_castps_pd(cd_hi)));  // 3 | 7
    float* o = out + 32 * g;
    _mm256_storeu_ps(o + 0, _mm256_permute2f128_ps(t0, t1, 0x20));
    _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(t2, t3, 0x20));
    _mm256_storeu_ps(o + 16, _mm256_permute2f128_ps(t0, t1, 0x31));
    _mm256_storeu_ps(o + 24, _mm256_permute2f128_ps(t2, t3, 0x31));
  }
}

// Philox and Box-Muller fused, in registers: `groups` x 8 blocks from `first_block`, 32
// normals per group written to out in element order (block-major, lane-minor), the same
// values as philox_chunk + box_muller_chunk.
void normal_avx2(std::uint64_t key, std::uint32_t draw, std::uint64_t first_block,
                 std::size_t groups, float* out) {
  const RoundKeys keys(key);
  std::size_t g = 0;
  for (; g + 4 <= groups; g += 4) normal_groups<4>(keys, draw, first_block + 8 * g, out + 32 * g);
  for (; g < groups; ++g) normal_groups<1>(keys, draw, first_block + 8 * g, out + 32 * g);
}
#endif

#if defined(__AVX2__) && defined(__GNUC__)
// The same kernel 16 lanes wide, for CPUs with AVX-512F (checked at run time): identical
// IEEE operations in the same order, so identical bits; the transpose reuses the AVX2 one
// on each 8-lane half.
#define PCMSIM_AVX512 __attribute__((target("avx512f")))
// GCC 12's avx512fintrin.h trips -Wmaybe-uninitialized on its own _mm512_undefined_epi32().
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
PCMSIM_AVX512 inline __m512 log16(__m512 x) {
  const __m512i bits = _mm512_castps_si512(x);
  __m512i exponent = _mm512_sub_epi32(
      _mm512_and_si512(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(0xff)),
      _mm512_set1_epi32(126));
  __m512 m = _mm512_castsi512_ps(_mm512_or_si512(
      _mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x3f000000)));
  const __mmask16 below = _mm512_cmp_ps_mask(m, _mm512_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
  exponent = _mm512_mask_sub_epi32(exponent, below, exponent, _mm512_set1_epi32(1));
  const __m512 one = _mm512_set1_ps(1.0f);
  m = _mm512_mask_blend_ps(below, _mm512_sub_ps(m, one), _mm512_sub_ps(_mm512_add_ps(m, m), one));
  const __m512 z = _mm512_mul_ps(m, m);
  __m512 y = _mm512_set1_ps(7.0376836292e-2f);
  y = _mm512_sub_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(1.1514610310e-1f));
  y = _mm512_add_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(1.1676998740e-1f));
  y = _mm512_sub_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(1.2420140846e-1f));
  y = _mm512_add_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(1.4249322787e-1f));
  y = _mm512_sub_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(1.6668057665e-1f));
  y = _mm512_add_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(2.0000714765e-1f));
  y = _mm512_sub_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(2.4999993993e-1f));
  y = _mm512_add_ps(_mm512_mul_ps(y, m), _mm512_set1_ps(3.3333331174e-1f));
  y = _mm512_mul_ps(_mm512_mul_ps(y, m), z);
  const __m512 e = _mm512_cvtepi32_ps(exponent);
  y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(-2.12194440e-4f), e));
  y = _mm512_add_ps(y, _mm512_mul_ps(_mm512_set1_ps(-0.5f), z));
  return _mm512_add_ps(_mm512_add_ps(m, y), _mm512_mul_ps(_mm512_set1_ps(0.693359375f), e));
}

PCMSIM_AVX512 inline void sincos16(__m512 u, __m512& s, __m512& c) {
  const __m512 v = _mm512_mul_ps(u, _mm512_set1_ps(4.0f));
  const __m512i quadrant = _mm512_cvttps_epi32(v);
  const __m512 a = _mm512_mul_ps(_mm512_sub_ps(v, _mm512_cvtepi32_ps(quadrant)),
                                 _mm512_set1_ps(1.57079632679489662f));
  const __m512 a2 = _mm512_mul_ps(a, a);
  __m512 sp = _mm512_set1_ps(-2.5052108385e-8f);
  sp = _mm512_add_ps(_mm512_mul_ps(sp, a2), _mm512_set1_ps(2.7557319224e-6f));
  sp = _mm512_sub_ps(_mm512_mul_ps(sp, a2), _mm512_set1_ps(1.9841269841e-4f));
  sp = _mm512_add_ps(_mm512_mul_ps(sp, a2), _mm512_set1_ps(8.3333333333e-3f));
  sp = _mm512_sub_ps(_mm512_mul_ps(sp, a2), _mm512_set1_ps(1.6666666667e-1f));
  const __m512 sin_a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_mul_ps(a, a2), sp));
  __m512 cp = _mm512_set1_ps(2.0876756988e-9f);
  cp = _mm512_sub_ps(_mm512_mul_ps(cp, a2), _mm512_set1_ps(2.7557319224e-7f));
  cp = _mm512_add_ps(_mm512_mul_ps(cp, a2), _mm512_set1_ps(2.4801587302e-5f));
  cp = _mm512_sub_ps(_mm512_mul_ps(cp, a2), _mm512_set1_ps(1.3888888889e-3f));
  cp = _mm512_add_ps(_mm512_mul_ps(cp, a2), _mm512_set1_ps(4.1666666667e-2f));
  cp = _mm512_sub_ps(_mm512_mul_ps(cp, a2), _mm512_set1_ps(0.5f));
  const __m512 cos_a = _mm512_add_ps(_mm512_set1_ps(1.0f), _mm512_mul_ps(a2, cp));
  const __mmask16 odd = _mm512_test_epi32_mask(quadrant, _mm512_set1_epi32(1));
  const __m512 c0 = _mm512_mask_blend_ps(odd, cos_a, sin_a);
  const __m512 s0 = _mm512_mask_blend_ps(odd, sin_a, cos_a);
  const __m512i sign_sin = _mm512_slli_epi32(_mm512_srli_epi32(quadrant, 1), 31);
  const __m512i sign_cos = _mm512_slli_epi32(
      _mm512_srli_epi32(_mm512_add_epi32(quadrant, _mm512_set1_epi32(1)), 1), 31);
  c = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(c0), sign_cos));
  s = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(s0), sign_sin));
}

// `groups` x 16 blocks from `first_block`: 64 normals per group into out.
PCMSIM_AVX512 void normal_avx512(std::uint64_t key, std::uint32_t draw,
                                 std::uint64_t first_block, std::size_t groups, float* out) {
  const RoundKeys keys(key);
  const std::uint32_t* k0 = keys.k0;
  const std::uint32_t* k1 = keys.k1;
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kMul0));
  const __m512i m1 = _mm512_set1_epi32(static_cast<int>(kMul1));
  const __m512i lane_lo = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
  const __m512i lane_hi = _mm512_setr_epi64(8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i pack =
      _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i draw_v = _mm512_set1_epi32(static_cast<int>(draw));
  const __m512 scale = _mm512_set1_ps(0x1.0p-24f);
  const __m512 minus2 = _mm512_set1_ps(-2.0f);
  const __m512i one = _mm512_set1_epi32(1);
  for (std::size_t g = 0; g < groups; ++g) {
    // Philox on 64-bit lanes (each counter word in the low half; the high half is don't-care,
    // as vpmuludq reads only the low half): one vpmuludq gives hi (>> 32) and lo (the low
    // half) without blends, and the 64-bit counter add carries into c1 by itself.
    const __m512i base = _mm512_set1_epi64(static_cast<long long>(first_block + 16 * g));
    __m512i a0 = _mm512_add_epi64(base, lane_lo), b0 = _mm512_add_epi64(base, lane_hi);
    __m512i a1 = _mm512_srli_epi64(a0, 32), b1 = _mm512_srli_epi64(b0, 32);
    __m512i a2 = draw_v, b2 = draw_v;
    __m512i a3 = _mm512_setzero_si512(), b3 = _mm512_setzero_si512();
    for (int round = 0; round < 10; ++round) {
      const __m512i key0 = _mm512_set1_epi32(static_cast<int>(k0[round]));
      const __m512i key1 = _mm512_set1_epi32(static_cast<int>(k1[round]));
      const __m512i pa0 = _mm512_mul_epu32(a0, m0), pa1 = _mm512_mul_epu32(a2, m1);
      const __m512i pb0 = _mm512_mul_epu32(b0, m0), pb1 = _mm512_mul_epu32(b2, m1);
      a0 = _mm512_ternarylogic_epi32(_mm512_srli_epi64(pa1, 32), a1, key0, 0x96);  // a^b^c
      a2 = _mm512_ternarylogic_epi32(_mm512_srli_epi64(pa0, 32), a3, key1, 0x96);
      b0 = _mm512_ternarylogic_epi32(_mm512_srli_epi64(pb1, 32), b1, key0, 0x96);
      b2 = _mm512_ternarylogic_epi32(_mm512_srli_epi64(pb0, 32), b3, key1, 0x96);
      a1 = pa1;
      a3 = pa0;
      b1 = pb1;
      b3 = pb0;
    }
    // Low halves of (a, b) -> 16 x 32-bit lanes, blocks in order.
    const __m512i c0 = _mm512_permutex2var_epi32(a0, pack, b0);
    const __m512i c1 = _mm512_permutex2var_epi32(a1, pack, b1);
    const __m512i c2 = _mm512_permutex2var_epi32(a2, pack, b2);
    const __m512i c3 = _mm512_permutex2var_epi32(a3, pack, b3);
    const __m512 u0 = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_srli_epi32(c0, 8), one)), scale);
    const __m512 u2 = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_srli_epi32(c2, 8), one)), scale);
    const __m512 u1 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(c1, 8)), scale);
    const __m512 u3 = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(c3, 8)), scale);
    const __m512 r01 = _mm512_sqrt_ps(_mm512_mul_ps(minus2, log16(u0)));
    const __m512 r23 = _mm512_sqrt_ps(_mm512_mul_ps(minus2, log16(u2)));
    __m512 s01, c01, s23, c23;
    sincos16(u1, s01, c01);
    sincos16(u3, s23, c23);
    const __m512 a = _mm512_mul_ps(r01, c01), b = _mm512_mul_ps(r01, s01);
    const __m512 c = _mm512_mul_ps(r23, c23), d = _mm512_mul_ps(r23, s23);
    // 4x16 -> 16x4 transpose: within 128-bit lanes t_k holds blocks (k, k+4, k+8, k+12);
    // then a 4x4 transpose of the 128-bit lanes.
    const __m512 ab_lo = _mm512_unpacklo_ps(a, b), ab_hi = _mm512_unpackhi_ps(a, b);
    const __m512 cd_lo = _mm512_unpacklo_ps(c, d), cd_hi = _mm512_unpackhi_ps(c, d);
    const __m512 t0 = _mm512_castpd_ps(
        _mm512_unpacklo_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
    const __m512 t1 = _mm512_castpd_ps(
        _mm512_unpackhi_pd(_mm512_castps_pd(ab_lo), _mm512_castps_pd(cd_lo)));
    const __m512 t2 = _mm512_castpd_ps(
        _mm512_unpacklo_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
    const __m512 t3 = _mm512_castpd_ps(
        _mm512_unpackhi_pd(_mm512_castps_pd(ab_hi), _mm512_castps_pd(cd_hi)));
    const __m512 u01 = _mm512_shuffle_f32x4(t0, t1, 0x44);  // blocks 0 4 1 5
    const __m512 u23 = _mm512_shuffle_f32x4(t2, t3, 0x44);  // 2 6 3 7
    const __m512 v01 = _mm512_shuffle_f32x4(t0, t1, 0xEE);  // 8 12 9 13
    const __m512 v23 = _mm512_shuffle_f32x4(t2, t3, 0xEE);  // 10 14 11 15
    float* o = out + 64 * g;
    _mm512_storeu_ps(o + 0, _mm512_shuffle_f32x4(u01, u23, 0x88));   // 0 1 2 3
    _mm512_storeu_ps(o + 16, _mm512_shuffle_f32x4(u01, u23, 0xDD));  // 4 5 6 7
    _mm512_storeu_ps(o + 32, _mm512_shuffle_f32x4(v01, v23, 0x88));  // 8 9 10 11
    _mm512_storeu_ps(o + 48, _mm512_shuffle_f32x4(v01, v23, 0xDD));  // 12 13 14 15
  }
}
#pragma GCC diagnostic pop
#undef PCMSIM_AVX512

bool cpu_has_avx512f() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
#endif

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
#if defined(__AVX2__)
  // Whole groups of 8 aligned blocks (32 elements) go through the fused AVX2 kernel straight
  // into `out`; the unaligned head and the tail take the generic path (same values).
  const std::uint64_t last_index = first_index + n;
  const std::uint64_t first_block = (first_index + 3) / 4;
  const std::uint64_t end_block = last_index / 4;
  if (end_block >= first_block + 8) {
    const std::uint64_t groups = (end_block - first_block) / 8;
    const std::uint64_t mid_first = first_block * 4;
    const std::uint64_t mid_last = mid_first + groups * 32;
    fill_blocks(key, draw, first_index, static_cast<std::size_t>(mid_first - first_index), out,
                box_muller_chunk);
    const std::uint64_t philox_key = key.philox_key();
    float* mid = out + (mid_first - first_index);
    std::uint64_t done = 0;  // groups of 8 blocks
#if defined(__GNUC__)
    if (cpu_has_avx512f()) {
      done = groups / 2 * 2;
      normal_avx512(philox_key, draw, first_block, static_cast<std::size_t>(done / 2), mid);
    }
#endif
    normal_avx2(philox_key, draw, first_block + 8 * done, static_cast<std::size_t>(groups - done),
                mid + 32 * done);
    fill_blocks(key, draw, mid_last, static_cast<std::size_t>(last_index - mid_last),
                out + (mid_last - first_index), box_muller_chunk);
    return;
  }
#endif
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
