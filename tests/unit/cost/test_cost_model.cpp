// The cost model: published HERMES figures derived from the calibrated constants, the ADC
// energy law, ADC sharing, activity counts per layer, schedules, and bad input.
#include <gtest/gtest.h>

#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "cost/cost_model.h"
#include "cost/presets.h"
#include "mapping/mapping_plan.h"
#include "nets/cost_input.h"
#include "nets/simulation.h"

namespace pcmsim::cost {
namespace {

struct Hermes {
  nets::SimulationConfig config;
  CostParams params;
  Hermes() {
    const Preset& p = find_preset("hermes");
    apply_preset(p, config);
    apply_preset(p, params);
  }
};

// The acceptance: within 10 % of the published one-phase 8-bit figures of Le Gallo et
// al. 2023 (63.1 TOPS, 9.76 TOPS/W; about 13 nJ and 133 ns per 256 x 256 MVM).
TEST(CostHermes, PeakFiguresWithinTenPercentOfThePublishedOnes) {
  const Hermes h;
  EXPECT_EQ(h.config.chip.num_tiles, 64);
  const PeakFigures f = peak_figures(h.params, h.config.chip, h.config.io.p_in, h.config.io.p_out,
                                     h.config.io.b_in, h.config.io.adc_columns,
                                     h.config.cell.num_planes(), false, 0);
  EXPECT_EQ(f.cores, 64);
  EXPECT_NEAR(f.tops, 63.1, 0.1 * 63.1);
  EXPECT_NEAR(f.tops_per_w, 9.76, 0.1 * 9.76);
  EXPECT_NEAR(f.mvm_energy, 13e-9, 0.1 * 13e-9);
  EXPECT_NEAR(f.mvm_time, 133e-9, 0.1 * 133e-9);
  EXPECT_DOUBLE_EQ(f.ops, 2.0 * 256 * 256);
}

TEST(CostHermes, DefaultsAreTheHermesCalibration) {
  // The preset lists the cost constants explicitly; today they equal the defaults.
  // (Compared in text form: 0.594 mm2 read as 0.594 * 1e-6 m2 may differ from 0.594e-6 in the
  // last bit.)
  const Hermes h;
  for (const auto& s : core::settings<CostParams>())
    EXPECT_EQ(s.text(h.params), s.text(CostParams{})) << s.info.external_name();
}

TEST(CostAdc, EnergyGrowsAsFomTimesTwoToTheBitsAboveTheFloor) {
  CostParams p;
  p.adc_fom = 30e-15;
  p.adc_energy_floor = 0.27e-12;
  EXPECT_DOUBLE_EQ(p.adc_energy(8) / p.adc_energy(4), 16.0);  // 7.68 pJ / 0.48 pJ
  EXPECT_DOUBLE_EQ(p.adc_energy(8), 30e-15 * 256);
  EXPECT_DOUBLE_EQ(p.adc_energy(3), 0.27e-12);  // 0.24 pJ is below the floor
  EXPECT_THROW(p.adc_energy(0), std::invalid_argument);
}

// A one-layer network: linear 300 -> 100 (two row blocks on 256-row tiles).
nets::Network linear_net(Index in = 300, Index out = 100) {
  nets::Network net;
  net.name = "lin";
  net.input_shape = {1, 1, in};
  net.num_classes = out;
  net.input_mean = {0.f};
  net.input_std = {1.f};
  net.layers.push_back(nets::Layer::make(std::string("flat"), nets::LayerKind::flatten));
  auto fc = nets::Layer::make_linear("fc", in, out, nets::Activation::relu);
  fc.weight.shape = {out, in};
  fc.weight.data.assign(static_cast<std::size_t>(in * out), 0.01f);
  fc.bias.shape = {out};
  fc.bias.data.assign(static_cast<std::size_t>(out), 0.f);
  net.layers.push_back(fc);
  return net;
}

TEST(CostAdc, LayerAdcEnergyRatioEightToFourBitsIsSixteen) {
  const auto net = linear_net();
  nets::SimulationConfig c8, c4;
  c8.io.p_out = 8;
  c4.io.p_out = 4;
  const CostParams p;
  const auto r8 = nets::network_cost(net, c8, p), r4 = nets::network_cost(net, c4, p);
  EXPECT_NEAR(r8.layers[0].energy_adc / r4.layers[0].energy_adc, 16.0, 1e-12);
  // Nothing else in the analog part depends on the ADC bits.
  EXPECT_DOUBLE_EQ(r8.layers[0].energy_dac, r4.layers[0].energy_dac);
  EXPECT_DOUBLE_EQ(r8.layers[0].energy_array, r4.layers[0].energy_array);
}

TEST(CostAdc, HalvingTheAdcsDoublesTheConversionTime) {
  CostParams one, two;
  one.mvm_time = two.mvm_time = 0;
  EXPECT_EQ(adcs_per_tile(256, 1), 256);
  EXPECT_EQ(adcs_per_tile(256, 2), 128);  // 256 columns, 128 ADCs
  const double t_int = 127 * one.pwm_step_time;  // 8-bit PWM: 127 levels
  const ReadCost r1 = read_cost(one, 256, 256, 256, 1, 8, 8, 2);
  const ReadCost r2 = read_cost(two, 256, 256, 256, 2, 8, 8, 2);
  EXPECT_NEAR(r1.time - t_int, one.adc_time, 1e-18);
  EXPECT_NEAR(r2.time - t_int, 2 * (r1.time - t_int), 1e-18);
  EXPECT_DOUBLE_EQ(r1.energy(), r2.energy());  // as many conversions, only later
}

TEST(CostActivity, CountsFollowThePlanAndTheShapes) {
  const auto net = linear_net();  // 300 x 100 on 256 x 256 tiles: row blocks 256 + 44
  nets::SimulationConfig config;
  const CostParams p;
  const CostReport r = nets::network_cost(net, config, p);
  ASSERT_EQ(r.layers.size(), 1u);
  const LayerCost& c = r.layers[0];
  EXPECT_EQ(c.tiles, 2);
  EXPECT_DOUBLE_EQ(c.tile_reads, 2);
  EXPECT_DOUBLE_EQ(c.dac_conversions, 300);
  EXPECT_DOUBLE_EQ(c.adc_conversions, 200);
  EXPECT_DOUBLE_EQ(c.macs, 300.0 * 100);
  // De-scale and accumulate each ADC output, plus bias and ReLU per output.
  EXPECT_DOUBLE_EQ(c.digital_ops, 2 * 200 + 100 + 100);
  EXPECT_DOUBLE_EQ(c.bytes_moved, 300 + 200);  // 8-bit inputs and outputs
  EXPECT_DOUBLE_EQ(c.energy_adc, 200 * p.adc_energy(8));
  EXPECT_DOUBLE_EQ(c.energy_dac, 300 * p.dac_energy);
  EXPECT_DOUBLE_EQ(c.energy_periphery, 2 * p.mvm_energy);
  const double array = (300.0 * 100) * 2 * p.v_read * p.v_read * p.g_read_mean *
                       (127 * p.pwm_step_time) * p.input_activity;
  EXPECT_NEAR(c.energy_array, array, 1e-12 * array);
  EXPECT_NEAR(c.energy,
              c.energy_dac + c.energy_array + c.energy_adc + c.energy_periphery + c.energy_digital +
                  c.energy_movement,
              1e-12 * c.energy);
  EXPECT_DOUBLE_EQ(r.energy_per_inference, c.energy);
  // Two tiles read in parallel; the layer's time is one read plus its digital work.
  const ReadCost read = read_cost(p, 256, 100, 256, 1, 8, 8, 2);
  EXPECT_DOUBLE_EQ(c.latency_analog, read.time);
  EXPECT_DOUBLE_EQ(c.latency_digital, c.digital_ops / p.digital_ops_per_s);
  EXPECT_NEAR(r.area_mm2, 2 * (0.594 + 256 * 100e-6), 1e-9);
}

TEST(CostActivity, BitSerialInputsAndPlanesMultiplyTheReads) {
  const auto net = linear_net(200, 50);  // one tile
  const CostParams p;
  nets::SimulationConfig serial;
  serial.io.b_in = 1;  // 8-bit input in 7 one-bit cycles
  const LayerCost s = nets::network_cost(net, serial, p).layers[0];
  EXPECT_DOUBLE_EQ(s.input_cycles, 7);
  EXPECT_DOUBLE_EQ(s.tile_reads, 7);
  EXPECT_DOUBLE_EQ(s.adc_conversions, 7 * 50);

  nets::SimulationConfig digital_planes;
  digital_planes.cell.kind = devices::CellKind::multi_pair;
  digital_planes.cell.num_pairs = 2;
  const LayerCost d = nets::network_cost(net, digital_planes, p).layers[0];
  EXPECT_DOUBLE_EQ(d.tile_reads, 2);  // one read per plane
  nets::SimulationConfig analog_planes = digital_planes;
  analog_planes.cell.readout = core::PlaneReadout::analog;
  const LayerCost a = nets::network_cost(net, analog_planes, p).layers[0];
  EXPECT_DOUBLE_EQ(a.tile_reads, 1);
  EXPECT_NEAR(a.energy_array, d.energy_array, 1e-12 * d.energy_array);  // 4 devices either way
  EXPECT_DOUBLE_EQ(a.adc_conversions, 0.5 * d.adc_conversions);
}

TEST(CostActivity, LayerPrecisionAndConvolutionPositions) {
  // conv 1->4 channels, 3x3, on 6x6 -> 4x4 = 16 positions; then linear 64 -> 3.
  nets::Network net;
  net.name = "cnn";
  net.input_shape = {1, 6, 6};
  net.num_classes = 3;
  net.input_mean = {0.f};
  net.input_std = {1.f};
  auto conv = nets::Layer::make_conv2d("conv", 1, 4, {3, 3});
  conv.weight.shape = {4, 1, 3, 3};
  conv.weight.data.assign(36, 0.1f);
  net.layers.push_back(conv);
  net.layers.push_back(nets::Layer::make(std::string("flat"), nets::LayerKind::flatten));
  auto fc = nets::Layer::make_linear("fc", 64, 3);
  fc.weight.shape = {3, 64};
  fc.weight.data.assign(192, 0.1f);
  net.layers.push_back(fc);
  nets::SimulationConfig config;
  config.layer_precision = nets::parse_layer_precision({"conv:4:6"});
  const CostInput in = nets::cost_input(net, config);
  ASSERT_EQ(in.layers.size(), 2u);
  EXPECT_EQ(in.layers[0].positions, 16);
  EXPECT_EQ(in.layers[0].p_in, 4);
  EXPECT_EQ(in.layers[0].p_out, 6);
  EXPECT_EQ(in.layers[1].positions, 1);
  EXPECT_EQ(in.layers[1].p_out, 8);
  const CostReport r = compute_cost(in, CostParams{}, 8, 8, 0);
  EXPECT_DOUBLE_EQ(r.layers[0].tile_reads, 16);
  EXPECT_DOUBLE_EQ(r.layers[0].macs, 9.0 * 4 * 16);
  EXPECT_DOUBLE_EQ(r.ops_per_inference, 2 * (9.0 * 4 * 16 + 64.0 * 3));
  // A digital layer costs FP32 multiply-adds and no tile.
  config.mapper.digital_layers = {"fc"};
  const CostReport d = nets::network_cost(net, config, CostParams{});
  EXPECT_TRUE(d.layers[1].digital);
  EXPECT_EQ(d.layers[1].tiles, 0);
  EXPECT_DOUBLE_EQ(d.layers[1].energy_adc, 0);
  EXPECT_DOUBLE_EQ(d.layers[1].energy_digital, 64.0 * 3 * (3.7e-12 + 0.9e-12));
  // Unknown layer in layer_precision.
  config.layer_precision = nets::parse_layer_precision({"nope:4:4"});
  EXPECT_THROW(nets::cost_input(net, config), std::invalid_argument);
}

TEST(CostSchedule, PipelinedThroughputIsTheSlowestStageSequentialTheLatency) {
  nets::Network net = linear_net(200, 50);
  auto fc2 = nets::Layer::make_linear("fc2", 50, 10);
  fc2.weight.shape = {10, 50};
  fc2.weight.data.assign(500, 0.01f);
  net.layers.push_back(fc2);
  net.num_classes = 10;
  nets::SimulationConfig config;
  CostParams p;
  const CostReport pipe = nets::network_cost(net, config, p);
  p.schedule = Schedule::sequential;
  const CostReport seq = nets::network_cost(net, config, p);
  EXPECT_DOUBLE_EQ(seq.latency, pipe.latency);
  EXPECT_DOUBLE_EQ(seq.inferences_per_s, 1.0 / seq.latency);
  const double slowest = std::max(pipe.layers[0].latency, pipe.layers[1].latency);
  EXPECT_DOUBLE_EQ(pipe.inferences_per_s, 1.0 / slowest);
  EXPECT_GT(pipe.inferences_per_s, seq.inferences_per_s);
}

TEST(CostParamsTest, ValidateNamesTheField) {
  const auto message = [](auto edit) {
    CostParams p;
    edit(p);
    try {
      p.validate();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([](CostParams& p) { p.adc_fom = -1; }).find("adc_fom = -1"), std::string::npos);
  EXPECT_NE(message([](CostParams& p) { p.adc_area = -2e-12; }).find("adc_area_um2 = -2"),
            std::string::npos);
  EXPECT_NE(message([](CostParams& p) { p.mvm_energy = NAN; }).find("mvm_energy"),
            std::string::npos);
  EXPECT_NE(message([](CostParams& p) { p.adc_time = -1; }).find("adc_time"),
            std::string::npos);
  EXPECT_NE(message([](CostParams& p) { p.input_activity = 1.5; }).find("input_activity"),
            std::string::npos);
  EXPECT_NE(message([](CostParams& p) { p.tile_area = 0; }).find("tile_area_mm2 = 0"),
            std::string::npos);
  EXPECT_EQ(message([](CostParams&) {}), "no error");
}

TEST(CostParamsTest, IdealConvertersHaveNoCost) {
  nets::SimulationConfig config;
  config.io.p_out = 0;
  try {
    nets::network_cost(linear_net(), config, CostParams{});
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("layer 'fc': p_out = 0"), std::string::npos) << e.what();
  }
}

class CostFile : public ::testing::Test {
 protected:
  std::string path = (std::filesystem::temp_directory_path() /
                      ("pcmsim_cost_" + std::to_string(::getpid()) + ".txt"))
                         .string();
  void TearDown() override { std::filesystem::remove(path); }
  void write(const std::string& text) { std::ofstream(path) << text; }
};

TEST_F(CostFile, OverridesOnlyTheNamedConstants) {
  write("# my chip\nadc-fom = 1e-14\n\nadc_time = 4e-9   # slower\ntile_area_mm2 = 0.5\n");
  CostParams p;
  load_cost_params(path, p);
  EXPECT_DOUBLE_EQ(p.adc_fom, 1e-14);
  EXPECT_DOUBLE_EQ(p.adc_time, 4e-9);
  EXPECT_DOUBLE_EQ(p.tile_area, 0.5e-6);
  EXPECT_DOUBLE_EQ(p.mvm_energy, CostParams{}.mvm_energy);
}

TEST_F(CostFile, BadFilesNameTheLineAndSetting) {
  const auto error = [&](const std::string& text) {
    write(text);
    CostParams p;
    try {
      load_cost_params(path, p);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error("adc_fom 1e-14\n").find("line 1"), std::string::npos);
  EXPECT_NE(error("\nnot_a_cost = 1\n").find("unknown cost setting 'not_a_cost'"),
            std::string::npos);
  EXPECT_NE(error("adc_fom = 1\nadc-fom = 2\n").find("given twice"), std::string::npos);
  EXPECT_NE(error("adc_time = abc\n").find("adc_time"), std::string::npos);
  EXPECT_NE(error("adc_time = -1\n").find("adc_time = -1"), std::string::npos);
  CostParams p;
  EXPECT_THROW(load_cost_params(path + ".missing", p), std::invalid_argument);
}

TEST(CostPresets, EveryValueIsASettingAndNamesAreDisjoint) {
  std::set<std::string> sim_names, cost_names;
  for (const auto& s : core::settings<nets::SimulationConfig>())
    sim_names.insert(s.info.external_name());
  for (const auto& s : core::settings<CostParams>()) {
    cost_names.insert(s.info.external_name());
    EXPECT_EQ(sim_names.count(s.info.external_name()), 0u) << s.info.external_name();
  }
  for (const Preset& preset : presets()) {
    nets::SimulationConfig config;
    CostParams params;
    const auto a = apply_preset(preset, config);
    const auto b = apply_preset(preset, params);
    EXPECT_EQ(a.size() + b.size(), preset.values.size()) << preset.name;
    config.validate();
    params.validate();
  }
  const Preset& amb = find_preset("ambrogio2023");
  nets::SimulationConfig config;
  apply_preset(amb, config);
  EXPECT_EQ(config.chip.tile_rows, 512);
  EXPECT_EQ(config.cell.num_planes(), 2);  // 4 devices per weight
  try {
    find_preset("nope");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("hermes, ambrogio2023"), std::string::npos);
  }
}

TEST(CostReportJson, CarriesThePeakAndTotals) {
  const CostReport r = nets::network_cost(linear_net(), nets::SimulationConfig{}, CostParams{});
  const std::string json = "{" + render_cost_json_members(r) + "}";
  for (const char* key :
       {"\"tops\":", "\"tops_per_w\":", "\"energy_per_inference_J\":", "\"latency_s\":",
        "\"area_mm2\":", "\"cost_layers\":[{\"name\":\"fc\"", "\"adc_area_um2\":100"})
    EXPECT_NE(json.find(key), std::string::npos) << key;
  EXPECT_NE(render_cost_table(r).find("fc"), std::string::npos);
}

}  // namespace
}  // namespace pcmsim::cost
