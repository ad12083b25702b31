#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/conductance_block.h"
#include "core/rng.h"
#include "devices/ideal_model.h"
#include "devices/pcm_model.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"
#include "tests/unit/devices/devices_test_util.h"

using namespace pcmsim;
using devices::CellKind;
using devices::ProgrammedBlock;
using devices::UnitCellSpec;
using devices::WeightScaling;

using devices::test::expect_invalid;
using devices::test::random_weights;

namespace {

constexpr double kGMax = 25e-6;
constexpr double kOneDay = 86400.0;

std::vector<UnitCellSpec> all_specs() {
  std::vector<UnitCellSpec> specs;
  for (WeightScaling sc : {WeightScaling::block, WeightScaling::column}) {
    UnitCellSpec p;
    p.scaling = sc;
    specs.push_back(p);
    UnitCellSpec m = p;
    m.kind = CellKind::multi_pair;
    specs.push_back(m);
    m.significances = {1.0, 3.0, 9.5};
    m.readout = core::PlaneReadout::analog;
    specs.push_back(m);
    UnitCellSpec b = p;
    b.kind = CellKind::bit_sliced;
    specs.push_back(b);
    b.weight_bits = 6;
    b.slice_bits = 5;
    specs.push_back(b);
  }
  return specs;
}

std::shared_ptr<const devices::DeviceModel> noise_free_pcm() {
  devices::PcmParams p;
  p.prog_noise_scale = 0;
  p.drift_scale = 0;
  p.read_noise_scale = 0;
  return std::make_shared<devices::PcmModel>(p);
}

core::RngKey key(std::uint64_t seed, std::uint32_t sub = 0) {
  core::RngKey k;
  k.seed = seed;
  k.layer = 3;
  k.slice = 1;
  k.sub = sub;
  return k;
}

bool same_bits(const core::MatrixF& a, const core::MatrixF& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<std::size_t>(a.size())) == 0;
}

bool same_bits(const core::ConductanceBlock& a, const core::ConductanceBlock& b) {
  if (a.planes.size() != b.planes.size()) return false;
  for (std::size_t k = 0; k < a.planes.size(); ++k)
    if (!same_bits(a.planes[k].g_plus, b.planes[k].g_plus) ||
        !same_bits(a.planes[k].g_minus, b.planes[k].g_minus))
      return false;
  return true;
}

bool same_bits(const devices::DeviceArray& a, const devices::DeviceArray& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// Restores the OpenMP thread count after a test changes it.
struct ThreadCount {
  int saved = omp_get_max_threads();
  ~ThreadCount() { omp_set_num_threads(saved); }
};

}  // namespace

// Noise-free programming (ideal model, and the PCM model with all scales 0) reproduces the
// targets, and the read-back reproduces the weights the unit cell alone gives, at t = 0 and
// after a day, for every cell type and both scalings.
TEST(Programming, NoiseFreeRoundTripEveryCellType) {
  const core::MatrixF w = random_weights(70, 45, 3);
  const std::vector<std::shared_ptr<const devices::DeviceModel>> models = {
      std::make_shared<devices::IdealModel>(), noise_free_pcm()};
  for (const auto& model : models)
    for (const auto& spec : all_specs()) {
      SCOPED_TRACE(model->name() + " " + devices::to_string(spec.kind) + "/" +
                   devices::to_string(spec.scaling));
      const auto targets = devices::weights_to_targets(w, spec, model->g_max());
      const auto expected = devices::effective_weights(targets);
      const ProgrammedBlock prog = devices::program_block(targets, model, key(1));
      EXPECT_EQ(prog.num_devices(), 2 * targets.planes.size() * 70 * 45);
      for (double t : {0.0, 3600.0, kOneDay}) {
        const auto snap = devices::at_time(prog, t, key(1, 7));
        EXPECT_TRUE(same_bits(snap, targets)) << "t = " << t;
        EXPECT_EQ(snap.readout, targets.readout);
        EXPECT_EQ(snap.g_max, targets.g_max);
        ASSERT_EQ(snap.weight_scale.size(), targets.weight_scale.size());
        EXPECT_TRUE((snap.weight_scale.array() == targets.weight_scale.array()).all());
        for (std::size_t k = 0; k < snap.planes.size(); ++k)
          EXPECT_EQ(snap.planes[k].significance, targets.planes[k].significance);
        EXPECT_TRUE(same_bits(devices::effective_weights(snap), expected)) << "t = " << t;
      }
      // And those weights are the original ones up to float rounding (bit slices: half a step).
      const double wmax = w.cwiseAbs().maxCoeff();
      const double tol = spec.kind == CellKind::bit_sliced
                             ? 0.5 * wmax / (std::ldexp(1.0, spec.weight_bits - 1) - 1) * 1.0001
                             : 1e-6 * wmax;
      EXPECT_LE((expected - w).cwiseAbs().maxCoeff(), tol);
    }
}

