// The HDF5 model format: round trip, and the loader rejecting every kind of bad file with a
// message that names the file, the layer and the value.
#include <gtest/gtest.h>

#include <fstream>

#include "h5/hdf5_io.h"
#include "nets/forward.h"
#include "nets/model_io.h"
#include "nets_test_util.h"

namespace pcmsim::nets {
namespace {

namespace h5 = ::pcmsim::h5;

// Expects load_network(path) to throw std::runtime_error whose message contains every part.
void expect_load_error(const std::string& path, std::vector<std::string> parts) {
  try {
    load_network(path);
    ADD_FAILURE() << "no exception for " << path;
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    for (const auto& p : parts)
      EXPECT_NE(m.find(p), std::string::npos) << "missing '" << p << "' in: " << m;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

void expect_same_network(const Network& a, const Network& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.input_shape, b.input_shape);
  EXPECT_EQ(a.num_classes, b.num_classes);
  EXPECT_EQ(a.input_mean, b.input_mean);
  EXPECT_EQ(a.input_std, b.input_std);
  EXPECT_EQ(a.class_names, b.class_names);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    const Layer &x = a.layers[i], &y = b.layers[i];
    SCOPED_TRACE(x.name);
    EXPECT_EQ(x.name, y.name);
    EXPECT_EQ(x.kind, y.kind);
    EXPECT_EQ(a.layer_inputs(int(i)), b.layer_inputs(int(i)));
    EXPECT_EQ(x.activation, y.activation);
    EXPECT_EQ(x.in_features, y.in_features);
    EXPECT_EQ(x.out_features, y.out_features);
    EXPECT_EQ(x.in_channels, y.in_channels);
    EXPECT_EQ(x.out_channels, y.out_channels);
    EXPECT_EQ(x.groups, y.groups);
    EXPECT_EQ(x.kernel_size, y.kernel_size);
    EXPECT_EQ(x.stride, y.stride);
    EXPECT_EQ(x.padding, y.padding);
    EXPECT_EQ(x.dilation, y.dilation);
    EXPECT_EQ(x.ceil_mode, y.ceil_mode);
    EXPECT_EQ(x.count_include_pad, y.count_include_pad);
    EXPECT_EQ(x.num_features, y.num_features);
    EXPECT_EQ(x.eps, y.eps);
    if (x.kind == LayerKind::leaky_relu) {
      EXPECT_EQ(x.negative_slope, y.negative_slope);
    }
    for (auto [t, u] : {std::pair{&x.weight, &y.weight},
                        {&x.bias, &y.bias},
                        {&x.running_mean, &y.running_mean},
                        {&x.running_var, &y.running_var}}) {
      EXPECT_EQ(t->shape, u->shape);
      EXPECT_EQ(t->data, u->data);  // bit-exact float32 round trip
    }
  }
}

TEST(ModelIo, RoundTripTinyResnet) {
  test::TempDir dir;
  Network net = test::tiny_resnet(21);
  Reference ref;
  ref.dataset = "random";
  ref.accuracy = 0.5;
  ref.predictions = {0, 2, 1, 1};
  ref.margin = {0.1f, 0.2f, 0.3f, 0.4f};
  ref.logits = MatrixF::Random(4, 3);
  net.reference = ref;
  const std::string path = dir.file("tiny.h5");
  save_network(net, path);
  Network back = load_network(path);
  EXPECT_EQ(back.source, path);
  expect_same_network(net, back);
  ASSERT_TRUE(back.reference.has_value());
  EXPECT_EQ(back.reference->dataset, "random");
  EXPECT_EQ(back.reference->accuracy, 0.5);
  EXPECT_EQ(back.reference->predictions, ref.predictions);
  EXPECT_EQ(back.reference->margin, ref.margin);
  EXPECT_EQ(back.reference->logits, ref.logits);
  // Same logits from the original and the loaded network.
  MatrixF x = MatrixF::Random(5, net.input_size());
  Fp32Matmul m1(net), m2(back);
  EXPECT_EQ(forward(net, x, m1), forward(back, x, m2));
}

TEST(ModelIo, RoundTripEveryKind) {
  test::TempDir dir;
  std::mt19937 rng(3);
  Network net;
  net.name = "kinds";
  net.input_shape = {3, 6, 6};
  net.num_classes = 2;
  net.input_mean = {0, 0, 0};
  net.input_std = {1, 1, 1};
  auto push = [&](Layer L) {
    test::fill_weights(L, rng);
    net.layers.push_back(L);
  };
  push(Layer::make_conv2d("c", 3, 4, {3, 3}, {1, 1}, {1, 1}, {1, 1}, 1, Activation::silu));
  for (LayerKind k :
       {LayerKind::relu, LayerKind::relu6, LayerKind::leaky_relu, LayerKind::sigmoid,
        LayerKind::tanh, LayerKind::gelu, LayerKind::silu, LayerKind::elu, LayerKind::hardtanh,
        LayerKind::hardswish, LayerKind::hardsigmoid, LayerKind::identity, LayerKind::dropout}) {
    Layer L = Layer::make(std::string(kind_name(k)) + "_x", k);
    L.negative_slope = 0.3;
    L.alpha = 0.5;
    L.min_val = -2;
    L.max_val = 3;
    L.gelu_tanh = true;
    push(L);
  }
  Layer mp = Layer::make("mp", LayerKind::maxpool2d);
  mp.kernel_size = {3, 2};
  mp.stride = {1, 2};
  mp.padding = {1, 1};
  mp.dilation = {1, 1};
  mp.ceil_mode = true;
  push(mp);
  Layer bn = Layer::make("bn", LayerKind::batchnorm2d);
  bn.num_features = 4;
  bn.eps = 2e-5;
  bn.activation = Activation::hardswish;
  push(bn);
  Layer ap = Layer::make("ap", LayerKind::avgpool2d);
  ap.kernel_size = {2, 2};
  ap.stride = {2, 2};
  ap.count_include_pad = false;
  push(ap);
  push(Layer::make("g", LayerKind::global_avgpool));
  push(Layer::make("f", LayerKind::flatten));
  push(Layer::make_linear("fc", 4, 2, Activation::tanh));
  save_network(net, dir.file("k.h5"));
  Network back = load_network(dir.file("k.h5"));
  expect_same_network(net, back);
  EXPECT_TRUE(back.layers[6].gelu_tanh);
  EXPECT_EQ(back.layers[8].alpha, 0.5);
  EXPECT_EQ(back.layers[9].min_val, -2);
  EXPECT_FALSE(back.reference.has_value());
}

// Writes a minimal valid model by hand with the h5 helpers (as an exporter would), letting the
// test tamper with it first.
struct HandModel {
  std::string path;
  explicit HandModel(std::string p) : path(std::move(p)) {}
  // Writes root attributes and layers 000_flat, 001_fc (linear 4 -> 3), 002_relu, 003_out (3 -> 2).
  void write(const std::function<void(h5::File&)>& tamper = nullptr) {
    h5::File f = h5::File::create(path);
    f.write_attribute("format", "pcmsim-model");
    f.write_attribute("format_version", 1);
    f.write_attribute("name", "hand");
    f.write_attribute("input_shape", std::vector<std::int64_t>{1, 2, 2});
    f.write_attribute("num_classes", 2);
    f.write_attribute("input_mean", std::vector<double>{0.5});
    f.write_attribute("input_std", std::vector<double>{0.25});
    f.write_attribute("class_names", std::vector<std::string>{"no", "yes"});
    h5::Group L = f.create_group("layers");
    L.create_group("000_flat").write_attribute("kind", "flatten");
    h5::Group fc = L.create_group("001_fc");
    fc.write_attribute("kind", "linear");
    fc.write_attribute("in_features", 4);
    fc.write_attribute("out_features", 3);
    std::vector<float> w(12);
    for (int i = 0; i < 12; ++i) w[i] = 0.1f * float(i - 6);
    fc.write_dataset("weight", w, {3, 4});
    fc.write_dataset("bias", std::vector<float>{0.1f, -0.2f, 0.3f}, {3});
    L.create_group("002_relu").write_attribute("kind", "relu");
    h5::Group out = L.create_group("003_out");
    out.write_attribute("kind", "linear");
    out.write_attribute("in_features", 3);
    out.write_attribute("out_features", 2);
    out.write_dataset("weight", std::vector<double>{1, -1, 0.5, -0.5, 2, 0},
                      {2, 3});  // float64 accepted
    if (tamper) tamper(f);
    f.close();
  }
};

TEST(ModelIo, HandWrittenFileLoadsAndRuns) {
  test::TempDir dir;
  HandModel m(dir.file("hand.h5"));
  m.write();
  Network net = load_network(m.path);
  ASSERT_EQ(net.layers.size(), 4u);
  EXPECT_EQ(net.layers[1].name, "fc");
  EXPECT_EQ(net.class_names[1], "yes");
  EXPECT_TRUE(net.layers[3].bias.empty());
  // x = 1 everywhere (normalised); fc: rows sum w: row o = sum_{i} 0.1*(4o+i-6) + b.
  MatrixF x = MatrixF::Ones(1, 4);
  Fp32Matmul mm(net);
  MatrixF y = forward(net, x, mm);
  // fc: row0 = 0.1*(-6-5-4-3)+0.1 = -1.7 -> relu 0; row1 = 0.1*(-2-1+0+1)-0.2 = -0.4 -> 0;
  // row2 = 0.1*(2+3+4+5)+0.3 = 1.7. out: [0.5*1.7, 0*1.7] = [0.85, 0].
  EXPECT_NEAR(y(0, 0), 0.85f, 1e-6f);
  EXPECT_NEAR(y(0, 1), 0.0f, 1e-6f);
}

TEST(ModelIo, ResidualInputsByIndexAndName) {
  test::TempDir dir;
  HandModel m(dir.file("res.h5"));
  m.write([](h5::File& f) {
    h5::Group L = f.open_group("layers");
    // Replace relu by an add of fc (by name) and the relu... (by index): fc + fc.
    h5::Group a = L.open_group("002_relu");
    a.write_attribute("kind", "add");
    a.write_attribute("inputs", "fc, 1");
    a.write_attribute("activation", "relu");
  });
  Network net = load_network(m.path);
  EXPECT_EQ(net.layers[2].kind, LayerKind::add);
  EXPECT_EQ(net.layers[2].inputs, (std::vector<int>{1, 1}));
  EXPECT_EQ(net.layers[2].activation, Activation::relu);
}

TEST(ModelIo, RejectsMissingFile) {
  expect_load_error("/nonexistent/model.h5", {"/nonexistent/model.h5", "not found"});
}

TEST(ModelIo, RejectsNonHdf5File) {
  test::TempDir dir;
  std::ofstream(dir.file("x.h5")) << "this is not an HDF5 file";
  expect_load_error(dir.file("x.h5"), {"x.h5", "not an HDF5 file"});
}

TEST(ModelIo, RejectsTruncatedFile) {
  test::TempDir dir;
  Network net = test::tiny_resnet(2);
  save_network(net, dir.file("full.h5"));
  std::ifstream in(dir.file("full.h5"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 4000u);
  for (std::size_t keep : {bytes.size() / 2, bytes.size() - 100, std::size_t(600)}) {
    std::ofstream(dir.file("cut.h5"), std::ios::binary).write(bytes.data(), std::streamsize(keep));
    SCOPED_TRACE(keep);
    expect_load_error(dir.file("cut.h5"), {"cut.h5"});
  }
}

TEST(ModelIo, RejectsCorruptedFile) {
  test::TempDir dir;
  Network net = test::tiny_resnet(2);
  save_network(net, dir.file("full.h5"));
  std::ifstream in(dir.file("full.h5"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Overwrite the whole metadata region after the superblock with garbage: object headers,
  // B-trees and heaps are gone. Either opening fails or reading the layers does; never a crash.
  std::string bad = bytes;
  for (std::size_t i = 96; i < std::min<std::size_t>(bad.size(), 2048); ++i)
    bad[i] = static_cast<char>((i * 131) & 0xff);
  std::ofstream(dir.file("bad.h5"), std::ios::binary)
      .write(bad.data(), std::streamsize(bad.size()));
  expect_load_error(dir.file("bad.h5"), {"bad.h5"});
  // A corrupted signature.
  bad = bytes;
  bad[1] = 'X';
  std::ofstream(dir.file("sig.h5"), std::ios::binary)
      .write(bad.data(), std::streamsize(bad.size()));
  expect_load_error(dir.file("sig.h5"), {"sig.h5", "not an HDF5 file"});
}

TEST(ModelIo, RejectsWrongFormatOrVersion) {
  test::TempDir dir;
  HandModel m(dir.file("v.h5"));
  m.write([](h5::File& f) { f.write_attribute("format_version", 2); });
  expect_load_error(m.path, {"v.h5", "format_version = 2", "newer"});
  m.write([](h5::File& f) { f.write_attribute("format", "keras"); });
  expect_load_error(m.path, {"v.h5", "format = \"keras\""});
  m.write([](h5::File& f) { f.write_attribute("format", 3.0); });
  expect_load_error(m.path, {"v.h5", "'format'", "expected a string"});
}

TEST(ModelIo, RejectsWrongWeightShape) {
  test::TempDir dir;
  HandModel m(dir.file("w.h5"));
  m.write([](h5::File& f) {
    h5::Group fc = f.open_group("layers/001_fc");
    H5Ldelete(fc.id(), "weight", H5P_DEFAULT);
    fc.write_dataset("weight", std::vector<float>(12, 0.f), {4, 3});  // transposed
  });
  expect_load_error(m.path, {"w.h5", "layer 1 'fc'", "weight has shape (4, 3), expected (3, 4)"});
  // Declared shape that does not match the data flowing in.
  m.write([](h5::File& f) { f.open_group("layers/003_out").write_attribute("in_features", 5); });
  expect_load_error(m.path, {"w.h5", "layer 3 'out'", "in_features = 5", "3 features"});
}

TEST(ModelIo, RejectsUnknownKind) {
  test::TempDir dir;
  HandModel m(dir.file("k.h5"));
  m.write([](h5::File& f) { f.open_group("layers/002_relu").write_attribute("kind", "softplus"); });
  expect_load_error(m.path, {"k.h5", "layer 2 'relu'", "kind = \"softplus\"", "unknown"});
}

TEST(ModelIo, RejectsMissingAttribute) {
  test::TempDir dir;
  HandModel m(dir.file("a.h5"));
  m.write([](h5::File& f) { H5Adelete(f.open_group("layers/001_fc").id(), "out_features"); });
  expect_load_error(m.path, {"a.h5", "layer 1 'fc'", "'out_features' is missing"});
  m.write([](h5::File& f) { H5Adelete(f.id(), "num_classes"); });
  expect_load_error(m.path, {"a.h5", "'num_classes' is missing"});
  m.write([](h5::File& f) { H5Adelete(f.open_group("layers/000_flat").id(), "kind"); });
  expect_load_error(m.path, {"a.h5", "layer 0 'flat'", "'kind' is missing"});
  m.write(
      [](h5::File& f) { f.open_group("layers/001_fc").write_attribute("in_features", "four"); });
  expect_load_error(m.path, {"a.h5", "'in_features'", "expected integers"});
  m.write([](h5::File& f) { f.open_group("layers/001_fc").write_attribute("in_features", 4.5); });
  expect_load_error(m.path, {"a.h5", "'in_features'", "4.5", "not an integer"});
}

TEST(ModelIo, RejectsNanAndInfWeights) {
  test::TempDir dir;
  HandModel m(dir.file("n.h5"));
  m.write([](h5::File& f) {
    h5::Group fc = f.open_group("layers/001_fc");
    H5Ldelete(fc.id(), "bias", H5P_DEFAULT);
    fc.write_dataset("bias", std::vector<float>{0.f, std::nanf(""), 0.f}, {3});
  });
  expect_load_error(m.path, {"n.h5", "layer 1 'fc'", "bias[1] = nan", "finite"});
  m.write([](h5::File& f) {
    h5::Group o = f.open_group("layers/003_out");
    H5Ldelete(o.id(), "weight", H5P_DEFAULT);
    o.write_dataset("weight", std::vector<double>{1, 1, 1, 1e300, 1, 1}, {2, 3});  // inf as float32
  });
  expect_load_error(m.path, {"n.h5", "layer 3 'out'", "weight[3] = inf"});
}

// A learned DAC input range (pcmsim.torch) is an optional attribute of matrix layers.
TEST(ModelIo, LearnedInputRangeRoundTripsAndIsChecked) {
  test::TempDir dir;
  HandModel m(dir.file("r.h5"));
  m.write([](h5::File& f) { f.open_group("layers/001_fc").write_attribute("learned_input_range", 2.5); });
  const Network net = load_network(m.path);
  EXPECT_EQ(net.layers[1].learned_input_range, 2.5);
  EXPECT_EQ(net.layers[3].learned_input_range, 0.0);  // absent: none
  EXPECT_EQ(matrix_layers(net).front().learned_input_range, 2.5);
  const std::string again = dir.file("again.h5");
  save_network(net, again);
  EXPECT_EQ(load_network(again).layers[1].learned_input_range, 2.5);
  m.write([](h5::File& f) { f.open_group("layers/001_fc").write_attribute("learned_input_range", -1.0); });
  expect_load_error(m.path, {"layer 1 'fc'", "learned_input_range = -1", ">= 0"});
  m.write([](h5::File& f) { f.open_group("layers/002_relu").write_attribute("learned_input_range", 1.0); });
  expect_load_error(m.path, {"layer 2 'relu'", "only linear, conv1d and conv2d"});
}

TEST(ModelIo, RejectsBadGraphAndLayout) {
  test::TempDir dir;
  HandModel m(dir.file("g.h5"));
  m.write([](h5::File& f) { f.open_group("layers/002_relu").write_attribute("inputs", "out"); });
  expect_load_error(m.path, {"g.h5", "layer 2 'relu'", "input 3 is not an earlier layer"});
  m.write([](h5::File& f) { f.open_group("layers/002_relu").write_attribute("inputs", "nope"); });
  expect_load_error(m.path, {"g.h5", "no layer named 'nope'"});
  m.write([](h5::File& f) { f.open_group("layers/002_relu").write_attribute("inputs", "1,1"); });
  expect_load_error(m.path, {"g.h5", "layer 2 'relu'", "2 inputs, expected 1"});
  m.write([](h5::File& f) {
    H5Lmove(f.id(), "layers/002_relu", f.id(), "layers/005_relu", H5P_DEFAULT, H5P_DEFAULT);
  });
  expect_load_error(m.path, {"g.h5", "index 2 is missing"});
  m.write([](h5::File& f) {
    H5Lmove(f.id(), "layers/002_relu", f.id(), "layers/2_relu", H5P_DEFAULT, H5P_DEFAULT);
  });
  expect_load_error(m.path, {"g.h5", "layers/2_relu", "NNN_"});
  m.write(
      [](h5::File& f) { f.open_group("layers/001_fc").write_attribute("activation", "softmax"); });
  expect_load_error(m.path, {"g.h5", "activation = \"softmax\""});
  m.write([](h5::File& f) {
    f.write_attribute("num_classes", 3);
    H5Adelete(f.id(), "class_names");
  });
  expect_load_error(m.path, {"g.h5", "'out' outputs (2), expected (3)"});
  // A dangling branch: the output layer reads fc directly, the relu's output is never used.
  m.write([](h5::File& f) { f.open_group("layers/003_out").write_attribute("inputs", "1"); });
  expect_load_error(m.path, {"g.h5", "layer 2 'relu'", "never used"});
  m.write([](h5::File& f) { f.write_attribute("num_classes", 3); });
  expect_load_error(m.path, {"g.h5", "class_names has 2 entries"});
  m.write([](h5::File& f) { f.write_attribute("input_std", std::vector<double>{0.0}); });
  expect_load_error(m.path, {"g.h5", "input_std[0] = 0"});
  m.write([](h5::File& f) {
    f.write_attribute("input_shape", std::vector<std::int64_t>{1, 3, 2});
  });
  expect_load_error(m.path, {"g.h5", "layer 1 'fc'", "in_features = 4", "6 features"});
}

TEST(ModelIo, RejectsBadReference) {
  test::TempDir dir;
  HandModel m(dir.file("r.h5"));
  m.write([](h5::File& f) {
    auto r = f.create_group("reference");
    r.write_dataset("predictions", std::vector<std::int64_t>{0, 1, 2}, {3});
  });
  expect_load_error(m.path, {"r.h5", "reference", "predictions[2] = 2"});
  m.write([](h5::File& f) {
    auto r = f.create_group("reference");
    r.write_attribute("num_images", 4);
    r.write_dataset("predictions", std::vector<std::int64_t>{0, 1, 1}, {3});
  });
  expect_load_error(m.path, {"r.h5", "num_images = 4"});
}

TEST(ModelIo, SaveRejectsInvalidNetwork) {
  test::TempDir dir;
  Network net = test::tiny_resnet(2);
  net.layers[0].weight.data[3] = std::nanf("");
  EXPECT_THROW(save_network(net, dir.file("x.h5")), std::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.h5")));
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.h5.tmp")));
}

}  // namespace
}  // namespace pcmsim::nets
