#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/conductance_block.h"
#include "devices/unit_cell.h"
#include "tests/unit/devices/devices_test_util.h"

using namespace pcmsim;
using devices::CellKind;
using devices::UnitCellSpec;
using devices::WeightScaling;

using devices::test::expect_invalid;
using devices::test::random_weights;

namespace {

constexpr double kGMax = 25e-6;

UnitCellSpec make_spec(CellKind kind, WeightScaling scaling) {
  UnitCellSpec s;
  s.kind = kind;
  s.scaling = scaling;
  return s;
}

// Every cell configuration the round-trip tests cover.
std::vector<UnitCellSpec> all_specs() {
  std::vector<UnitCellSpec> specs;
  for (WeightScaling sc : {WeightScaling::block, WeightScaling::column}) {
    specs.push_back(make_spec(CellKind::pair, sc));
    UnitCellSpec m = make_spec(CellKind::multi_pair, sc);  // 4 devices, F = {1, 2}
    specs.push_back(m);
    m.num_pairs = 3;
    m.significance_factor = 4.0;
    m.readout = core::PlaneReadout::analog;
    specs.push_back(m);
    m.significances = {1.0, 2.5, 7.0};
    specs.push_back(m);
    for (auto [wb, sb] : {std::pair{8, 2}, {8, 3}, {5, 4}, {4, 1}, {12, 4}}) {
      UnitCellSpec b = make_spec(CellKind::bit_sliced, sc);
      b.weight_bits = wb;
      b.slice_bits = sb;
      specs.push_back(b);
    }
  }
  return specs;
}

std::string describe(const UnitCellSpec& s) {
  return devices::to_string(s.kind) + "/" + devices::to_string(s.scaling) + " F=" +
         std::to_string(s.plane_significances().size()) + " planes, wb=" +
         std::to_string(s.weight_bits) + " sb=" + std::to_string(s.slice_bits);
}

// max|W| per column, or the block maximum broadcast.
std::vector<double> column_max(const core::MatrixF& w, WeightScaling sc) {
  std::vector<double> m(static_cast<std::size_t>(w.cols()), 0.0);
  for (core::Index j = 0; j < w.cols(); ++j) m[j] = w.col(j).cwiseAbs().maxCoeff();
  if (sc == WeightScaling::block) {
    const double all = w.cwiseAbs().maxCoeff();
    for (auto& v : m) v = all;
  }
  return m;
}

}  // namespace

TEST(UnitCellSpec, PlaneSignificances) {
  EXPECT_EQ(UnitCellSpec{}.plane_significances(), std::vector<double>{1.0});
  UnitCellSpec m = make_spec(CellKind::multi_pair, WeightScaling::block);
  EXPECT_EQ(m.plane_significances(), (std::vector<double>{1.0, 2.0}));
  m.num_pairs = 3;
  m.significance_factor = 4;
  EXPECT_EQ(m.plane_significances(), (std::vector<double>{1.0, 4.0, 16.0}));
  m.significances = {0.5, 3.0};
  EXPECT_EQ(m.plane_significances(), (std::vector<double>{0.5, 3.0}));
  UnitCellSpec b = make_spec(CellKind::bit_sliced, WeightScaling::block);
  // 8-bit signed: 7 magnitude bits in 2-bit slices -> 4 slices, the top one 1 bit.
  EXPECT_EQ(b.plane_significances(), (std::vector<double>{1.0, 4.0, 16.0, 64.0}));
  b.weight_bits = 9;
  b.slice_bits = 4;
  EXPECT_EQ(b.plane_significances(), (std::vector<double>{1.0, 16.0}));
  EXPECT_EQ(b.num_planes(), 2);
}

