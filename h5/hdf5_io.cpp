#include "h5/hdf5_io.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <type_traits>

#include "core/error.h"

namespace pcmsim::h5 {
using core::concat;
using core::throw_invalid;
using core::throw_io;

namespace {

constexpr const char* kTag = "core::hdf5";

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  std::string reason = hdf5_error_stack();
  if (reason.empty()) throw_io(kTag, concat(where, ": ", what));
  throw_io(kTag, concat(where, ": ", what, " (HDF5: ", reason, ")"));
}

// Checks an HDF5 return code.
template <class R>
R check(R r, const std::string& where, const std::string& what) {
  if (r < 0) fail(where, what);
  return r;
}

template <class T>
hid_t native_type() {
  if constexpr (std::is_same_v<T, float>)
    return H5T_NATIVE_FLOAT;
  else if constexpr (std::is_same_v<T, double>)
    return H5T_NATIVE_DOUBLE;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return H5T_NATIVE_INT32;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return H5T_NATIVE_INT64;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return H5T_NATIVE_UINT8;
  else
    static_assert(sizeof(T) == 0, "unsupported HDF5 element type");
}

template <class T>
const char* type_name() {
  if constexpr (std::is_same_v<T, float>)
    return "float32";
  else if constexpr (std::is_same_v<T, double>)
    return "float64";
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return "int32";
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return "int64";
  else
    return "uint8";
}

const char* class_name(H5T_class_t c) {
  switch (c) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    case H5T_COMPOUND:
      return "compound";
    case H5T_ENUM:
      return "enum";
    case H5T_ARRAY:
      return "array";
    case H5T_VLEN:
      return "vlen";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_REFERENCE:
      return "reference";
    default:
      return "unknown";
  }
}

std::vector<std::size_t> space_shape(hid_t space, const std::string& where) {
  int rank = check(H5Sget_simple_extent_ndims(space), where, "cannot read the dataspace");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0)
    check(H5Sget_simple_extent_dims(space, dims.data(), nullptr), where,
          "cannot read the dataspace");
  if (H5Sget_simple_extent_type(space) == H5S_NULL) fail(where, "has an empty (null) dataspace");
  return std::vector<std::size_t>(dims.begin(), dims.end());
}

// The names of `count` links (H5Lget_name_by_idx) or attributes (H5Aget_name_by_idx, the same
// signature) of `loc`, in name order; `what` is the error text of a failed call.
using NameByIdxFn = ssize_t (*)(hid_t, const char*, H5_index_t, H5_iter_order_t, hsize_t, char*,
                                size_t, hid_t);