// The same seed gives bit-identical programmed states and snapshots with 1 and 2 threads. The
// block (3 planes, 150 x 130 = 19500 devices per array) spans several work chunks.
TEST(Programming, BitIdenticalForAnyThreadCount) {
  ThreadCount restore;
  UnitCellSpec spec;
  spec.kind = CellKind::multi_pair;
  spec.num_pairs = 3;
  const auto targets = devices::weights_to_targets(random_weights(150, 130, 9), spec, kGMax);
  auto model = std::make_shared<devices::PcmModel>();
  omp_set_num_threads(1);
  const auto p1 = devices::program_block(targets, model, key(42));
  const auto s1 = devices::at_time(p1, kOneDay, key(42, 1));
  omp_set_num_threads(2);
  const auto p2 = devices::program_block(targets, model, key(42));
  const auto s2 = devices::at_time(p2, kOneDay, key(42, 1));
  EXPECT_TRUE(same_bits(p1.g_prog, p2.g_prog));
  EXPECT_TRUE(same_bits(p1.nu, p2.nu));
  EXPECT_TRUE(same_bits(p1.read_noise_q, p2.read_noise_q));
  EXPECT_TRUE(same_bits(s1, s2));
  // Not trivially equal: the noise is on (programming moved the devices off their targets).
  EXPECT_FALSE(same_bits(s1, targets));
  // A different seed gives a different chip.
  const auto p3 = devices::program_block(targets, model, key(43));
  EXPECT_FALSE(same_bits(p1.g_prog, p3.g_prog));
}

// Device (plane, sign, row, col) draws from element index ((2p + s) rows + i) cols + j of the
// programming-stage key: programming it alone through the model gives the same state.
TEST(Programming, DeviceNumberingIsFixed) {
  UnitCellSpec spec;
  spec.kind = CellKind::multi_pair;
  const core::Index rows = 130, cols = 140;  // 18200 per array: crosses a chunk boundary
  const auto targets = devices::weights_to_targets(random_weights(rows, cols, 4), spec, kGMax);
  auto model = std::make_shared<devices::PcmModel>();
  const auto prog = devices::program_block(targets, model, key(5));
  const core::RngKey program_key = key(5).with_stage(core::Stage::programming);
  const core::RngKey snapshot_key = key(5, 2).with_stage(core::Stage::snapshot);
  const auto snap = devices::at_time(prog, 3600.0, key(5, 2));
  struct Probe { std::size_t plane; int sign; core::Index row, col; };
  for (Probe p : {Probe{0, 0, 0, 0}, Probe{0, 1, 5, 7}, Probe{1, 0, 117, 3},
                  Probe{1, 1, rows - 1, cols - 1}, Probe{0, 0, 117, 4}}) {
    const auto& plane = targets.planes[p.plane];
    const float target = (p.sign == 0 ? plane.g_plus : plane.g_minus)(p.row, p.col);
    const std::uint64_t index = prog.device_index(p.plane, p.sign, p.row, p.col);
    EXPECT_EQ(index, ((2 * p.plane + p.sign) * rows + p.row) * cols + p.col);
    float g = 0, nu = 0, q = 0;
    model->program(&target, 1, program_key, index, devices::DeviceStateView{&g, &nu, &q});
    EXPECT_EQ(g, prog.g_prog[index]);
    EXPECT_EQ(nu, prog.nu[index]);
    EXPECT_EQ(q, prog.read_noise_q[index]);
    float g_t = 0;
    model->read(devices::ConstDeviceStateView{&g, &nu, &q}, 1, 3600.0, snapshot_key, index, &g_t);
    const auto& splane = snap.planes[p.plane];
    EXPECT_EQ(g_t, (p.sign == 0 ? splane.g_plus : splane.g_minus)(p.row, p.col));
  }
}

