// TabulatedModel and its CSV/HDF5 readers: interpolation, every malformed-table case with a
// message naming file, line/column and value, and the exact limits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "h5/hdf5_io.h"
#include "core/rng.h"
#include "devices/device_factory.h"
#include "devices/tabulated_model.h"

using namespace pcmsim;
using namespace pcmsim::devices;

namespace {

std::string data_path(const std::string& name) {
  const char* dir = std::getenv("PCMSIM_TEST_DATA");
  return std::string(dir ? dir : "tests/data") + "/" + name;
}

// A file in the test's temporary folder, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& content = "") {
    path_ = ::testing::TempDir() + "pcmsim_devmodels_" + name;
    if (!content.empty() || name.find(".csv") != std::string::npos) {
      std::ofstream out(path_, std::ios::binary);
      out << content;
    }
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Expects `f` to throw exception type E whose message contains every fragment.
template <class E, class F>
void expect_error(F&& f, std::vector<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << fragments.front() << "'";
  } catch (const E& e) {
    for (const auto& frag : fragments)
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos)
          << "message: " << e.what() << "\nmissing: " << frag;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

const std::string kHeader = "g_target_uS,prog_mean_uS,prog_std_uS,nu_mean,nu_std\n";

// A small table whose values are exact in binary, for exact interpolation checks.
DeviceTable small_table() {
  DeviceTable t;
  t.g_target = {0.0, 8e-6, 16e-6};
  t.prog_mean = {0.0, 8e-6, 16.5e-6};
  t.prog_std = {0.25e-6, 0.5e-6, 1e-6};
  t.nu_mean = {0.125, 0.0625, 0.03125};
  t.nu_std = {0.0625, 0.03125, 0.0078125};
  return t;
}

}  // namespace

TEST(DeviceTable, ReadsTheExampleFixture) {
  const auto t = read_device_table_csv(data_path("device_table_example.csv"));
  ASSERT_EQ(t.rows(), 7u);
  EXPECT_TRUE(t.has_read_noise_q());
  EXPECT_DOUBLE_EQ(t.g_target[1], 2.5e-6);   // µS converted to siemens
  EXPECT_DOUBLE_EQ(t.prog_std[6], 1.0554e-6);
  EXPECT_DOUBLE_EQ(t.nu_mean[0], 0.1);
  EXPECT_DOUBLE_EQ(t.read_noise_q[6], 0.0088);
  EXPECT_EQ(t.line[0], 5u);  // after 3 comment lines and the header
  // read_device_table picks CSV for a text file.
  EXPECT_EQ(read_device_table(data_path("device_table_example.csv")).rows(), 7u);
}

TEST(DeviceTable, TruncatedFixtureIsAnError) {
  const std::string path = data_path("device_table_truncated.csv");
  expect_error<std::runtime_error>([&] { read_device_table_csv(path); },
                                   {path, ":10", "3 fields, expected 6", "truncated"});
}

