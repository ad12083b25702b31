// RAII helpers over the HDF5 C API, shared by every part of pcmsim that reads or writes HDF5
// (models, data sets, device tables, results).
//
// - Every failure throws std::runtime_error tagged "[core::hdf5]" and naming the file and the
//   object ("model.h5:/layers/000_fc1/weight"), with HDF5's own reason appended when it has one.
// - HDF5's automatic error printing is switched off the first time any helper is used, so the
//   library never prints.
// - Files are reproducible and checked: no object carries a modification time (the same content
//   gives the same bytes), the HDF5 1.10 format (checksummed metadata), fixed-length strings (no
//   unchecksummed global heap), every non-empty dataset written is chunked with a Fletcher-32
//   checksum (a flipped bit is an error "checksum mismatch" naming the dataset on reading), and
//   a declared shape is checked against what the file stores before anything is allocated.
// - Handles close themselves (move-only). Objects keep their file open (HDF5's default "weak"
//   close), so a Group may outlive the File it came from.
// - The serial HDF5 library is not thread-safe: call these from one thread at a time.
//
// Example:
//   auto f = h5::File::open_read("model.h5");
//   std::string kind = f.open_group("layers/000_fc1").read_string_attribute("kind");
//   auto w = f.read_dataset<float>("layers/000_fc1/weight");   // w.data, w.shape
#pragma once

#include <hdf5.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace pcmsim::h5 {

// An owned HDF5 identifier; closes itself with
// H5Oclose/H5Fclose/H5Sclose/H5Tclose/H5Aclose/H5Pclose.
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) : id_(id) {}
  ~Handle() { reset(); }
  Handle(Handle&& o) noexcept : id_(o.id_) { o.id_ = -1; }
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = o.id_;
      o.id_ = -1;
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  hid_t release() {
    hid_t id = id_;
    id_ = -1;
    return id;
  }
  void reset();

 private:
  hid_t id_ = -1;
};

// N-dimensional array read from a dataset: row-major (C order) data and its shape.
template <class T>
struct Array {
  std::vector<T> data;
  std::vector<std::size_t> shape;
  std::size_t size() const { return data.size(); }
};

// Supported element types for datasets: float, double, std::int32_t, std::int64_t, std::uint8_t.
// Reading converts between numeric types only when lossless in kind: float/double accept any
// stored integer or float; integer types accept only stored integers, and a value out of the
// target type's range is an error (never clamped).

enum class Kind { missing, group, dataset, other };

// A group (or the root of a file). `where()` names it for error messages: "file.h5:/a/b".
class Group {
 public:
  Group() = default;
  Group(Handle h, std::string file, std::string path)
      : h_(std::move(h)), file_(std::move(file)), path_(std::move(path)) {}

  hid_t id() const { return h_.get(); }
  const std::string& file_name() const { return file_; }
  const std::string& path() const { return path_; }        // "/a/b"
  std::string where(const std::string& child = "") const;  // "file.h5:/a/b/child"

  // Members (links) in name order, and what a member is. Names may be relative paths "a/b".
  std::vector<std::string> members() const;
  Kind kind_of(const std::string& name) const;
  bool has_group(const std::string& name) const { return kind_of(name) == Kind::group; }
  bool has_dataset(const std::string& name) const { return kind_of(name) == Kind::dataset; }

  Group open_group(const std::string& name) const;  // error if missing or not a group
  Group create_group(const std::string& name);      // error if it exists; creates parents
  Group require_group(const std::string& name);     // open, or create if missing

  // Datasets.
  std::vector<std::size_t> dataset_shape(const std::string& name) const;
  template <class T>
  Array<T> read_dataset(const std::string& name) const;
  // Rows [row0, row0 + rows) along the first dimension (a hyperslab: only those are read).
  template <class T>
  Array<T> read_dataset_rows(const std::string& name, std::size_t row0, std::size_t rows) const;
  // Writes a new dataset (error if it exists), chunked with a Fletcher-32 checksum when it has
  // elements. `deflate` 0..9: gzip level (0 = none).
  template <class T>
  void write_dataset(const std::string& name, const T* data, const std::vector<std::size_t>& shape,
                     int deflate = 0);
  template <class T>
  void write_dataset(const std::string& name, const std::vector<T>& data,
                     const std::vector<std::size_t>& shape, int deflate = 0) {
    write_dataset(name, data.data(), shape, deflate);
  }
  // Datasets of strings (variable-length UTF-8), 1-D.
  std::vector<std::string> read_string_dataset(const std::string& name) const;
  void write_string_dataset(const std::string& name, const std::vector<std::string>& values);

  // Attributes on this group (scalar or 1-D). Reading checks the stored type: a string where a
  // number is expected (or the reverse) is an error naming the attribute and what it found.
  bool has_attribute(const std::string& name) const;
  std::vector<std::string> attribute_names() const;
  std::string read_string_attribute(const std::string& name) const;
  std::vector<std::string> read_string_list_attribute(const std::string& name) const;
  double read_double_attribute(const std::string& name) const;     // scalar or 1-element
  std::int64_t read_int_attribute(const std::string& name) const;  // integer (or integral float)
  std::vector<double> read_double_list_attribute(const std::string& name) const;
  std::vector<std::int64_t> read_int_list_attribute(const std::string& name) const;

  // Writing replaces an existing attribute of the same name.
  void write_attribute(const std::string& name, const std::string& value);
  void write_attribute(const std::string& name, const char* value) {
    write_attribute(name, std::string(value));
  }
  void write_attribute(const std::string& name, double value);
  void write_attribute(const std::string& name, std::int64_t value);
  void write_attribute(const std::string& name, int value) {
    write_attribute(name, static_cast<std::int64_t>(value));
  }
  void write_attribute(const std::string& name, const std::vector<std::string>& values);
  void write_attribute(const std::string& name, const std::vector<double>& values);
  void write_attribute(const std::string& name, const std::vector<std::int64_t>& values);

 private:
  Handle open_attribute(const std::string& name) const;
  std::string child_path(const std::string& name) const;
  Handle h_;
  std::string file_;
  std::string path_;
};

// A file; it is also its root group.
class File : public Group {
 public:
  // Read-only. Errors: missing file, not an HDF5 file / corrupted, truncated (HDF5's reason given).
  static File open_read(const std::string& path);
  // Read-write, existing file.
  static File open_read_write(const std::string& path);
  // Creates (truncates) a file. It is built in memory and written to `path` by close() (or by
  // the destructor, unless an exception is unwinding: then nothing is written), with checked
  // writes: a full disk is an error naming the file, and HDF5 itself never writes to the disk,
  // so a failed write leaves no HDF5 state behind to crash its shutdown at exit.
  static File create(const std::string& path);

  File(File&&) noexcept = default;
  File& operator=(File&&) noexcept = default;
  ~File();

  const std::string& file_path() const { return file_path_; }
  void flush();
  // Closes now and, for a created file, writes it (also done by the destructor, which cannot
  // report errors).
  void close();

 private:
  File(Handle fh, Group root, std::string path)
      : Group(std::move(root)), fh_(std::move(fh)), file_path_(std::move(path)) {}
  Handle fh_;
  std::string file_path_;
  bool in_memory_ = false;      // created: written to file_path_ on close
  int uncaught_at_create_ = 0;  // std::uncaught_exceptions() when created
};

// Turns off HDF5's automatic error printing (idempotent; every helper calls it).
void silence_hdf5_errors();
// HDF5's error stack, innermost reason last, as one line ("" if empty). Clears the stack.
std::string hdf5_error_stack();

}  // namespace pcmsim::h5
