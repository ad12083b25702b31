// The mixed-precision search (nets/tune.h): on the zoo's HWA MLP with a few images, the chosen
// assignment costs less than uniform 8 bit and stays within the budget on the validation
// images; a search answered from its journal computes nothing and takes the same path; the
// options and the results store reject bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>

#include "h5/hdf5_io.h"
#include "nets/dataset.h"
#include "nets/model_io.h"
#include "nets/tune.h"

namespace pcmsim::nets {
namespace {

std::string zoo(const char* name) {
  const char* src = std::getenv("PCMSIM_SOURCE_DIR");
  return (std::filesystem::path(src ? src : ".") / "zoo" / name).string();
}

bool have_fashion_mnist() {
  return std::filesystem::exists(std::string(kFashionMnistDir) + "/train-images-idx3-ubyte.gz");
}

struct Fixture {
  Network net;
  Dataset validation, test;
  MatrixF validation_images, test_images, calibration;
  TuneData data() const {
    TuneData d;
    d.net = &net;
    d.validation_images = &validation_images;
    d.validation_labels = &validation.labels;
    d.test_images = &test_images;
    d.test_labels = &test.labels;
    d.calibration = &calibration;
    return d;
  }
};

Fixture small_fixture(const char* model = "mlp_hwa.h5", Index images = 120) {
  Fixture f;
  f.net = load_network(zoo(model));
  f.validation = load_dataset("fashion-mnist:train", images);
  f.test = load_dataset("fashion-mnist:t10k", images);
  f.validation_images = normalized_images(f.validation, f.net);
  f.test_images = normalized_images(f.test, f.net);
  return f;
}

TuneOptions small_options() {
  TuneOptions o;
  o.budget = 4.0;
  o.candidate_bits = {8, 4};
  o.uniform_bits = {8, 4};
  o.validation_images = 120;
  return o;
}

EvaluationOptions small_evaluation() {
  EvaluationOptions e;
  e.trials = 2;
  e.t_inference = {86400};
  return e;
}

TEST(Tune, AssignmentCheaperThanUniform8AndWithinBudget) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed";
  const Fixture f = small_fixture();
  SimulationConfig config;
  config.seed = 3;
  cost::CostParams params;
  params.mvm_energy = 0;  // let the converters' share show (docs/cost.md)
  const TuneOptions options = small_options();
  std::map<std::tuple<std::string, std::string, int>, TuneRecord> journal;
  TuneCache cache;
  cache.record = [&](const std::string& s, const std::string& k, int t, const TuneRecord& r) {
    journal[{s, k, t}] = r;
  };
  const TuneResult r = tune(f.data(), config, small_evaluation(), options, params, cache);
  ASSERT_TRUE(r.feasible) << "the 8-bit baseline misses a 4-point budget";
  const TuneCandidate& best = r.candidates.at(r.best);
  ASSERT_GE(r.test.size(), 2u);
  EXPECT_EQ(r.test[0].label, "tuned");
  EXPECT_EQ(r.test[1].label, "uniform 8");
  EXPECT_LT(best.energy, r.test[1].energy);
  EXPECT_LE(best.drop.upper95, options.budget + 1e-9);
  EXPECT_TRUE(best.within_budget);
  EXPECT_EQ(best.assignment.size(), 3u);  // every analog layer named
  // Energy falls along the greedy path and the Pareto front is not empty.
  bool any_pareto = false;
  for (const TuneCandidate& c : r.candidates) any_pareto |= c.pareto;
  EXPECT_TRUE(any_pareto);
  EXPECT_EQ(r.evaluations, static_cast<int>(journal.size()));
  EXPECT_EQ(r.programmings, 2);  // one chip per trial, shared by every candidate

  // Answered from the journal: nothing computed, nothing programmed, the same choice.
  TuneCache replay;
  replay.lookup = [&](const std::string& s, const std::string& k,
                      int t) -> std::optional<TuneRecord> {
    const auto it = journal.find({s, k, t});
    if (it == journal.end()) return std::nullopt;
    return it->second;
  };
  const TuneResult again = tune(f.data(), config, small_evaluation(), options, params, replay);
  EXPECT_EQ(again.evaluations, 0);
  EXPECT_EQ(again.programmings, 0);
  EXPECT_EQ(assignment_key(again.candidates.at(again.best).assignment),
            assignment_key(best.assignment));
  EXPECT_EQ(again.candidates.size(), r.candidates.size());
}

// At 3 bits everywhere the MLP misses a 2-point budget; with allow_digital the search keeps
// layers digital (FP32 in the digital unit) until it meets it, and says so in its options.
TEST(Tune, KeepsLayersDigitalWhenEvenTheBaselineMisses) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed";
  const Fixture f = small_fixture();
  SimulationConfig config;
  config.seed = 3;
  const cost::CostParams params;
  TuneOptions options = small_options();
  options.budget = 2.0;
  options.candidate_bits = {3};
  options.uniform_bits = {};
  options.allow_digital = false;
  const TuneResult plain = tune(f.data(), config, small_evaluation(), options, params);
  ASSERT_FALSE(plain.feasible) << "3-bit converters everywhere meet a 2-point budget";
  EXPECT_EQ(plain.candidates.size(), 1u);

