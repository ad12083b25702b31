// The FP32 path against PyTorch itself: tests/data/nets_torch_tiny.h5 is a random residual CNN
// using every layer kind with awkward geometry (padding, dilation, groups, depthwise, asymmetric
// kernels/strides, ceil_mode, count_include_pad=False), exported with its PyTorch (eval mode)
// logits on the images of nets_torch_tiny_data.h5 (tests/data/nets_make_torch_fixture.py).
#include <gtest/gtest.h>

#include <cstdlib>

#include "nets/dataset.h"
#include "nets/forward.h"
#include "nets/model_io.h"

namespace pcmsim::nets {
namespace {

std::string data_dir() {
  const char* d = std::getenv("PCMSIM_TEST_DATA");
  return d ? d : "tests/data";
}

TEST(Fp32Torch, ReproducesPytorchLogits) {
  Network net = load_network(data_dir() + "/nets_torch_tiny.h5");
  ASSERT_TRUE(net.reference.has_value());
  ASSERT_GT(net.reference->logits.rows(), 0);
  Dataset data = load_hdf5_dataset(data_dir() + "/nets_torch_tiny_data.h5");
  ASSERT_EQ(data.size(), net.reference->logits.rows());
  MatrixF x = normalized_images(data, net);
  Fp32Matmul mm(net);
  MatrixF y = logits(net, x, mm, 7);  // odd batch size: several batches and a partial one
  const MatrixF& ref = net.reference->logits;
  // Both sides are float32 with different summation orders (oneDNN vs Eigen) over ~25 layers:
  // measured max |difference| 9e-8 on logits of O(0.1) (a few ulp). 1e-6 leaves 10x margin,
  // while a semantic difference shows: count_include_pad flipped moves logits by 1.1e-3,
  // a BN eps of 1e-5 instead of 1e-3 by 2.2e-6.
  for (Index n = 0; n < y.rows(); ++n)
    for (Index c = 0; c < y.cols(); ++c)
      EXPECT_NEAR(y(n, c), ref(n, c), 1e-6f) << "image " << n << " class " << c;
  // Predictions: identical except where PyTorch's own margin is below the tolerance.
  auto pred = argmax_rows(y);
  for (std::size_t i = 0; i < pred.size(); ++i)
    if (net.reference->margin[i] > 2e-6f) {
      EXPECT_EQ(pred[i], net.reference->predictions[i]) << "image " << i;
    }
}

}  // namespace
}  // namespace pcmsim::nets