// t = 0 is the programmed state itself, bit for bit (no drift, no read noise).
TEST(Programming, SnapshotAtZeroIsProgrammedState) {
  UnitCellSpec spec;
  spec.kind = CellKind::bit_sliced;
  const auto targets = devices::weights_to_targets(random_weights(40, 30, 8), spec, kGMax);
  const auto prog = devices::program_block(targets, std::make_shared<devices::PcmModel>(), key(6));
  const auto snap = devices::at_time(prog, 0.0, key(6, 3));
  for (std::size_t k = 0; k < snap.planes.size(); ++k)
    for (int s = 0; s < 2; ++s) {
      const auto& m = s == 0 ? snap.planes[k].g_plus : snap.planes[k].g_minus;
      EXPECT_EQ(std::memcmp(m.data(), prog.g_prog.data() + prog.device_index(k, s, 0, 0),
                            sizeof(float) * static_cast<std::size_t>(m.size())),
                0);
    }
  EXPECT_FALSE(same_bits(snap, targets));  // programming noise is there
}

// Snapshots of one programmed chip with different keys share the drift (same programmed
// state and exponents) and differ only by their read-noise draw; the same key repeats exactly.
TEST(Programming, SnapshotKeysChangeOnlyReadNoise) {
  const auto targets =
      devices::weights_to_targets(random_weights(60, 50, 10), UnitCellSpec{}, kGMax);
  devices::PcmParams no_read;
  no_read.read_noise_scale = 0;
  const auto prog = devices::program_block(targets, std::make_shared<devices::PcmModel>(), key(7));
  const auto drift_only =
      devices::program_block(targets, std::make_shared<devices::PcmModel>(no_read), key(7));
  EXPECT_TRUE(same_bits(prog.g_prog, drift_only.g_prog));  // same chip
  EXPECT_TRUE(same_bits(prog.nu, drift_only.nu));

  const auto a = devices::at_time(prog, kOneDay, key(7, 1));
  const auto a_again = devices::at_time(prog, kOneDay, key(7, 1));
  const auto b = devices::at_time(prog, kOneDay, key(7, 2));
  EXPECT_TRUE(same_bits(a, a_again));
  const auto da = devices::at_time(drift_only, kOneDay, key(7, 1));
  const auto db = devices::at_time(drift_only, kOneDay, key(7, 2));
  EXPECT_TRUE(same_bits(da, db));  // the read-noise-free (drift) part is key-independent

  // Each snapshot = drift part + |g_d| Q_s f(t) xi: recover xi and check the two keys give
  // different, plausible draws (|xi| < 6 for all 6000 devices: P(fail) ~ 1e-5).
  const double time_factor = devices::read_noise_time_factor(kOneDay, 20.0, 250e-9);
  int differ = 0, compared = 0;
  for (int s = 0; s < 2; ++s) {
    const auto& ga = s == 0 ? a.planes[0].g_plus : a.planes[0].g_minus;
    const auto& gb = s == 0 ? b.planes[0].g_plus : b.planes[0].g_minus;
    const auto& gd = s == 0 ? da.planes[0].g_plus : da.planes[0].g_minus;
    for (core::Index i = 0; i < ga.rows(); ++i)
      for (core::Index j = 0; j < ga.cols(); ++j) {
        const std::uint64_t idx = prog.device_index(0, s, i, j);
        const double sigma = std::fabs(gd(i, j)) * prog.read_noise_q[idx] * time_factor;
        if (!(sigma > 0) || ga(i, j) == 0.0f || gb(i, j) == 0.0f) continue;  // clipped at 0
        ++compared;
        EXPECT_LT(std::fabs(ga(i, j) - gd(i, j)) / sigma, 6.0);
        EXPECT_LT(std::fabs(gb(i, j) - gd(i, j)) / sigma, 6.0);
        differ += ga(i, j) != gb(i, j);
      }
  }
  EXPECT_GT(compared, 3000);  // of 6000; the rest are off devices clipped at 0 in a snapshot
  EXPECT_EQ(differ, compared);
}

// The caller's key stage is replaced by programming / snapshot: one key passed to both still
// gives independent streams, and the result does not depend on the stage the caller named.
TEST(Programming, KeyStageIsSetByTheStage) {
  const auto targets =
      devices::weights_to_targets(random_weights(20, 20, 12), UnitCellSpec{}, kGMax);
  auto model = std::make_shared<devices::PcmModel>();
  const auto p_user = devices::program_block(targets, model, key(8));
  const auto p_prog =
      devices::program_block(targets, model, key(8).with_stage(core::Stage::programming));
  const auto p_snap =
      devices::program_block(targets, model, key(8).with_stage(core::Stage::snapshot));
  EXPECT_TRUE(same_bits(p_user.g_prog, p_prog.g_prog));
  EXPECT_TRUE(same_bits(p_user.g_prog, p_snap.g_prog));
}

