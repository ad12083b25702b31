// The cost in results files: a run's record survives HDF5 (per-layer and totals), its CSV views
// carry it; a sweep's points carry their cost totals (CSV columns before `seed`, /points
// datasets, /config/cost).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "h5/hdf5_io.h"
#include "nets/results.h"
#include "nets/sweep.h"

namespace pcmsim::nets {
namespace {

class CostResults : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcmsim_cost_results_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  static std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
  }
  std::filesystem::path dir_;
};

cost::CostReport two_layer_report() {
  cost::CostReport r;
  r.params.adc_fom = 2e-14;
  r.layers.resize(2);
  r.layers[0].name = "conv";
  r.layers[0].tiles = 3;
  r.layers[0].energy = 1.5e-6;
  r.layers[0].energy_adc = 0.25e-6;
  r.layers[1].name = "fc";
  r.layers[1].digital = true;
  r.layers[1].latency = 2e-6;
  r.energy_per_inference = 1.5e-6;
  r.latency = 4e-6;
  r.area_mm2 = 1.75;
  r.peak.tops = 63.0;
  r.peak.cores = 64;
  return r;
}

TEST_F(CostResults, RunRecordRoundTrip) {
  RunRecord run;
  run.model_name = "m";
  run.cost_params.adc_fom = 2e-14;
  run.cost = two_layer_report();
  run.result.times = {{1.0, {0.5}, 0.5, 0.0}};
  write_run_results(file("r.h5"), run);
  const RunRecord back = read_run_results(file("r.h5"));
  EXPECT_EQ(back.cost_params.adc_fom, 2e-14);
  ASSERT_TRUE(back.cost.has_value());
  ASSERT_EQ(back.cost->layers.size(), 2u);
  EXPECT_EQ(back.cost->layers[0].name, "conv");
  EXPECT_EQ(back.cost->layers[0].tiles, 3);
  EXPECT_EQ(back.cost->layers[0].energy_adc, 0.25e-6);
  EXPECT_TRUE(back.cost->layers[1].digital);
  EXPECT_EQ(back.cost->layers[1].latency, 2e-6);
  EXPECT_EQ(back.cost->energy_per_inference, 1.5e-6);
  EXPECT_EQ(back.cost->peak.cores, 64);
  EXPECT_NE(first_line(file("r.csv")).find(",energy_per_inference_J,latency_s,"),
            std::string::npos);
  std::ifstream layers(file("r.cost.csv"));
  std::string header, conv;
  std::getline(layers, header);
  std::getline(layers, conv);
  EXPECT_EQ(header.rfind("layer,digital,tiles,tile_reads,", 0), 0u);
  EXPECT_EQ(conv.rfind("conv,0,3,", 0), 0u);
  // Without a cost: empty cells, no /cost group.
  run.cost.reset();
  write_run_results(file("n.h5"), run);
  EXPECT_FALSE(read_run_results(file("n.h5")).cost.has_value());
  EXPECT_FALSE(h5::File::open_read(file("n.h5")).has_group("cost"));
}

TEST_F(CostResults, SweepPointsCarryTheirCost) {
  SweepGrid grid;
  grid.axes = {{"p-out", {"4", "8"}}};
  SweepMeta meta;
  meta.fingerprint = "x\n";
  meta.trials = 1;
  SweepStore store(file("s.h5"), meta, grid, {"a\n", "b\n"}, {1, 1});
  const double nan = std::nan("");
  cost::CostParams params;
  params.adc_time = 4e-9;
  EXPECT_THROW(store.set_point_costs(params, {{1, 2, 3, 4}}), std::invalid_argument);
  store.set_point_costs(params, {{1e-6, 2e-6, 5e5, 1.5}, {nan, nan, nan, nan}});
  store.add({{0, 0, 0.5}, {1, 0, 0.75}});
  store.write_file();
  std::ifstream csv(file("s.csv"));
  std::string header, p0, p1;
  std::getline(csv, header);
  std::getline(csv, p0);
  std::getline(csv, p1);
  EXPECT_EQ(header,
            "point,p_out,energy_per_inference_J,latency_s,inferences_per_s,area_mm2,"
            "seed,trials,acc_mean,acc_std,ci95_low,ci95_high");
  EXPECT_EQ(p0.rfind("0,4,1e-06,2e-06,500000,1.5,1,", 0), 0u) << p0;
  EXPECT_EQ(p1.rfind("1,8,,,,,1,", 0), 0u) << p1;
  const auto f = h5::File::open_read(file("s.h5"));
  const auto energy = f.read_dataset<double>("points/energy_per_inference_J");
  ASSERT_EQ(energy.size(), 2u);
  EXPECT_EQ(energy.data[0], 1e-6);
  EXPECT_TRUE(std::isnan(energy.data[1]));
  EXPECT_EQ(f.open_group("config/cost").read_double_attribute("adc_time"), 4e-9);
}

}  // namespace
}  // namespace pcmsim::nets
