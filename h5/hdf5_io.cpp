#include "h5/hdf5_io.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <type_traits>
#include <vector>

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
  // A flipped bit in checksummed data or metadata: say so plainly, not as "cannot read".
  if (reason.find("Fletcher32") != std::string::npos ||
      reason.find("checksum") != std::string::npos)
    throw_io(kTag,
             concat(where, ": checksum mismatch: the file is corrupted (HDF5: ", reason, ")"));
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

std::string shape_text(const std::vector<std::size_t>& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) text += concat(i ? ", " : "", shape[i]);
  return text + "]";
}

// The element count of a shape; a count whose bytes (of `element_size` each) overflow 64 bits
// is an error naming the object (a corrupted or hostile header, never a real array).
std::size_t product(const std::vector<std::size_t>& shape, const std::string& where = "",
                    std::size_t element_size = 1) {
  std::size_t n = 1;
  const std::size_t limit =
      std::numeric_limits<std::size_t>::max() / std::max<std::size_t>(1, element_size);
  for (auto d : shape) {
    if (d != 0 && n > limit / d)
      throw_io(kTag, concat(where, ": declared shape ", shape_text(shape),
                            " overflows 64-bit sizes (corrupted header?)"));
    n *= d;
  }
  return n;
}

// The size of the file holding `object` in bytes (0 when HDF5 cannot tell).
hsize_t file_size_of(hid_t object) {
  Handle file(H5Iget_file_id(object));
  hsize_t size = 0;
  if (!file.valid() || H5Fget_filesize(file.get(), &size) < 0) {
    hdf5_error_stack();
    return 0;
  }
  return size;
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
    check(H5Tset_cset(mem.get(), H5Tget_cset(stored_type)), where, "cannot make a string type");
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

// Object creation properties of every object pcmsim writes: no modification times, so two runs
// that write the same content write the same bytes; attributes kept in the (checksummed) object
// header however many there are, not moved to the "dense" fractal heap, whose data blocks carry
// no checksum.
void set_object_properties(hid_t plist, const std::string& where) {
  check(H5Pset_obj_track_times(plist, false), where, "cannot set up the object");
  check(H5Pset_attr_phase_change(plist, 65535, 65535), where, "cannot set up the object");
}

// Groups (and the root) keep their links in the object header too: besides the checksum, the
// "dense" link storage has an error path in libhdf5 1.10 that frees uninitialised memory when
// a corrupted file fails to list its links (found by tests/fuzz).
void set_group_properties(hid_t plist, const std::string& where) {
  set_object_properties(plist, where);
  check(H5Pset_link_phase_change(plist, 65535, 65535), where, "cannot set up the group");
}

// Dataset creation properties shared by every writer (above).
Handle dataset_create_plist(const std::string& where) {
  Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
  set_object_properties(dcpl.get(), where);
  return dcpl;
}

// Strings are written fixed-length (NUL-padded UTF-8, at least 1 byte), not variable-length:
// variable-length strings live in HDF5's global heap, the one structure without a checksum,
// whose corruption libhdf5 1.10 does not survive (a heap overflow in H5HG_read). Fixed-length
// attribute values sit in the checksummed object header, dataset values in checksummed chunks.
// `n` strings of `size` bytes each in `buffer`; a NUL inside a string is refused (it would end
// the string on reading).
Handle fixed_utf8_type(const std::vector<std::string>& values, std::vector<char>& buffer,
                       const std::string& where) {
  std::size_t size = 1;
  for (const auto& v : values) {
    if (v.find('\0') != std::string::npos)
      throw_invalid(kTag, concat(where, ": the string '", v.substr(0, v.find('\0')),
                                 "\\0...' contains a NUL byte"));
    size = std::max(size, v.size());
  }
  buffer.assign(std::max<std::size_t>(1, values.size()) * size, '\0');
  for (std::size_t i = 0; i < values.size(); ++i)
    std::copy(values[i].begin(), values[i].end(), buffer.begin() + i * size);
  Handle t(H5Tcopy(H5T_C_S1));
  check(H5Tset_size(t.get(), size), where, "cannot make a string type");
  check(H5Tset_strpad(t.get(), H5T_STR_NULLPAD), where, "cannot make a string type");
  check(H5Tset_cset(t.get(), H5T_CSET_UTF8), where, "cannot make a string type");
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

namespace {

// The HDF5 library (1.10) has no defence against some corrupted metadata: a damaged B-tree or
// heap makes it read out of bounds and crash, and no error handler can catch that. So before a
// file is read, a child process opens it and reads every object, attribute and dataset; if the
// library crashes there, the file is reported as corrupted instead of crashing the caller.
constexpr std::size_t kProbeBytes = std::size_t{64} << 20;  // larger values: metadata only
constexpr unsigned kProbeSeconds = 60;                      // a hang is left to the real read

void probe_values(hid_t obj, bool dataset) {
  const hid_t type = dataset ? H5Dget_type(obj) : H5Aget_type(obj);
  const hid_t space = dataset ? H5Dget_space(obj) : H5Aget_space(obj);
  const hid_t native = type >= 0 ? H5Tget_native_type(type, H5T_DIR_DEFAULT) : -1;
  const hssize_t n = space >= 0 ? H5Sget_simple_extent_npoints(space) : -1;
  const std::size_t size = native >= 0 ? H5Tget_size(native) : 0;
  if (n > 0 && size > 0 && static_cast<std::size_t>(n) <= kProbeBytes / size) {
    std::vector<char> values(static_cast<std::size_t>(n) * size);  // variable-length data leaks
    if (dataset)                                                    // in the child: it exits
      H5Dread(obj, native, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data());
    else
      H5Aread(obj, native, values.data());
  }
  for (hid_t id : {native, type}) if (id >= 0) H5Tclose(id);
  if (space >= 0) H5Sclose(space);
}

herr_t probe_attribute(hid_t loc, const char* name, const H5A_info_t*, void*) {
  const hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
  if (a >= 0) {
    probe_values(a, false);
    H5Aclose(a);
  }
  return 0;
}

herr_t probe_object(hid_t root, const char* name, const H5O_info_t* info, void*) {
  const hid_t obj = H5Oopen(root, name, H5P_DEFAULT);
  if (obj < 0) return 0;
  H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_NATIVE, nullptr, probe_attribute, nullptr);
  if (info->type == H5O_TYPE_DATASET) probe_values(obj, true);
  H5Oclose(obj);
  return 0;
}

void check_hdf5_library_survives(const std::string& path) {
  const pid_t pid = fork();
  if (pid < 0) return;  // no child: read without the check
  if (pid == 0) {
    alarm(kProbeSeconds);
    try {
      const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      if (f >= 0) H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_NATIVE, probe_object, nullptr, H5O_INFO_BASIC);
    } catch (...) {
    }
    _exit(0);  // no destructors or atexit handlers of the parent's state
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return;
  if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) return;
  throw_io(kTag, concat(path, ": corrupted HDF5 file (the HDF5 library crashed reading it: ",
                        WIFSIGNALED(status) ? concat("signal ", WTERMSIG(status))
                                            : concat("exit status ", WEXITSTATUS(status)),
                        ")"));
}

}  // namespace

