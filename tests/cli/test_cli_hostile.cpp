// The `pcmsim` command on hostile input (issue 10): each case must end in exit code 2 with an
// "error:" line naming the parameter and the value, no crash, and nothing written in the output
// folder. Then: no arguments, a concurrent sweep, a full disk, a flipped byte in a model, and
// the same bytes for two identical runs and the same results for any batch size.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "h5/hdf5_io.h"
#include "nets/dataset.h"
#include "nets/model_io.h"
#include "tests/cli/cli_harness.h"

namespace fs = std::filesystem;

namespace pcmsim::nets {
namespace {

using namespace cli_test;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
}

std::string big_endian32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// The files of a folder (names), to check that a failing command wrote nothing.
std::vector<std::string> listing(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class HostileCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pcmsim_test_hostile_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_ / "in");
    fs::create_directories(dir_ / "out");
    model_ = in("tiny.h5");
    save_network(tiny_model(), model_);
    data_ = in("data.h5");
    save_hdf5_dataset(random_data(64), data_);
  }
  void TearDown() override {
    ::umount2((dir_ / "full").c_str(), MNT_DETACH);  // FullDisk's tmpfs, if a check failed
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string in(const std::string& name) const { return (dir_ / "in" / name).string(); }
  std::string out(const std::string& name) const { return (dir_ / "out" / name).string(); }

  static Dataset random_data(Index n) {
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    Dataset d;
    d.name = "random";
    d.channels = 1;
    d.height = d.width = 28;
    d.images.resize(n, 28 * 28);
    for (Index i = 0; i < d.images.size(); ++i) d.images.data()[i] = u(rng);
    for (Index i = 0; i < n; ++i) d.labels.push_back(static_cast<int>(i % 10));
    return d;
  }

  // `pcmsim run` on the small data set, one trial, one time, results in out/.
  std::vector<std::string> run_args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args = {"run", "--model",  model_,     "--data",
                                     data_, "--trials", "1",        "--t-inference",
                                     "1",   "--out",    out("r.h5")};
    for (std::size_t i = 0; i < extra.size(); ++i) {
      const auto at = std::find(args.begin(), args.end(), extra[i]);
      if (at != args.end() && i + 1 < extra.size() && extra[i].rfind("--", 0) == 0 &&
          extra[i + 1].rfind("--", 0) != 0) {
        *(at + 1) = extra[++i];
      } else {
        args.push_back(extra[i]);
      }
    }
    return args;
  }

  fs::path dir_;
  std::string model_, data_;
};

struct Case {
  std::string name;
  std::vector<std::string> args;
  std::vector<std::string> fragments;  // the parameter and the value, at least
};

