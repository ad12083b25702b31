// ONNX import on committed fixtures (tests/data/make_onnx_fixture.py): PyTorch's logits
// reproduced, and broken files (truncated, random bytes, wrong opset, unsupported operators)
// give clear errors without crashing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>

#include "h5/hdf5_io.h"
#include "nets/dataset.h"
#include "nets/forward.h"
#include "nets/model_io.h"
#include "nets/onnx_import.h"
#include "nets_test_util.h"

namespace pcmsim::nets {
namespace {

std::string data_dir() {
  const char* d = std::getenv("PCMSIM_TEST_DATA");
  return d ? d : "tests/data";
}

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string error_of(const std::string& path) {
  try {
    (void)import_onnx(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

class OnnxImport : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!onnx_available()) GTEST_SKIP() << "built without ONNX";
  }
};

TEST_F(OnnxImport, ReproducesPytorchLogits) {
  const Network net = import_onnx(data_dir() + "/onnx_tiny.onnx");
  // Normalisation and class names from metadata_props.
  ASSERT_EQ(net.input_mean.size(), 1u);
  EXPECT_FLOAT_EQ(net.input_mean[0], 0.25f);
  EXPECT_FLOAT_EQ(net.input_std[0], 0.5f);
  EXPECT_EQ(net.class_names, (std::vector<std::string>{"a", "b", "c", "d", "e"}));
  EXPECT_NE(net.converted_from.find("opset 13"), std::string::npos);
  // Two convs and six linears on tiles (q, k, v, mlp x2, fc); attention stays digital.
  EXPECT_EQ(matrix_layers(net).size(), 8u);
  int matmuls = 0, pads = 0;
  for (const Layer& L : net.layers) {
    matmuls += L.kind == LayerKind::matmul;
    pads += L.kind == LayerKind::pad;
  }
  EXPECT_EQ(matmuls, 2);
  EXPECT_EQ(pads, 1);

  const Dataset data = load_hdf5_dataset(data_dir() + "/onnx_tiny_io.h5");
  const MatrixF x = normalized_images(data, net);
  Fp32Matmul mm(net);
  const MatrixF y = logits(net, x, mm, 5);  // several batches and a partial one
  auto ref = h5::File::open_read(data_dir() + "/onnx_tiny_io.h5").read_dataset<float>("logits");
  ASSERT_EQ(y.rows(), 16);
  ASSERT_EQ(y.cols(), 5);
  for (Index i = 0; i < y.rows(); ++i)
    for (Index j = 0; j < y.cols(); ++j)  // float32 summation order: ~1e-6 relative
      EXPECT_NEAR(y(i, j), ref.data[i * 5 + j], 2e-5) << i << "," << j;
}

TEST_F(OnnxImport, ConvertedModelRoundTripsThroughTheModelFile) {
  test::TempDir dir;
  const Network net = import_onnx(data_dir() + "/onnx_tiny.onnx");
  save_network(net, dir.file("tiny.h5"));
  const Network back = load_network(dir.file("tiny.h5"));
  EXPECT_EQ(back.converted_from, net.converted_from);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  MatrixF x(4, 64);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = u(rng);
  Fp32Matmul a(net), b(back);
  EXPECT_EQ(logits(net, x, a), logits(back, x, b));
  // load_model dispatches by extension; options are for ONNX only.
  EXPECT_EQ(load_model(dir.file("tiny.h5")).layers.size(), net.layers.size());
  ModelInputOptions opts;
  opts.input_mean = {0.5};
  EXPECT_THROW(load_model(dir.file("tiny.h5"), opts), std::invalid_argument);
  EXPECT_FLOAT_EQ(load_model(data_dir() + "/onnx_tiny.onnx", opts).input_mean[0], 0.5f);
}

TEST_F(OnnxImport, WrongOpsetAndUnsupportedOperatorsAreNamed) {
  std::string e = error_of(data_dir() + "/onnx_opset18.onnx");
  EXPECT_NE(e.find("opset 18 is not supported"), std::string::npos) << e;
  EXPECT_NE(e.find("opsets 9 to 17"), std::string::npos) << e;
  e = error_of(data_dir() + "/onnx_unsupported.onnx");
  EXPECT_NE(e.find("2 unsupported operators: Resize (node '/1/Resize'), Softplus (node "
                   "'/2/Softplus')"),
            std::string::npos)
      << e;
}

TEST_F(OnnxImport, TruncatedAndCorruptFilesAreClearErrors) {
  test::TempDir dir;
  const std::string good = read_bytes(data_dir() + "/onnx_tiny.onnx");
  ASSERT_GT(good.size(), 1000u);
  const std::string bad = dir.file("bad.onnx");
  // Truncated at many points: every one an error naming the file (none parses as a model).
  for (std::size_t cut : {std::size_t(0), std::size_t(1), std::size_t(10), std::size_t(200),
                          good.size() / 4, good.size() / 2, good.size() - 100, good.size() - 1}) {
    write_bytes(bad, good.substr(0, cut));
    const std::string e = error_of(bad);
    EXPECT_NE(e.find("[nets::import_onnx] " + bad + ": "), std::string::npos)
        << "cut " << cut << ": " << e;
  }
  // Random bytes and randomly overwritten bytes: an error or (a changed weight) a model, never
  // a crash.
  std::mt19937 rng(7);
  for (int trial = 0; trial < 60; ++trial) {
    std::string blob = good;
    if (trial < 10) {
      blob.assign(static_cast<std::size_t>(100 + 37 * trial), '\0');
      for (char& c : blob) c = static_cast<char>(rng() & 0xff);
    } else {
      for (int k = 0; k < 4; ++k) blob[rng() % blob.size()] = static_cast<char>(rng() & 0xff);
    }
    write_bytes(bad, blob);
    try {
      const Network net = import_onnx(bad);
      EXPECT_NO_THROW(net.validate());
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  EXPECT_NE(error_of(dir.file("missing.onnx")).find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace pcmsim::nets
