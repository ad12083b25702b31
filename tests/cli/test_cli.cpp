#include <algorithm>
// The `pcmsim` command end to end: the built binary (PCMSIM_CLI_PATH) on good input and on bad
// input. Bad input must end in a clear one-line error naming what is wrong and exit code 2
// (cli/main.cpp: 2 = bad input), never a crash, an abort or a silent success.
//
// The model is a small network built here (so the test does not depend on the zoo); the data
// are the first images of Fashion-MNIST (skipped when dataset-fashion-mnist is not installed)
// or small HDF5 data sets written here.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/settings.h"
#include "h5/hdf5_io.h"
#include "nets/dataset.h"
#include "nets/evaluation.h"
#include "nets/forward.h"
#include "nets/model_io.h"
#include "nets/simulation.h"
#include "tests/cli/cli_harness.h"

namespace fs = std::filesystem;

namespace pcmsim::nets {
namespace {

using namespace cli_test;

class Cli : public CliFolderTest {
 protected:
  Cli() : CliFolderTest("pcmsim_test_cli_") {}

  // A copy of the model file cut to `fraction` of its length.
  std::string truncated_model(double fraction) const {
    std::ifstream in(model_, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::string out = path("truncated.h5");
    std::ofstream(out, std::ios::binary).write(bytes.data(), bytes.size() * fraction);
    return out;
  }
  // A copy with `count` bytes at `offset` overwritten by a pattern.
  std::string corrupted_model(std::size_t offset, std::size_t count) const {
    std::ifstream in(model_, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::size_t i = offset; i < offset + count && i < bytes.size(); ++i)
      bytes[i] = static_cast<char>(0xA5 ^ i);
    const std::string out = path("corrupted.h5");
    std::ofstream(out, std::ios::binary).write(bytes.data(), bytes.size());
    return out;
  }

  // `pcmsim run` on a few images, one trial, one time; `extra` ("--opt", "value" pairs) replace
  // the defaults they name or are appended.
  std::vector<std::string> run_args(const std::string& model, const std::string& data,
                                    std::vector<std::string> extra = {}) const {
    std::vector<std::pair<std::string, std::string>> opts = {
        {"--model", model}, {"--data", data}, {"--limit", "64"}, {"--trials", "1"},
        {"--t-inference", "1"}, {"--format", "csv"}, {"--out", path("r.h5")}};
    for (std::size_t i = 0; i + 1 < extra.size(); i += 2) {
      bool replaced = false;
      for (auto& o : opts)
        if (o.first == extra[i]) o.second = extra[i + 1], replaced = true;
      if (!replaced) opts.emplace_back(extra[i], extra[i + 1]);
    }
    std::vector<std::string> args = {"run"};
    for (const auto& o : opts) {
      args.push_back(o.first);
      args.push_back(o.second);
    }
    return args;
  }

};

TEST_F(Cli, RunWritesCsvAndHdf5MatchingTheLibrary) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const Result r = pcmsim({"run", "--model", model_, "--limit", "100", "--trials", "2",
                           "--t-inference", "1,86400", "--format", "csv", "--out", path("r.h5")});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_TRUE(fs::exists(path("r.h5")));
  ASSERT_TRUE(fs::exists(path("r.csv")));
  std::ifstream csv(path("r.csv"));
  std::string header, line;
  std::getline(csv, header);
  // The columns are the settings' names (as in the sweep CSV), then the results.
  const auto split = [](const std::string& text) {
    std::vector<std::string> cells;
    std::stringstream in(text);
    for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
    return cells;
  };
  const std::vector<std::string> names = split(header);
  const auto column = [&](const std::string& name) {
    const auto it = std::find(names.begin(), names.end(), name);
    EXPECT_NE(it, names.end()) << "no column " << name << " in " << header;
    return static_cast<std::size_t>(it - names.begin());
  };
  EXPECT_EQ(names.front(), "model");
  EXPECT_EQ(names.back(), "fp32_acc");
  std::vector<std::string> rows;
  while (std::getline(csv, line))
    if (!line.empty()) rows.push_back(line);
  ASSERT_EQ(rows.size(), 2u);
  const std::vector<std::vector<std::string>> cells = {split(rows[0]), split(rows[1])};
  for (const auto& row : cells) {
    ASSERT_EQ(row.size(), names.size());
    EXPECT_EQ(row[column("model")], "tiny_cli");
    EXPECT_EQ(row[column("p_in")], "8");
    EXPECT_EQ(row[column("p_out")], "8");
    EXPECT_EQ(row[column("gdc")], "on");
    EXPECT_EQ(row[column("trials")], "2");
  }
  EXPECT_EQ(cells[0][column("t_inference")], "1");
  EXPECT_EQ(cells[1][column("t_inference")], "86400");
  // The FP32 column is what the library computes on the same 100 images.
  const Network net = load_network(model_);
  const Dataset data = load_dataset("fashion-mnist:t10k", 100);
  Fp32Matmul fp32(net);
  const double acc = accuracy_of(net, normalized_images(data, net), data.labels, fp32, 256);
  const double fp32_col = std::stod(rows[0].substr(rows[0].rfind(',') + 1));
  EXPECT_NEAR(fp32_col, acc, 1e-6);
  // stdout carries the same CSV as the file.
  EXPECT_NE(r.output.find(rows[1]), std::string::npos);
}

TEST_F(Cli, SameSeedSameCsvForOneAndTwoThreads) {
  if (!have_fashion_mnist()) GTEST_SKIP() << "dataset-fashion-mnist not installed";
  std::vector<std::string> args = {"run", "--model", model_, "--limit", "100", "--trials", "2",
                                   "--t-inference", "3600,31536000", "--seed", "17",
                                   "--format", "csv", "--out"};
  auto a1 = args, a2 = args;
  a1.push_back(path("t1.h5"));
  a2.push_back(path("t2.h5"));
  const Result r1 = pcmsim(a1, "OMP_NUM_THREADS=1");
  const Result r2 = pcmsim(a2, "OMP_NUM_THREADS=2");
  ASSERT_EQ(r1.code, 0) << r1.output;
  ASSERT_EQ(r2.code, 0) << r2.output;
  std::ifstream f1(path("t1.csv")), f2(path("t2.csv"));
  std::stringstream s1, s2;
  s1 << f1.rdbuf();
  s2 << f2.rdbuf();
  EXPECT_FALSE(s1.str().empty());
  EXPECT_EQ(s1.str(), s2.str());
}

TEST_F(Cli, TruncatedModelFile) {
  const std::string bad = truncated_model(0.5);
  expect_bad_input(pcmsim(run_args(bad, "fashion-mnist:t10k")), {"truncated.h5"});
  expect_bad_input(pcmsim({"map", "--model", bad, "--tile", "256x256"}), {"truncated.h5"});
}

TEST_F(Cli, CorruptedModelFile) {
  // The superblock (file signature) garbled: not an HDF5 file any more.
  expect_bad_input(pcmsim(run_args(corrupted_model(0, 64), "fashion-mnist:t10k")),
                   {"corrupted.h5"});
  // Not HDF5 at all.
  std::ofstream(path("text.h5")) << "this is not a model\n";
  expect_bad_input(pcmsim(run_args(path("text.h5"), "fashion-mnist:t10k")), {"text.h5"});
  // A missing file.
  expect_bad_input(pcmsim(run_args(path("missing.h5"), "fashion-mnist:t10k")), {"missing.h5"});
}

TEST_F(Cli, LayerShapeThatDoesNotMatchItsWeights) {
  {
    pcmsim::h5::File f = pcmsim::h5::File::open_read_write(model_);
    pcmsim::h5::Group layer = f.open_group("layers").open_group("001_fc1");
    layer.write_attribute("out_features", std::int64_t{16});  // weight stays [32, 784]
    f.close();
  }
  expect_bad_input(pcmsim(run_args(model_, "fashion-mnist:t10k")), {"fc1", "tiny.h5"});
  expect_bad_input(pcmsim({"map", "--model", model_, "--tile", "256x256"}), {"fc1"});
}

TEST_F(Cli, DataWhoseImageSizeDoesNotMatchTheModel) {
  Dataset data;
  data.name = "wrong-size";
  data.channels = 1;
  data.height = data.width = 32;
  data.images = MatrixF::Constant(8, 32 * 32, 0.5f);
  data.labels = {0, 1, 2, 3, 4, 5, 6, 7};
  save_hdf5_dataset(data, path("wrong_size.h5"));
  expect_bad_input(pcmsim(run_args(model_, path("wrong_size.h5"), {"--limit", "0"})), {"32"});
}

TEST_F(Cli, LabelsOutOfRange) {
  Dataset data;
  data.name = "bad-labels";
  data.channels = 1;
  data.height = data.width = 28;
  data.images = MatrixF::Constant(4, 28 * 28, 0.5f);
  data.labels = {0, 3, 10, 1};  // the model has 10 classes: 10 is out of range
  save_hdf5_dataset(data, path("bad_labels.h5"));
  expect_bad_input(pcmsim(run_args(model_, path("bad_labels.h5"), {"--limit", "0"})), {"10"});
  data.labels = {0, -1, 2, 1};
  save_hdf5_dataset(data, path("negative_labels.h5"));
  expect_bad_input(pcmsim(run_args(model_, path("negative_labels.h5"), {"--limit", "0"})), {"-1"});
}

// The options are generated from the settings' field lists: every setting of the chip and the
// evaluation is an option of run and sweep (a setting left out of the CLI fails here).
TEST_F(Cli, EverySettingIsAnOption) {
  for (const char* command : {"run", "sweep"}) {
    const Result r = pcmsim({command, "--help"});
    ASSERT_EQ(r.code, 0) << r.output;
    for (const auto& s : core::settings<SimulationConfig>())
      EXPECT_NE(r.output.find("--" + s.option_name() + " "), std::string::npos)
          << command << " --help lacks --" << s.option_name();
    for (const auto& s : core::settings<EvaluationOptions>())
      EXPECT_NE(r.output.find("--" + s.option_name() + " "), std::string::npos)
          << command << " --help lacks --" << s.option_name();
  }
  const Result device = pcmsim({"device", "--help"});
  for (const auto& s : core::settings<devices::DeviceSpec>())
    EXPECT_NE(device.output.find("--" + s.option_name() + " "), std::string::npos)
        << "device --help lacks --" << s.option_name();
}

TEST_F(Cli, BadOptions) {
  auto with = [&](std::vector<std::string> extra) {
    return run_args(model_, "fashion-mnist:t10k", std::move(extra));
  };
  expect_bad_input(pcmsim(with({"--tile", "0x256"})), {"tile"});
  expect_bad_input(pcmsim({"map", "--model", model_, "--tile", "0x256"}), {"tile"});
  expect_bad_input(pcmsim(with({"--tile", "256"})), {"tile"});
  expect_bad_input(pcmsim(with({"--p-in", "1"})), {"p_in"});
  expect_bad_input(pcmsim(with({"--trials", "0"})), {"trials"});
  expect_bad_input(pcmsim(with({"--t-inference", "-5"})), {"t"});
  expect_bad_input(pcmsim(with({"--limit", "-1"})), {"limit"});
  expect_bad_input(pcmsim(with({"--digital-layers", "no_such_layer"})), {"no_such_layer"});
  expect_bad_input(pcmsim(with({"--out-noise", "nan"})), {"out-noise"});
  expect_bad_input(pcmsim(with({"--r-row", "-1"})), {"r_row = -1"});
  expect_bad_input(pcmsim(with({"--r-sense", "nan"})), {"r-sense"});
  expect_bad_input(pcmsim(with({"--adc-columns", "0"})), {"adc_columns = 0"});
  expect_bad_input(pcmsim(with({"--frobnicate", "1"})), {"frobnicate"});
  expect_bad_input(pcmsim(with({"--trials", "three"})), {"trials"});
  // Nothing was written by any of them.
  EXPECT_FALSE(fs::exists(path("r.h5")));
  EXPECT_FALSE(fs::exists(path("r.csv")));
}

// `bench mvm` takes the tile and unit-cell settings and counts the GEMMs of the case: 8-bit
// weights in 4-bit slices (2 planes) times 8-bit inputs 1 bit per cycle (7 magnitude cycles).
TEST(CliBench, MvmCountsTheGemmsOfBitSlicedBitSerialCases) {
  const auto r = pcmsim({"bench", "mvm", "--rows", "24", "--cols", "16", "--batch", "5", "--tile",
                         "16x16", "--repeats", "1", "--cell", "bit_sliced", "--weight-bits", "8",
                         "--slice-bits", "4", "--b-in", "1"});
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("\"gemms\":14,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"tiles\":2,"), std::string::npos) << r.output;
  for (const char* field : {"\"ratio\":", "\"ratio_eigen\":", "\"ratio_per_gemm\":", "\"baseline\":"})
    EXPECT_NE(r.output.find(field), std::string::npos) << field << " in " << r.output;
  const auto noisy = pcmsim({"bench", "mvm", "--rows", "16", "--cols", "16", "--batch", "3",
                             "--tile", "16x16", "--repeats", "1", "--read-noise", "pcm_like",
                             "--w-noise", "0.02"});
  ASSERT_EQ(noisy.code, 0) << noisy.output;
  EXPECT_NE(noisy.output.find("\"gemms\":2,"), std::string::npos) << noisy.output;
  expect_bad_input(pcmsim({"bench", "mvm", "--slice-bits", "0", "--cell", "bit_sliced"}),
                   {"slice_bits"});
}

}  // namespace
}  // namespace pcmsim::nets
