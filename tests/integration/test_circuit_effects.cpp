// Circuit effects end to end (docs/ir-drop.md): wire resistance (SimulationConfig::ir_drop) and
// real ADCs (IoParams adc_*), on a small MLP (64 -> 48 -> 10) with ideal devices and converters
// off, so that the only difference from the FP32 logits is the effect under test. 32 x 32 tiles
// split both layers and keep each array's circuit small (a 256 x 256 one costs about a second).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "nets/forward.h"
#include "nets/simulation.h"
#include "tests/integration/ideal_config.h"

namespace pcmsim::nets {
namespace {

struct Fixture {
  Network net;
  MatrixF images;
  Fixture() {
    std::mt19937 rng(11);
    std::normal_distribution<float> nd(0.f, 1.f);
    net.name = "mlp_circuit";
    net.input_shape = {1, 8, 8};
    net.num_classes = 10;
    net.input_mean = {0.f};
    net.input_std = {1.f};
    net.layers.push_back(Layer::make("flat", LayerKind::flatten));
    net.layers.push_back(Layer::make_linear("fc1", 64, 48, Activation::relu));
    net.layers.push_back(Layer::make_linear("fc2", 48, 10));
    for (Layer& L : net.layers) {
      if (L.kind != LayerKind::linear) continue;
      L.weight.shape = {L.out_features, L.in_features};
      L.weight.data.resize(static_cast<std::size_t>(L.out_features * L.in_features));
      for (float& v : L.weight.data) v = nd(rng) / std::sqrt(float(L.in_features));
    }
    images.resize(48, 64);
    for (Index i = 0; i < images.size(); ++i) images.data()[i] = nd(rng);
  }
};

MatrixF chip_logits(const Fixture& f, const SimulationConfig& c, int trial = 0) {
  const ProgrammedChip chip(f.net, c, trial);
  const ConverterSetup converters(chip, c);
  ChipForward forward(chip, converters, chip.at(60.0));
  return logits(f.net, f.images, forward, 64);
}

double mean_abs_diff(const MatrixF& a, const MatrixF& b) {
  return (a - b).cwiseAbs().cast<double>().mean();
}

TEST(CircuitEffects, WireResistanceMovesTheLogitsMoreAsItGrows) {
  const Fixture f;
  Fp32Matmul fp32(f.net);
  const MatrixF ref = logits(f.net, f.images, fp32, 64);
  const double scale = ref.cwiseAbs().cast<double>().mean();
  double previous = -1;
  for (double r : {0.0, 0.5, 2.0, 8.0}) {
    SimulationConfig c = ideal_config(32, 32, 5);
    c.ir_drop.r_row = r;
    c.ir_drop.r_col = r;
    const double d = mean_abs_diff(chip_logits(f, c), ref) / scale;
    if (r == 0) {
      EXPECT_LT(d, 1e-5);  // the float product up to rounding (IdealEqualsFp32 proves more)
    } else {
      // IR drop lowers every effective conductance: a systematic, growing error.
      EXPECT_GT(d, 1.5 * previous) << "r = " << r;
    }
    previous = d;
  }
}

TEST(CircuitEffects, WireResistanceIsPartOfTheChip) {
  const Fixture f;
  SimulationConfig c = ideal_config(32, 32, 5);
  c.ir_drop.r_row = 1.0;
  const ProgrammedChip programmed(f.net, c, 0);
  SimulationConfig other = c;
  other.ir_drop.r_row = 2.0;
  try {
    ConverterSetup shared(programmed, other);
    ADD_FAILURE() << "a configuration with other wires used another chip's programming";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("r_row"), std::string::npos) << e.what();
  }
  // A converter-side change shares the programming, and the snapshot with its effective matrices
  // gives the same logits as a chip built from scratch.
  SimulationConfig conv = c;
  conv.io.p_out = 8;
  conv.io.out_bound = 20.0;
  const ChipSnapshot snapshot = programmed.at(60.0);
  const ConverterSetup plain(programmed, c), converters(programmed, conv);
  ChipForward first(programmed, plain, snapshot), second(programmed, converters, snapshot);
  EXPECT_EQ(logits(f.net, f.images, first, 64), chip_logits(f, c));
  EXPECT_EQ(logits(f.net, f.images, second, 64), chip_logits(f, conv));
}

TEST(CircuitEffects, AdcErrorsAreDrawnPerChipAndReproducible) {
  const Fixture f;
  SimulationConfig c = ideal_config(32, 32, 5);
  c.io.out_bound = 100.0;
  const MatrixF ideal = chip_logits(f, c);
  c.io.adc_offset_std = 0.05;
  c.io.adc_gain_std = 0.05;
  c.io.adc_columns = 8;
  const MatrixF a = chip_logits(f, c, 0);
  EXPECT_GT(mean_abs_diff(a, ideal), 0.0);
  EXPECT_EQ(chip_logits(f, c, 0), a);            // same chip: same ADCs
  EXPECT_GT(mean_abs_diff(chip_logits(f, c, 1), a), 0.0);  // another chip: other ADCs
}

TEST(CircuitEffects, CalibratedRangesWorkWithAnAdcInl) {
  // The calibration measures the analog outputs through an ADC-off twin of each tile, which has
  // no full scale; the INL belongs to the real tile's calibrated ADCs and moves the logits.
  const Fixture f;
  SimulationConfig c = ideal_config(32, 32, 5);
  c.io.p_out = 8;
  c.io.out_bound = 10.0;
  c.calibrate = true;
  auto logits_of = [&](const SimulationConfig& cfg) {
    const ProgrammedChip chip(f.net, cfg, 0);
    const ConverterSetup converters(chip, cfg, &f.images);
    ChipForward forward(chip, converters, chip.at(60.0));
    return logits(f.net, f.images, forward, 64);
  };
  const MatrixF plain = logits_of(c);
  c.io.adc_inl = 0.2;
  const MatrixF bowed = logits_of(c);
  EXPECT_GT(mean_abs_diff(bowed, plain), 1e-3);
}

}  // namespace
}  // namespace pcmsim::nets