TEST(DeviceTable, EveryMalformedCsvIsAClearError) {
  struct Case {
    std::string name, content;
    std::vector<std::string> fragments;
  };
  const std::vector<Case> io_cases = {
      {"bad_number.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,abc,0.05,0.01\n",
       {":3", "column 3", "prog_std_uS", "'abc'", "not a finite number"}},
      {"number_with_tail.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,0.3x,0.05,0.01\n", {":3", "'0.3x'"}},
      {"empty_field.csv", kHeader + "0,0,0.2,,0.04\n5,5,0.3,0.05,0.01\n",
       {":2", "column 4", "nu_mean", "''"}},
      {"nan.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,nan,0.05,0.01\n", {":3", "'nan'"}},
      {"inf.csv", kHeader + "0,0,0.2,0.1,0.04\n5,inf,0.3,0.05,0.01\n", {":3", "'inf'"}},
      {"missing_column.csv", "g_target_uS,prog_mean_uS,prog_std_uS,nu_mean\n0,0,0.2,0.1\n",
       {":1", "missing column 'nu_std'"}},
      {"unknown_column.csv", "g_target_uS,prog_mean_uS,prog_std_uS,nu_mean,nu_sd\n",
       {":1", "column 5", "'nu_sd'", "not a known column", "read_noise_q"}},
      {"duplicate_column.csv", "g_target_uS,prog_mean_uS,prog_std_uS,nu_mean,nu_std,nu_std\n",
       {"'nu_std' appears twice"}},
      {"ragged.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,0.3,0.05\n10,10,0.4,0.05,0.01\n",
       {":3", "4 fields, expected 5"}},
      {"too_many_fields.csv", kHeader + "0,0,0.2,0.1,0.04,7\n5,5,0.3,0.05,0.01\n",
       {":2", "6 fields, expected 5"}},
      {"empty.csv", "", {"empty file"}},
      {"only_comments.csv", "# nothing here\n\n", {"empty file"}},
  };
  for (const auto& c : io_cases) {
    SCOPED_TRACE(c.name);
    TempFile f(c.name, c.content);
    auto fragments = c.fragments;
    fragments.push_back(f.path());
    expect_error<std::runtime_error>([&] { read_device_table_csv(f.path()); }, fragments);
  }
  const std::vector<Case> value_cases = {
      {"header_only.csv", kHeader, {"0 rows", "at least 2"}},
      {"one_row.csv", kHeader + "0,0,0.2,0.1,0.04\n", {"1 rows", "at least 2"}},
      {"not_increasing.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,0.3,0.05,0.01\n4,4,0.3,0.05,0.01\n",
       {":4", "g_target_uS = 4", "strictly increasing", "previous row: 5"}},
      {"repeated.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,0.3,0.05,0.01\n5,5,0.3,0.05,0.01\n",
       {":4", "g_target_uS = 5", "strictly increasing"}},
      {"negative_std.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,-0.3,0.05,0.01\n",
       {":3", "prog_std_uS = -0.3", ">= 0"}},
      {"negative_nu_std.csv", kHeader + "0,0,0.2,0.1,0.04\n5,5,0.3,0.05,-0.01\n",
       {":3", "nu_std = -0.01"}},
      {"negative_g.csv", kHeader + "-1,0,0.2,0.1,0.04\n5,5,0.3,0.05,0.01\n",
       {":2", "g_target_uS = -1"}},
      {"negative_q.csv",
       "g_target_uS,prog_mean_uS,prog_std_uS,nu_mean,nu_std,read_noise_q\n"
       "0,0,0.2,0.1,0.04,0.2\n5,5,0.3,0.05,0.01,-0.5\n",
       {":3", "read_noise_q = -0.5"}},
  };
  for (const auto& c : value_cases) {
    SCOPED_TRACE(c.name);
    TempFile f(c.name, c.content);
    auto fragments = c.fragments;
    fragments.push_back(f.path());
    expect_error<std::invalid_argument>([&] { read_device_table_csv(f.path()); }, fragments);
  }
  expect_error<std::runtime_error>([] { read_device_table("/nonexistent/table.csv"); },
                                   {"/nonexistent/table.csv", "cannot open"});
}

TEST(DeviceTable, CsvLayoutFreedoms) {
  // Columns in any order, spaces, CRLF line ends, comments and blank lines, no final newline.
  TempFile f("layout.csv",
             "# comment\r\n nu_std , g_target_uS,nu_mean,prog_std_uS,prog_mean_uS\r\n\r\n"
             "0.04, 0 ,0.1,0.2,0\r\n# another\r\n0.01,5,0.05,0.3,5.5");
  const auto t = read_device_table_csv(f.path());
  ASSERT_EQ(t.rows(), 2u);
  EXPECT_DOUBLE_EQ(t.g_target[1], 5e-6);
  EXPECT_DOUBLE_EQ(t.prog_mean[1], 5.5e-6);
  EXPECT_DOUBLE_EQ(t.nu_std[0], 0.04);
  EXPECT_FALSE(t.has_read_noise_q());
  EXPECT_EQ(t.line, (std::vector<std::size_t>{4, 6}));
}

