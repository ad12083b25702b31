// Sweeps (nets/sweep.h): grid and plan, reuse of programming and snapshots giving the same bits
// as fresh chips, independence of unit order, split and thread count, statistics, and the
// crash-safe results store.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "h5/hdf5_io.h"
#include "nets/dataset.h"
#include "nets/model_io.h"
#include "nets/sweep.h"

namespace pcmsim::nets {
namespace {

std::string zoo_mlp() {
  const char* src = std::getenv("PCMSIM_SOURCE_DIR");
  return (std::filesystem::path(src ? src : ".") / "zoo" / "mlp.h5").string();
}

SweepGrid small_grid() {
  SweepGrid g;
  g.axes = {{"cell", {"pair", "multi_pair"}}, {"p-in", {"4", "8"}}, {"gdc", {"on", "off"}},
            {"t-inference", {"1", "86400"}}};
  return g;
}

// Settings -> config, as the CLI would (only the axes of these tests).
SimulationConfig config_of(const std::vector<std::pair<std::string, std::string>>& settings) {
  SimulationConfig c;
  c.chip.tile_rows = c.chip.tile_cols = 128;
  c.seed = 7;
  for (const auto& [name, value] : settings) {
    if (name == "p-in") c.io.p_in = std::stoi(value);
    if (name == "p-out") c.io.p_out = std::stoi(value);
    if (name == "gdc") c.gdc = value == "on";
    if (name == "cell") c.cell.kind = devices::parse_cell_kind(value);
    if (name == "out-noise") c.io.out_noise = std::stod(value);
  }
  return c;
}

TEST(SweepGrid, CoordinatesLastAxisFastest) {
  const SweepGrid g = small_grid();
  EXPECT_EQ(g.size(), 16);
  EXPECT_EQ(g.coords(0), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(g.coords(1), (std::vector<int>{0, 0, 0, 1}));
  EXPECT_EQ(g.coords(15), (std::vector<int>{1, 1, 1, 1}));
  EXPECT_EQ(g.settings(6)[1], (std::pair<std::string, std::string>{"p-in", "8"}));
  EXPECT_THROW(g.coords(16), std::invalid_argument);
}

TEST(SweepGrid, RejectsBadAxes) {
  SweepGrid g;
  g.axes = {{"no-such-axis", {"1", "2"}}};
  try {
    g.validate();
    FAIL() << "unknown axis accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("unknown axis 'no-such-axis'"), std::string::npos);
  }
  g.axes = {{"p-in", {}}};
  EXPECT_THROW(g.validate(), std::invalid_argument);
  g.axes = {{"p-in", {"4", "4"}}};
  EXPECT_THROW(g.validate(), std::invalid_argument);
  g.axes = {{"p-in", {"4"}}, {"p-in", {"6"}}};
  EXPECT_THROW(g.validate(), std::invalid_argument);
  EXPECT_THROW(axis_kind("model"), std::invalid_argument);
  EXPECT_EQ(axis_kind("p-out"), AxisKind::converter);
  EXPECT_EQ(axis_kind("num-pairs"), AxisKind::programming);
  EXPECT_EQ(axis_kind("t-inference"), AxisKind::time);
}

TEST(SweepPlan, GroupsByProgrammingAndOrdersForReuse) {
  const auto points = make_points(small_grid(), 0, config_of);
  PlanOptions options;
  options.trials = 3;
  const auto units = plan_sweep(points, options, {});
  // One unit per (cell, trial): everything else reuses the programmed chip.
  ASSERT_EQ(units.size(), 6u);
  std::map<std::pair<std::int64_t, int>, int> seen;
  for (const WorkUnit& u : units) {
    ASSERT_EQ(u.points.size(), 8u);
    for (std::size_t k = 0; k < u.points.size(); ++k) {
      const SweepPoint& p = points[u.points[k]];
      EXPECT_EQ(p.programming_group, points[u.points[0]].programming_group);
      ++seen[{p.index, u.trial}];
      // Converter groups contiguous, times increasing inside each.
      if (k > 0 && points[u.points[k - 1]].converter_group == p.converter_group)
        EXPECT_LT(points[u.points[k - 1]].t_inference, p.t_inference);
    }
  }
  EXPECT_EQ(seen.size(), 48u);  // every (point, trial) exactly once
  for (const auto& entry : seen) EXPECT_EQ(entry.second, 1);
}

TEST(SweepPlan, SkipsDoneAndSplitsForProcesses) {
  const auto points = make_points(small_grid(), 0, config_of);
  PlanOptions options;
  options.trials = 1;
  std::set<std::pair<std::int64_t, int>> done{{0, 0}, {1, 0}, {5, 0}};
  auto units = plan_sweep(points, options, done);
  std::size_t n = 0;
  for (const auto& u : units)
    for (auto i : u.points) {
      EXPECT_FALSE(done.count({i, u.trial}));
      ++n;
    }
  EXPECT_EQ(n, 13u);
  options.min_units = 6;
  units = plan_sweep(points, options, {});
  EXPECT_GE(units.size(), 6u);
  n = 0;
  for (const auto& u : units) n += u.points.size();
  EXPECT_EQ(n, 16u);
  options.trials = 0;
  EXPECT_THROW(plan_sweep(points, options, {}), std::invalid_argument);
  // A time-only sweep of one trial still splits (by time) for several processes.
  SweepGrid times;
  times.axes = {{"t-inference", {"1", "10", "100", "1000", "10000"}}};
  const auto time_points = make_points(times, 0, config_of);
  PlanOptions four;
  four.min_units = 4;
  units = plan_sweep(time_points, four, {});
  ASSERT_EQ(units.size(), 4u);
  std::set<std::int64_t> all;
  for (const auto& u : units)
    for (auto i : u.points) EXPECT_TRUE(all.insert(i).second);
  EXPECT_EQ(all.size(), 5u);
}

class SweepRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::filesystem::exists(zoo_mlp())) return;
    net_ = new Network(load_network(zoo_mlp()));
    Dataset data = load_dataset("fashion-mnist:t10k", 96);
    images_ = new MatrixF(normalized_images(data, *net_));
    labels_ = new std::vector<int>(data.labels);
  }
  static void TearDownTestSuite() {
    delete net_;
    delete images_;
    delete labels_;
    net_ = nullptr;
  }
  void SetUp() override {
    if (!net_) GTEST_SKIP() << "zoo/mlp.h5 not found";
  }
  EvalData data() const {
    EvalData d;
    d.net = net_;
    d.images = images_;
    d.labels = labels_;
    d.batch_size = 32;  // several batches: the tile-forward key follows the first sample index
    return d;
  }
  static std::map<std::pair<std::int64_t, int>, double> run_all(
      const std::vector<SweepPoint>& points, const std::vector<WorkUnit>& units,
      const EvalData& d, const UnitOptions& options, UnitStats* stats = nullptr) {
    std::map<std::pair<std::int64_t, int>, double> out;
    for (const WorkUnit& u : units)
      for (const TrialRecord& r : run_unit(u, points, d, options, stats))
        out[{r.point, r.trial}] = r.accuracy;
    return out;
  }
  static Network* net_;
  static MatrixF* images_;
  static std::vector<int>* labels_;
};
Network* SweepRun::net_ = nullptr;
MatrixF* SweepRun::images_ = nullptr;
std::vector<int>* SweepRun::labels_ = nullptr;