TEST(UnitCellSpec, ValidateRejectsBadValues) {
  UnitCellSpec m = make_spec(CellKind::multi_pair, WeightScaling::block);
  m.num_pairs = 0;
  expect_invalid([&] { m.validate(); }, {"UnitCellSpec", "num_pairs = 0"});
  m.num_pairs = 2;
  m.significance_factor = 1.0;
  expect_invalid([&] { m.validate(); }, {"significance_factor = 1"});
  m.significance_factor = std::numeric_limits<double>::quiet_NaN();
  expect_invalid([&] { m.validate(); }, {"significance_factor = nan"});
  m.significance_factor = 2;
  m.significances = {1.0, 1.0};
  expect_invalid([&] { m.validate(); }, {"significances[1] = 1", "lowest significance first"});
  m.significances = {-1.0, 1.0};
  expect_invalid([&] { m.validate(); }, {"significances[0] = -1"});
  m.significances = {1.0, std::numeric_limits<double>::infinity()};
  expect_invalid([&] { m.validate(); }, {"significances[1] = inf"});

  UnitCellSpec b = make_spec(CellKind::bit_sliced, WeightScaling::block);
  b.weight_bits = 1;
  expect_invalid([&] { b.validate(); }, {"weight_bits = 1"});
  b.weight_bits = 25;
  expect_invalid([&] { b.validate(); }, {"weight_bits = 25"});
  b.weight_bits = 8;
  b.slice_bits = 0;
  expect_invalid([&] { b.validate(); }, {"slice_bits = 0"});
  b.slice_bits = 8;
  expect_invalid([&] { b.validate(); }, {"slice_bits = 8"});
  b.slice_bits = 7;
  EXPECT_NO_THROW(b.validate());

  UnitCellSpec k;
  k.kind = static_cast<CellKind>(42);
  expect_invalid([&] { k.validate(); }, {"kind = 42"});
  UnitCellSpec s;
  s.scaling = static_cast<WeightScaling>(7);
  expect_invalid([&] { s.validate(); }, {"scaling = 7"});
}

TEST(UnitCellSpec, ParseNames) {
  for (CellKind k : {CellKind::pair, CellKind::multi_pair, CellKind::bit_sliced})
    EXPECT_EQ(devices::parse_cell_kind(devices::to_string(k)), k);
  EXPECT_EQ(devices::parse_weight_scaling("column"), WeightScaling::column);
  EXPECT_EQ(devices::parse_weight_scaling("block"), WeightScaling::block);
  EXPECT_EQ(devices::parse_weight_scaling("per_tile"), WeightScaling::block);
  EXPECT_EQ(devices::parse_weight_scaling("per_column"), WeightScaling::column);
  expect_invalid([] { devices::parse_cell_kind("triple"); }, {"'triple'"});
  expect_invalid([] { devices::parse_weight_scaling("row"); }, {"'row'"});
}

TEST(UnitCell, PairTargetsByHand) {
  core::MatrixF w(2, 2);
  w << 1.0f, -0.5f, 0.25f, 0.0f;
  auto b = devices::weights_to_targets(w, UnitCellSpec{}, kGMax);
  ASSERT_EQ(b.planes.size(), 1u);
  EXPECT_EQ(b.g_max, kGMax);
  EXPECT_EQ(b.planes[0].significance, 1.0);
  EXPECT_DOUBLE_EQ(b.weight_scale[0], kGMax);
  EXPECT_DOUBLE_EQ(b.weight_scale[1], kGMax);
  EXPECT_FLOAT_EQ(b.planes[0].g_plus(0, 0), 25e-6f);
  EXPECT_EQ(b.planes[0].g_minus(0, 0), 0.0f);
  EXPECT_EQ(b.planes[0].g_plus(0, 1), 0.0f);
  EXPECT_FLOAT_EQ(b.planes[0].g_minus(0, 1), 12.5e-6f);
  EXPECT_FLOAT_EQ(b.planes[0].g_plus(1, 0), 6.25e-6f);
  EXPECT_EQ(b.planes[0].g_plus(1, 1), 0.0f);
  EXPECT_EQ(b.planes[0].g_minus(1, 1), 0.0f);

  UnitCellSpec col;
  col.scaling = WeightScaling::column;
  auto c = devices::weights_to_targets(w, col, kGMax);
  EXPECT_DOUBLE_EQ(c.weight_scale[0], kGMax);
  EXPECT_DOUBLE_EQ(c.weight_scale[1], 2 * kGMax);  // column max 0.5 maps onto g_max
  EXPECT_FLOAT_EQ(c.planes[0].g_minus(0, 1), 25e-6f);
}

