// Stored tile outputs (tests/data/tile_golden.bin): every speed change must leave the bits of
// Tile::forward unchanged. The file holds, for a list of fixed cases (tile shapes, converters,
// noise kinds, bit-slicing, bit-serial inputs, bound management), every read, the input scales
// and the bound-management rounds of one forward, with the GEMM engine that produced them
// (core::gemm_engine()). On the same engine the comparison is exact; on another (OpenBLAS picks
// its kernels by CPU, so another CPU or the Eigen fallback rounds the products differently) a
// value may move by float rounding or, at an ADC tie, by one ADC step, in a few elements only.
//
// Rewrite the file after an intended change of results (never for a speed change):
//   PCMSIM_WRITE_GOLDEN=tests/data/tile_golden.bin build/bin/test_unit_core \
//       --gtest_filter='TileGolden.*'
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "core/gemm.h"
#include "core/tile.h"
#include "tests/unit/core/test_tile_util.h"

using namespace pcmsim::core;
using namespace pcmsim::test;

namespace {

struct GoldenCase {
  std::string name;
  Index rows, cols, batch;
  int planes;
  PlaneReadout readout;
  IoParams io;
};

std::vector<GoldenCase> golden_cases() {
  std::vector<GoldenCase> list;
  const auto D = PlaneReadout::digital, A = PlaneReadout::analog;
  auto add = [&](std::string name, Index r, Index c, Index b, int planes, PlaneReadout ro,
                 auto tweak) {
    GoldenCase k{name, r, c, b, planes, ro, IoParams{}};
    tweak(k.io);
    list.push_back(k);
  };
  add("defaults_256", 256, 24, 150, 1, D, [](IoParams&) {});
  add("defaults_batch1", 256, 24, 1, 1, D, [](IoParams&) {});
  add("converters_off", 256, 24, 40, 1, D, [](IoParams& io) { io = ideal_io(); });
  add("odd_shape", 77, 19, 131, 1, D, [](IoParams&) {});
  add("pcm_like_read_noise", 256, 24, 40, 1, D, [](IoParams& io) {
    io.read_noise = ReadNoise::pcm_like; io.w_noise = 0.02; });
  add("additive_read_noise", 128, 24, 40, 1, D, [](IoParams& io) {
    io.read_noise = ReadNoise::additive; io.w_noise = 0.02; });
  add("bm_iterative_clipping", 256, 24, 140, 1, D, [](IoParams& io) {
    io.out_bound = 2.0; io.bound_management = BoundManagement::iterative; });
  add("bit_sliced_2x4bit_bit_serial", 256, 24, 40, 2, D, [](IoParams& io) { io.b_in = 1; });
  add("bit_sliced_4x2bit", 256, 24, 40, 4, D, [](IoParams&) {});
  add("analog_planes_stochastic", 256, 24, 40, 3, A, [](IoParams& io) {
    io.rounding = Rounding::stochastic; io.in_noise = 0.01; });
  add("bit_serial_2bit_p6", 200, 24, 40, 1, D, [](IoParams& io) { io.p_in = 6; io.b_in = 2; });
  return list;
}

RngKey golden_key(std::uint64_t seed) {
  RngKey k;
  k.seed = seed;
  k.stage = Stage::tile_forward;
  k.layer = 2;
  k.slice = 5;
  return k;
}

// One case's outputs as floats: reads, then input scales, then bm rounds (as floats).
std::vector<float> golden_outputs(const GoldenCase& c, std::uint32_t seed) {
  const auto block = random_block(c.rows, c.cols, c.planes, seed, c.readout);
  const MatrixF x = random_input(c.batch, c.rows, seed + 1000, -1.0f, 1.0f);
  Tile tile(block, c.io);
  TileReadout out;
  tile.forward(x, golden_key(seed), out);
  std::vector<float> v;
  for (const auto& r : out.reads) v.insert(v.end(), r.data(), r.data() + r.size());
  v.insert(v.end(), out.input_scale.data(), out.input_scale.data() + out.input_scale.size());
  for (auto b : out.bm_rounds) v.push_back(float(b));
  return v;
}

std::string data_path() {
  const char* dir = std::getenv("PCMSIM_TEST_DATA");
  return std::string(dir ? dir : "tests/data") + "/tile_golden.bin";
}

// Format: "PCMSIMG1", engine (u32 length + chars), case count (u32), per case: name (u32 length
// + chars), value count (u32), float32 values; little-endian.
void put_string(std::ofstream& f, const std::string& s) {
  const auto n = static_cast<std::uint32_t>(s.size());
  f.write(reinterpret_cast<const char*>(&n), 4);
  f.write(s.data(), n);
}
bool get_string(std::ifstream& f, std::string& s) {
  std::uint32_t n = 0;
  if (!f.read(reinterpret_cast<char*>(&n), 4) || n > 4096) return false;
  s.resize(n);
  return static_cast<bool>(f.read(&s[0], n));
}

}  // namespace

