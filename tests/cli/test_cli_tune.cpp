// `pcmsim tune` end to end: bad input (exit code 2, the parameter and value named, checked
// before any work) and a small search that resumes without recomputing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "h5/hdf5_io.h"
#include "nets/model_io.h"
#include "tests/cli/cli_harness.h"

namespace fs = std::filesystem;

namespace pcmsim::nets {
namespace {

using namespace cli_test;

class CliTune : public CliFolderTest {
 protected:
  CliTune() : CliFolderTest("pcmsim_test_cli_tune_") {}
  // A small search: the test set's first images as validation and test data. `extra`
  // ("--opt", "value" pairs, or a lone "--resume") replace the defaults they name or are
  // appended.
  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::pair<std::string, std::string>> opts = {
        {"--model", model_}, {"--validation-data", "fashion-mnist:t10k"},
        {"--validation-images", "64"}, {"--limit", "64"}, {"--trials", "2"},
        {"--candidate-bits", "8,4"}, {"--uniform-bits", "8,4"}, {"--budget", "50"},
        {"--out", path("t.h5")}};
    std::vector<std::string> flags;
    for (std::size_t i = 0; i < extra.size(); ++i) {
      if (extra[i] == "--resume") {
        flags.push_back(extra[i]);
        continue;
      }
      bool replaced = false;
      for (auto& o : opts)
        if (o.first == extra[i]) o.second = extra[i + 1], replaced = true;
      if (!replaced) opts.emplace_back(extra[i], extra[i + 1]);
      ++i;
    }
    std::vector<std::string> a = {"tune"};
    for (const auto& o : opts) {
      a.push_back(o.first);
      a.push_back(o.second);
    }
    a.insert(a.end(), flags.begin(), flags.end());
    return a;
  }
};

TEST_F(CliTune, BadInputNamesTheParameter) {
  expect_bad_input(pcmsim(args({"--budget", "nan"})), {"budget", "nan"});
  expect_bad_input(pcmsim(args({"--budget", "-1"})), {"budget = -1"});
  expect_bad_input(pcmsim(args({"--candidate-bits", "8,1"})), {"candidate_bits = 1"});
  expect_bad_input(pcmsim(args({"--candidate-bits", ""})), {"candidate"});
  expect_bad_input(pcmsim(args({"--tune-layers", "fc9"})), {"tune_layers", "'fc9'"});
  expect_bad_input(pcmsim(args({"--layer-precision", "fc9:4:4"})), {"'fc9'"});
  expect_bad_input(pcmsim(args({"--t-inference", "1,86400"})), {"t-inference", "one"});
  expect_bad_input(pcmsim(args({"--out", path("no/such/folder/t.h5")})), {"no/such/folder"});
  EXPECT_FALSE(fs::exists(path("t.h5")));
}

TEST_F(CliTune, SearchWritesResultsAndResumesWithoutRecomputing) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST not installed";
  const Result first = pcmsim(args());
  ASSERT_EQ(first.code, 0) << first.output;
  EXPECT_NE(first.output.find("--layer-precision fc1:"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("uniform 8"), std::string::npos) << first.output;
  ASSERT_TRUE(fs::exists(path("t.h5")));
  ASSERT_TRUE(fs::exists(path("t.csv")));
  EXPECT_FALSE(fs::exists(path("t.h5.journal")));
  {
    const h5::File f = h5::File::open_read(path("t.h5"));
    EXPECT_EQ(f.read_string_attribute("format"), "pcmsim-tune");
    EXPECT_TRUE(f.has_group("candidates"));
    EXPECT_TRUE(f.has_group("pareto"));
    EXPECT_TRUE(f.has_group("test"));
  }
  // The same output again: refused without --resume, nothing recomputed with it.
  expect_bad_input(pcmsim(args()), {"already exists", "--resume"});
  const Result again = pcmsim(args({"--resume"}));
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_NE(again.output.find("(0 accuracies computed"), std::string::npos) << again.output;
  // Another budget reuses the journalled accuracies; another time is another search.
  const Result budget = pcmsim(args({"--resume", "--budget", "0"}));
  ASSERT_EQ(budget.code, 0) << budget.output;
  expect_bad_input(pcmsim(args({"--resume", "--t-inference", "1"})), {"another search"});
}

}  // namespace
}  // namespace pcmsim::nets
