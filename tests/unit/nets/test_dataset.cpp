// Data sets: IDX (gzip or plain), HDF5, normalisation, and the checks against a model.
#include <gtest/gtest.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>

#include "h5/hdf5_io.h"
#include "nets/dataset.h"
#include "nets_test_util.h"

namespace pcmsim::nets {
namespace {

namespace h5 = ::pcmsim::h5;

std::string be32(std::uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

void write_bytes(const std::string& path, const std::string& bytes, bool gzip) {
  if (gzip) {
    gzFile g = gzopen(path.c_str(), "wb");
    ASSERT_NE(g, nullptr);
    ASSERT_EQ(gzwrite(g, bytes.data(), unsigned(bytes.size())), int(bytes.size()));
    gzclose(g);
  } else {
    std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
  }
}

// n images of h x w with pixel (i, k) = (7*i + k) % 256, labels i % 10.
void write_idx(const std::string& img, const std::string& lab, int n, int h, int w, bool gzip,
               int n_labels = -1) {
  std::string a = be32(0x803) + be32(n) + be32(h) + be32(w);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < h * w; ++k) a += char((7 * i + k) % 256);
  write_bytes(img, a, gzip);
  if (n_labels < 0) n_labels = n;
  std::string b = be32(0x801) + be32(n_labels);
  for (int i = 0; i < n_labels; ++i) b += char(i % 10);
  write_bytes(lab, b, gzip);
}

Network model_for(Index c, Index h, Index w, Index classes) {
  Network net;
  net.name = "m";
  net.input_shape = {c, h, w};
  net.num_classes = classes;
  for (Index i = 0; i < c; ++i) {
    net.input_mean.push_back(0.25f * float(i + 1));
    net.input_std.push_back(0.5f);
  }
  net.layers.push_back(Layer::make("flat", LayerKind::flatten));
  std::mt19937 rng(1);
  Layer fc = Layer::make_linear("fc", c * h * w, classes);
  test::fill_weights(fc, rng);
  net.layers.push_back(fc);
  return net;
}

template <class E, class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no exception of the expected type)";
}

TEST(Dataset, IdxGzipAndPlain) {
  test::TempDir dir;
  for (bool gz : {true, false}) {
    const std::string img = dir.file(gz ? "i.gz" : "i"), lab = dir.file(gz ? "l.gz" : "l");
    write_idx(img, lab, 12, 3, 4, gz);
    Dataset d = load_idx_dataset(img, lab);
    ASSERT_EQ(d.size(), 12);
    EXPECT_EQ(d.height, 3);
    EXPECT_EQ(d.width, 4);
    EXPECT_EQ(d.channels, 1);
    EXPECT_EQ(d.images(5, 7), float((7 * 5 + 7) % 256) / 255.f);
    EXPECT_EQ(d.labels[11], 1);
    Dataset first = load_idx_dataset(img, lab, 5);
    EXPECT_EQ(first.size(), 5);
    EXPECT_EQ(first.images.row(4), d.images.row(4));
    // A limit beyond the file is an error naming it, never silently clamped.
    const std::string m =
        error_of<std::invalid_argument>([&] { load_idx_dataset(img, lab, 100); });
    EXPECT_NE(m.find("limit = 100"), std::string::npos) << m;
    EXPECT_NE(m.find("only 12 images"), std::string::npos) << m;
  }
}