File File::open_read(const std::string& path) {
  silence_hdf5_errors();
  core::require_path(kTag, "HDF5 file", path);
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
  check_hdf5_library_survives(path);
  Handle fh(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!fh.valid()) fail(path, "cannot open the HDF5 file (truncated or corrupted?)");
  Handle root(H5Gopen2(fh.get(), "/", H5P_DEFAULT));
  if (!root.valid()) fail(path, "cannot open the root group (truncated or corrupted?)");
  return File(std::move(fh), Group(std::move(root), path, "/"), path);
}

File File::open_read_write(const std::string& path) {
  silence_hdf5_errors();
  core::require_path(kTag, "HDF5 file", path);
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
  core::require_path(kTag, "HDF5 file", path);
  // Created (empty) now, as HDF5 would: an unwritable path fails here, before any work.
  if (std::FILE* probe = std::fopen(path.c_str(), "wb"))
    std::fclose(probe);
  else
    throw_io(kTag, concat(path, ": cannot create the file (folder missing or not writable?)"));
  // No modification times on the root group (nor, below, on any object): the same content
  // gives the same bytes.
  Handle fcpl(H5Pcreate(H5P_FILE_CREATE));
  set_group_properties(fcpl.get(), path);
  // The HDF5 1.10 file format: its superblock, object headers and chunk indexes carry checksums
  // (the 1.8 format's chunk B-trees do not), so a flipped bit in the metadata (a shape, an
  // attribute) is detected as well as in the data. Readable by HDF5 >= 1.10 (h5py >= 2.7).
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS));
  check(H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_V110, H5F_LIBVER_V110), path,
        "cannot set up the file");
  // In memory (the core driver without a backing store); close() writes the image.
  check(H5Pset_fapl_core(fapl.get(), std::size_t{1} << 20, false), path, "cannot set up the file");
  Handle fh(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()));
  if (!fh.valid()) fail(path, "cannot create the HDF5 file");
  Handle root(H5Gopen2(fh.get(), "/", H5P_DEFAULT));
  if (!root.valid()) fail(path, "cannot open the root group");
  File file(std::move(fh), Group(std::move(root), path, "/"), path);
  file.in_memory_ = true;
  file.uncaught_at_create_ = std::uncaught_exceptions();
  return file;
}