// Reusing programming and snapshots changes nothing, bit for bit, and does save the work.
TEST_F(SweepRun, ReuseGivesTheSameBitsAsFreshChips) {
  SweepGrid g;
  g.axes = {{"p-in", {"4", "8"}}, {"gdc", {"on", "off"}}, {"t-inference", {"1", "3600"}}};
  const auto points = make_points(g, 0, config_of);
  PlanOptions plan;
  plan.trials = 2;
  const auto units = plan_sweep(points, plan, {});
  ASSERT_EQ(units.size(), 2u);
  UnitStats reuse_stats, fresh_stats;
  UnitOptions reuse, fresh;
  fresh.reuse = false;
  reuse.max_chips = 3;  // forces two chunks of converter settings in each unit
  const auto a = run_all(points, units, data(), reuse, &reuse_stats);
  const auto b = run_all(points, units, data(), fresh, &fresh_stats);
  ASSERT_EQ(a.size(), 16u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(reuse_stats.programmings, 2);  // one per trial
  EXPECT_EQ(fresh_stats.programmings, 16);
  // Per trial: 2 chunks x 2 times snapshots drawn, the other 4 settings x 2 times copied.
  EXPECT_EQ(reuse_stats.snapshots, 2 * 2 * 2);
  EXPECT_EQ(reuse_stats.shared_snapshots, 2 * (8 - 4));
  // Accuracies are fractions of 96 images.
  for (const auto& entry : a) {
    const double correct = entry.second * 96;
    EXPECT_NEAR(correct, std::round(correct), 1e-9);
  }
}

// Any split of the work, any order, any thread count: the same bits.
TEST_F(SweepRun, IndependentOfSplitOrderAndThreads) {
  SweepGrid g;
  g.axes = {{"p-in", {"4", "6", "8"}}, {"t-inference", {"0", "86400"}}};
  const auto points = make_points(g, 0, config_of);
  PlanOptions plan;
  plan.trials = 1;
  const auto whole = plan_sweep(points, plan, {});
  plan.min_units = 3;
  auto split = plan_sweep(points, plan, {});
  ASSERT_EQ(split.size(), 3u);
  std::reverse(split.begin(), split.end());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const auto a = run_all(points, whole, data(), {});
  omp_set_num_threads(2);
  const auto b = run_all(points, split, data(), {});
  omp_set_num_threads(threads);
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a, b);
  // A single point alone, in a unit of its own, also agrees.
  WorkUnit one{0, {3}};
  const auto c = run_unit(one, points, data());
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].accuracy, a.at({3, 0}));
}