TEST(TileGolden, ForwardOutputsEqualTheStoredBits) {
  const auto cases = golden_cases();
  std::vector<std::vector<float>> now;
  std::uint32_t seed = 7000;
  for (const auto& c : cases) now.push_back(golden_outputs(c, ++seed));

  if (const char* out_path = std::getenv("PCMSIM_WRITE_GOLDEN")) {
    std::ofstream f(out_path, std::ios::binary);
    ASSERT_TRUE(f) << out_path;
    f.write("PCMSIMG1", 8);
    put_string(f, gemm_engine());
    const auto n = static_cast<std::uint32_t>(cases.size());
    f.write(reinterpret_cast<const char*>(&n), 4);
    for (std::size_t i = 0; i < cases.size(); ++i) {
      put_string(f, cases[i].name);
      const auto m = static_cast<std::uint32_t>(now[i].size());
      f.write(reinterpret_cast<const char*>(&m), 4);
      f.write(reinterpret_cast<const char*>(now[i].data()), 4 * m);
    }
    GTEST_SKIP() << "wrote " << out_path;
  }

  std::ifstream f(data_path(), std::ios::binary);
  ASSERT_TRUE(f) << data_path();
  char magic[8];
  ASSERT_TRUE(f.read(magic, 8));
  ASSERT_EQ(std::string(magic, 8), "PCMSIMG1");
  std::string engine;
  ASSERT_TRUE(get_string(f, engine));
  const bool same_engine = engine == gemm_engine();
  if (!same_engine)
    std::cout << "[ note ] stored outputs from GEMM engine '" << engine << "', this build uses '"
              << gemm_engine() << "': comparing within float rounding and rare ADC flips\n";
  std::uint32_t n = 0;
  ASSERT_TRUE(f.read(reinterpret_cast<char*>(&n), 4));
  ASSERT_EQ(n, cases.size());
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::string name;
    ASSERT_TRUE(get_string(f, name));
    ASSERT_EQ(name, cases[i].name);
    SCOPED_TRACE(name);
    std::uint32_t m = 0;
    ASSERT_TRUE(f.read(reinterpret_cast<char*>(&m), 4));
    ASSERT_EQ(m, now[i].size());
    std::vector<float> stored(m);
    ASSERT_TRUE(f.read(reinterpret_cast<char*>(stored.data()), 4 * std::streamsize(m)));
    if (same_engine) {
      std::size_t differ = 0, first = m;
      for (std::size_t k = 0; k < m; ++k)
        if (std::memcmp(&stored[k], &now[i][k], 4) != 0 && differ++ == 0) first = k;
      EXPECT_EQ(differ, 0u) << "first at " << first << ": stored " << stored[first] << ", now "
                            << now[i][first];
    } else {
      // Another engine: within 1e-5 of the value's magnitude (plus an absolute 1e-6), or one ADC
      // step (<= 2 * out_bound / 2^(p_out-1) normalised units ~ 0.08 at 8 bits); flips rare.
      std::size_t flips = 0;
      for (std::size_t k = 0; k < m; ++k) {
        const double d = std::fabs(double(stored[k]) - now[i][k]);
        if (d <= 1e-5 * std::fabs(stored[k]) + 1e-6) continue;
        ++flips;
        EXPECT_LE(d, 0.2) << k;
      }
      EXPECT_LE(flips, 2 + m / 200) << flips << " of " << m;
    }
  }
}
