// The ONNX importer's shared declarations (private to nets/): one Importer walks the graph
// (onnx_import.cpp), folds constants (onnx_fold.cpp) and converts operators (onnx_convert.cpp).
#pragma once

namespace pcmsim::nets::onnx_detail {
// The tag of every import error, with or without ONNX support.
constexpr const char* kTag = "nets::import_onnx";
}  // namespace pcmsim::nets::onnx_detail

#ifdef PCMSIM_HAVE_ONNX

#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "core/error.h"
#include "nets/onnx_import.h"

namespace pcmsim::nets::onnx_detail {

using core::concat;

// Marks the batch dimension in folded shape values (exact in a double, far from real sizes).
constexpr double kBatch = -1125899906842624.0;  // -2^50
constexpr Index kMaxElements = Index(1) << 28;

// A folded constant: values as doubles (exact for float32, and for int64 up to 2^53, which
// covers sizes and indices; larger ones are clamped, as Slice's INT64_MAX "to the end").
struct Const {
  std::vector<Index> dims;
  std::vector<double> v;
  bool is_int = false;
  Index numel() const {
    Index n = 1;
    for (Index d : dims) n *= d;
    return n;
  }
};

struct Value {
  bool is_const = false;
  Const c;
  int layer = kNetworkInput;  // activation: the layer producing it
  Shape shape;                // activation: per-sample shape
};

inline std::string shape_str(const std::vector<Index>& d) { return Shape{d}.str(); }

inline Index to_index(double v) {
  if (v >= 9.2e18) return std::numeric_limits<Index>::max() / 4;
  if (v <= -9.2e18) return std::numeric_limits<Index>::min() / 4;
  return static_cast<Index>(v);
}

class Importer {
 public:
  Importer(const onnx::ModelProto& model, std::string path, const ModelInputOptions& input)
      : model_(model), g_(model.graph()), path_(std::move(path)), input_(input) {}

  Network run();

 private:
  using Node = onnx::NodeProto;

  [[noreturn]] void fail(const std::string& msg) const {
    core::throw_io(kTag, concat(path_, ": ", msg));
  }
  [[noreturn]] void fail(const Node& n, const std::string& msg) const {
    fail(concat("node '", n.name(), "' (", n.op_type(), "): ", msg));
  }

  // ---- attributes
  const onnx::AttributeProto* attr(const Node& n, const char* name) const {
    for (const auto& a : n.attribute())
      if (a.name() == name) return &a;
    return nullptr;
  }
  Index attr_int(const Node& n, const char* name, Index dflt) const {
    const auto* a = attr(n, name);
    if (!a) return dflt;
    if (a->type() != onnx::AttributeProto::INT) fail(n, concat("attribute '", name, "' is not an int"));
    return a->i();
  }
  double attr_float(const Node& n, const char* name, double dflt) const {
    const auto* a = attr(n, name);
    if (!a) return dflt;
    if (a->type() != onnx::AttributeProto::FLOAT)
      fail(n, concat("attribute '", name, "' is not a float"));
    return a->f();
  }
  std::string attr_str(const Node& n, const char* name, const std::string& dflt) const {
    const auto* a = attr(n, name);
    if (!a) return dflt;
    if (a->type() != onnx::AttributeProto::STRING)
      fail(n, concat("attribute '", name, "' is not a string"));
    return a->s();
  }
  std::vector<Index> attr_ints(const Node& n, const char* name, std::vector<Index> dflt) const {
    const auto* a = attr(n, name);
    if (!a) return dflt;
    if (a->type() != onnx::AttributeProto::INTS && a->type() != onnx::AttributeProto::INT)
      fail(n, concat("attribute '", name, "' is not a list of ints"));
    if (a->type() == onnx::AttributeProto::INT) return {a->i()};
    return {a->ints().begin(), a->ints().end()};
  }

  // ---- tensors
  Const tensor(const onnx::TensorProto& t, const std::string& what) const;

  // ---- values
  const Value* input(const Node& n, int i) const {
    if (i >= n.input_size() || n.input(i).empty()) return nullptr;
    auto it = vals_.find(n.input(i));
    if (it == vals_.end())
      fail(n, concat("input '", n.input(i), "' is not produced by any earlier node, initializer "
                                            "or graph input (truncated or unsorted graph?)"));
    return &it->second;
  }
  const Value& need(const Node& n, int i) const {
    const Value* v = input(n, i);
    if (!v) fail(n, concat("input ", i, " is missing"));
    return *v;
  }
  const Const& need_const(const Node& n, int i, const char* what) const {
    const Value& v = need(n, i);
    if (!v.is_const)
      fail(n, concat(what, " (input ", i, ", '", n.input(i),
                     "') must be a constant (an initializer or computable from constants)"));
    return v.c;
  }
  const Value& need_act(const Node& n, int i) const {
    const Value& v = need(n, i);
    if (v.is_const) fail(n, concat("input ", i, " ('", n.input(i), "') is a constant; expected an activation"));
    return v;
  }
  void set_const(const Node& n, Const c, int out = 0) {
    if (c.numel() != static_cast<Index>(c.v.size())) fail(n, "internal: constant of wrong size");
    Value v;
    v.is_const = true;
    v.c = std::move(c);
    vals_[n.output(out)] = std::move(v);
  }
  void alias(const Node& n, const Value& v) { vals_[n.output(0)] = v; }

  // ---- layers
  int add(const Node& n, Layer L, std::vector<int> inputs, const std::string& suffix = "");
  int constant_layer(const Node& n, const Const& c, const Shape& act, const std::string& suffix);
  Index per_sample_axis(const Node& n, Index axis, Index full_rank, const char* what) const {
    const Index a = axis < 0 ? axis + full_rank : axis;
    if (a < 0 || a >= full_rank) fail(n, concat(what, " = ", axis, ": out of range for rank ", full_rank));
    if (a == 0) fail(n, concat(what, " = ", axis, ": the batch axis (operators must not mix samples)"));
    return a - 1;
  }

  void check_operators() const;
  void fold(const Node& n);
  void convert(const Node& n);
  void conv(const Node& n);
  void gemm(const Node& n);
  void matmul(const Node& n);
  void binary(const Node& n);
  void pool(const Node& n);
  void reshape(const Node& n, std::vector<Index> target_full);
  void pad(const Node& n);
  Network finish();

  const onnx::ModelProto& model_;
  const onnx::GraphProto& g_;
  std::string path_;
  ModelInputOptions input_;
  int opset_ = 0;
  Network net_;
  std::map<std::string, Value> vals_;
  std::map<std::string, int> uses_;  // consumers of each value (nodes and graph outputs)
  std::set<std::string> names_;
};

}  // namespace pcmsim::nets::onnx_detail

#endif  // PCMSIM_HAVE_ONNX
