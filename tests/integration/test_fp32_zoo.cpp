// Every model of the zoo (zoo/*.h5): the simulator's FP32 path reproduces the predictions
// PyTorch recorded in the file's `reference` group on the whole Fashion-MNIST test set.
//
// Allowed differences: both sides compute in float32 with different summation orders, so
// logits differ by ~1e-6 relative. A prediction may therefore only flip where PyTorch's own
// top-1/top-2 margin is tiny; we allow a flip only where the recorded margin is below
// kTieMargin (1e-3, ~100x the float32 noise on logits of O(10)), and at most kMaxTies per model.
// In practice the count is 0 (see the test output).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "nets/dataset.h"
#include "nets/forward.h"
#include "nets/model_io.h"

namespace pcmsim::nets {
namespace {

constexpr float kTieMargin = 1e-3f;
constexpr int kMaxTies = 5;

std::vector<std::string> zoo_models() {
  // ctest sets PCMSIM_TEST_DATA (= <source>/tests/data); PCMSIM_SOURCE_DIR may be missing
  // (gtest_discover_tests keeps only the first ENVIRONMENT entry), so derive it from there.
  std::filesystem::path dir;
  if (const char* src = std::getenv("PCMSIM_SOURCE_DIR")) {
    dir = std::filesystem::path(src) / "zoo";
  } else if (const char* data = std::getenv("PCMSIM_TEST_DATA")) {
    dir = std::filesystem::path(data) / ".." / ".." / "zoo";
  } else {
    dir = std::filesystem::path("zoo");
  }
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().extension() == ".h5") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(Fp32Zoo, ReproducesPytorchPredictionsOnTheTestSet) {
  const auto models = zoo_models();
  if (models.empty()) GTEST_SKIP() << "no zoo/*.h5 yet";
  if (!std::filesystem::exists(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  const Dataset data = load_dataset("fashion-mnist:test");
  ASSERT_EQ(data.size(), 10000);
  for (const auto& path : models) {
    SCOPED_TRACE(path);
    Network net = load_network(path);
    ASSERT_TRUE(net.reference.has_value()) << path << " has no reference group";
    const Reference& ref = *net.reference;
    ASSERT_TRUE(ref.dataset == "fashion-mnist:t10k" || ref.dataset == "fashion-mnist:test")
        << "reference dataset '" << ref.dataset << "'";
    const Index n = static_cast<Index>(ref.predictions.size());
    ASSERT_EQ(n, data.size()) << "reference must cover the whole test set";
    MatrixF x = normalized_images(data, net);
    Fp32Matmul mm(net);
    const MatrixF y = logits(net, x, mm);
    const std::vector<int> pred = argmax_rows(y);
    if (ref.logits.rows() == n) {
      // Measured max |difference| 1.1e-5 on logits up to ~27 (float32 rounding of different
      // summation orders); 1e-4 leaves ~9x margin and still catches any semantic error.
      EXPECT_LT((y - ref.logits).cwiseAbs().maxCoeff(), 1e-4f) << net.name;
    }
    int flips = 0, bad = 0;
    for (Index i = 0; i < n; ++i) {
      if (pred[i] == ref.predictions[i]) continue;
      ++flips;
      const bool near_tie = !ref.margin.empty() && ref.margin[i] < kTieMargin;
      if (!near_tie) {
        ++bad;
        if (bad <= 5)
          ADD_FAILURE() << net.name << ": image " << i << " predicted " << pred[i] << ", PyTorch "
                        << ref.predictions[i]
                        << (ref.margin.empty()
                                ? std::string()
                                : ", PyTorch margin " + std::to_string(ref.margin[i]));
      }
    }
    EXPECT_EQ(bad, 0) << net.name;
    EXPECT_LE(flips, kMaxTies) << net.name;
    const double acc = accuracy(pred, std::vector<int>(data.labels.begin(), data.labels.end()));
    if (ref.accuracy >= 0) {
      EXPECT_NEAR(acc, ref.accuracy, (flips + 0.5) / double(n)) << net.name;
    }
    std::printf("[ zoo      ] %-16s FP32 accuracy %.4f (PyTorch %.4f), %d near-tie flips of %lld\n",
                net.name.c_str(), acc, ref.accuracy, flips, static_cast<long long>(n));
  }
}

}  // namespace
}  // namespace pcmsim::nets
