#include "nets/dataset.h"

#include <zlib.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>

#include "core/error.h"
#include "h5/hdf5_io.h"

namespace pcmsim::nets {

using core::concat;
namespace h5 = ::pcmsim::h5;

namespace {

constexpr const char* kIdxTag = "nets::load_idx_dataset";
constexpr const char* kH5Tag = "nets::load_hdf5_dataset";

// A gzip (or plain: zlib reads it transparently) input stream.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {
    core::require_path(kIdxTag, "IDX file", path);
    std::error_code ec;
    if (!std::filesystem::exists(path, ec))
      core::throw_io(kIdxTag, concat(path, ": file not found"));
    if (std::filesystem::is_directory(path, ec))
      core::throw_io(kIdxTag, concat(path, ": is a directory"));
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) core::throw_io(kIdxTag, concat(path, ": cannot open for reading"));
    gzbuffer(f_, 1 << 17);
  }
  ~GzReader() {
    if (f_) gzclose(f_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads exactly n bytes; `what` names the part for the error message, which `before` bytes
  // of `total` (n when 0) were read before this call.
  void read(void* dst, std::size_t n, const std::string& what, std::size_t before = 0,
            std::size_t total = 0) {
    auto* p = static_cast<unsigned char*>(dst);
    std::size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
      int got = gzread(f_, p + done, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        core::throw_io(kIdxTag, concat(path_, ": corrupt gzip data while reading ", what, " (",
                                       msg ? msg : "zlib error", ")"));
      }
      if (got == 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        core::throw_io(kIdxTag,
                       concat(path_, ": truncated file: ", what, " needs ", total ? total : n,
                              " bytes, only ", before + done, " present",
                              (err != Z_OK && msg) ? concat(" (", msg, ")") : std::string()));
      }
      done += static_cast<std::size_t>(got);
    }
  }
  std::uint32_t read_be32(const std::string& what) {
    unsigned char b[4];
    read(b, 4, what);
    return (std::uint32_t(b[0]) << 24) | (std::uint32_t(b[1]) << 16) | (std::uint32_t(b[2]) << 8) |
           std::uint32_t(b[3]);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

std::string hex(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         Index limit) {
  if (limit < 0) core::throw_invalid(kIdxTag, concat("limit = ", limit, ": must be >= 0"));
  GzReader img(images_path), lab(labels_path);

  const std::uint32_t im = img.read_be32("the header (magic number)");
  if (im != 0x00000803u)
    core::throw_io(kIdxTag, concat(images_path, ": magic number ", hex(im),
                                   ", expected 0x00000803 (IDX uint8 images, 3 dims); not an IDX "
                                   "images file"));
  const Index n_img = img.read_be32("the header (image count)");
  const Index h = img.read_be32("the header (rows)");
  const Index w = img.read_be32("the header (columns)");
  if (h < 1 || w < 1 || h > 65536 || w > 65536)
    core::throw_io(kIdxTag, concat(images_path, ": image size ", h, "x", w, " is not plausible"));

  const std::uint32_t lm = lab.read_be32("the header (magic number)");
  if (lm != 0x00000801u)
    core::throw_io(kIdxTag, concat(labels_path, ": magic number ", hex(lm),
                                   ", expected 0x00000801 (IDX uint8 labels, 1 dim); not an IDX "
                                   "labels file"));
  const Index n_lab = lab.read_be32("the header (label count)");
  if (n_img != n_lab)
    core::throw_io(kIdxTag, concat(images_path, " holds ", n_img, " images but ", labels_path,
                                   " holds ", n_lab, " labels"));

  if (limit > n_img)
    core::throw_invalid(
        kIdxTag, concat("limit = ", limit, ": '", images_path, "' holds only ", n_img, " images"));
  const Index n = limit > 0 ? limit : n_img;
  Dataset d;
  d.name = images_path;
  d.channels = 1;
  d.height = h;
  d.width = w;
  // n < 2^32 and h*w <= 2^32 images: the byte count fits 64 bits. The header is not trusted
  // with memory: the pixels are read in blocks of at most 64 MiB, so a short file declaring
  // 65536x65536 images fails as truncated after reading what it holds, not after allocating
  // and zeroing what it claims.
  const std::uint64_t total = static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(h * w);
  std::vector<unsigned char> pix;
  for (std::uint64_t done = 0; done < total;) {
    const std::uint64_t step = std::min<std::uint64_t>(total - done, std::uint64_t{1} << 26);
    pix.resize(static_cast<std::size_t>(done + step));
    img.read(pix.data() + done, static_cast<std::size_t>(step), concat(n, " images of ", h, "x", w),
             static_cast<std::size_t>(done), static_cast<std::size_t>(total));
    done += step;
  }
  std::vector<unsigned char> lbl;
  for (Index done = 0; done < n;) {
    const Index step = std::min<Index>(n - done, Index{1} << 26);
    lbl.resize(static_cast<std::size_t>(done + step));
    lab.read(lbl.data() + done, static_cast<std::size_t>(step), concat(n, " labels"),
             static_cast<std::size_t>(done), static_cast<std::size_t>(n));
    done += step;
  }

  d.images.resize(n, h * w);
  float* dst = d.images.data();
  for (std::size_t i = 0; i < pix.size(); ++i) dst[i] = static_cast<float>(pix[i]) / 255.0f;
  d.labels.assign(lbl.begin(), lbl.end());
  return d;
}

Dataset load_hdf5_dataset(const std::string& path, Index limit) {
  if (limit < 0) core::throw_invalid(kH5Tag, concat("limit = ", limit, ": must be >= 0"));
  h5::File f = [&] {
    try {
      return h5::File::open_read(path);
    } catch (const std::runtime_error& e) {
      core::throw_io(kH5Tag, concat("cannot open data set: ", e.what()));
    }
  }();
  auto fail = [&](const std::string& msg) { core::throw_io(kH5Tag, concat(path, ": ", msg)); };
  try {
    if (f.has_attribute("format")) {
      std::string fmt = f.read_string_attribute("format");
      if (fmt != "pcmsim-dataset")
        fail(concat("format = \"", fmt, "\": expected \"pcmsim-dataset\""));
    }
    if (f.has_attribute("format_version")) {
      const std::int64_t version = f.read_int_attribute("format_version");
      if (version > 1)
        fail(concat("format_version = ", version,
                    ": written by a newer pcmsim (this one reads version 1)"));
      if (version < 1) fail(concat("format_version = ", version, ": must be 1"));
    }
    if (!f.has_dataset("images")) fail("dataset 'images' is missing");
    if (!f.has_dataset("labels")) fail("dataset 'labels' is missing");

    auto shape = f.dataset_shape("images");
    if (shape.size() != 3 && shape.size() != 4)
      fail(concat("images has rank ", shape.size(), ", expected [N, C, H, W] or [N, H, W]"));
    auto lshape = f.dataset_shape("labels");
    if (lshape.size() != 1) fail(concat("labels has rank ", lshape.size(), ", expected [N]"));
    if (lshape[0] != shape[0])
      fail(concat("images holds ", shape[0], " samples but labels holds ", lshape[0]));

    // Each image dimension in [1, 65536] (as for IDX files), so C*H*W cannot overflow; the
    // declared sample count is checked against the file's storage when the rows are read.
    const std::size_t first_image_dim = shape.size() == 4 ? 1 : 2;
    for (std::size_t k = first_image_dim; k < shape.size(); ++k)
      if (shape[k] < 1 || shape[k] > 65536)
        fail(concat("images dimension ", k, " = ", shape[k], ": must be in [1, 65536]"));
    if (shape[0] > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
      fail(concat("images declares ", shape[0], " samples: more than 2^31 - 1"));
    Dataset d;
    d.name = f.has_attribute("name") ? f.read_string_attribute("name") : path;
    d.channels = shape.size() == 4 ? static_cast<Index>(shape[1]) : 1;
    d.height = static_cast<Index>(shape[shape.size() - 2]);
    d.width = static_cast<Index>(shape.back());
    const Index N = static_cast<Index>(shape[0]);
    const Index D = d.channels * d.height * d.width;
    if (limit > N)
      core::throw_invalid(kH5Tag, concat("limit = ", limit, ": the data set '", path,
                                         "' holds only ", N, " samples"));
    const Index n = limit > 0 ? limit : N;

    // The stored type decides the scaling: uint8 -> /255, float -> as is (in [0, 1]). The
    // images are read (and their size checked against the file) before the matrix is sized.
    h5::Handle ds(H5Dopen2(f.id(), "images", H5P_DEFAULT));
    h5::Handle type(H5Dget_type(ds.get()));
    const H5T_class_t cls = H5Tget_class(type.get());
    if (cls == H5T_INTEGER) {
      if (H5Tget_size(type.get()) != 1 || H5Tget_sign(type.get()) != H5T_SGN_NONE)
        fail("images are integers but not uint8 (store uint8 0..255 or float in [0, 1])");
      auto a = f.read_dataset_rows<std::uint8_t>("images", 0, static_cast<std::size_t>(n));
      d.images.resize(n, D);
      for (Index i = 0; i < n * D; ++i)
        d.images.data()[i] = static_cast<float>(a.data[static_cast<std::size_t>(i)]) / 255.0f;
    } else if (cls == H5T_FLOAT) {
      auto a = f.read_dataset_rows<float>("images", 0, static_cast<std::size_t>(n));
      d.images.resize(n, D);
      for (Index i = 0; i < n * D; ++i) {
        const float v = a.data[static_cast<std::size_t>(i)];
        // Float images are pixels in [0, 1]; 0..255 floats would be silently 255x too bright.
        if (!(v >= 0.0f && v <= 1.0f))
          fail(concat("images: sample ", i / D, " value ", i % D, " = ", v,
                      std::isfinite(v) ? ": float pixels must be in [0, 1] (store uint8 for 0..255)"
                                       : ": must be finite"));
        d.images.data()[i] = v;
      }
    } else {
      fail("images are neither uint8 nor float");
    }
    auto l = f.read_dataset_rows<std::int64_t>("labels", 0, static_cast<std::size_t>(n));
    d.labels.resize(static_cast<std::size_t>(n));
    for (Index i = 0; i < n; ++i) {
      const std::int64_t v = l.data[static_cast<std::size_t>(i)];
      if (v < 0 || v > (1 << 24)) fail(concat("labels[", i, "] = ", v, ": must be in [0, 2^24]"));
      d.labels[static_cast<std::size_t>(i)] = static_cast<int>(v);
    }
    return d;
  } catch (const std::runtime_error& e) {
    if (std::string(e.what()).rfind(concat("[", kH5Tag, "]"), 0) == 0) throw;
    core::throw_io(kH5Tag, concat(path, ": ", e.what()));
  }
}

void save_hdf5_dataset(const Dataset& data, const std::string& path) {
  const Index D = data.channels * data.height * data.width;
  if (data.images.cols() != D)
    core::throw_invalid("nets::save_hdf5_dataset", concat("images have ", data.images.cols(),
                                                          " values per sample, C*H*W = ", D));
  if (static_cast<Index>(data.labels.size()) != data.images.rows())
    core::throw_invalid("nets::save_hdf5_dataset",
                        concat(data.images.rows(), " images but ", data.labels.size(), " labels"));
  h5::File f = h5::File::create(path);
  f.write_attribute("format", "pcmsim-dataset");
  f.write_attribute("format_version", 1);
  f.write_attribute("name", data.name);
  const auto N = static_cast<std::size_t>(data.images.rows());
  f.write_dataset("images", data.images.data(),
                  {N, static_cast<std::size_t>(data.channels),
                   static_cast<std::size_t>(data.height), static_cast<std::size_t>(data.width)},
                  N * static_cast<std::size_t>(D) >= 4096 ? 4 : 0);
  std::vector<std::int64_t> l(data.labels.begin(), data.labels.end());
  f.write_dataset("labels", l, {N});
  f.close();
}

Dataset load_dataset(const std::string& spec, Index limit) {
  core::require_path("nets::load_dataset", "data set", spec);
  auto ends_with = [&](const std::string& s) {
    return spec.size() >= s.size() && spec.compare(spec.size() - s.size(), s.size(), s) == 0;
  };
  const std::string prefix = "fashion-mnist";
  if (spec.rfind(prefix, 0) == 0 &&
      (spec.size() == prefix.size() || spec[prefix.size()] == ':' || spec[prefix.size()] == '@')) {
    std::string rest = spec.substr(prefix.size());
    std::string dir = kFashionMnistDir;
    if (auto at = rest.find('@'); at != std::string::npos) {
      dir = rest.substr(at + 1);
      rest = rest.substr(0, at);
    }
    std::string split = rest.empty() ? "test" : rest.substr(1);
    std::string stem;
    if (split == "test" || split == "t10k")
      stem = "t10k";
    else if (split == "train")
      stem = "train";
    else
      core::throw_invalid(
          "nets::load_dataset",
          concat("data set '", spec, "': unknown split '", split,
                 "' (fashion-mnist:test, fashion-mnist:t10k or fashion-mnist:train)"));
    Dataset d = load_idx_dataset(dir + "/" + stem + "-images-idx3-ubyte.gz",
                                 dir + "/" + stem + "-labels-idx1-ubyte.gz", limit);
    d.name = "fashion-mnist:" + stem;
    return d;
  }
  if (ends_with(".h5") || ends_with(".hdf5")) return load_hdf5_dataset(spec, limit);
  const std::string key = "images-idx3";
  if (auto pos = spec.rfind(key); pos != std::string::npos) {
    std::string labels = spec;
    labels.replace(pos, key.size(), "labels-idx1");
    return load_idx_dataset(spec, labels, limit);
  }
  core::throw_invalid("nets::load_dataset", concat("data set '", spec,
                                                   "': not recognised (use fashion-mnist:test, "
                                                   "fashion-mnist:train, a .h5 file or an "
                                                   "...images-idx3-ubyte[.gz] file)"));
}

void check_compatible(const Dataset& data, const Network& net) {
  const char* tag = "nets::check_compatible";
  if (data.channels != net.input_shape[0] || data.height != net.input_shape[1] ||
      data.width != net.input_shape[2])
    core::throw_invalid(
        tag, concat("data set '", data.name, "' has images of (C, H, W) = (", data.channels, ", ",
                    data.height, ", ", data.width, ") but model '", net.name, "' expects (",
                    net.input_shape[0], ", ", net.input_shape[1], ", ", net.input_shape[2], ")"));
  if (data.images.cols() != net.input_size())
    core::throw_invalid(tag, concat("data set '", data.name, "': images have ", data.images.cols(),
                                    " values per sample, expected ", net.input_size()));
  if (static_cast<Index>(data.labels.size()) != data.images.rows())
    core::throw_invalid(tag, concat("data set '", data.name, "': ", data.images.rows(),
                                    " images but ", data.labels.size(), " labels"));
  for (std::size_t i = 0; i < data.labels.size(); ++i)
    if (data.labels[i] < 0 || data.labels[i] >= net.num_classes)
      core::throw_invalid(tag, concat("data set '", data.name, "': label ", i, " = ",
                                      data.labels[i], " is out of range for model '", net.name,
                                      "' with num_classes = ", net.num_classes));
}

MatrixF normalized_images(const Dataset& data, const Network& net) {
  check_compatible(data, net);
  const Index N = data.images.rows(), C = net.input_shape[0];
  const Index P = net.input_shape[1] * net.input_shape[2];
  MatrixF out(N, C * P);
  // Same float operations as torchvision's Normalize: (x - mean) / std.
#pragma omp parallel for schedule(static) if (N * C * P >= 65536)
  for (Index n = 0; n < N; ++n)
    for (Index c = 0; c < C; ++c) {
      const float m = net.input_mean[static_cast<std::size_t>(c)];
      const float s = net.input_std[static_cast<std::size_t>(c)];
      for (Index p = 0; p < P; ++p) out(n, c * P + p) = (data.images(n, c * P + p) - m) / s;
    }
  return out;
}

}  // namespace pcmsim::nets
