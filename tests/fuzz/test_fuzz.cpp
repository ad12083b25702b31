// Fuzzing the file readers (label `fuzz`): valid model, data-set and device-table files, mutated
// by bit flips, truncations, overwritten ranges and huge declared shapes, each read in a child
// process. A reader must load the file or throw std::invalid_argument / std::runtime_error (the
// CLI's exit code 2); a crash (signal), a hang (no answer within kHangSeconds) or any other
// exception (std::bad_alloc: an allocation sized by the file's claims) fails the test.
//
// Runs for PCMSIM_FUZZ_SECONDS in total (default 6, spread over the targets); mutations are
// seeded (PCMSIM_FUZZ_SEED, default 1) so a failure can be replayed. Each target prints
//   fuzz <target>: tried N, clean errors E, loaded L, crash C, hang H, unclean U
// ("loaded": the mutation hit bytes the reader does not use, or a value that is still valid).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "devices/tabulated_model.h"
#include "h5/hdf5_io.h"
#include "nets/dataset.h"
#include "nets/forward.h"
#include "nets/model_io.h"
#include "tests/unit/nets/nets_test_util.h"

namespace fs = std::filesystem;

namespace pcmsim {
namespace {

constexpr unsigned kHangSeconds = 30;  // generous: sanitizer builds are ~10x slower

double fuzz_seconds() {
  const char* s = std::getenv("PCMSIM_FUZZ_SECONDS");
  return s ? std::atof(s) : 6.0;
}

unsigned fuzz_seed() {
  const char* s = std::getenv("PCMSIM_FUZZ_SEED");
  return s ? static_cast<unsigned>(std::atoi(s)) : 1u;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), bytes.size());
}

std::string gzip(const std::string& bytes) {
  uLongf size = compressBound(bytes.size()) + 32;
  std::string out(size, '\0');
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // gzip header
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

// ---- mutations ------------------------------------------------------------------------------

// Little-endian (HDF5) or big-endian (IDX) integers that look like a dimension, replaced by a
// huge one: the "huge declared shape" of a hostile header.
void huge_shape(std::string& b, std::mt19937_64& rng, bool big_endian, std::size_t width) {
  std::vector<std::size_t> spots;
  for (std::size_t i = 0; i + width <= b.size(); ++i) {
    std::uint64_t v = 0;
    for (std::size_t k = 0; k < width; ++k) {
      const auto byte = static_cast<unsigned char>(b[i + k]);
      v |= static_cast<std::uint64_t>(byte) << (8 * (big_endian ? width - 1 - k : k));
    }
    if (v >= 2 && v <= 100000) spots.push_back(i);
  }
  if (spots.empty()) return;
  const std::size_t at = spots[rng() % spots.size()];
  const std::uint64_t huge[] = {0xFFFFFFFFFFFFFFFFull, 1ull << 62,    1ull << 40, 1ull << 32,
                                0xFFFFFFFFull,         0x7FFFFFFFull, 65536,      1ull << 20};
  const std::uint64_t v = huge[rng() % (sizeof huge / sizeof huge[0])];
  for (std::size_t k = 0; k < width; ++k)
    b[at + k] = static_cast<char>(v >> (8 * (big_endian ? width - 1 - k : k)));
}

std::string mutate(std::string b, std::mt19937_64& rng, bool big_endian, int& kind) {
  kind = static_cast<int>(rng() % 5);
  if (b.empty()) return b;
  switch (kind) {
    case 0: {  // a few bit flips
      const int flips = 1 + static_cast<int>(rng() % 8);
      for (int k = 0; k < flips; ++k) b[rng() % b.size()] ^= static_cast<char>(1u << (rng() % 8));
      break;
    }
    case 1:  // truncation
      b.resize(rng() % b.size());
      break;
    case 2: {  // a range of random bytes
      const std::size_t at = rng() % b.size(), n = 1 + rng() % 64;
      for (std::size_t i = at; i < std::min(b.size(), at + n); ++i) b[i] = static_cast<char>(rng());
      break;
    }
    case 3: {  // a range of 0x00 or 0xFF
      const std::size_t at = rng() % b.size(), n = 1 + rng() % 16;
      const char fill = rng() % 2 ? '\0' : '\xff';
      for (std::size_t i = at; i < std::min(b.size(), at + n); ++i) b[i] = fill;
      break;
    }
    default:  // a huge declared shape
      if (big_endian)
        huge_shape(b, rng, true, 4);
      else
        huge_shape(b, rng, false, rng() % 2 ? 8 : 4);
  }
  return b;
}

// ---- the child ------------------------------------------------------------------------------

enum Outcome { kLoaded = 0, kCleanError = 2, kUnclean = 3 };

// Runs `read` in a child process; returns the outcome or -signal. The child exits with _exit
// after H5close(), so a handle left open during HDF5's shutdown shows as a crash too.
int run_child(const std::function<void()>& read) {
  std::cout.flush();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(kHangSeconds);
#if !defined(__SANITIZE_ADDRESS__)
    // No allocation beyond 2 GiB: a reader trusting a declared size fails here (bad_alloc),
    // not by swapping the machine. (AddressSanitizer reserves terabytes of address space.)
    const rlimit limit{rlim_t{2} << 30, rlim_t{2} << 30};
    ::setrlimit(RLIMIT_AS, &limit);
#endif
    int code = kLoaded;
    try {
      read();
    } catch (const std::invalid_argument&) {
      code = kCleanError;
    } catch (const std::runtime_error&) {
      code = kCleanError;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "unclean: %s\n", e.what());
      code = kUnclean;
    } catch (...) {
      code = kUnclean;
    }
    H5close();
    ::_exit(code);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) return -WTERMSIG(status);
  return WEXITSTATUS(status);
}

