// Helpers shared by the bind_<folder>.cpp files of the `_pcmsim` module.
//
//  - Registration: each bind_<folder>.cpp registers its binder with PCMSIM_BIND(order, fn); the
//    module (module.cpp) calls them in `order` (core 10, devices 20, mapping 30, nets 40,
//    sweep 50), so a new binding file touches no shared file.
//  - Configuration structs: StructBinder<T> binds a plain struct with keyword construction
//    (`IoParams(p_in=4)`, unknown keywords are a TypeError listing the fields), a readable
//    repr, ==, copy(), to_dict(), and enum fields as strings parsed by the C++ parsers (so a bad
//    name raises ValueError with the C++ message).
//  - NumPy inputs: matrix_view() accepts exactly a C-contiguous float32 array and returns an
//    Eigen::Map onto its buffer (no copy); anything else raises TypeError/ValueError naming the
//    function, the argument, what was given and what is expected.
#pragma once

#include <pybind11/eigen.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "core/settings.h"
#include "core/types.h"

namespace pcmsim::python {

namespace py = pybind11;
using core::Index;
using core::MatrixF;

// ---- registration -------------------------------------------------------------------------
struct Binder {
  int order;
  const char* name;
  void (*fn)(py::module_&);
};
inline std::vector<Binder>& binder_registry() {
  static std::vector<Binder> registry;
  return registry;
}
inline bool register_binder(int order, const char* name, void (*fn)(py::module_&)) {
  binder_registry().push_back({order, name, fn});
  return true;
}
#define PCMSIM_BIND_CONCAT_INNER(a, b) a##b
#define PCMSIM_BIND_CONCAT(a, b) PCMSIM_BIND_CONCAT_INNER(a, b)
#define PCMSIM_BIND(order, fn)                                   \
  static const bool PCMSIM_BIND_CONCAT(pcmsim_bound_, __LINE__) = \
      ::pcmsim::python::register_binder(order, #fn, fn)

// ---- NumPy arrays ---------------------------------------------------------------------------
[[noreturn]] inline void throw_type(const std::string& where, const std::string& message) {
  throw py::type_error(core::tagged(where, message));
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  if (a.ndim() == 1) s += ",";
  return s + ")";
}

// `obj` as a NumPy array of dtype float32 (TypeError otherwise); `dtype_hint` is appended to
// the wrong-dtype message.
inline py::array float32_array(const py::handle& obj, const std::string& where,
                               const std::string& name, const char* dtype_hint) {
  if (!py::isinstance<py::array>(obj))
    throw_type(where, core::concat(name, ": expected a NumPy float32 array, got ",
                                   std::string(py::str(py::type::of(obj).attr("__name__")))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<float>()))
    throw_type(where, core::concat(name, ": dtype ", std::string(py::str(a.dtype())),
                                   ", expected float32", dtype_hint));
  return a;
}

// A read-only row-major float32 view of a NumPy array, without a copy. `obj` must be a NumPy
// array of dtype float32, C-contiguous, with ndim >= 2 (or exactly 2 when `flatten_trailing`
// is false); with flatten_trailing, the trailing dimensions are flattened (N x C x H x W ->
// N x C*H*W, still a view). `cols` >= 0 requires that many columns.
inline Eigen::Map<const MatrixF> matrix_view(const py::handle& obj, const std::string& where,
                                             const std::string& name, Index cols = -1,
                                             bool flatten_trailing = false) {
  const py::array a = float32_array(obj, where, name,
                                    " (convert with np.ascontiguousarray(x, dtype=np.float32))");
  if (a.ndim() < 2 || (!flatten_trailing && a.ndim() != 2))
    throw py::value_error(core::tagged(
        where, core::concat(name, ": shape ", shape_str(a), ", expected a 2-D array",
                            flatten_trailing ? " (or more dimensions, flattened after the first)"
                                             : "",
                            " (a single sample is x[None, :])")));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(core::tagged(
        where, core::concat(name, ": array is not C-contiguous (strided views are not copied "
                                  "implicitly; pass np.ascontiguousarray(x))")));
  Index rows = a.shape(0), ncols = 1;
  for (py::ssize_t i = 1; i < a.ndim(); ++i) ncols *= a.shape(i);
  if (cols >= 0 && ncols != cols)
    throw py::value_error(core::tagged(
        where, core::concat(name, ": shape ", shape_str(a), " has ", ncols,
                            " values per row, expected ", cols)));
  return Eigen::Map<const MatrixF>(static_cast<const float*>(a.data()), rows, ncols);
}

// A writable view (for `out=` arguments): same checks plus writeable.
inline Eigen::Map<MatrixF> matrix_view_mut(const py::handle& obj, const std::string& where,
                                           const std::string& name) {
  auto view = matrix_view(obj, where, name);
  const auto a = py::reinterpret_borrow<py::array>(obj);
  if (!a.writeable())
    throw py::value_error(core::tagged(where, core::concat(name, ": array is read-only")));
  return Eigen::Map<MatrixF>(const_cast<float*>(view.data()), view.rows(), view.cols());
}

// Any-shape float32 C-contiguous array as a flat pointer + size (no copy).
struct FlatView {
  const float* data;
  std::size_t size;
  std::vector<py::ssize_t> shape;
};
inline FlatView flat_view(const py::handle& obj, const std::string& where,
                          const std::string& name) {
  const py::array a = float32_array(obj, where, name, "");
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(core::tagged(where, core::concat(name, ": array is not C-contiguous")));
  FlatView v{static_cast<const float*>(a.data()), static_cast<std::size_t>(a.size()), {}};
  for (py::ssize_t i = 0; i < a.ndim(); ++i) v.shape.push_back(a.shape(i));
  return v;
}

// A NumPy copy of a row-major float matrix (results are owned by Python).
template <class Derived>
py::array_t<typename Derived::Scalar> to_numpy(const Eigen::MatrixBase<Derived>& m) {
  using S = typename Derived::Scalar;
  py::array_t<S> out({static_cast<py::ssize_t>(m.rows()), static_cast<py::ssize_t>(m.cols())});
  auto r = out.template mutable_unchecked<2>();
  for (Index i = 0; i < m.rows(); ++i)
    for (Index j = 0; j < m.cols(); ++j) r(i, j) = m(i, j);
  return out;
}
inline py::array_t<float> to_numpy(const MatrixF& m) {
  py::array_t<float> out({static_cast<py::ssize_t>(m.rows()), static_cast<py::ssize_t>(m.cols())});
  if (m.size()) std::memcpy(out.mutable_data(), m.data(), sizeof(float) * m.size());
  return out;
}
template <class T>
py::array_t<T> vector_to_numpy(const T* data, std::size_t n) {
  py::array_t<T> out(static_cast<py::ssize_t>(n));
  if (n) std::memcpy(out.mutable_data(), data, sizeof(T) * n);
  return out;
}

// A key from an RngKey or a plain integer seed (stage `stage`, everything else 0).
inline core::RngKey key_from(const py::object& obj, core::Stage stage) {
  if (py::isinstance<core::RngKey>(obj)) return obj.cast<core::RngKey>();
  if (py::isinstance<py::int_>(obj)) {
    core::RngKey k;
    k.seed = obj.cast<std::uint64_t>();
    k.stage = stage;
    return k;
  }
  throw py::type_error("[pcmsim] key: expected a pcmsim.RngKey or an integer seed");
}

// ---- configuration structs ------------------------------------------------------------------
// Binds a plain struct with keyword construction, repr, ==, copy, to_dict.
template <class T>
class StructBinder {
 public:
  StructBinder(py::module_& m, const char* name, const char* doc)
      : cls_(m, name, doc), fields_(std::make_shared<std::vector<std::string>>()),
        name_(name) {
    auto fields = fields_;
    const std::string cls_name = name;
    cls_.def(py::init([fields, cls_name](py::kwargs kwargs) {
               T value{};
               {
                 py::object self = py::cast(&value, py::return_value_policy::reference);
                 for (auto item : kwargs) {
                   const std::string key = py::str(item.first);
                   bool known = false;
                   for (const auto& f : *fields) known = known || f == key;
                   if (!known) {
                     std::string list;
                     for (const auto& f : *fields) list += (list.empty() ? "" : ", ") + f;
                     throw py::type_error(core::concat("[pcmsim.", cls_name, "] unknown field '",
                                                       key, "'; fields: ", list));
                   }
                   py::setattr(self, item.first, item.second);
                 }
               }
               return value;
             }),
             "Keyword construction: every field may be given by name; the others keep their "
             "documented defaults.");
    cls_.def("__repr__", [fields, cls_name](py::object self) {
      std::string s = cls_name + "(";
      bool first = true;
      for (const auto& f : *fields) {
        s += (first ? "" : ", ") + f + "=" + std::string(py::repr(self.attr(f.c_str())));
        first = false;
      }
      return s + ")";
    });
    cls_.def("to_dict", [fields](py::object self) {
      py::dict d;
      for (const auto& f : *fields) {
        py::object v = self.attr(f.c_str());
        d[f.c_str()] = py::hasattr(v, "to_dict") ? v.attr("to_dict")() : v;
      }
      return d;
    }, "The fields as a dict (nested structs as dicts), e.g. to store with results.");
    cls_.def("__eq__", [fields](py::object self, py::object other) {
      if (!py::type::of(self).is(py::type::of(other))) return false;
      const py::object array_equal = py::module_::import("numpy").attr("array_equal");
      for (const auto& f : *fields) {
        const py::object a = self.attr(f.c_str()), b = other.attr(f.c_str());
        if (py::isinstance<py::array>(a) || py::isinstance<py::array>(b)) {
          if (!array_equal(a, b).cast<bool>()) return false;
        } else if (!a.equal(b)) {
          return false;
        }
      }
      return true;
    });
    cls_.def("copy", [](const T& self) { return T(self); }, "An independent copy.");
    cls_.def("__copy__", [](const T& self) { return T(self); });
    cls_.def("__deepcopy__", [](const T& self, py::dict) { return T(self); });
    cls_.attr("__hash__") = py::none();
  }

  template <class M>
  StructBinder& field(const char* name, M T::*member, const char* doc) {
    cls_.def_readwrite(name, member, doc);
    fields_->push_back(name);
    return *this;
  }
  // An enum (or other) field exposed through string conversion functions.
  template <class M, class ToS, class FromS>
  StructBinder& enum_field(const char* name, M T::*member, ToS to_s, FromS from_s,
                           const char* doc) {
    cls_.def_property(
        name, [member, to_s](const T& self) { return std::string(to_s(self.*member)); },
        [member, from_s](T& self, const std::string& text) { self.*member = from_s(text); },
        doc);
    fields_->push_back(name);
    return *this;
  }
  // Any property with custom getter/setter that counts as a field.
  template <class G, class S>
  StructBinder& property(const char* name, G getter, S setter, const char* doc) {
    cls_.def_property(name, getter, setter, doc);
    fields_->push_back(name);
    return *this;
  }
  template <class F, class... Extra>
  StructBinder& def(const char* name, F&& f, const Extra&... extra) {
    cls_.def(name, std::forward<F>(f), extra...);
    return *this;
  }
  // Every field of T's field list (core/settings.h) as a property with its help, unit, range
  // and default; nested config structs as nested objects (cfg.io.p_in = 4).
  StructBinder& settings();
  py::class_<T>& cls() { return cls_; }

 private:
  py::class_<T> cls_;
  std::shared_ptr<std::vector<std::string>> fields_;
  std::string name_;
};

// A setting's value to and from Python.
inline py::object value_to_python(const core::Value& v) {
  return std::visit([](const auto& x) -> py::object { return py::cast(x); }, v);
}
inline core::Value value_from_python(const std::string& name, core::ValueType type,
                                     const py::handle& obj) {
  using core::ValueType;
  try {
    switch (type) {
      case ValueType::boolean:
        if (!py::isinstance<py::bool_>(obj) && !py::isinstance<py::int_>(obj)) break;
        return obj.cast<bool>();
      case ValueType::integer:
        if (py::isinstance<py::bool_>(obj) || !py::isinstance<py::int_>(obj)) break;
        return obj.cast<std::int64_t>();
      case ValueType::unsigned_integer:
        if (py::isinstance<py::bool_>(obj) || !py::isinstance<py::int_>(obj)) break;
        if (obj.cast<py::int_>() < py::int_(0))
          core::throw_invalid("pcmsim", core::concat(name, " = ", std::string(py::repr(obj)),
                                                     ": must be >= 0"));
        return obj.cast<std::uint64_t>();
      case ValueType::real:
        if (py::isinstance<py::bool_>(obj)) break;
        return obj.cast<double>();
      case ValueType::text:
        return obj.cast<std::string>();
      case ValueType::real_list:
        return obj.cast<std::vector<double>>();
      case ValueType::text_list:
        if (py::isinstance<py::str>(obj)) break;
        return obj.cast<std::vector<std::string>>();
    }
  } catch (const py::cast_error&) {
  }
  throw py::type_error(core::concat("[pcmsim] ", name, " = ", std::string(py::repr(obj)),
                                    ": expected ", core::to_string(type)));
}

template <class T>
struct PythonFieldVisitor {
  StructBinder<T>* binder;
  template <class Get>
  void field(const core::FieldInfo& info, Get get) {
    using M = std::remove_reference_t<decltype(get(std::declval<T&>()))>;
    computed(info, [get](const T& s) { return get(const_cast<T&>(s)); },
             [get](T& s, const M& v) { get(s) = v; });
  }
  template <class Getter, class Setter>
  void computed(const core::FieldInfo& info, Getter getter, Setter setter) {
    using M = std::decay_t<decltype(getter(std::declval<const T&>()))>;
    using Codec = core::detail::Codec<M>;
    const std::string name = info.name;
    const T defaults{};
    // Python holds SI values: the unit is always named.
    const std::string doc =
        core::concat(info.help, " [",
                     core::describe_setting(info, Codec::choices(),
                                            core::format_value(Codec::get(getter(defaults))),
                                            true),
                     "]");
    binder->property(
        info.name, [getter](const T& s) { return value_to_python(Codec::get(getter(s))); },
        [getter, setter, name](T& s, py::object obj) {
          setter(s, Codec::set(name, value_from_python(name, Codec::type(), obj)));
        },
        doc.c_str());
  }
  template <class Getter, class Setter>
  void shortcut(const core::FieldInfo&, Getter, Setter) {}  // Python has the fields themselves
  template <class Get>
  void group(const char* name, Get get) {
    using G = std::remove_reference_t<decltype(get(std::declval<T&>()))>;
    binder->property(
        name, py::cpp_function([get](T& s) -> G& { return get(s); },
                               py::return_value_policy::reference_internal),
        [get](T& s, const G& v) { get(s) = v; }, "nested settings (edited in place)");
  }
};

template <class T>
StructBinder<T>& StructBinder<T>::settings() {
  PythonFieldVisitor<T> visitor{this};
  T::fields(visitor);
  return *this;
}

}  // namespace pcmsim::python