TEST(DeviceTable, Hdf5RoundTripAndErrors) {
  TempFile f("table.h5");
  {
    auto file = pcmsim::h5::File::create(f.path());
    file.write_dataset<double>("g_target_uS", {0, 8, 16}, {3});
    file.write_dataset<double>("prog_mean_uS", {0, 8, 16.5}, {3});
    file.write_dataset<double>("prog_std_uS", {0.25, 0.5, 1}, {3});
    file.write_dataset<float>("nu_mean", {0.125f, 0.0625f, 0.03125f}, {3});  // float is fine
    file.write_dataset<double>("nu_std", {0.0625, 0.03125, 0.0078125}, {3});
  }
  const auto t = read_device_table(f.path());  // detected by the HDF5 signature
  const auto ref = small_table();
  ASSERT_EQ(t.rows(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_DOUBLE_EQ(t.g_target[i], ref.g_target[i]);
    EXPECT_DOUBLE_EQ(t.prog_mean[i], ref.prog_mean[i]);
    EXPECT_DOUBLE_EQ(t.prog_std[i], ref.prog_std[i]);
    EXPECT_EQ(t.nu_mean[i], ref.nu_mean[i]);
    EXPECT_EQ(t.nu_std[i], ref.nu_std[i]);
  }
  EXPECT_FALSE(t.has_read_noise_q());

  TempFile missing("missing.h5");
  {
    auto file = pcmsim::h5::File::create(missing.path());
    file.write_dataset<double>("g_target_uS", {0, 8}, {2});
    file.write_dataset<double>("prog_mean_uS", {0, 8}, {2});
  }
  expect_error<std::runtime_error>([&] { read_device_table_hdf5(missing.path()); },
                                   {missing.path(), "missing dataset '/prog_std_uS'"});
  TempFile ragged("ragged.h5");
  {
    auto file = pcmsim::h5::File::create(ragged.path());
    file.write_dataset<double>("g_target_uS", {0, 8, 16}, {3});
    file.write_dataset<double>("prog_mean_uS", {0, 8}, {2});
    file.write_dataset<double>("prog_std_uS", {0.25, 0.5, 1}, {3});
    file.write_dataset<double>("nu_mean", {0.1, 0.1, 0.1}, {3});
    file.write_dataset<double>("nu_std", {0.01, 0.01, 0.01}, {3});
  }
  expect_error<std::invalid_argument>([&] { read_device_table_hdf5(ragged.path()); },
                                      {ragged.path(), "'prog_mean_uS' has 2 values"});
  TempFile two_d("two_d.h5");
  {
    auto file = pcmsim::h5::File::create(two_d.path());
    file.write_dataset<double>("g_target_uS", {0, 8, 16, 24}, {2, 2});
  }
  expect_error<std::runtime_error>([&] { read_device_table_hdf5(two_d.path()); },
                                   {"g_target_uS", "2-D dataset"});
  TempFile not_hdf5("not_hdf5.h5", "this is not HDF5");
  EXPECT_THROW(read_device_table_hdf5(not_hdf5.path()), std::runtime_error);
}

TEST(TabulatedModel, InterpolationIsExactAtNodesAndLinearBetween) {
  TabulatedModel m(small_table());
  EXPECT_EQ(m.name(), "tabulated");
  EXPECT_EQ(m.g_max(), 16e-6);  // default: the table's largest target
  const auto t = small_table();
  for (std::size_t i = 0; i < 3; ++i) {
    const auto p = m.at(static_cast<float>(t.g_target[i]));
    EXPECT_EQ(p.prog_mean, t.prog_mean[i]) << i;
    EXPECT_EQ(p.prog_std, t.prog_std[i]) << i;
    EXPECT_EQ(p.nu_mean, t.nu_mean[i]) << i;
    EXPECT_EQ(p.nu_std, t.nu_std[i]) << i;
    // No read_noise_q column: the PCM law at g_T / g_max.
    EXPECT_DOUBLE_EQ(p.read_noise_q, pcm_read_noise_q(static_cast<float>(t.g_target[i]) / 16e-6));
  }
  // Midpoints: the average of the neighbours (within the float rounding of the target itself:
  // relative ~1e-7 of the interval).
  for (std::size_t i = 0; i < 2; ++i) {
    const auto p = m.at(static_cast<float>(0.5 * (t.g_target[i] + t.g_target[i + 1])));
    EXPECT_NEAR(p.prog_mean, 0.5 * (t.prog_mean[i] + t.prog_mean[i + 1]), 1e-11) << i;
    EXPECT_NEAR(p.prog_std, 0.5 * (t.prog_std[i] + t.prog_std[i + 1]), 1e-11) << i;
    EXPECT_NEAR(p.nu_mean, 0.5 * (t.nu_mean[i] + t.nu_mean[i + 1]), 1e-7) << i;
    EXPECT_NEAR(p.nu_std, 0.5 * (t.nu_std[i] + t.nu_std[i + 1]), 1e-7) << i;
  }
  // A quarter of the way into the second interval.
  const auto p = m.at(10e-6f);
  EXPECT_NEAR(p.prog_mean, 8e-6 + 0.25 * 8.5e-6, 1e-11);
  EXPECT_NEAR(p.nu_mean, 0.0625 - 0.25 * 0.03125, 1e-7);
}

TEST(TabulatedModel, TargetsOutsideTheTableAreErrors) {
  DeviceTable t = small_table();
  t.g_target[0] = 1e-6;  // table starts at 1 µS: an "off" device at 0 is outside
  t.source = "chip7.csv";
  TabulatedModel m(t);
  expect_error<std::invalid_argument>([&] { m.at(0.5e-6f); },
                                      {"0.499999", "outside the table's range [1, 16]", "chip7.csv"});
  std::vector<float> g = {5e-6f, 0.0f};
  std::vector<float> gp(2), nu(2), q(2);
  expect_error<std::invalid_argument>(
      [&] { m.program(g.data(), 2, core::RngKey{}, 40, {gp.data(), nu.data(), q.data()}); },
      {"g_target[41]", "outside the table's range"});
  g = {17e-6f, 1e-6f};  // above g_max (= the table's largest)
  expect_error<std::invalid_argument>(
      [&] { m.program(g.data(), 2, core::RngKey{}, 0, {gp.data(), nu.data(), q.data()}); },
      {"g_target[0]", "[0, 16]"});
  TabulatedParams p;
  p.g_max = 20e-6;  // above the table
  expect_error<std::invalid_argument>([&] { TabulatedModel bad(small_table(), p); },
                                      {"g_max_uS = 20", "above the largest g_target_uS = 16"});
  p.g_max = 12e-6;  // below is fine: targets then stop at 12 µS
  EXPECT_EQ(TabulatedModel(small_table(), p).g_max(), 12e-6);
  p.g_max = -1;
  expect_error<std::invalid_argument>([&] { p.validate(); }, {"g_max_uS"});
  p = TabulatedParams{};
  p.drift_scale = -1;
  expect_error<std::invalid_argument>([&] { TabulatedModel bad(small_table(), p); },
                                      {"drift_scale = -1"});
}

TEST(TabulatedModel, ZeroScalesExactBiasAndFormulas) {
  const std::size_t n = 3000;
  std::vector<float> g(n);
  for (std::size_t i = 0; i < n; ++i) g[i] = static_cast<float>(16e-6 * (i % 17) / 16.0);
  std::vector<float> gp(n), nu(n), q(n), out(n);
  const core::RngKey key{3, core::Stage::programming};
  {
    TabulatedParams p;
    p.prog_noise_scale = p.drift_scale = p.read_noise_scale = 0;
    TabulatedModel m(small_table(), p);
    m.program(g.data(), n, key, 0, {gp.data(), nu.data(), q.data()});
    for (double t : {0.0, 3600.0, 1e9}) {
      m.read({gp.data(), nu.data(), q.data()}, n, t, key.with_sub(1), 0, out.data());
      ASSERT_EQ(out, g) << t;
    }
  }
  TabulatedModel m(small_table());
  m.program(g.data(), n, key, 0, {gp.data(), nu.data(), q.data()});
  std::vector<float> xi_p(n), xi_nu(n);
  core::fill_normal(key, kDrawProgramming, 0, n, xi_p.data());
  core::fill_normal(key, kDrawDriftExponent, 0, n, xi_nu.data());
  for (std::size_t i = 0; i < n; ++i) {
    const auto pt = m.at(g[i]);
    ASSERT_NEAR(gp[i], std::max(0.0, pt.prog_mean + pt.prog_std * xi_p[i]), 2e-12) << i;
    ASSERT_NEAR(nu[i], std::fabs(pt.nu_mean + pt.nu_std * xi_nu[i]), 1e-7) << i;
    ASSERT_FLOAT_EQ(q[i], static_cast<float>(pt.read_noise_q)) << i;
  }
}

TEST(TabulatedModel, FactoryReadsTheTableFile) {
  DeviceSpec spec;
  spec.model = "tabulated";
  spec.tabulated.table_path = data_path("device_table_example.csv");
  const auto model = make_device_model(spec);
  EXPECT_EQ(model->name(), "tabulated");
  EXPECT_DOUBLE_EQ(model->g_max(), 25e-6);
  spec.tabulated.table_path = data_path("device_table_truncated.csv");
  EXPECT_THROW(make_device_model(spec), std::runtime_error);
}