File::~File() {
  if (!fh_.valid()) return;
  if (in_memory_ && std::uncaught_exceptions() > uncaught_at_create_) {
    // Unwinding: discard, write nothing (and remove the empty file create() made).
    in_memory_ = false;
    std::remove(file_path_.c_str());
  }
  try {
    close();
  } catch (...) {  // a destructor cannot report; call close() to see errors
  }
}

namespace {
// Bob Jenkins' lookup3 hash (hashlittle), the checksum HDF5 puts on its metadata.
std::uint32_t lookup3(const unsigned char* k, std::size_t length) {
  const auto rot = [](std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  const auto word = [&](std::size_t i) {
    return std::uint32_t(k[i]) | std::uint32_t(k[i + 1]) << 8 | std::uint32_t(k[i + 2]) << 16 |
           std::uint32_t(k[i + 3]) << 24;
  };
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + static_cast<std::uint32_t>(length);
  while (length > 12) {
    a += word(0), b += word(4), c += word(8);
    a -= c, a ^= rot(c, 4), c += b;
    b -= a, b ^= rot(a, 6), a += c;
    c -= b, c ^= rot(b, 8), b += a;
    a -= c, a ^= rot(c, 16), c += b;
    b -= a, b ^= rot(a, 19), a += c;
    c -= b, c ^= rot(b, 4), b += a;
    length -= 12;
    k += 12;
  }
  if (length == 0) return c;
  unsigned char tail[12] = {};
  std::copy(k, k + length, tail);
  k = tail;
  a += word(0), b += word(4), c += word(8);
  c ^= b, c -= rot(b, 14);
  a ^= c, a -= rot(c, 11);
  b ^= a, b -= rot(a, 25);
  c ^= b, c -= rot(b, 16);
  a ^= c, a -= rot(c, 4);
  b ^= a, b -= rot(a, 14);
  c ^= b, c -= rot(b, 24);
  return c;
}

// HDF5 1.10's file image of a file open for writing carries a version-2 superblock whose
// checksum was computed with the "open for writing" flag set, while the image clears the flag:
// no reader could open it. The checksum is recomputed over the superblock as the image has it
// (signature, version, sizes, flags, four addresses).
void fix_superblock_checksum(std::vector<char>& image) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  if (image.size() < 12 || !std::equal(kSignature, kSignature + 8, image.begin())) return;
  const int version = static_cast<unsigned char>(image[8]);
  if (version != 2 && version != 3) return;
  const std::size_t at = 12 + 4 * static_cast<std::size_t>(static_cast<unsigned char>(image[9]));
  if (image.size() < at + 4) return;
  const std::uint32_t sum = lookup3(reinterpret_cast<const unsigned char*>(image.data()), at);
  for (int i = 0; i < 4; ++i) image[at + i] = static_cast<char>(sum >> (8 * i));
}

// Writes `bytes` to `path` (created or truncated), every step checked; on failure the file is
// removed and the error names it.
void write_image(const std::string& path, const std::vector<char>& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f)
    throw_io(kTag, concat(path, ": cannot create the file (folder missing or not writable?)"));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool flushed = std::fflush(f) == 0;
  const bool closed = std::fclose(f) == 0;
  if (!written || !flushed || !closed) {
    std::remove(path.c_str());
    throw_io(kTag, concat(path, ": writing ", bytes.size(), " bytes failed (disk full?)"));
  }
}
}  // namespace

