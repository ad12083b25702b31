// Helpers of the `pcmsim` command tests: run the built binary (PCMSIM_CLI_PATH), check a bad
// input's exit code and message, build a small model, a fixture with a temporary folder.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "nets/dataset.h"
#include "nets/model_io.h"
#include "nets/network.h"

namespace pcmsim::nets::cli_test {

struct Result {
  int code = -1;       // exit status, or -1 when the process did not exit normally
  int signal = 0;      // the signal that ended it, if any
  std::string output;  // stdout and stderr together
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `pcmsim args...` with optional environment assignments in front ("OMP_NUM_THREADS=1").
inline Result pcmsim(const std::vector<std::string>& args, const std::string& env = "") {
  std::string cmd = env + (env.empty() ? "" : " ") + quote(PCMSIM_CLI_PATH);
  for (const auto& a : args) cmd += " " + quote(a);
  cmd += " 2>&1";
  Result r;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int status = pclose(pipe);
  if (WIFEXITED(status)) r.code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

inline bool have_fashion_mnist() {
  return std::filesystem::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz");
}

// A 784-32-10 MLP for 28x28 images with fixed pseudo-random weights.
inline Network tiny_model() {
  Network net;
  net.name = "tiny_cli";
  net.input_shape = {1, 28, 28};
  net.num_classes = 10;
  net.input_mean = {0.286f};
  net.input_std = {0.353f};
  std::uint32_t state = 12345;
  auto next = [&]() {  // LCG, uniform in [-0.05, 0.05)
    state = state * 1664525u + 1013904223u;
    return (static_cast<float>(state >> 8) / 16777216.0f - 0.5f) * 0.1f;
  };
  auto fill = [&](Tensor& t, std::vector<Index> shape) {
    t.shape = shape;
    Index n = 1;
    for (Index d : shape) n *= d;
    t.data.resize(n);
    for (auto& v : t.data) v = next();
  };
  net.layers.push_back(Layer::make("flatten", LayerKind::flatten));
  Layer fc1 = Layer::make_linear("fc1", 784, 32, Activation::relu);
  fill(fc1.weight, {32, 784});
  fill(fc1.bias, {32});
  Layer fc2 = Layer::make_linear("fc2", 32, 10);
  fill(fc2.weight, {10, 32});
  fill(fc2.bias, {10});
  net.layers.push_back(fc1);
  net.layers.push_back(fc2);
  return net;
}

// Bad input: exit code 2, "error:" and every expected fragment in the message, no crash.
inline void expect_bad_input(const Result& r, const std::vector<std::string>& fragments) {
  EXPECT_EQ(r.signal, 0) << "killed by signal " << r.signal << "\n" << r.output;
  EXPECT_EQ(r.code, 2) << r.output;
  EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
  for (const auto& f : fragments)
    EXPECT_NE(r.output.find(f), std::string::npos) << "missing '" << f << "' in:\n" << r.output;
  EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("HDF5-DIAG"), std::string::npos) << "raw HDF5 error stack:\n" << r.output;
}

// A fixture with its own temporary folder (named after the test) holding tiny_model() as
// tiny.h5; removed afterwards.
class CliFolderTest : public ::testing::Test {
 protected:
  explicit CliFolderTest(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           (prefix_ + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    model_ = (dir_ / "tiny.h5").string();
    save_network(tiny_model(), model_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  std::string prefix_;
  std::filesystem::path dir_;
  std::string model_;
};

}  // namespace pcmsim::nets::cli_test