  options.allow_digital = true;
  const TuneResult r = tune(f.data(), config, small_evaluation(), options, params);
  ASSERT_TRUE(r.feasible);
  const TuneCandidate& best = r.candidates.at(r.best);
  EXPECT_TRUE(best.within_budget);
  ASSERT_FALSE(best.digital_layers.empty());
  EXPECT_EQ(best.phase, "digital");
  // A digital layer has no converters: it leaves the assignment; the rest stay at 3 bits.
  EXPECT_EQ(best.assignment.size() + best.digital_layers.size(), 3u);
  for (const std::string& name : best.digital_layers) EXPECT_EQ(best.assignment.count(name), 0u);
  EXPECT_NE(r.run_options.find("--digital-layers " + best.digital_layers.front()),
            std::string::npos) << r.run_options;
  EXPECT_NE(assignment_key(best.assignment, best.digital_layers).find("digital:"),
            std::string::npos);
  // Every probe of the first round keeps exactly one layer digital.
  int one_digital = 0;
  for (const TuneCandidate& c : r.candidates) one_digital += c.digital_layers.size() == 1;
  EXPECT_GE(one_digital, 3);
  ASSERT_FALSE(r.test.empty());
  EXPECT_EQ(r.test[0].digital_layers, best.digital_layers);
}

// LeNet-5's conv1 (25 x 6) is read at 576 positions per image: with the default fixed energy
// per tile read (10.5 nJ, HERMES) its digital MACs cost less than its tile reads at any
// converter precision, so the search keeps it digital from the start; without that fixed
// energy the converters are cheap and it stays analog.
TEST(Tune, KeepsASmallLayerDigitalWhereThatIsCheaper) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed";
  const Fixture f = small_fixture("lenet5_hwa.h5", 64);
  SimulationConfig config;
  TuneOptions options = small_options();
  options.budget = 50;
  options.uniform_bits = {8};
  options.validation_images = 64;
  const cost::CostParams hermes_like;  // mvm_energy 10.5 nJ
  ASSERT_GT(hermes_like.mvm_energy, 1e-9);
  const TuneResult r = tune(f.data(), config, small_evaluation(), options, hermes_like);
  ASSERT_TRUE(r.feasible);
  const TuneCandidate& start = r.candidates.at(1);
  EXPECT_EQ(start.phase, "digital");
  EXPECT_NE(start.label.find("cheaper"), std::string::npos) << start.label;
  EXPECT_TRUE(start.accepted);
  const TuneCandidate& best = r.candidates.at(r.best);
  ASSERT_FALSE(best.digital_layers.empty());
  EXPECT_EQ(best.digital_layers.front(), "conv1");
  ASSERT_EQ(r.test.size(), 2u);
  EXPECT_LT(r.test[0].energy, 0.8 * r.test[1].energy) << "tuned vs uniform 8";

  cost::CostParams no_periphery;
  no_periphery.mvm_energy = 0;
  const TuneResult plain = tune(f.data(), config, small_evaluation(), options, no_periphery);
  for (const TuneCandidate& c : plain.candidates) EXPECT_TRUE(c.digital_layers.empty()) << c.label;
}

TEST(Tune, StudentQuantileAndLowerBound) {
  EXPECT_NEAR(student_t_95(1), 6.3138, 1e-4);
  EXPECT_NEAR(student_t_95(2), 2.9200, 1e-4);
  EXPECT_NEAR(student_t_95(40), 1.6839, 1e-3);
  EXPECT_NEAR(student_t_95(1000), 1.6464, 1e-3);
}

// The drop's two standard errors and their Welch-Satterthwaite combination, against numbers
// worked by hand: FP32 95 %, trials at 90/92/91 % on 1000 images, discordances 10/8/9 %.
TEST(Tune, DropStatisticsCombineTrialsAndImages) {
  const DropStatistics d = drop_statistics({0.90, 0.92, 0.91}, {0.10, 0.08, 0.09}, 0.95, 1000);
  EXPECT_NEAR(d.mean, 4.0, 1e-12);
  // var(drop_t) = 1e-4 over 3 trials; mean_t(q_t - drop_t^2) = 0.0883333 over 999 images.
  const double a = 1e-4 / 3, b = (0.0975 + 0.0791 + 0.0884) / 3 / 999;
  EXPECT_NEAR(d.se_trials, 100 * std::sqrt(a), 1e-9);
  EXPECT_NEAR(d.se_images, 100 * std::sqrt(b), 1e-9);
  const double dof = (a + b) * (a + b) / (a * a / 2 + b * b / 999);
  EXPECT_NEAR(d.dof, dof, 1e-6);
  EXPECT_NEAR(d.dof, 26.3, 0.1);
  EXPECT_NEAR(d.upper95, 4.0 + student_t_95(26) * 100 * std::sqrt(a + b), 1e-9);
  EXPECT_NEAR(d.ci95_high - d.mean, student_t_975(26) * 100 * std::sqrt(a + b), 1e-9);
  EXPECT_NEAR(d.mean - d.ci95_low, d.ci95_high - d.mean, 1e-12);
  // Many images: the trial term alone, Student t with n - 1 degrees (the old bound).
  const DropStatistics trials_only =
      drop_statistics({0.90, 0.92, 0.94}, {0.05, 0.03, 0.01}, 0.95, 1000000000);
  EXPECT_NEAR(trials_only.upper95, 100 * (0.95 - 0.92) + 2.91999 * 2.0 / std::sqrt(3.0), 1e-3);
  // One trial: the image term alone, with N - 1 degrees (close to the normal quantile).
  const DropStatistics one = drop_statistics({0.9}, {0.06}, 0.95, 2000);
  EXPECT_EQ(one.se_trials, 0);
  EXPECT_NEAR(one.upper95, 5.0 + student_t_95(1999) * 100 * std::sqrt((0.06 - 0.0025) / 1999),
              1e-9);
  // No spread at all: the bound is the mean.
  EXPECT_EQ(drop_statistics({0.9, 0.9}, {0.0, 0.0}, 0.9, 100).upper95, 0.0);
  EXPECT_THROW(drop_statistics({0.9}, {}, 0.9, 10), std::invalid_argument);
  EXPECT_THROW(drop_statistics({0.9}, {0.1}, 0.9, 0), std::invalid_argument);
}

