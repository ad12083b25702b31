// The field lists (core/settings.h) are the one definition of every setting: these tests walk
// them, so a field missing from the text form, the provenance or the result files fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "core/settings.h"
#include "h5/settings_io.h"
#include "nets/evaluation.h"
#include "nets/results.h"
#include "nets/simulation.h"
#include "nets/sweep.h"
#include "nets_test_util.h"

namespace pcmsim::nets {
namespace {

using test::TempDir;

// A config in which every setting differs from its default where it can (still valid), so a
// setting that is not carried through a round trip shows as a mismatch.
SimulationConfig unusual_config() {
  SimulationConfig c;
  c.chip.tile_rows = 128;
  c.chip.tile_cols = 64;
  c.chip.num_tiles = 99;
  c.mapper.conv_split = mapping::ConvSplit::free;
  c.mapper.digital_layers = {"first", "fc2"};
  c.mapper.packing = mapping::Packing::dense;
  c.device.model = "state_independent";
  c.device.pcm.g_max = c.device.ideal.g_max = c.device.state_independent.g_max =
      c.device.tabulated.g_max = 30e-6;
  c.device.state_independent.nu_mean = 0.2;
  c.device.state_independent.prog_noise_std = 0.3e-6;
  c.cell.kind = devices::CellKind::multi_pair;
  c.cell.num_pairs = 3;
  c.cell.scaling = devices::WeightScaling::column;
  c.io.p_in = 6;
  c.io.out_noise = 0.125;
  c.io.rounding = core::Rounding::stochastic;
  c.layer_precision["fc1"] = LayerPrecision{4, 5};
  c.digital.accumulator = core::Accumulator::fixed_point;
  c.digital.acc_frac_bits = 10;
  c.gdc = false;
  c.gdc_params.headroom = 1.5;
  c.calibrate = true;
  c.calibration.percentile = 99.0;
  c.seed = 18446744073709551615ull;  // 2^64 - 1: the unsigned range survives files
  return c;
}

TEST(Settings, NamesAreUniqueAndDocumented) {
  std::set<std::string> names;
  for (const auto& s : core::settings<SimulationConfig>()) {
    EXPECT_TRUE(names.insert(s.info.external_name()).second) << s.info.external_name();
    EXPECT_GT(std::string(s.info.help).size(), 5u) << s.name();
  }
  for (const auto& s : core::settings<EvaluationOptions>())
    EXPECT_TRUE(names.insert(s.info.external_name()).second) << s.info.external_name();
  EXPECT_GE(names.size(), 50u);
}

TEST(Settings, EveryFieldSurvivesItsTextForm) {
  const SimulationConfig original = unusual_config();
  SimulationConfig copy;
  for (const auto& s : core::settings<SimulationConfig>())
    if (!s.shortcut) s.set_text(copy, s.text(original));
  for (const auto& s : core::settings<SimulationConfig>())
    EXPECT_EQ(s.text(copy), s.text(original)) << s.name();
  EXPECT_TRUE(core::differing_settings(copy, original, core::Affects::programming).empty());
  EXPECT_TRUE(core::differing_settings(copy, original, core::Affects::converter).empty());
}

TEST(Settings, EveryFieldSurvivesTheResultsFile) {
  TempDir dir;
  RunRecord run;
  run.model = "m.h5";
  run.model_name = "m";
  run.data = "d";
  run.config = unusual_config();
  run.evaluation.t_inference = {2.0, 7200.0};
  run.evaluation.trials = 3;
  run.evaluation.batch_size = 17;
  run.result.fp32_accuracy = 0.5;
  run.result.times = {{2.0, {0.1, 0.2, 0.3}, 0.2, 0.1}, {7200.0, {0.4, 0.5, 0.6}, 0.5, 0.1}};
  const std::string path = dir.file("run.h5");
  write_run_results(path, run);
  const RunRecord back = read_run_results(path);
  for (const auto& s : core::settings<SimulationConfig>())
    EXPECT_EQ(s.text(back.config), s.text(run.config)) << s.name();
  for (const auto& s : core::settings<EvaluationOptions>())
    EXPECT_EQ(s.text(back.evaluation), s.text(run.evaluation)) << s.name();
  ASSERT_EQ(back.result.times.size(), 2u);
  EXPECT_EQ(back.result.times[1].accuracy, run.result.times[1].accuracy);
  // The CSV view names every recorded setting in its header.
  std::ifstream csv(dir.file("run.csv"));
  std::string header;
  std::getline(csv, header);
  for (const auto& s : core::settings<SimulationConfig>())
    if (!s.shortcut)
      EXPECT_NE(header.find(std::string(",") + s.info.external_name() + ","), std::string::npos)
          << s.info.external_name();
}

TEST(Settings, StrictTextParsing) {
  const auto& p_in = core::setting<SimulationConfig>("p-in");
  SimulationConfig c;
  EXPECT_THROW(p_in.set_text(c, "8x"), std::invalid_argument);
  EXPECT_THROW(p_in.set_text(c, "4294967304"), std::invalid_argument);  // int overflow
  EXPECT_THROW(core::setting<SimulationConfig>("seed").set_text(c, "-1"), std::invalid_argument);
  EXPECT_THROW(core::setting<SimulationConfig>("digital_layers").set_text(c, "a,"),
               std::invalid_argument);  // a trailing comma is not dropped
  EXPECT_THROW(core::setting<SimulationConfig>("out_noise").set_text(c, "nan"),
               std::invalid_argument);
  EXPECT_THROW(core::setting<SimulationConfig>("tile").set_text(c, "4294967300x4"),
               std::invalid_argument);
  EXPECT_THROW(core::setting<SimulationConfig>("no_such_setting"), std::invalid_argument);
  core::setting<SimulationConfig>("g_max_uS").set_text(c, "50");
  EXPECT_DOUBLE_EQ(c.device.pcm.g_max, 50e-6);
  EXPECT_DOUBLE_EQ(c.device.tabulated.g_max, 50e-6);  // not dropped for another model
}

TEST(Settings, NoEffectFieldsAreRejected) {
  SimulationConfig c;
  c.cell.num_pairs = 3;  // a pair cell has one pair
  EXPECT_THROW(c.validate(), std::invalid_argument);
  SimulationConfig d;
  d.device.state_independent.nu_mean = 0.3;  // the pcm model does not read it
  EXPECT_THROW(d.validate(), std::invalid_argument);
}

TEST(Settings, SweepAxesFollowTheFieldLists) {
  EXPECT_EQ(axis_kind("p-in"), AxisKind::converter);
  EXPECT_EQ(axis_kind("g_max_uS"), AxisKind::programming);
  EXPECT_EQ(axis_kind("t-inference"), AxisKind::time);
  EXPECT_EQ(axis_name("num-pairs"), "num_pairs");
  SweepGrid grid;
  grid.axes = {{"p_in", {"4", "8"}}, {"digital_layers", {"none", "first;last"}}};
  const auto points = make_points(grid, SimulationConfig{}, 1.0);
  ASSERT_EQ(points.size(), 4u);
  EXPECT_EQ(points[3].config.io.p_in, 8);
  EXPECT_EQ(points[3].config.mapper.digital_layers, (std::vector<std::string>{"first", "last"}));
  EXPECT_TRUE(points[0].config.mapper.digital_layers.empty());
  EXPECT_NE(points[0].programming_group, points[1].programming_group);
}

}  // namespace
}  // namespace pcmsim::nets