TEST(UnitCell, MultiPairFillsLowestSignificanceFirst) {
  // F = {1, 2}, g_max = 1 S, max|W| = 3 -> s = (1 + 2) * 1 / 3 = 1.
  core::MatrixF w(1, 5);
  w << 0.5f, 2.0f, 3.0f, -1.5f, 1.0f;
  UnitCellSpec m = make_spec(CellKind::multi_pair, WeightScaling::block);
  auto b = devices::weights_to_targets(w, m, 1.0);
  ASSERT_EQ(b.planes.size(), 2u);
  EXPECT_DOUBLE_EQ(b.weight_scale[0], 1.0);
  const auto& p0 = b.planes[0];
  const auto& p1 = b.planes[1];
  EXPECT_EQ(p0.significance, 1.0);
  EXPECT_EQ(p1.significance, 2.0);
  // 0.5: the low pair alone.
  EXPECT_EQ(p0.g_plus(0, 0), 0.5f);
  EXPECT_EQ(p1.g_plus(0, 0), 0.0f);
  // 2: low pair full (1), high pair takes (2 - 1)/2.
  EXPECT_EQ(p0.g_plus(0, 1), 1.0f);
  EXPECT_EQ(p1.g_plus(0, 1), 0.5f);
  // 3 = full scale: both full.
  EXPECT_EQ(p0.g_plus(0, 2), 1.0f);
  EXPECT_EQ(p1.g_plus(0, 2), 1.0f);
  // -1.5 on the minus devices: 1 + 2 * 0.25.
  EXPECT_EQ(p0.g_minus(0, 3), 1.0f);
  EXPECT_EQ(p1.g_minus(0, 3), 0.25f);
  EXPECT_EQ(p0.g_plus(0, 3), 0.0f);
  EXPECT_EQ(p1.g_plus(0, 3), 0.0f);
  // 1: exactly fills the low pair, nothing spills.
  EXPECT_EQ(p0.g_plus(0, 4), 1.0f);
  EXPECT_EQ(p1.g_plus(0, 4), 0.0f);
}

TEST(UnitCell, BitSlicedDigitsByHand) {
  // 5-bit signed: Q = 15 levels, 2-bit slices -> 2 slices, F = {1, 4}; max|W| = 15 so that
  // q = round(w) exactly.
  core::MatrixF w(1, 6);
  w << 15.0f, 6.0f, -7.0f, 0.5f, -0.5f, 1.49f;
  UnitCellSpec b = make_spec(CellKind::bit_sliced, WeightScaling::block);
  b.weight_bits = 5;
  b.slice_bits = 2;
  auto blk = devices::weights_to_targets(w, b, 3.0);  // g_max 3 S: one digit = 1 S
  ASSERT_EQ(blk.planes.size(), 2u);
  EXPECT_EQ(blk.planes[1].significance, 4.0);
  EXPECT_EQ(blk.readout, core::PlaneReadout::digital);
  // s = (g_max / 3) * Q / max|W| = 1 S per weight unit.
  EXPECT_DOUBLE_EQ(blk.weight_scale[0], 1.0);
  const auto& p0 = blk.planes[0];
  const auto& p1 = blk.planes[1];
  EXPECT_EQ(p0.g_plus(0, 0), 3.0f);  // 15 = 3 + 4*3
  EXPECT_EQ(p1.g_plus(0, 0), 3.0f);
  EXPECT_EQ(p0.g_plus(0, 1), 2.0f);  // 6 = 2 + 4*1
  EXPECT_EQ(p1.g_plus(0, 1), 1.0f);
  EXPECT_EQ(p0.g_minus(0, 2), 3.0f);  // -7 = -(3 + 4*1)
  EXPECT_EQ(p1.g_minus(0, 2), 1.0f);
  EXPECT_EQ(p0.g_plus(0, 2), 0.0f);
  EXPECT_EQ(p0.g_plus(0, 3), 1.0f);  // 0.5 rounds away from zero to 1
  EXPECT_EQ(p0.g_minus(0, 4), 1.0f);  // -0.5 to -1
  EXPECT_EQ(p0.g_plus(0, 5), 1.0f);  // 1.49 to 1
  auto back = devices::effective_weights(blk);
  EXPECT_EQ(back(0, 0), 15.0f);
  EXPECT_EQ(back(0, 1), 6.0f);
  EXPECT_EQ(back(0, 2), -7.0f);
  EXPECT_EQ(back(0, 3), 1.0f);
  EXPECT_EQ(back(0, 4), -1.0f);
  EXPECT_EQ(back(0, 5), 1.0f);

  // Exact ties of the scaled weight round away from zero: max|W| = 30, Q = 15, q = w / 2.
  core::MatrixF t(1, 4);
  t << 30.0f, 1.0f, -3.0f, 5.0f;
  auto tb = devices::effective_weights(devices::weights_to_targets(t, b, 3.0));
  EXPECT_FLOAT_EQ(tb(0, 1), 2.0f);   // q = 0.5 -> 1, read back 1 * 30 / 15
  EXPECT_FLOAT_EQ(tb(0, 2), -4.0f);  // q = -1.5 -> -2
  EXPECT_FLOAT_EQ(tb(0, 3), 6.0f);   // q = 2.5 -> 3
}