std::vector<std::string> names_by_index(hid_t loc, hsize_t count, NameByIdxFn get_name,
                                        const std::string& where, const char* what) {
  std::vector<std::string> names;
  for (hsize_t i = 0; i < count; ++i) {
    ssize_t len = get_name(loc, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    check(len, where, what);
    std::string name(static_cast<std::size_t>(len), '\0');
    check(get_name(loc, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                   static_cast<std::size_t>(len) + 1, H5P_DEFAULT),
          where, what);
    names.push_back(std::move(name));
  }
  return names;
}

std::size_t product(const std::vector<std::size_t>& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

// Reads numeric data from a dataset or attribute into T, validating the stored class and,
// for integer targets, the range (values are read as int64 and checked).
template <class T, class ReadFn>
std::vector<T> read_numeric(hid_t stored_type, std::size_t n, const std::string& where,
                            ReadFn read) {
  H5T_class_t cls = H5Tget_class(stored_type);
  if constexpr (std::is_floating_point_v<T>) {
    if (cls != H5T_FLOAT && cls != H5T_INTEGER)
      fail(where, concat("holds ", class_name(cls), " data, expected numbers"));
    std::vector<T> out(n);
    if (n)
      check(read(native_type<T>(), static_cast<void*>(out.data())), where,
            "cannot read the data (file truncated or corrupted?)");
    return out;
  } else {
    if (cls != H5T_INTEGER)
      fail(where,
           concat("holds ", class_name(cls), " data, expected integers (", type_name<T>(), ")"));
    bool is_unsigned = H5Tget_sign(stored_type) == H5T_SGN_NONE;
    if (is_unsigned && H5Tget_size(stored_type) >= 8) {
      std::vector<std::uint64_t> wide(n);
      if (n)
        check(read(H5T_NATIVE_UINT64, static_cast<void*>(wide.data())), where,
              "cannot read the data (file truncated or corrupted?)");
      std::vector<T> out(n);
      for (std::size_t i = 0; i < n; ++i) {
        if (wide[i] > static_cast<std::uint64_t>(std::numeric_limits<T>::max()))
          fail(where, concat("element ", i, " = ", wide[i], " does not fit ", type_name<T>()));
        out[i] = static_cast<T>(wide[i]);
      }
      return out;
    }
    std::vector<std::int64_t> wide(n);
    if (n)
      check(read(H5T_NATIVE_INT64, static_cast<void*>(wide.data())), where,
            "cannot read the data (file truncated or corrupted?)");
    if constexpr (std::is_same_v<T, std::int64_t>) {
      return wide;
    } else {
      std::vector<T> out(n);
      for (std::size_t i = 0; i < n; ++i) {
        if (wide[i] < static_cast<std::int64_t>(std::numeric_limits<T>::min()) ||
            wide[i] > static_cast<std::int64_t>(std::numeric_limits<T>::max()))
          fail(where, concat("element ", i, " = ", wide[i], " does not fit ", type_name<T>()));
        out[i] = static_cast<T>(wide[i]);
      }
      return out;
    }
  }
}

// Reads n strings (fixed or variable length) from a dataset or attribute.
template <class ReadFn>
std::vector<std::string> read_strings(hid_t stored_type, hid_t space, std::size_t n,
                                      const std::string& where, ReadFn read) {
  if (H5Tget_class(stored_type) != H5T_STRING)
    fail(where,
         concat("holds ", class_name(H5Tget_class(stored_type)), " data, expected a string"));
  std::vector<std::string> out;
  out.reserve(n);
  if (H5Tis_variable_str(stored_type) > 0) {
    Handle mem(H5Tcopy(H5T_C_S1));
    check(H5Tset_size(mem.get(), H5T_VARIABLE), where, "cannot make a string type");
    check(H5Tset_cset(mem.get(), H5Tget_cset(stored_type)), where, "cannot make a string type");
    std::vector<char*> ptrs(n, nullptr);
    if (n)
      check(read(mem.get(), static_cast<void*>(ptrs.data())), where,
            "cannot read the strings (file truncated or corrupted?)");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
#if H5_VERSION_GE(1, 12, 0)
    H5Treclaim(mem.get(), space, H5P_DEFAULT, ptrs.data());
#else
    H5Dvlen_reclaim(mem.get(), space, H5P_DEFAULT, ptrs.data());
#endif
  } else {
    std::size_t len = H5Tget_size(stored_type);
    if (len == 0) fail(where, "has a zero-size string type");
    Handle mem(H5Tcopy(H5T_C_S1));
    check(H5Tset_size(mem.get(), len), where, "cannot make a string type");
    check(H5Tset_strpad(mem.get(), H5T_STR_NULLPAD), where, "cannot make a string type");
    std::vector<char> buf(n * len + 1, '\0');
    if (n)
      check(read(mem.get(), static_cast<void*>(buf.data())), where,
            "cannot read the strings (file truncated or corrupted?)");
    for (std::size_t i = 0; i < n; ++i) {
      const char* p = buf.data() + i * len;
      std::size_t k = 0;
      while (k < len && p[k] != '\0') ++k;
      std::string s(p, k);
      // Space-padded (Fortran style) strings: drop the padding.
      if (H5Tget_strpad(stored_type) == H5T_STR_SPACEPAD)
        while (!s.empty() && s.back() == ' ') s.pop_back();
      out.push_back(std::move(s));
    }
  }
  return out;
}

Handle vlen_utf8_type() {
  Handle t(H5Tcopy(H5T_C_S1));
  H5Tset_size(t.get(), H5T_VARIABLE);
  H5Tset_cset(t.get(), H5T_CSET_UTF8);
  return t;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void silence_hdf5_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::string hdf5_error_stack() {
  std::string text;
  auto walk = [](unsigned, const H5E_error2_t* e, void* data) -> herr_t {
    auto* s = static_cast<std::string*>(data);
    if (e->desc && *e->desc) {
      if (!s->empty()) *s += "; ";
      *s += e->desc;
    }
    return 0;
  };
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk, &text);
  H5Eclear2(H5E_DEFAULT);
  return text;
}

void Handle::reset() {
  if (id_ < 0) return;
  switch (H5Iget_type(id_)) {
    case H5I_FILE:
      H5Fclose(id_);
      break;
    case H5I_GROUP:
    case H5I_DATASET:
      H5Oclose(id_);
      break;
    case H5I_DATATYPE:
      H5Tclose(id_);
      break;
    case H5I_DATASPACE:
      H5Sclose(id_);
      break;
    case H5I_ATTR:
      H5Aclose(id_);
      break;
    case H5I_GENPROP_LST:
      H5Pclose(id_);
      break;
    default:
      break;
  }
  id_ = -1;
}

// ------------------------------------------------------------------------------ File

File File::open_read(const std::string& path) {
  silence_hdf5_errors();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw_io(kTag, concat(path, ": file not found"));
  if (std::filesystem::is_directory(path, ec))
    throw_io(kTag, concat(path, ": is a directory, not an HDF5 file"));
  {
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw_io(kTag, concat(path, ": cannot open for reading (permissions?)"));
  }
  htri_t is = H5Fis_hdf5(path.c_str());
  if (is <= 0) {
    hdf5_error_stack();
    throw_io(kTag, concat(path,
                          ": not an HDF5 file (no HDF5 signature: wrong format or "
                          "corrupted header)"));
  }
  Handle fh(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!fh.valid()) fail(path, "cannot open the HDF5 file (truncated or corrupted?)");
  Handle root(H5Gopen2(fh.get(), "/", H5P_DEFAULT));
  if (!root.valid()) fail(path, "cannot open the root group (truncated or corrupted?)");
  return File(std::move(fh), Group(std::move(root), path, "/"), path);
}

File File::open_read_write(const std::string& path) {
  silence_hdf5_errors();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw_io(kTag, concat(path, ": file not found"));
  Handle fh(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  if (!fh.valid()) fail(path, "cannot open the HDF5 file for writing");
  Handle root(H5Gopen2(fh.get(), "/", H5P_DEFAULT));
  if (!root.valid()) fail(path, "cannot open the root group");
  return File(std::move(fh), Group(std::move(root), path, "/"), path);
}

File File::create(const std::string& path) {
  silence_hdf5_errors();
  Handle fh(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!fh.valid()) fail(path, "cannot create the HDF5 file (folder missing or not writable?)");
  Handle root(H5Gopen2(fh.get(), "/", H5P_DEFAULT));
  if (!root.valid()) fail(path, "cannot open the root group");
  return File(std::move(fh), Group(std::move(root), path, "/"), path);
}

void File::flush() {
  if (fh_.valid()) check(H5Fflush(fh_.get(), H5F_SCOPE_GLOBAL), file_path_, "cannot flush");
}

void File::close() {
  // Close the root group first so that the file id is the last reference.
  static_cast<Group&>(*this) = Group();
  if (fh_.valid()) {
    hid_t id = fh_.release();
    if (H5Fclose(id) < 0) fail(file_path_, "cannot close the file (disk full?)");
  }
}

// ------------------------------------------------------------------------------ Group

std::string Group::child_path(const std::string& name) const {
  if (name.empty()) return path_;
  if (!name.empty() && name[0] == '/') return name;
  return path_ == "/" ? "/" + name : path_ + "/" + name;
}

std::string Group::where(const std::string& child) const { return file_ + ":" + child_path(child); }

std::vector<std::string> Group::members() const {
  silence_hdf5_errors();
  H5G_info_t info;
  check(H5Gget_info(id(), &info), where(), "cannot list the group");
  return names_by_index(id(), info.nlinks, H5Lget_name_by_idx, where(), "cannot list the group");
}

Kind Group::kind_of(const std::string& name) const {
  silence_hdf5_errors();
  // Check every path component so that "a/b" with "a" missing is "missing", not an error.
  std::string prefix;
  std::size_t pos = 0;
  while (true) {
    std::size_t slash = name.find('/', pos);
    prefix = name.substr(0, slash);
    htri_t exists = H5Lexists(id(), prefix.c_str(), H5P_DEFAULT);
    if (exists <= 0) {
      hdf5_error_stack();
      return Kind::missing;
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
  herr_t r = H5Oget_info_by_name3(id(), name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT);
#else
  herr_t r = H5Oget_info_by_name2(id(), name.c_str(), &info, H5O_INFO_BASIC, H5P_DEFAULT);
#endif
  if (r < 0) {
    hdf5_error_stack();
    return Kind::missing;
  }  // e.g. a dangling soft link
  if (info.type == H5O_TYPE_GROUP) return Kind::group;
  if (info.type == H5O_TYPE_DATASET) return Kind::dataset;
  return Kind::other;
}

Group Group::open_group(const std::string& name) const {
  Kind k = kind_of(name);
  if (k == Kind::missing) throw_io(kTag, concat(where(name), ": group not found"));
  if (k != Kind::group) throw_io(kTag, concat(where(name), ": is not a group"));
  Handle h(H5Gopen2(id(), name.c_str(), H5P_DEFAULT));
  if (!h.valid()) fail(where(name), "cannot open the group");
  return Group(std::move(h), file_, child_path(name));
}

Group Group::create_group(const std::string& name) {
  silence_hdf5_errors();
  if (kind_of(name) != Kind::missing) throw_io(kTag, concat(where(name), ": already exists"));
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle h(H5Gcreate2(id(), name.c_str(), lcpl.get(), H5P_DEFAULT, H5P_DEFAULT));
  if (!h.valid()) fail(where(name), "cannot create the group");
  return Group(std::move(h), file_, child_path(name));
}

Group Group::require_group(const std::string& name) {
  return kind_of(name) == Kind::missing ? create_group(name) : open_group(name);
}

// ------------------------------------------------------------------------------ datasets

namespace {
Handle open_dataset(const Group& g, const std::string& name) {
  Kind k = g.kind_of(name);
  if (k == Kind::missing) throw_io(kTag, concat(g.where(name), ": dataset not found"));
  if (k != Kind::dataset) throw_io(kTag, concat(g.where(name), ": is not a dataset"));
  Handle h(H5Dopen2(g.id(), name.c_str(), H5P_DEFAULT));
  if (!h.valid()) fail(g.where(name), "cannot open the dataset (truncated or corrupted?)");
  return h;
}
}  // namespace

std::vector<std::size_t> Group::dataset_shape(const std::string& name) const {
  Handle d = open_dataset(*this, name);
  Handle space(H5Dget_space(d.get()));
  if (!space.valid()) fail(where(name), "cannot read the dataspace");
  return space_shape(space.get(), where(name));
}

namespace {
// An open numeric dataset: its dataspace, stored type and shape.
struct DatasetInfo {
  Handle d, space, type;
  std::string where;
  std::vector<std::size_t> shape;
};
DatasetInfo dataset_info(const Group& g, const std::string& name) {
  DatasetInfo i;
  i.d = open_dataset(g, name);
  i.where = g.where(name);
  i.space = Handle(H5Dget_space(i.d.get()));
  if (!i.space.valid()) fail(i.where, "cannot read the dataspace");
  i.type = Handle(H5Dget_type(i.d.get()));
  if (!i.type.valid()) fail(i.where, "cannot read the datatype");
  i.shape = space_shape(i.space.get(), i.where);
  return i;
}
}  // namespace

template <class T>
Array<T> Group::read_dataset(const std::string& name) const {
  DatasetInfo i = dataset_info(*this, name);
  Array<T> a;
  a.shape = i.shape;
  std::size_t n = product(a.shape);
  a.data = read_numeric<T>(i.type.get(), n, i.where, [&](hid_t mem, void* buf) {
    return H5Dread(i.d.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
  return a;
}

template <class T>
Array<T> Group::read_dataset_rows(const std::string& name, std::size_t row0,
                                  std::size_t rows) const {
  DatasetInfo i = dataset_info(*this, name);
  const std::string& w = i.where;
  Array<T> a;
  a.shape = i.shape;
  if (a.shape.empty()) fail(w, "is a scalar; cannot select rows");
  if (row0 > a.shape[0] || rows > a.shape[0] - row0)
    throw_invalid(kTag,
                  concat(w, ": rows [", row0, ", ", row0 + rows, ") out of [0, ", a.shape[0], ")"));
  std::vector<hsize_t> start(a.shape.size(), 0), count(a.shape.begin(), a.shape.end());
  start[0] = row0;
  count[0] = rows;
  a.shape[0] = rows;
  const std::size_t n = product(a.shape);
  if (n == 0) return a;
  check(H5Sselect_hyperslab(i.space.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(),
                            nullptr),
        w, "cannot select rows");
  Handle mem(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr));
  a.data = read_numeric<T>(i.type.get(), n, w, [&](hid_t memtype, void* buf) {
    return H5Dread(i.d.get(), memtype, mem.get(), i.space.get(), H5P_DEFAULT, buf);
  });
  return a;
}

template <class T>
void Group::write_dataset(const std::string& name, const T* data,
                          const std::vector<std::size_t>& shape, int deflate) {
  silence_hdf5_errors();
  std::string w = where(name);
  if (deflate < 0 || deflate > 9)
    throw_invalid(kTag, concat(w, ": deflate = ", deflate, ": must be in [0, 9]"));
  if (kind_of(name) != Kind::missing) throw_io(kTag, concat(w, ": already exists"));
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(dims.empty()
                   ? H5Screate(H5S_SCALAR)
                   : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  if (!space.valid()) fail(w, "cannot create the dataspace");
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  std::size_t n = product(shape);
  if (deflate > 0 && n > 0 && !dims.empty()) {
    // Chunks of whole trailing rows, about 64K elements, so reading a few rows stays cheap.
    std::vector<hsize_t> chunk(dims);
    std::size_t inner = 1;
    for (std::size_t i = 1; i < chunk.size(); ++i) inner *= chunk[i];
    hsize_t rows = std::max<hsize_t>(1, 65536 / std::max<std::size_t>(1, inner));
    chunk[0] = std::min<hsize_t>(dims[0], rows);
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), w,
          "cannot set chunking");
    check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(deflate)), w, "cannot set gzip");
  }
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle d(H5Dcreate2(id(), name.c_str(), native_type<T>(), space.get(), lcpl.get(), dcpl.get(),
                      H5P_DEFAULT));
  if (!d.valid()) fail(w, "cannot create the dataset");
  if (n)
    check(H5Dwrite(d.get(), native_type<T>(), H5S_ALL, H5S_ALL, H5P_DEFAULT, data), w,
          "cannot write the dataset (disk full?)");
}

std::vector<std::string> Group::read_string_dataset(const std::string& name) const {
  Handle d = open_dataset(*this, name);
  std::string w = where(name);
  Handle space(H5Dget_space(d.get()));
  Handle type(H5Dget_type(d.get()));
  if (!space.valid() || !type.valid()) fail(w, "cannot read the dataset header");
  std::size_t n = product(space_shape(space.get(), w));
  return read_strings(type.get(), space.get(), n, w, [&](hid_t mem, void* buf) {
    return H5Dread(d.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
  });
}

void Group::write_string_dataset(const std::string& name, const std::vector<std::string>& values) {
  silence_hdf5_errors();
  std::string w = where(name);
  if (kind_of(name) != Kind::missing) throw_io(kTag, concat(w, ": already exists"));
  hsize_t dim = values.size();
  Handle space(H5Screate_simple(1, &dim, nullptr));
  Handle type = vlen_utf8_type();
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle d(H5Dcreate2(id(), name.c_str(), type.get(), space.get(), lcpl.get(), H5P_DEFAULT,
                      H5P_DEFAULT));
  if (!d.valid()) fail(w, "cannot create the dataset");
  std::vector<const char*> ptrs;
  for (auto& s : values) ptrs.push_back(s.c_str());
  if (!values.empty())
    check(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()), w,
          "cannot write the dataset");
}

// ------------------------------------------------------------------------------ attributes

bool Group::has_attribute(const std::string& name) const {
  silence_hdf5_errors();
  htri_t r = H5Aexists(id(), name.c_str());
  if (r < 0) fail(where(), concat("cannot check attribute '", name, "'"));
  return r > 0;
}

std::vector<std::string> Group::attribute_names() const {
  silence_hdf5_errors();
  H5O_info_t info;
#if H5_VERSION_GE(1, 12, 0)
  check(H5Oget_info3(id(), &info, H5O_INFO_NUM_ATTRS), where(), "cannot list attributes");
#else
  check(H5Oget_info2(id(), &info, H5O_INFO_NUM_ATTRS), where(), "cannot list attributes");
#endif
  return names_by_index(id(), info.num_attrs, H5Aget_name_by_idx, where(),
                        "cannot list attributes");
}

Handle Group::open_attribute(const std::string& name) const {
  if (!has_attribute(name)) throw_io(kTag, concat(where(), ": attribute '", name, "' is missing"));
  Handle a(H5Aopen(id(), name.c_str(), H5P_DEFAULT));
  if (!a.valid()) fail(where(), concat("cannot open attribute '", name, "'"));
  return a;
}

namespace {
struct AttrInfo {
  Handle space, type;
  std::vector<std::size_t> shape;
  std::size_t n = 0;
};
AttrInfo attr_info(hid_t a, const std::string& w) {
  AttrInfo i;
  i.space = Handle(H5Aget_space(a));
  i.type = Handle(H5Aget_type(a));
  if (!i.space.valid() || !i.type.valid()) fail(w, "cannot read the attribute header");
  i.shape = space_shape(i.space.get(), w);
  if (i.shape.size() > 1)
    fail(w, concat("has rank ", i.shape.size(), ", expected a scalar or 1-D"));
  i.n = product(i.shape);
  return i;
}
}  // namespace

std::vector<std::string> Group::read_string_list_attribute(const std::string& name) const {
  Handle a = open_attribute(name);
  std::string w = where() + " attribute '" + name + "'";
  AttrInfo i = attr_info(a.get(), w);
  return read_strings(i.type.get(), i.space.get(), i.n, w,
                      [&](hid_t mem, void* buf) { return H5Aread(a.get(), mem, buf); });
}

std::string Group::read_string_attribute(const std::string& name) const {
  auto v = read_string_list_attribute(name);
  if (v.size() != 1)
    throw_io(kTag, concat(where(), " attribute '", name, "': holds ", v.size(),
                          " strings, expected one"));
  return v[0];
}

std::vector<double> Group::read_double_list_attribute(const std::string& name) const {
  Handle a = open_attribute(name);
  std::string w = where() + " attribute '" + name + "'";
  AttrInfo i = attr_info(a.get(), w);
  return read_numeric<double>(i.type.get(), i.n, w,
                              [&](hid_t mem, void* buf) { return H5Aread(a.get(), mem, buf); });
}

double Group::read_double_attribute(const std::string& name) const {
  auto v = read_double_list_attribute(name);
  if (v.size() != 1)
    throw_io(kTag, concat(where(), " attribute '", name, "': holds ", v.size(),
                          " numbers, expected one"));
  return v[0];
}

std::vector<std::int64_t> Group::read_int_list_attribute(const std::string& name) const {
  Handle a = open_attribute(name);
  std::string w = where() + " attribute '" + name + "'";
  AttrInfo i = attr_info(a.get(), w);
  if (H5Tget_class(i.type.get()) == H5T_FLOAT) {
    // Accept integral floats (e.g. written by a script as 3.0); reject 2.5.
    auto d = read_numeric<double>(i.type.get(), i.n, w,
                                  [&](hid_t mem, void* buf) { return H5Aread(a.get(), mem, buf); });
    std::vector<std::int64_t> out;
    for (std::size_t k = 0; k < d.size(); ++k) {
      if (!std::isfinite(d[k]) || std::floor(d[k]) != d[k] || std::fabs(d[k]) > 9.0e15)
        throw_io(kTag, concat(w, ": element ", k, " = ", d[k], " is not an integer"));
      out.push_back(static_cast<std::int64_t>(d[k]));
    }
    return out;
  }
  return read_numeric<std::int64_t>(
      i.type.get(), i.n, w, [&](hid_t mem, void* buf) { return H5Aread(a.get(), mem, buf); });
}

std::int64_t Group::read_int_attribute(const std::string& name) const {
  auto v = read_int_list_attribute(name);
  if (v.size() != 1)
    throw_io(kTag, concat(where(), " attribute '", name, "': holds ", v.size(),
                          " numbers, expected one"));
  return v[0];
}

namespace {
void delete_if_exists(hid_t loc, const std::string& name, const std::string& w) {
  htri_t r = H5Aexists(loc, name.c_str());
  if (r < 0) fail(w, "cannot check the attribute");
  if (r > 0) check(H5Adelete(loc, name.c_str()), w, "cannot replace the attribute");
}
void write_attr(hid_t loc, const std::string& name, hid_t file_type, hid_t mem_type, hid_t space,
                const void* buf, const std::string& w) {
  silence_hdf5_errors();
  delete_if_exists(loc, name, w);
  Handle a(H5Acreate2(loc, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT));
  if (!a.valid()) fail(w, "cannot create the attribute");
  check(H5Awrite(a.get(), mem_type, buf), w, "cannot write the attribute");
}
}  // namespace

void Group::write_attribute(const std::string& name, const std::string& value) {
  Handle space(H5Screate(H5S_SCALAR));
  Handle type = vlen_utf8_type();
  const char* p = value.c_str();
  write_attr(id(), name, type.get(), type.get(), space.get(), &p,
             where() + " attribute '" + name + "'");
}

void Group::write_attribute(const std::string& name, double value) {
  Handle space(H5Screate(H5S_SCALAR));
  write_attr(id(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(), &value,
             where() + " attribute '" + name + "'");
}

void Group::write_attribute(const std::string& name, std::int64_t value) {
  Handle space(H5Screate(H5S_SCALAR));
  write_attr(id(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(), &value,
             where() + " attribute '" + name + "'");
}

void Group::write_attribute(const std::string& name, const std::vector<std::string>& values) {
  hsize_t dim = values.size();
  Handle space(H5Screate_simple(1, &dim, nullptr));
  Handle type = vlen_utf8_type();
  std::vector<const char*> ptrs;
  for (auto& s : values) ptrs.push_back(s.c_str());
  const char* dummy = "";
  write_attr(id(), name, type.get(), type.get(), space.get(),
             ptrs.empty() ? static_cast<const void*>(&dummy) : ptrs.data(),
             where() + " attribute '" + name + "'");
}

void Group::write_attribute(const std::string& name, const std::vector<double>& values) {
  hsize_t dim = values.size();
  Handle space(H5Screate_simple(1, &dim, nullptr));
  double dummy = 0;
  write_attr(id(), name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, space.get(),
             values.empty() ? &dummy : values.data(), where() + " attribute '" + name + "'");
}

void Group::write_attribute(const std::string& name, const std::vector<std::int64_t>& values) {
  hsize_t dim = values.size();
  Handle space(H5Screate_simple(1, &dim, nullptr));
  std::int64_t dummy = 0;
  write_attr(id(), name, H5T_STD_I64LE, H5T_NATIVE_INT64, space.get(),
             values.empty() ? &dummy : values.data(), where() + " attribute '" + name + "'");
}

// Explicit instantiations for the supported element types.
#define PCMSIM_H5_INSTANTIATE(T)                                                              \
  template Array<T> Group::read_dataset<T>(const std::string&) const;                         \
  template Array<T> Group::read_dataset_rows<T>(const std::string&, std::size_t, std::size_t) \
      const;                                                                                  \
  template void Group::write_dataset<T>(const std::string&, const T*,                         \
                                        const std::vector<std::size_t>&, int);
PCMSIM_H5_INSTANTIATE(float)
PCMSIM_H5_INSTANTIATE(double)
PCMSIM_H5_INSTANTIATE(std::int32_t)
PCMSIM_H5_INSTANTIATE(std::int64_t)
PCMSIM_H5_INSTANTIATE(std::uint8_t)
#undef PCMSIM_H5_INSTANTIATE

}  // namespace pcmsim::h5