TEST(Tune, RejectsBadOptions) {
  auto expect_bad = [](TuneOptions o, const std::string& word) {
    try {
      o.validate();
      ADD_FAILURE() << "accepted " << word;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
    }
  };
  TuneOptions o;
  o.budget = std::numeric_limits<double>::quiet_NaN();
  expect_bad(o, "budget");
  o = {};
  o.budget = -1;
  expect_bad(o, "budget = -1");
  o = {};
  o.candidate_bits = {};
  expect_bad(o, "candidate_bits is empty");
  o = {};
  o.candidate_bits = {8, 4.5};
  expect_bad(o, "candidate_bits = 4.5");
  o = {};
  o.validation_images = 0;
  expect_bad(o, "validation_images");

  const Network net = load_network(zoo("mlp_hwa.h5"));
  TuneOptions layers;
  layers.tune_layers = {"fc9"};
  try {
    tuned_layers(net, SimulationConfig{}, layers);
    ADD_FAILURE() << "accepted an unknown layer";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("'fc9'"), std::string::npos) << e.what();
  }
  layers.tune_layers = {"fc3", "fc1"};
  EXPECT_EQ(tuned_layers(net, SimulationConfig{}, layers),
            (std::vector<std::string>{"fc1", "fc3"}));
}

TEST(Tune, SettingsAreUniqueOptionsAndSurviveTheirTextForm) {
  std::set<std::string> names;
  for (const auto& s : core::settings<SimulationConfig>()) names.insert(s.info.external_name());
  for (const auto& s : core::settings<EvaluationOptions>()) names.insert(s.info.external_name());
  for (const auto& s : core::settings<cost::CostParams>()) names.insert(s.info.external_name());
  TuneOptions unusual;
  unusual.budget = 0.25;
  unusual.candidate_bits = {7, 5, 3};
  unusual.uniform_bits = {};
  unusual.tune_layers = {"fc1", "fc2"};
  unusual.validation_images = 77;
  TuneOptions copy;
  for (const auto& s : core::settings<TuneOptions>()) {
    EXPECT_TRUE(names.insert(s.info.external_name()).second) << s.info.external_name();
    s.set_text(copy, s.text(unusual));
    EXPECT_EQ(s.text(copy), s.text(unusual)) << s.name();
  }
}

TEST(TuneStore, JournalSurvivesATornLineAndRefusesAnotherSearch) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("pcmsim_tune_store_" + std::to_string(::getpid())))
                              .string();
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/t.h5";
  TuneMeta meta;
  meta.fingerprint = "model=x\n";
  {
    TuneStore store(path, meta);
    store.lock();
    TuneCache c = store.cache();
    c.record("v", "fc1:8:8;fc2:4:4", 0, TuneRecord{0.875, 0.0625});
    c.record("t", "fc1:8:8;fc2:4:4", 1, TuneRecord{0.5, 0.25});
  }
  {  // a kill while appending leaves a torn last line: ignored
    std::ofstream j(path + ".journal", std::ios::app);
    j << "r v 0 0x1p-1 0x1p-3 fc1:4";
  }
  TuneStore store(path, meta);
  store.load_existing();
  EXPECT_EQ(store.records(), 2u);
  const auto hit = store.cache().lookup("v", "fc1:8:8;fc2:4:4", 0);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->accuracy, 0.875);
  EXPECT_EQ(hit->discordance, 0.0625);
  EXPECT_FALSE(store.cache().lookup("v", "fc1:8:8;fc2:4:4", 1).has_value());

  TuneMeta other = meta;
  other.fingerprint = "model=y\n";
  TuneStore wrong(path, other);
  EXPECT_THROW(wrong.load_existing(), std::invalid_argument);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pcmsim::nets