// weight -> targets -> effective weights is exact (to float rounding) for the analog pairs and
// within half a quantisation step for bit slices, for every cell type and both scalings.
TEST(UnitCell, RoundTripEveryCellType) {
  const core::MatrixF w = random_weights(37, 23, 11, 0.3f);
  for (const auto& spec : all_specs()) {
    SCOPED_TRACE(describe(spec));
    auto blk = devices::weights_to_targets(w, spec, kGMax);
    ASSERT_EQ(blk.planes.size(), spec.plane_significances().size());
    EXPECT_EQ(blk.readout, spec.readout);
    for (const auto& p : blk.planes) {
      EXPECT_GE(p.g_plus.minCoeff(), 0.0f);
      EXPECT_GE(p.g_minus.minCoeff(), 0.0f);
      EXPECT_LE(p.g_plus.maxCoeff(), static_cast<float>(kGMax));
      EXPECT_LE(p.g_minus.maxCoeff(), static_cast<float>(kGMax));
      // One device of each pair sits at 0.
      EXPECT_EQ(p.g_plus.cwiseProduct(p.g_minus).cwiseAbs().maxCoeff(), 0.0f);
    }
    const auto back = devices::effective_weights(blk);
    const auto wmax = column_max(w, spec.scaling);
    for (core::Index i = 0; i < w.rows(); ++i)
      for (core::Index j = 0; j < w.cols(); ++j) {
        double tol;
        if (spec.kind == CellKind::bit_sliced) {
          // Half a step of the weight grid, plus float rounding of the conductances.
          const double q_max = std::ldexp(1.0, spec.weight_bits - 1) - 1.0;
          tol = 0.5 * wmax[j] / q_max * (1 + 1e-5) + 4e-7 * wmax[j];
        } else {
          // Each plane's conductance carries one float rounding (2^-24 relative to g_max);
          // summed over planes that is below 2^-24 * max|W|, plus the float result's rounding.
          tol = 2 * std::ldexp(wmax[j], -24) + std::ldexp(std::fabs(w(i, j)), -24);
        }
        ASSERT_NEAR(back(i, j), w(i, j), tol) << "at (" << i << ", " << j << ")";
      }
    // The largest |w| maps onto the full range: some device reaches g_max.
    float top = 0;
    for (const auto& p : blk.planes) top = std::max({top, p.g_plus.maxCoeff(), p.g_minus.maxCoeff()});
    EXPECT_FLOAT_EQ(top, static_cast<float>(kGMax));
  }
}

// Weights on the quantisation grid survive bit slicing exactly (to float rounding).
TEST(UnitCell, BitSlicedExactOnGrid) {
  for (auto [wb, sb] : {std::pair{8, 2}, {8, 3}, {6, 5}, {12, 4}, {16, 3}}) {
    for (WeightScaling sc : {WeightScaling::block, WeightScaling::column}) {
      UnitCellSpec b = make_spec(CellKind::bit_sliced, sc);
      b.weight_bits = wb;
      b.slice_bits = sb;
      SCOPED_TRACE(describe(b));
      const int q_max = (1 << (wb - 1)) - 1;
      std::mt19937 gen(static_cast<unsigned>(wb * 100 + sb));
      std::uniform_int_distribution<int> level(-q_max, q_max);
      const core::Index rows = 20, cols = 9;
      core::MatrixF w(rows, cols);
      for (core::Index j = 0; j < cols; ++j) {
        // A different grid per column with column scaling, one grid with block scaling.
        const float step = sc == WeightScaling::column ? 0.01f * static_cast<float>(j + 1) : 0.01f;
        for (core::Index i = 0; i < rows; ++i)
          w(i, j) = step * static_cast<float>(level(gen));
        w(0, j) = step * static_cast<float>(q_max);  // the grid's end is max|W|
      }
      auto back = devices::effective_weights(devices::weights_to_targets(w, b, kGMax));
      for (core::Index i = 0; i < rows; ++i)
        for (core::Index j = 0; j < cols; ++j)
          ASSERT_NEAR(back(i, j), w(i, j), 4e-7 * std::fabs(w(0, j)) + 1e-12)
              << "at (" << i << ", " << j << ")";
    }
  }
}

// An all-zero block (or column) is defined as scale 1 S per weight unit, every device at 0.
TEST(UnitCell, AllZeroBlockAndColumn) {
  for (const auto& spec : all_specs()) {
    SCOPED_TRACE(describe(spec));
    core::MatrixF zero = core::MatrixF::Zero(4, 3);
    auto blk = devices::weights_to_targets(zero, spec, kGMax);
    for (core::Index j = 0; j < 3; ++j) EXPECT_EQ(blk.weight_scale[j], 1.0);
    for (const auto& p : blk.planes) {
      EXPECT_EQ(p.g_plus.cwiseAbs().maxCoeff(), 0.0f);
      EXPECT_EQ(p.g_minus.cwiseAbs().maxCoeff(), 0.0f);
    }
    EXPECT_EQ(devices::effective_weights(blk).cwiseAbs().maxCoeff(), 0.0f);

    core::MatrixF w = random_weights(4, 3, 5, 1.0f);
    w.col(1).setZero();
    auto cb = devices::weights_to_targets(w, spec, kGMax);
    if (spec.scaling == WeightScaling::column) {
      EXPECT_EQ(cb.weight_scale[1], 1.0);
    }
    auto back = devices::effective_weights(cb);
    for (core::Index i = 0; i < 4; ++i) EXPECT_EQ(back(i, 1), 0.0f);
  }
}