// The overload writing into an existing block reuses its buffers and gives the same bits.
TEST(Programming, SnapshotIntoExistingBlockReusesBuffers) {
  UnitCellSpec spec;
  spec.kind = CellKind::multi_pair;
  const auto targets = devices::weights_to_targets(random_weights(33, 17, 13), spec, kGMax);
  const auto prog = devices::program_block(targets, std::make_shared<devices::PcmModel>(), key(9));
  core::ConductanceBlock out;
  devices::at_time(prog, 3600.0, key(9, 1), out);
  const float* data0 = out.planes[0].g_plus.data();
  const float* data1 = out.planes[1].g_minus.data();
  devices::at_time(prog, kOneDay, key(9, 2), out);
  EXPECT_EQ(out.planes[0].g_plus.data(), data0);
  EXPECT_EQ(out.planes[1].g_minus.data(), data1);
  EXPECT_TRUE(same_bits(out, devices::at_time(prog, kOneDay, key(9, 2))));

  // A block of another shape is reshaped.
  core::ConductanceBlock other = devices::weights_to_targets(random_weights(5, 4, 1),
                                                             UnitCellSpec{}, kGMax);
  devices::at_time(prog, kOneDay, key(9, 2), other);
  EXPECT_TRUE(same_bits(other, out));
  EXPECT_EQ(other.planes.size(), 2u);

  // Re-programming into an existing ProgrammedBlock gives the same chip as a fresh one.
  ProgrammedBlock reused = devices::program_block(
      devices::weights_to_targets(random_weights(7, 7, 2), UnitCellSpec{}, kGMax),
      std::make_shared<devices::IdealModel>(), key(1));
  devices::program_block(targets, std::make_shared<devices::PcmModel>(), key(9), reused);
  EXPECT_TRUE(same_bits(reused.g_prog, prog.g_prog));
  EXPECT_TRUE(same_bits(reused.nu, prog.nu));
  EXPECT_EQ(reused.model->name(), "pcm");
}

TEST(Programming, RejectsBadInput) {
  const auto targets =
      devices::weights_to_targets(random_weights(10, 8, 14), UnitCellSpec{}, kGMax);
  auto model = std::make_shared<devices::PcmModel>();
  expect_invalid([&] { devices::program_block(targets, nullptr, key(1)); }, {"model is null"});
  {
    auto t = targets;
    t.weight_scale.resize(2);
    expect_invalid([&] { devices::program_block(t, model, key(1)); },
                   {"program_block", "weight_scale has 2 entries"});
  }
  {
    // A block mapped onto 30 uS does not fit a 25 uS device.
    const auto t = devices::weights_to_targets(random_weights(10, 8, 14), UnitCellSpec{}, 30e-6);
    expect_invalid([&] { devices::program_block(t, model, key(1)); }, {"g_max = 3e-05"});
  }
  {
    // A target out of the model's range, thrown inside the parallel loop, reaches the caller
    // and names the device index: (plane 0, G-, row 9, col 7) = (1 * 10 + 9) * 8 + 7 = 159.
    auto t = targets;
    t.planes[0].g_minus(9, 7) = 26e-6f;
    expect_invalid([&] { devices::program_block(t, model, key(1)); }, {"g_target[159]", "25.99"});
    t.planes[0].g_minus(9, 7) = std::numeric_limits<float>::quiet_NaN();
    expect_invalid([&] { devices::program_block(t, model, key(1)); }, {"g_target[159]", "nan"});
  }
  const auto prog = devices::program_block(targets, model, key(1));
  expect_invalid([&] { devices::at_time(prog, -1.0, key(1)); }, {"t_inference = -1"});
  expect_invalid([&] { devices::at_time(prog, std::numeric_limits<double>::quiet_NaN(), key(1)); },
                 {"t_inference = nan"});
  expect_invalid(
      [&] { devices::at_time(prog, std::numeric_limits<double>::infinity(), key(1)); },
      {"t_inference = inf"});
  expect_invalid([&] { devices::at_time(ProgrammedBlock{}, 1.0, key(1)); }, {"no device model"});
  {
    auto broken = prog;
    broken.nu.resize(3);
    expect_invalid([&] { devices::at_time(broken, 1.0, key(1)); }, {"device arrays"});
  }
}
