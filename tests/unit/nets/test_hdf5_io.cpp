// core/hdf5_io: the shared RAII HDF5 helpers (tested here because "nets" owns them).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "h5/hdf5_io.h"
#include "nets_test_util.h"

namespace pcmsim::h5 {
namespace {

using nets::test::TempDir;

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(no runtime_error)";
}

TEST(Hdf5Io, DatasetsRoundTripWithShape) {
  TempDir dir;
  const std::string path = dir.file("d.h5");
  {
    File f = File::create(path);
    std::vector<float> a(24);
    for (int i = 0; i < 24; ++i) a[i] = 0.5f * float(i) - 3.f;
    f.write_dataset("grp/sub/a", a, {2, 3, 4});
    f.write_dataset("b", std::vector<double>{1.5, -2.25}, {2});
    f.write_dataset("c", std::vector<std::int32_t>{-7, 8, 9}, {3});
    f.write_dataset("d", std::vector<std::int64_t>{1ll << 40}, {1});
    std::vector<std::uint8_t> u(10000);
    for (int i = 0; i < 10000; ++i) u[i] = std::uint8_t(i * 7);
    f.write_dataset("u", u, {100, 100}, 6);  // gzip, chunked
    f.write_string_dataset("s", {"alpha", "", "gamma"});
  }
  File f = File::open_read(path);
  auto a = f.read_dataset<float>("grp/sub/a");
  EXPECT_EQ(a.shape, (std::vector<std::size_t>{2, 3, 4}));
  EXPECT_EQ(a.data[23], 0.5f * 23 - 3.f);
  EXPECT_EQ(f.dataset_shape("grp/sub/a"), a.shape);
  EXPECT_EQ(f.read_dataset<double>("b").data, (std::vector<double>{1.5, -2.25}));
  EXPECT_EQ(f.read_dataset<float>("c").data, (std::vector<float>{-7, 8, 9}));  // int -> float ok
  EXPECT_EQ(f.read_dataset<std::int64_t>("d").data[0], 1ll << 40);
  auto u = f.read_dataset<std::uint8_t>("u");
  EXPECT_EQ(u.data[9999], std::uint8_t(9999 * 7));
  auto part = f.read_dataset_rows<float>("u", 37, 5);  // hyperslab of a chunked gzip dataset
  EXPECT_EQ(part.shape, (std::vector<std::size_t>{5, 100}));
  EXPECT_EQ(part.data[0], float(std::uint8_t(3700 * 7)));
  EXPECT_EQ(part.data[499], float(std::uint8_t(4199 * 7)));
  auto a1 = f.read_dataset_rows<float>("grp/sub/a", 1, 1);
  EXPECT_EQ(a1.shape, (std::vector<std::size_t>{1, 3, 4}));
  EXPECT_EQ(a1.data[0], a.data[12]);
  EXPECT_THROW(f.read_dataset_rows<float>("u", 98, 3), std::invalid_argument);
  EXPECT_EQ(f.read_string_dataset("s"), (std::vector<std::string>{"alpha", "", "gamma"}));
  EXPECT_EQ(f.members(), (std::vector<std::string>{"b", "c", "d", "grp", "s", "u"}));
  EXPECT_EQ(f.kind_of("grp/sub"), Kind::group);
  EXPECT_EQ(f.kind_of("grp/sub/a"), Kind::dataset);
  EXPECT_EQ(f.kind_of("grp/nope/a"), Kind::missing);
  EXPECT_EQ(f.open_group("grp").open_group("sub").where("a"), path + ":/grp/sub/a");
}

TEST(Hdf5Io, TypeAndRangeChecksOnRead) {
  TempDir dir;
  const std::string path = dir.file("t.h5");
  {
    File f = File::create(path);
    f.write_dataset("f", std::vector<float>{1.5f}, {1});
    f.write_dataset("big", std::vector<std::int64_t>{1ll << 40}, {1});
    f.write_dataset("neg", std::vector<std::int32_t>{-1}, {1});
  }
  File f = File::open_read(path);
  std::string m = error_of([&] { f.read_dataset<std::int32_t>("f"); });
  EXPECT_NE(m.find(path + ":/f"), std::string::npos) << m;
  EXPECT_NE(m.find("expected integers"), std::string::npos) << m;
  m = error_of([&] { f.read_dataset<std::int32_t>("big"); });
  EXPECT_NE(m.find("1099511627776 does not fit int32"), std::string::npos) << m;
  m = error_of([&] { f.read_dataset<std::uint8_t>("neg"); });
  EXPECT_NE(m.find("-1 does not fit uint8"), std::string::npos) << m;
  m = error_of([&] { f.read_dataset<float>("missing"); });
  EXPECT_NE(m.find(path + ":/missing: dataset not found"), std::string::npos) << m;
  m = error_of([&] { f.open_group("f"); });
  EXPECT_NE(m.find("is not a group"), std::string::npos) << m;
}

TEST(Hdf5Io, AttributesRoundTripAndTypeErrors) {
  TempDir dir;
  const std::string path = dir.file("a.h5");
  {
    File f = File::create(path);
    Group g = f.create_group("g");
    g.write_attribute("s", "hello");
    g.write_attribute("d", 2.5);
    g.write_attribute("i", 42);
    g.write_attribute("sl", std::vector<std::string>{"x", "yy"});
    g.write_attribute("dl", std::vector<double>{1, 2, 3});
    g.write_attribute("il", std::vector<std::int64_t>{4, 5});
    g.write_attribute("i", 43);  // replaces
    g.write_attribute("fi", 7.0);
  }
  File f = File::open_read(path);
  Group g = f.open_group("g");
  EXPECT_EQ(g.read_string_attribute("s"), "hello");
  EXPECT_EQ(g.read_double_attribute("d"), 2.5);
  EXPECT_EQ(g.read_int_attribute("i"), 43);
  EXPECT_EQ(g.read_double_attribute("i"), 43.0);
  EXPECT_EQ(g.read_int_attribute("fi"), 7);  // integral float accepted
  EXPECT_EQ(g.read_string_list_attribute("sl"), (std::vector<std::string>{"x", "yy"}));
  EXPECT_EQ(g.read_double_list_attribute("dl"), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(g.read_int_list_attribute("il"), (std::vector<std::int64_t>{4, 5}));
  EXPECT_TRUE(g.has_attribute("s"));
  EXPECT_FALSE(g.has_attribute("zz"));
  EXPECT_EQ(g.attribute_names(), (std::vector<std::string>{"d", "dl", "fi", "i", "il", "s", "sl"}));
  std::string m = error_of([&] { g.read_int_attribute("s"); });
  EXPECT_NE(m.find(path + ":/g attribute 's'"), std::string::npos) << m;
  EXPECT_NE(m.find("string"), std::string::npos) << m;
  m = error_of([&] { g.read_string_attribute("d"); });
  EXPECT_NE(m.find("expected a string"), std::string::npos) << m;
  m = error_of([&] { g.read_int_attribute("d"); });
  EXPECT_NE(m.find("2.5 is not an integer"), std::string::npos) << m;
  m = error_of([&] { g.read_double_attribute("dl"); });
  EXPECT_NE(m.find("holds 3 numbers, expected one"), std::string::npos) << m;
  m = error_of([&] { g.read_string_attribute("zz"); });
  EXPECT_NE(m.find("attribute 'zz' is missing"), std::string::npos) << m;
}

TEST(Hdf5Io, FixedLengthStringsAsWrittenByOtherTools) {
  TempDir dir;
  const std::string path = dir.file("fs.h5");
  {
    File f = File::create(path);
    Handle type(H5Tcopy(H5T_C_S1));
    H5Tset_size(type.get(), 8);
    H5Tset_strpad(type.get(), H5T_STR_NULLPAD);
    hsize_t n = 2;
    Handle space(H5Screate_simple(1, &n, nullptr));
    Handle a(H5Acreate2(f.id(), "names", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT));
    const char buf[16] = {'c', 'a', 't', 0, 0, 0, 0, 0, 'e', 'i', 'g', 'h', 't', 'c', 'h', 'r'};
    ASSERT_GE(H5Awrite(a.get(), type.get(), buf), 0);
  }
  File f = File::open_read(path);
  EXPECT_EQ(f.read_string_list_attribute("names"), (std::vector<std::string>{"cat", "eightchr"}));
}

TEST(Hdf5Io, ClearErrorsForBadFiles) {
  TempDir dir;
  std::string m = error_of([&] { File::open_read(dir.file("none.h5")); });
  EXPECT_NE(m.find("none.h5: file not found"), std::string::npos) << m;
  std::ofstream(dir.file("text.h5")) << "hello";
  m = error_of([&] { File::open_read(dir.file("text.h5")); });
  EXPECT_NE(m.find("text.h5: not an HDF5 file"), std::string::npos) << m;
  std::ofstream(dir.file("empty.h5"));
  m = error_of([&] { File::open_read(dir.file("empty.h5")); });
  EXPECT_NE(m.find("empty.h5"), std::string::npos) << m;
  m = error_of([&] { File::open_read(dir.file("")); });
  EXPECT_NE(m.find("directory"), std::string::npos) << m;
  m = error_of([&] { File::create("/nonexistent_dir/x.h5"); });
  EXPECT_NE(m.find("/nonexistent_dir/x.h5: cannot create"), std::string::npos) << m;
  // Truncated: a valid file cut short.
  {
    File f = File::create(dir.file("full.h5"));
    f.write_dataset("x", std::vector<float>(5000, 1.f), {5000});
  }
  std::ifstream in(dir.file("full.h5"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir.file("cut.h5"), std::ios::binary)
      .write(bytes.data(), std::streamsize(bytes.size() / 2));
  m = error_of([&] {
    File f = File::open_read(dir.file("cut.h5"));
    f.read_dataset<float>("x");
  });
  EXPECT_NE(m.find("cut.h5"), std::string::npos) << m;
  EXPECT_NE(m.find("[core::hdf5]"), std::string::npos) << m;
}

// A data set file from the fuzz test (seed 1, mutation 409: a damaged symbol table) on which
// libhdf5 1.10 reads out of bounds and crashes; open_read finds that out in a child process.
TEST(Hdf5Io, AFileThatCrashesTheHdf5LibraryIsAnError) {
  const char* d = std::getenv("PCMSIM_TEST_DATA");
  const std::string path = std::string(d ? d : "tests/data") + "/hdf5_crashes_the_library.h5";
  const std::string m = error_of([&] { File::open_read(path); });
  EXPECT_NE(m.find("hdf5_crashes_the_library.h5: corrupted HDF5 file (the HDF5 library crashed "
                   "reading it"),
            std::string::npos)
      << m;
}

TEST(Hdf5Io, WriteErrors) {
  TempDir dir;
  File f = File::create(dir.file("w.h5"));
  f.write_dataset("x", std::vector<float>{1.f}, {1});
  std::string m = error_of([&] { f.write_dataset("x", std::vector<float>{1.f}, {1}); });
  EXPECT_NE(m.find("w.h5:/x: already exists"), std::string::npos) << m;
  EXPECT_THROW(f.write_dataset("y", std::vector<float>{1.f}, {1}, 11), std::invalid_argument);
  EXPECT_NO_THROW(f.require_group("g"));
  EXPECT_NO_THROW(f.require_group("g"));
  EXPECT_THROW(f.create_group("g"), std::runtime_error);
}

}  // namespace
}  // namespace pcmsim::h5