void File::flush() {
  if (fh_.valid()) check(H5Fflush(fh_.get(), H5F_SCOPE_GLOBAL), file_path_, "cannot flush");
}

void File::close() {
  // Close the root group first so that the file id is the last reference.
  static_cast<Group&>(*this) = Group();
  if (!fh_.valid()) return;
  const hid_t id = fh_.release();
  if (!in_memory_) {
    if (H5Fclose(id) < 0) fail(file_path_, "cannot close the file (disk full?)");
    return;
  }
  in_memory_ = false;
  // The finished image (objects still open elsewhere change nothing once flushed).
  std::vector<char> image;
  ssize_t size = -1;
  if (H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0) size = H5Fget_file_image(id, nullptr, 0);
  if (size >= 0) {
    image.resize(static_cast<std::size_t>(size));
    if (H5Fget_file_image(id, image.data(), image.size()) != size) size = -1;
  }
  if (size < 0) {
    const std::string reason = hdf5_error_stack();
    H5Fclose(id);
    hdf5_error_stack();
    throw_io(kTag, concat(file_path_, ": cannot finish the file in memory (HDF5: ", reason, ")"));
  }
  if (H5Fclose(id) < 0) fail(file_path_, "cannot close the file");
  fix_superblock_checksum(image);
  write_image(file_path_, image);
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
  Handle gcpl(H5Pcreate(H5P_GROUP_CREATE));
  set_group_properties(gcpl.get(), where(name));
  Handle h(H5Gcreate2(id(), name.c_str(), lcpl.get(), gcpl.get(), H5P_DEFAULT));
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
// Before anything is allocated: the bytes a dataset declares must be plausible for what the file
// stores, so a small corrupted or hostile file declaring a huge shape is an error naming the
// dataset, never gigabytes allocated and zeroed. Nothing is stored beyond the end of the file;
// contiguous (and compact) data are stored whole; chunked data may be compressed, deflate by
// at most ~1000x, hence the bound of 4096x plus 16 MiB of slack for constant arrays.
void check_declared_size(hid_t d, hid_t type, const std::vector<std::size_t>& shape,
                         const std::string& where) {
  const std::size_t element = std::max<std::size_t>(1, H5Tget_size(type));
  const std::size_t bytes = product(shape, where, element) * element;
  if (bytes == 0) return;
  const hsize_t stored = H5Dget_storage_size(d);
  const hsize_t file = file_size_of(d);
  if (file > 0 && stored > file)
    throw_io(kTag, concat(where, ": stores ", stored, " bytes but the file has only ", file,
                          " (truncated or corrupted?)"));
  Handle dcpl(H5Dget_create_plist(d));
  const H5D_layout_t layout = dcpl.valid() ? H5Pget_layout(dcpl.get()) : H5D_LAYOUT_ERROR;
  hdf5_error_stack();
  if (layout == H5D_CHUNKED ? bytes / 4096 > stored + (hsize_t{16} << 20) / 4096 : stored < bytes)
    throw_io(kTag,
             concat(where, ": declared shape ", shape_text(shape), " needs ", bytes,
                    " bytes but the file stores ", stored, " for it (truncated or corrupted?)"));
}

DatasetInfo dataset_info(const Group& g, const std::string& name) {
  DatasetInfo i;
  i.d = open_dataset(g, name);
  i.where = g.where(name);
  i.space = Handle(H5Dget_space(i.d.get()));
  if (!i.space.valid()) fail(i.where, "cannot read the dataspace");
  i.type = Handle(H5Dget_type(i.d.get()));
  if (!i.type.valid()) fail(i.where, "cannot read the datatype");
  i.shape = space_shape(i.space.get(), i.where);
  check_declared_size(i.d.get(), i.type.get(), i.shape, i.where);
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
  Handle dcpl = dataset_create_plist(w);
  std::size_t n = product(shape, w, sizeof(T));
  if (n > 0 && !dims.empty()) {
    // Chunked (the checksum filter needs it): chunks of whole trailing rows, about 64K elements,
    // so reading a few rows stays cheap. Every chunk carries a Fletcher-32 checksum, so a
    // flipped bit in the data is an error on reading, not a silently changed weight.
    std::vector<hsize_t> chunk(dims);
    std::size_t inner = 1;
    for (std::size_t i = 1; i < chunk.size(); ++i) inner *= chunk[i];
    hsize_t rows = std::max<hsize_t>(1, 65536 / std::max<std::size_t>(1, inner));
    chunk[0] = std::min<hsize_t>(dims[0], rows);
    for (auto& c : chunk) c = std::max<hsize_t>(c, 1);
    check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), w,
          "cannot set chunking");
    if (deflate > 0)
      check(H5Pset_deflate(dcpl.get(), static_cast<unsigned>(deflate)), w, "cannot set gzip");
    check(H5Pset_fletcher32(dcpl.get()), w, "cannot set the checksum filter");
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
  DatasetInfo i = dataset_info(*this, name);
  return read_strings(i.type.get(), i.space.get(), product(i.shape), i.where,
                      [&](hid_t mem, void* buf) {
                        return H5Dread(i.d.get(), mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
                      });
}

void Group::write_string_dataset(const std::string& name, const std::vector<std::string>& values) {
  silence_hdf5_errors();
  std::string w = where(name);
  if (kind_of(name) != Kind::missing) throw_io(kTag, concat(w, ": already exists"));
  hsize_t dim = values.size();
  Handle space(H5Screate_simple(1, &dim, nullptr));
  std::vector<char> buffer;
  Handle type = fixed_utf8_type(values, buffer, w);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE));
  H5Pset_create_intermediate_group(lcpl.get(), 1);
  Handle dcpl = dataset_create_plist(w);
  if (dim > 0) {  // chunks of at most 1 MiB, each with a Fletcher-32 checksum
    const hsize_t chunk =
        std::min<hsize_t>(dim, std::max<hsize_t>(1, (hsize_t{1} << 20) / H5Tget_size(type.get())));
    check(H5Pset_chunk(dcpl.get(), 1, &chunk), w, "cannot set chunking");
    check(H5Pset_fletcher32(dcpl.get()), w, "cannot set the checksum filter");
  }
  Handle d(
      H5Dcreate2(id(), name.c_str(), type.get(), space.get(), lcpl.get(), dcpl.get(), H5P_DEFAULT));
  if (!d.valid()) fail(w, "cannot create the dataset");
  if (!values.empty())
    check(H5Dwrite(d.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()), w,
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
  // Attribute data live in the object header: never more than the file.
  const std::size_t element = std::max<std::size_t>(1, H5Tget_size(i.type.get()));
  i.n = product(i.shape, w, element);
  const hsize_t file = file_size_of(a);
  if (file > 0 && i.n * element > file)
    throw_io(kTag, concat(w, ": declared shape ", shape_text(i.shape), " needs ", i.n * element,
                          " bytes, more than the whole file (", file, "; corrupted?)"));
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
  const std::string w = where() + " attribute '" + name + "'";
  Handle space(H5Screate(H5S_SCALAR));
  std::vector<char> buffer;
  Handle type = fixed_utf8_type({value}, buffer, w);
  write_attr(id(), name, type.get(), type.get(), space.get(), buffer.data(), w);
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
  const std::string w = where() + " attribute '" + name + "'";
  hsize_t dim = values.size();
  Handle space(H5Screate_simple(1, &dim, nullptr));
  std::vector<char> buffer;
  Handle type = fixed_utf8_type(values, buffer, w);
  write_attr(id(), name, type.get(), type.get(), space.get(), buffer.data(), w);
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