struct Counts {
  int tried = 0, clean = 0, loaded = 0, crash = 0, hang = 0, unclean = 0;
};

// Mutates `seed_file` for `seconds`, reading each mutant with `read(path)`.
Counts fuzz(const std::string& name, const std::string& seed_file, bool big_endian,
            const std::function<void(const std::string&)>& read, double seconds,
            std::mt19937_64& rng) {
  const std::string original = read_bytes(seed_file);
  const std::string mutant = seed_file + ".mutant" + fs::path(seed_file).extension().string();
  Counts c;
  // The unmutated file loads (the target is real).
  write_bytes(mutant, original);
  EXPECT_EQ(run_child([&] { read(mutant); }), kLoaded) << name << ": the seed file does not load";
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    int kind = 0;
    write_bytes(mutant, mutate(original, rng, big_endian, kind));
    const int r = run_child([&] { read(mutant); });
    ++c.tried;
    if (r == kLoaded)
      ++c.loaded;
    else if (r == kCleanError)
      ++c.clean;
    else if (r == -SIGALRM)
      ++c.hang;
    else if (r < 0)
      ++c.crash;
    else
      ++c.unclean;
    if (r != kLoaded && r != kCleanError) {
      // Kept outside the test's temporary folder, to replay.
      const fs::path failures = fs::temp_directory_path() / "pcmsim_fuzz_failures";
      fs::create_directories(failures);
      const std::string kept =
          (failures / (name + "_" + std::to_string(::getpid()) + "_" + std::to_string(c.tried) +
                       fs::path(seed_file).extension().string()))
              .string();
      fs::copy_file(mutant, kept, fs::copy_options::overwrite_existing);
      ADD_FAILURE() << name << ": mutation kind " << kind << " ended in "
                    << (r < 0 ? "signal " + std::to_string(-r) : "exit " + std::to_string(r))
                    << "; file kept as " << kept;
    }
  }
  std::cout << "fuzz " << name << ": tried " << c.tried << ", clean errors " << c.clean
            << ", loaded " << c.loaded << ", crash " << c.crash << ", hang " << c.hang
            << ", unclean " << c.unclean << std::endl;
  return c;
}

// ---- the targets ----------------------------------------------------------------------------

class Fuzz : public ::testing::Test {
 protected:
  void SetUp() override { rng_.seed(fuzz_seed()); }
  nets::test::TempDir dir_;
  std::mt19937_64 rng_;
  // Five targets share the time.
  double seconds() const { return fuzz_seconds() / 5.0; }
  void expect_clean(const Counts& c) {
    EXPECT_GT(c.tried, 0);
    EXPECT_EQ(c.crash, 0);
    EXPECT_EQ(c.hang, 0);
    EXPECT_EQ(c.unclean, 0);
  }
};

TEST_F(Fuzz, ModelFile) {
  nets::Network net = nets::test::tiny_resnet(3);
  nets::Reference ref;
  ref.predictions = {0, 1, 2};
  ref.margin = {0.5f, 0.25f, 1.0f};
  ref.logits = core::MatrixF::Ones(3, 3);
  net.reference = ref;
  const std::string path = dir_.file("model.h5");
  nets::save_network(net, path);
  expect_clean(fuzz(
      "model", path, false,
      [](const std::string& p) {
        // Load, then use: a mutant that loads must also run.
        const nets::Network n = nets::load_network(p);
        nets::Fp32Matmul fp32(n);
        nets::forward(n, core::MatrixF::Zero(2, n.input_size()), fp32);
      },
      seconds(), rng_));
}