TEST(SweepStats, StudentQuantileAndInterval) {
  EXPECT_NEAR(student_t_975(1), 12.7062, 1e-4);
  EXPECT_NEAR(student_t_975(4), 2.7764, 1e-4);
  EXPECT_NEAR(student_t_975(30), 2.0423, 1e-4);
  EXPECT_NEAR(student_t_975(60), 2.0003, 1e-4);   // tables: 2.000298
  EXPECT_NEAR(student_t_975(120), 1.9799, 1e-4);  // tables: 1.979930
  EXPECT_THROW(student_t_975(0), std::invalid_argument);
  const PointSummary s = summarize({0.80, 0.82, 0.84, 0.86, 0.88});
  EXPECT_NEAR(s.mean, 0.84, 1e-12);
  EXPECT_NEAR(s.std, std::sqrt(0.001), 1e-12);  // sum of squares 0.004 over 4
  EXPECT_NEAR(s.ci_high - s.mean, 2.7764451 * std::sqrt(0.001) / std::sqrt(5.0), 1e-7);
  EXPECT_NEAR(s.mean - s.ci_low, s.ci_high - s.mean, 1e-12);
  const PointSummary one = summarize({0.5});
  EXPECT_EQ(one.std, 0);
  EXPECT_EQ(one.ci_low, 0.5);
  EXPECT_THROW(summarize({}), std::invalid_argument);
}

class SweepStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pcmsim_sweep_store_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "s.h5").string();
    grid_.axes = {{"p-in", {"4", "8"}}, {"t-inference", {"1", "3600", "86400"}}};
    meta_.fingerprint = "model=m\naxis p-in=4,8\n";
    meta_.trials = 2;
    meta_.git_revision = "abc";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  SweepStore make(const SweepMeta& meta) const {
    return SweepStore(path_, meta, grid_, std::vector<std::string>(6, "p-in=4\n"),
                      std::vector<std::uint64_t>(6, 3));
  }
  std::filesystem::path dir_;
  std::string path_;
  SweepGrid grid_;
  SweepMeta meta_;
};

TEST_F(SweepStoreTest, JournalKeepsRecordsBetweenRewritesAndTornLinesAreIgnored) {
  {
    SweepStore store = make(meta_);
    store.set_min_rewrite_interval(1e9);  // never rewrite after the first write
    store.write_file();
    store.add({{0, 0, 0.75}, {0, 1, 0.5}, {4, 1, 0.125}});
    // Killed here: the HDF5 file holds nothing yet, the journal everything.
    EXPECT_TRUE(std::filesystem::exists(path_ + ".journal"));
  }
  {
    std::ofstream torn(path_ + ".journal", std::ios::app);
    torn << "r 5 0 0x1.8p-1";  // no newline: killed while appending
  }
  SweepStore resumed = make(meta_);
  resumed.load_existing();
  ASSERT_EQ(resumed.records().size(), 3u);
  EXPECT_EQ(resumed.records().at({4, 1}), 0.125);
  EXPECT_EQ(resumed.finished_points(), 1);  // point 0 has both trials
  resumed.write_file();
  EXPECT_FALSE(std::filesystem::exists(path_ + ".journal"));

  auto file = pcmsim::h5::File::open_read(path_);
  EXPECT_EQ(file.read_string_attribute("format"), "pcmsim-sweep");
  EXPECT_EQ(file.read_int_attribute("finished_points"), 1);
  const auto mean = file.read_dataset<double>("points/acc_mean");
  ASSERT_EQ(mean.size(), 1u);
  EXPECT_EQ(mean.data[0], 0.625);
  EXPECT_EQ(file.read_dataset<double>("records/accuracy").size(), 3u);
  EXPECT_EQ(file.read_string_dataset("points/axis/t-inference")[0], "1");
}

TEST_F(SweepStoreTest, RefusesAnotherSweepAndBadJournal) {
  {
    SweepStore store = make(meta_);
    store.write_file();
  }
  SweepMeta other = meta_;
  other.fingerprint = "model=other\n";
  SweepStore wrong = make(other);
  EXPECT_THROW(wrong.load_existing(), std::invalid_argument);
  {
    std::ofstream j(path_ + ".journal");
    j << "garbage\n";
  }
  SweepStore store = make(meta_);
  EXPECT_THROW(store.load_existing(), std::invalid_argument);
  EXPECT_THROW(store.add({{6, 0, 0.5}}), std::invalid_argument);  // outside the grid
  SweepStore nowhere("/nonexistent_dir_pcmsim/s.h5", meta_, grid_,
                     std::vector<std::string>(6), std::vector<std::uint64_t>(6));
  EXPECT_THROW(nowhere.check_writable(), std::invalid_argument);
}

}  // namespace
}  // namespace pcmsim::nets