TEST_F(HostileCli, BadInputTable) {
  // --- Files crafted for the cases.
  // A data set of float images in 0..255 (should be uint8, or floats in [0, 1]).
  Dataset bright = random_data(4);
  bright.images *= 255.0f;
  save_hdf5_dataset(bright, in("bright.h5"));
  // format_version 0 in a data set and in a model.
  save_hdf5_dataset(random_data(4), in("data_v0.h5"));
  h5::File::open_read_write(in("data_v0.h5")).write_attribute("format_version", std::int64_t{0});
  save_network(tiny_model(), in("model_v0.h5"));
  h5::File::open_read_write(in("model_v0.h5")).write_attribute("format_version", std::int64_t{0});
  // A model whose optional reference logits hold a NaN.
  {
    Network net = tiny_model();
    Reference ref;
    ref.predictions = {1, 2};
    ref.logits = MatrixF::Zero(2, 10);
    ref.logits(1, 3) = std::nanf("");
    net.reference = ref;
    save_network(net, in("nan_logits.h5"));
  }
  // An IDX image file of 32 bytes declaring 65535 images of 65536x65536 (256 TB).
  write_bytes(in("huge-images-idx3-ubyte"), big_endian32(0x803) + big_endian32(65535) +
                                                big_endian32(65536) + big_endian32(65536) +
                                                std::string(16, '\x07'));
  write_bytes(in("huge-labels-idx1-ubyte"), big_endian32(0x801) + big_endian32(65535) + "ab");
  // Small HDF5 data sets declaring 2^30 images of 28x28 (840 GB), chunked or contiguous, never
  // written.
  for (const char* layout : {"chunked", "contiguous"}) {
    h5::File f = h5::File::create(in(std::string("huge_") + layout + ".h5"));
    const hsize_t n = hsize_t{1} << 30;
    hsize_t dims[4] = {n, 1, 28, 28}, chunk[4] = {1, 1, 28, 28};
    h5::Handle space(H5Screate_simple(4, dims, nullptr));
    h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (std::string(layout) == "chunked") H5Pset_chunk(dcpl.get(), 4, chunk);
    h5::Handle d(H5Dcreate2(f.id(), "images", H5T_NATIVE_UINT8, space.get(), H5P_DEFAULT,
                            dcpl.get(), H5P_DEFAULT));
    h5::Handle lspace(H5Screate_simple(1, dims, nullptr));
    h5::Handle ldcpl(H5Pcreate(H5P_DATASET_CREATE));
    if (std::string(layout) == "chunked") H5Pset_chunk(ldcpl.get(), 1, chunk + 3);
    h5::Handle l(H5Dcreate2(f.id(), "labels", H5T_NATIVE_INT64, lspace.get(), H5P_DEFAULT,
                            ldcpl.get(), H5P_DEFAULT));
    ASSERT_TRUE(d.valid() && l.valid());
  }
  // A device table with an absurd conductance spread (1e300 uS).
  {
    std::ofstream t(in("absurd.csv"));
    t << "g_target_uS,prog_mean_uS,prog_std_uS,nu_mean,nu_std\n"
      << "0,0,1e300,0.05,0.01\n25,25,1,0.05,0.01\n";
  }
  // An INI file for a sweep grid of 2^64 points (four axes of 65536 values: too long for one
  // command-line word), and one of 101 x 100 points.
  {
    std::ofstream ini(in("huge_grid.ini"));
    for (const char* axis : {"seed", "out-noise", "in-noise", "w-noise"}) {
      ini << axis << " = ";
      for (int k = 0; k < 65536; ++k)
        ini << (k ? "," : "") << (std::string(axis) == "seed" ? k : k * 1e-6);
      ini << "\n";
    }
  }
  std::string seeds, times;
  for (int k = 0; k < 101; ++k) seeds += (k ? "," : "") + std::to_string(k);
  for (int k = 1; k <= 100; ++k) times += (k > 1 ? "," : "") + std::to_string(k);
  fs::create_directories(dir_ / "in" / "folder");
  const std::string folder = (dir_ / "in" / "folder").string();
  const std::vector<std::string> sweep = {"sweep", "--model", model_,     "--data",
                                          data_,   "--out",   out("s.h5")};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };

  const std::vector<Case> cases = {
      // Output paths: checked before any work.
      {"out is a device", run_args({"--out", "/dev/null"}), {"/dev/null", "not a regular file"}},
      {"out is a folder", run_args({"--out", folder}), {"folder", "not a regular file"}},
      {"out is a CSV", run_args({"--out", out("r.csv")}), {"--out", "r.csv", ".h5"}},
      {"out folder missing",
       run_args({"--out", out("missing/r.h5")}),
       {"missing", "does not exist"}},
      {"out folder not writable",
       run_args({"--out", "/proc/pcmsim_test.h5"}),
       {"/proc", "not writable"}},
      {"map out is a device",
       {"map", "--model", model_, "--out", "/dev/null"},
       {"--out", "/dev/null"}},
      {"device out is a device", {"device", "--out", "/dev/null"}, {"--out", "/dev/null"}},
      // Options: never clamped, wrapped or dropped.
      {"tile beyond 2^32",
       run_args({"--tile", "4294967300x4294967300"}),
       {"tile", "4294967300x4294967300"}},
      {"negative seed", run_args({"--seed", "-1"}), {"seed", "-1"}},
      {"stray positional word",
       run_args({"--t-inference", "1", "3600"}),
       {"unexpected word '3600'"}},
      {"trailing comma", run_args({"--t-inference", "1,"}), {"t-inference", "1,", "empty item"}},
      {"limit above the data", run_args({"--limit", "1000"}), {"limit = 1000", "64"}},
      {"adc inl table missing", run_args({"--adc-inl-table", "/nonexistent/t.csv"}),
       {"adc_inl_table = /nonexistent/t.csv", "cannot open"}},
      {"bench threads", {"bench", "mvm", "--threads", "1000000"}, {"--threads = 1000000"}},
      {"bench rows", {"bench", "mvm", "--rows", "100000000"}, {"--rows = 100000000"}},
      {"bench negative seed", {"bench", "mvm", "--seed", "-1"}, {"--seed", "-1"}},
      {"bench negative wire", {"bench", "mvm", "--r-row", "-1"}, {"--r-row = -1"}},
      {"device negative seed", {"device", "--seed", "-1"}, {"--seed", "-1"}},
      {"device stray word", {"device", "--samples", "10", "20"}, {"unexpected word '20'"}},
      {"map stray word", {"map", "--model", model_, "extra"}, {"unexpected word 'extra'"}},
      // Files: validated, sizes checked against the file before allocating.
      {"float images in 0..255",
       run_args({"--data", in("bright.h5")}),
       {"bright.h5", "images", "[0, 1]"}},
      {"data format_version 0",
       run_args({"--data", in("data_v0.h5")}),
       {"data_v0.h5", "format_version = 0"}},
      {"model format_version 0",
       run_args({"--model", in("model_v0.h5")}),
       {"model_v0.h5", "format_version = 0"}},
      {"NaN in reference logits",
       run_args({"--model", in("nan_logits.h5")}),
       {"nan_logits.h5", "logits[13] = nan", "must be finite"}},
      {"IDX declaring 256 TB",
       run_args({"--data", in("huge-images-idx3-ubyte"), "--limit", "1"}),
       {"huge-images-idx3-ubyte", "truncated", "65536x65536"}},
      {"HDF5 declaring 2^30 chunked images",
       run_args({"--data", in("huge_chunked.h5"), "--limit", "1"}),
       {"huge_chunked.h5", "images", "declared shape"}},
      {"HDF5 declaring 2^30 images",
       run_args({"--data", in("huge_contiguous.h5"), "--limit", "1"}),
       {"huge_contiguous.h5", "images", "declared shape"}},
      {"absurd device table",
       {"device", "--device-model", "tabulated", "--device-table", in("absurd.csv"), "--samples",
        "100"},
       {"absurd.csv", "prog_std_uS = 1e+300"}},
      // Sweeps.
      {"sweep config is a folder", with(sweep, {"--config", folder}), {"--config", "folder"}},
      {"sweep of 2^64 points",
       with(sweep, {"--config", in("huge_grid.ini")}),
       {"65536 (seed)", "more than 10000000 points"}},
      {"sweep of 10100 points without --yes",
       with(sweep, {"--seed", seeds, "--t-inference", times}),
       {"10100 points", "--yes"}},
      {"sweep stray word", with(sweep, {"--p-in", "4,8", "6"}), {"unexpected word '6'"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Result r = pcmsim(c.args);
    expect_bad_input(r, c.fragments);
    EXPECT_EQ(listing(dir_ / "out"), std::vector<std::string>{}) << "something was written";
  }
  EXPECT_FALSE(fs::exists("/proc/pcmsim_test.h5"));
}

// No command: exit 2 and the usage on stderr, nothing on stdout (it is an error).
TEST_F(HostileCli, NoArgumentsIsAnErrorOnStderr) {
  FILE* pipe = popen((quote(PCMSIM_CLI_PATH) + " 2>/dev/null").c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string stdout_text;
  char buf[256];
  for (std::size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) stdout_text.append(buf, n);
  const int status = pclose(pipe);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << status;
  EXPECT_EQ(stdout_text, "");
  const Result both = pcmsim({});
  EXPECT_NE(both.output.find("usage: pcmsim"), std::string::npos) << both.output;
  EXPECT_NE(both.output.find("error:"), std::string::npos) << both.output;
}

// A second sweep on the results file of a running one is refused by name, before it writes.
TEST_F(HostileCli, ConcurrentSweepOnOneOutIsRefused) {
  const std::string results = out("s.h5");
  const int fd = ::open((results + ".lock").c_str(), O_RDWR | O_CREAT, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::flock(fd, LOCK_EX | LOCK_NB), 0);  // as a running sweep holds it
  const Result r = pcmsim({"sweep", "--model", model_, "--data", data_, "--limit", "8", "--trials",
                           "1", "--t-inference", "1", "--out", results});
  ::close(fd);
  expect_bad_input(r, {"s.h5", "another pcmsim sweep"});
  EXPECT_FALSE(fs::exists(results));
}

// Two identical runs write byte-identical HDF5 files (no timestamps), and a flipped byte in
// a model's weights is a checksum error naming the dataset, not a silently changed weight.
TEST_F(HostileCli, SameBytesTwiceAndChecksums) {
  std::vector<std::string> files;
  for (const char* run : {"a", "b"}) {
    fs::create_directories(dir_ / run);
    const std::string path = (dir_ / run / "r.h5").string();
    const Result r = pcmsim(run_args({"--out", path, "--limit", "32", "--format", "csv"}));
    ASSERT_EQ(r.code, 0) << r.output;
    files.push_back(read_bytes(path));
  }
  ASSERT_FALSE(files[0].empty());
  EXPECT_TRUE(files[0] == files[1]) << "two identical runs wrote different .h5 bytes";

  // The first 16 bytes of fc2's weights (small: stored uncompressed), found in the file and one
  // bit flipped.
  const Network net = tiny_model();
  const std::string weights(reinterpret_cast<const char*>(net.layers[2].weight.data.data()), 16);
  std::string bytes = read_bytes(model_);
  const std::size_t at = bytes.find(weights);
  ASSERT_NE(at, std::string::npos) << "weights not stored as plain floats";
  bytes[at + 5] ^= 0x10;
  write_bytes(in("flipped.h5"), bytes);
  expect_bad_input(pcmsim(run_args({"--model", in("flipped.h5")})),
                   {"flipped.h5", "fc2", "weight", "checksum"});
  EXPECT_EQ(listing(dir_ / "out"), std::vector<std::string>{});
}

// --batch-size 10 and 64 give the same result datasets (the noise follows the sample, not the
// batch).
TEST_F(HostileCli, SameResultsForAnyBatchSize) {
  std::vector<std::vector<double>> accuracy;
  for (const char* batch : {"10", "64"}) {
    const std::string path = out(std::string("b") + batch + ".h5");
    const Result r = pcmsim(run_args({"--out", path, "--batch-size", batch, "--trials", "2",
                                      "--t-inference", "1,31536000", "--out-noise", "0.3"}));
    ASSERT_EQ(r.code, 0) << r.output;
    accuracy.push_back(h5::File::open_read(path).read_dataset<double>("accuracy").data);
  }
  ASSERT_EQ(accuracy[0].size(), 4u);
  EXPECT_EQ(accuracy[0], accuracy[1]);
}

// A full disk (a 64 KiB tmpfs, as root where mounting is allowed): a clear error, exit 2, no
// crash at exit, no partial file left, whatever point of the writing the disk fills up at.
TEST_F(HostileCli, FullDisk) {
  const fs::path mnt = dir_ / "full";
  fs::create_directories(mnt);
  if (::geteuid() != 0 || ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=64k") != 0)
    GTEST_SKIP() << "cannot mount a small tmpfs here (needs root and CAP_SYS_ADMIN)";
  int failures = 0;
  for (int free_kib : {0, 8, 24, 48}) {
    SCOPED_TRACE(::testing::Message() << free_kib << " KiB free");
    for (const auto& e : fs::directory_iterator(mnt)) fs::remove_all(e.path());
    {
      // Fill the disk up to free_kib (tmpfs counts whole 4 KiB pages).
      std::ofstream filler(mnt / "filler", std::ios::binary);
      const std::string block(4096, 'x');
      for (int k = 0; k < (64 - free_kib) / 4; ++k) filler.write(block.data(), block.size());
    }
    const Result r = pcmsim(run_args({"--out", (mnt / "r.h5").string(), "--limit", "16"}));
    EXPECT_EQ(r.signal, 0) << r.output;
    EXPECT_EQ(r.output.find("terminate called"), std::string::npos) << r.output;
    if (r.code == 0) continue;  // enough room after all
    ++failures;
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("error:"), std::string::npos) << r.output;
    for (const auto& e : fs::directory_iterator(mnt))
      EXPECT_EQ(e.path().string().find(".partial"), std::string::npos) << e.path();
  }
  ::umount(mnt.c_str());
  EXPECT_GT(failures, 0) << "the disk never filled up: the test tested nothing";
}

}  // namespace
}  // namespace pcmsim::nets