TEST(Dataset, IdxErrors) {
  test::TempDir dir;
  const std::string img = dir.file("i.gz"), lab = dir.file("l.gz");
  // Count mismatch.
  write_idx(img, lab, 12, 3, 4, true, 11);
  std::string m = error_of<std::runtime_error>([&] { load_idx_dataset(img, lab); });
  EXPECT_NE(m.find("12 images"), std::string::npos) << m;
  EXPECT_NE(m.find("11 labels"), std::string::npos) << m;
  // Wrong magic: labels file given as images.
  write_idx(img, lab, 12, 3, 4, true);
  m = error_of<std::runtime_error>([&] { load_idx_dataset(lab, img); });
  EXPECT_NE(m.find("l.gz: magic number 0x00000801"), std::string::npos) << m;
  // Truncated payload (plain file cut short).
  std::string a = be32(0x803) + be32(10) + be32(4) + be32(4) + std::string(100, 'x');
  write_bytes(dir.file("cut"), a, false);
  write_idx(dir.file("ok_i"), dir.file("ok_l"), 10, 4, 4, false);
  m = error_of<std::runtime_error>([&] { load_idx_dataset(dir.file("cut"), dir.file("ok_l")); });
  EXPECT_NE(m.find("cut: truncated file"), std::string::npos) << m;
  EXPECT_NE(m.find("160 bytes, only 100"), std::string::npos) << m;
  // Truncated gzip stream.
  {
    std::ifstream in(img, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    write_bytes(dir.file("cut.gz"), bytes.substr(0, bytes.size() / 2), false);
  }
  m = error_of<std::runtime_error>([&] { load_idx_dataset(dir.file("cut.gz"), lab); });
  EXPECT_NE(m.find("cut.gz"), std::string::npos) << m;
  EXPECT_TRUE(m.find("truncated") != std::string::npos || m.find("corrupt") != std::string::npos)
      << m;
  // Header cut inside.
  write_bytes(dir.file("hdr"), be32(0x803) + "\x00\x00", false);
  m = error_of<std::runtime_error>([&] { load_idx_dataset(dir.file("hdr"), lab); });
  EXPECT_NE(m.find("hdr: truncated file: the header (image count)"), std::string::npos) << m;
  m = error_of<std::runtime_error>([&] { load_idx_dataset(dir.file("missing"), lab); });
  EXPECT_NE(m.find("missing: file not found"), std::string::npos) << m;
}

TEST(Dataset, FashionMnistTestSet) {
  const std::string dirpath = kFashionMnistDir;
  if (!std::filesystem::exists(dirpath + "/t10k-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist not installed";
  Dataset d = load_dataset("fashion-mnist:test");
  ASSERT_EQ(d.size(), 10000);
  EXPECT_EQ(d.height, 28);
  EXPECT_EQ(d.width, 28);
  EXPECT_EQ(d.name, "fashion-mnist:t10k");
  std::vector<int> counts(10, 0);
  for (int l : d.labels) {
    ASSERT_GE(l, 0);
    ASSERT_LT(l, 10);
    ++counts[l];
  }
  for (int c : counts) EXPECT_EQ(c, 1000);  // Fashion-MNIST's test set is balanced
  // Published first labels of the test set: 9 (ankle boot), 2, 1, 1, 6.
  EXPECT_EQ(std::vector<int>(d.labels.begin(), d.labels.begin() + 5),
            (std::vector<int>{9, 2, 1, 1, 6}));
  EXPECT_GE(d.images.minCoeff(), 0.f);
  EXPECT_LE(d.images.maxCoeff(), 1.f);
  EXPECT_EQ(load_dataset("fashion-mnist:t10k", 100).size(), 100);
  EXPECT_THROW(load_dataset("fashion-mnist:validation"), std::invalid_argument);
  EXPECT_THROW(load_dataset("cifar10"), std::invalid_argument);
}

TEST(Dataset, Hdf5RoundTripAndUint8) {
  test::TempDir dir;
  Dataset d;
  d.name = "rnd";
  d.channels = 2;
  d.height = 3;
  d.width = 2;
  d.images = (MatrixF::Random(5, 12).array() * 0.5f + 0.5f).matrix();
  d.labels = {0, 1, 2, 1, 0};
  save_hdf5_dataset(d, dir.file("d.h5"));
  Dataset b = load_hdf5_dataset(dir.file("d.h5"));
  EXPECT_EQ(b.name, "rnd");
  EXPECT_EQ(b.channels, 2);
  EXPECT_EQ(b.images, d.images);
  EXPECT_EQ(b.labels, d.labels);
  EXPECT_EQ(load_dataset(dir.file("d.h5"), 2).size(), 2);
  {
    h5::File f = h5::File::create(dir.file("u8.h5"));
    std::vector<std::uint8_t> px{0, 51, 255, 102};
    f.write_dataset("images", px, {1, 2, 2});  // [N, H, W]: C = 1
    f.write_dataset("labels", std::vector<std::int32_t>{3}, {1});
  }
  Dataset u = load_hdf5_dataset(dir.file("u8.h5"));
  EXPECT_EQ(u.channels, 1);
  EXPECT_EQ(u.images(0, 1), 0.2f);
  EXPECT_EQ(u.images(0, 2), 1.0f);
  EXPECT_EQ(u.labels[0], 3);
}

TEST(Dataset, Hdf5Errors) {
  test::TempDir dir;
  auto write = [&](const std::string& name, std::vector<std::size_t> ishape, std::size_t nl,
                   float fill = 0.5f, std::int64_t label = 0) {
    h5::File f = h5::File::create(dir.file(name));
    std::size_t n = 1;
    for (auto s : ishape) n *= s;
    f.write_dataset("images", std::vector<float>(n, fill), ishape);
    f.write_dataset("labels", std::vector<std::int64_t>(nl, label), {nl});
  };
  write("count.h5", {3, 1, 2, 2}, 2);
  std::string m = error_of<std::runtime_error>([&] { load_hdf5_dataset(dir.file("count.h5")); });
  EXPECT_NE(m.find("count.h5: images holds 3 samples but labels holds 2"), std::string::npos) << m;
  write("rank.h5", {12}, 12);
  m = error_of<std::runtime_error>([&] { load_hdf5_dataset(dir.file("rank.h5")); });
  EXPECT_NE(m.find("images has rank 1"), std::string::npos) << m;
  write("nan.h5", {1, 1, 2, 2}, 1, std::nanf(""));
  m = error_of<std::runtime_error>([&] { load_hdf5_dataset(dir.file("nan.h5")); });
  EXPECT_NE(m.find("must be finite"), std::string::npos) << m;
  write("neg.h5", {1, 1, 2, 2}, 1, 0.5f, -3);
  m = error_of<std::runtime_error>([&] { load_hdf5_dataset(dir.file("neg.h5")); });
  EXPECT_NE(m.find("labels[0] = -3"), std::string::npos) << m;
  {
    h5::File f = h5::File::create(dir.file("nolab.h5"));
    f.write_dataset("images", std::vector<float>(4), {1, 1, 2, 2});
  }
  m = error_of<std::runtime_error>([&] { load_hdf5_dataset(dir.file("nolab.h5")); });
  EXPECT_NE(m.find("nolab.h5: dataset 'labels' is missing"), std::string::npos) << m;
  m = error_of<std::runtime_error>([&] { load_hdf5_dataset(dir.file("none.h5")); });
  EXPECT_NE(m.find("none.h5: file not found"), std::string::npos) << m;
}

TEST(Dataset, ImageSizeMismatchAndLabelsOutOfRange) {
  test::TempDir dir;
  write_idx(dir.file("i"), dir.file("l"), 20, 4, 4, false);  // labels 0..9
  Dataset d = load_idx_dataset(dir.file("i"), dir.file("l"));
  Network wrong_size = model_for(1, 5, 4, 10);
  std::string m = error_of<std::invalid_argument>([&] { check_compatible(d, wrong_size); });
  EXPECT_NE(m.find("(1, 4, 4)"), std::string::npos) << m;
  EXPECT_NE(m.find("expects (1, 5, 4)"), std::string::npos) << m;
  Network wrong_channels = model_for(3, 4, 4, 10);
  EXPECT_THROW(normalized_images(d, wrong_channels), std::invalid_argument);
  Network few_classes = model_for(1, 4, 4, 5);
  m = error_of<std::invalid_argument>([&] { check_compatible(d, few_classes); });
  EXPECT_NE(m.find("label 5 = 5 is out of range"), std::string::npos) << m;
  EXPECT_NE(m.find("num_classes = 5"), std::string::npos) << m;
  Network ok = model_for(1, 4, 4, 10);
  EXPECT_NO_THROW(check_compatible(d, ok));
}

TEST(Dataset, NormalisationPerChannel) {
  Dataset d;
  d.name = "n";
  d.channels = 2;
  d.height = 1;
  d.width = 2;
  d.images.resize(1, 4);
  d.images << 0.f, 1.f, 0.5f, 0.25f;
  d.labels = {1};
  Network net = model_for(2, 1, 2, 2);  // mean 0.25, 0.5; std 0.5
  MatrixF x = normalized_images(d, net);
  EXPECT_EQ(x(0, 0), (0.f - 0.25f) / 0.5f);
  EXPECT_EQ(x(0, 1), (1.f - 0.25f) / 0.5f);
  EXPECT_EQ(x(0, 2), (0.5f - 0.5f) / 0.5f);
  EXPECT_EQ(x(0, 3), (0.25f - 0.5f) / 0.5f);
}

}  // namespace
}  // namespace pcmsim::nets