TEST_F(Fuzz, Hdf5DataSet) {
  nets::Dataset d;
  d.name = "fuzz";
  d.channels = 1;
  d.height = 5;
  d.width = 6;
  d.images = core::MatrixF::Constant(7, 30, 0.25f);
  d.labels = {0, 1, 2, 3, 4, 5, 6};
  const std::string path = dir_.file("data.h5");
  nets::save_hdf5_dataset(d, path);
  expect_clean(fuzz(
      "dataset-hdf5", path, false, [](const std::string& p) { nets::load_hdf5_dataset(p); },
      seconds(), rng_));
}

// A data set as another tool writes it: HDF5's default (oldest) format, contiguous, no
// checksums, uint8 images, so the mutations reach the shapes and the data themselves.
TEST_F(Fuzz, PlainHdf5DataSet) {
  const std::string path = dir_.file("plain.h5");
  {
    h5::Handle f(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    const hsize_t dims[4] = {6, 1, 4, 5};
    std::vector<std::uint8_t> pixels(6 * 20);
    for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7);
    std::vector<std::int64_t> labels = {0, 1, 2, 3, 4, 5};
    h5::Handle s(H5Screate_simple(4, dims, nullptr));
    h5::Handle d(H5Dcreate2(f.get(), "images", H5T_STD_U8LE, s.get(), H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT));
    H5Dwrite(d.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, pixels.data());
    h5::Handle ls(H5Screate_simple(1, dims, nullptr));
    h5::Handle l(H5Dcreate2(f.get(), "labels", H5T_STD_I64LE, ls.get(), H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT));
    H5Dwrite(l.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels.data());
  }
  expect_clean(fuzz(
      "dataset-hdf5-plain", path, false, [](const std::string& p) { nets::load_hdf5_dataset(p); },
      seconds(), rng_));
}

TEST_F(Fuzz, IdxDataSet) {
  // 9 images of 4x3, plain and gzip'ed; the labels file stays valid.
  std::string images = be32(0x803) + be32(9) + be32(4) + be32(3);
  for (int i = 0; i < 9 * 12; ++i) images += static_cast<char>(i * 11);
  std::string labels = be32(0x801) + be32(9);
  for (int i = 0; i < 9; ++i) labels += static_cast<char>(i % 10);
  const std::string plain = dir_.file("plain-images-idx3-ubyte");
  const std::string gz = dir_.file("gz-images-idx3-ubyte.gz");
  write_bytes(plain, images);
  write_bytes(gz, gzip(images));
  const std::string label_path = dir_.file("labels-idx1-ubyte");
  write_bytes(label_path, labels);
  const auto read = [&](const std::string& p) { nets::load_idx_dataset(p, label_path); };
  Counts a = fuzz("dataset-idx", plain, true, read, seconds() / 2, rng_);
  Counts b = fuzz("dataset-idx-gz", gz, true, read, seconds() / 2, rng_);
  expect_clean(a);
  expect_clean(b);
}

TEST_F(Fuzz, DeviceTable) {
  const std::string csv = dir_.file("table.csv");
  {
    std::ofstream t(csv);
    t << "# a device table\ng_target_uS,prog_mean_uS,prog_std_uS,nu_mean,nu_std,read_noise_q\n"
         "0,0.1,0.26,0.1,0.045,0.2\n5,4.9,0.8,0.07,0.02,0.05\n25,24.9,1.06,0.049,0.008,0.0088\n";
  }
  const std::string h5_path = dir_.file("table.h5");
  {
    h5::File f = h5::File::create(h5_path);
    const std::vector<std::vector<double>> columns = {{0, 5, 25},           {0.1, 4.9, 24.9},
                                                      {0.26, 0.8, 1.06},    {0.1, 0.07, 0.049},
                                                      {0.045, 0.02, 0.008}, {0.2, 0.05, 0.0088}};
    for (std::size_t c = 0; c < columns.size(); ++c)
      f.write_dataset(devices::device_table_columns()[c], columns[c], {3});
  }
  const auto read = [](const std::string& p) {
    devices::TabulatedModel model(devices::read_device_table(p));
    (void)model;
  };
  Counts a = fuzz("device-table-csv", csv, false, read, seconds() / 2, rng_);
  Counts b = fuzz("device-table-hdf5", h5_path, false, read, seconds() / 2, rng_);
  expect_clean(a);
  expect_clean(b);
}

}  // namespace
}  // namespace pcmsim