TEST(UnitCell, WeightsToTargetsRejectsBadInput) {
  core::MatrixF w = core::MatrixF::Constant(3, 4, 0.5f);
  w(1, 2) = std::numeric_limits<float>::quiet_NaN();
  expect_invalid([&] { devices::weights_to_targets(w, UnitCellSpec{}, kGMax); },
                 {"weights_to_targets", "weight (1, 2) = nan"});
  w(1, 2) = -std::numeric_limits<float>::infinity();
  expect_invalid([&] { devices::weights_to_targets(w, UnitCellSpec{}, kGMax); },
                 {"weight (1, 2) = -inf"});
  w(1, 2) = 0.f;
  expect_invalid([&] { devices::weights_to_targets(w, UnitCellSpec{}, -1.0); }, {"g_max = -1"});
  expect_invalid([&] { devices::weights_to_targets(w, UnitCellSpec{}, 0.0); }, {"g_max = 0"});
  expect_invalid(
      [&] {
        devices::weights_to_targets(w, UnitCellSpec{}, std::numeric_limits<double>::quiet_NaN());
      },
      {"g_max = nan"});
  core::MatrixF empty(0, 4);
  expect_invalid([&] { devices::weights_to_targets(empty, UnitCellSpec{}, kGMax); },
                 {"0x4", "must not be empty"});
  UnitCellSpec bad = make_spec(CellKind::bit_sliced, WeightScaling::block);
  bad.slice_bits = 0;
  expect_invalid([&] { devices::weights_to_targets(w, bad, kGMax); }, {"slice_bits = 0"});
}

TEST(UnitCell, EffectiveWeightsRejectsMalformedBlocks) {
  const core::MatrixF w = random_weights(3, 4, 1, 1.0f);
  const auto good = devices::weights_to_targets(w, UnitCellSpec{}, kGMax);
  {
    core::ConductanceBlock b;
    expect_invalid([&] { devices::effective_weights(b); }, {"no planes"});
  }
  {
    auto b = good;
    b.weight_scale.resize(3);
    expect_invalid([&] { devices::effective_weights(b); }, {"weight_scale has 3 entries"});
  }
  {
    auto b = good;
    b.weight_scale[2] = 0;
    expect_invalid([&] { devices::effective_weights(b); }, {"weight_scale[2] = 0"});
  }
  {
    auto b = good;
    b.planes.push_back(b.planes[0]);
    b.planes[1].g_minus.resize(2, 4);
    expect_invalid([&] { devices::effective_weights(b); }, {"plane 1", "expected 3x4"});
  }
  {
    auto b = good;
    b.planes[0].significance = -2;
    expect_invalid([&] { devices::effective_weights(b); }, {"significance = -2"});
  }
}

// A tile slice is passed as a view into the layer's weight matrix (no copy) and gives the same
// targets as a copy of the slice; a column-major matrix works too.
TEST(UnitCell, AcceptsSlicesOfALargerMatrix) {
  const core::MatrixF layer = random_weights(50, 40, 21, 0.5f);
  UnitCellSpec spec = make_spec(CellKind::multi_pair, WeightScaling::column);
  const core::MatrixF copy = layer.block(7, 11, 20, 13);
  const auto from_view = devices::weights_to_targets(layer.block(7, 11, 20, 13), spec, kGMax);
  const auto from_copy = devices::weights_to_targets(copy, spec, kGMax);
  const Eigen::MatrixXf col_major = copy;
  const auto from_col_major = devices::weights_to_targets(col_major, spec, kGMax);
  for (const auto* b : {&from_view, &from_col_major}) {
    ASSERT_EQ(b->planes.size(), from_copy.planes.size());
    for (std::size_t k = 0; k < b->planes.size(); ++k) {
      EXPECT_TRUE(b->planes[k].g_plus == from_copy.planes[k].g_plus);
      EXPECT_TRUE(b->planes[k].g_minus == from_copy.planes[k].g_minus);
    }
    EXPECT_TRUE(b->weight_scale == from_copy.weight_scale);
  }
}
