// ONNX -> Network (docs/onnx.md). The protobuf messages come from Debian's libonnx-dev
// (onnx_proto, generated from the same onnx.proto that PyTorch's exporter writes against); the
// converter walks the graph once in its (topological) order:
// - constants (initializers, Constant nodes and every node whose inputs are all constants) are
//   folded here, including the shape arithmetic exporters emit (Shape -> Gather/Slice ->
//   Concat -> Reshape). The batch size is unknown, so Shape() of an activation yields a marker
//   for the batch dimension, which may be moved around but not computed with;
// - every other node becomes one or a few layers; axis 0 of every ONNX tensor is the batch axis
//   and the layers work on the per-sample rest, so an operator that mixes samples is refused.
#include "nets/onnx_import.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "core/error.h"
#include "nets/model_io.h"

#ifdef PCMSIM_HAVE_ONNX
#include <onnx/onnx_pb.h>
#endif

namespace pcmsim::nets {

using core::concat;

namespace {
constexpr const char* kTag = "nets::import_onnx";

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, ',')) {
    std::size_t a = 0, b = item.size();
    while (a < b && std::isspace(static_cast<unsigned char>(item[a]))) ++a;
    while (b > a && std::isspace(static_cast<unsigned char>(item[b - 1]))) --b;
    out.push_back(item.substr(a, b - a));
  }
  return out;
}
}  // namespace

void ModelInputOptions::validate() const {
  for (std::size_t i = 0; i < input_mean.size(); ++i)
    if (!std::isfinite(input_mean[i]))
      core::throw_invalid("nets::ModelInputOptions",
                          concat("input_mean[", i, "] = ", input_mean[i], ": must be finite"));
  for (std::size_t i = 0; i < input_std.size(); ++i)
    if (!(input_std[i] > 0) || !std::isfinite(input_std[i]))
      core::throw_invalid("nets::ModelInputOptions",
                          concat("input_std[", i, "] = ", input_std[i], ": must be finite and > 0"));
}

bool is_onnx_path(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  std::string lower;
  for (char c : ext) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == ".onnx";
}

Network load_model(const std::string& path, const ModelInputOptions& input) {
  if (is_onnx_path(path)) return import_onnx(path, input);
  if (!input.input_mean.empty() || !input.input_std.empty())
    core::throw_invalid("nets::load_model",
                        concat(path, ": input_mean/input_std apply to ONNX models only (a "
                                     "pcmsim model file records its own normalisation)"));
  return load_network(path);
}

#ifndef PCMSIM_HAVE_ONNX

bool onnx_available() { return false; }

Network import_onnx(const std::string& path, const ModelInputOptions&) {
  core::throw_io(kTag, concat(path, ": this pcmsim was built without ONNX support (install "
                                    "libonnx-dev and libprotobuf-dev, then reconfigure)"));
}

#else

bool onnx_available() { return true; }

namespace {

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

std::string shape_str(const std::vector<Index>& d) { return Shape{d}.str(); }

Index to_index(double v) {
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

Const Importer::tensor(const onnx::TensorProto& t, const std::string& what) const {
  Const c;
  Index numel = 1;
  for (auto d : t.dims()) {
    if (d < 0 || d > kMaxElements) fail(concat(what, ": dimension ", d, " out of range"));
    c.dims.push_back(d);
    numel *= d;
    if (numel > kMaxElements) fail(concat(what, ": more than ", kMaxElements, " elements"));
  }
  if (t.data_location() == onnx::TensorProto::EXTERNAL)
    fail(concat(what, ": external data files are not supported (save the model with its weights "
                      "inside: onnx.save(model, path, save_as_external_data=False))"));
  c.v.resize(static_cast<std::size_t>(numel));
  const std::string& raw = t.raw_data();
  auto from_raw = [&](auto tag) {
    using T = decltype(tag);
    if (raw.size() != static_cast<std::size_t>(numel) * sizeof(T))
      fail(concat(what, ": raw data holds ", raw.size(), " bytes, shape ", shape_str(c.dims),
                  " needs ", numel * Index(sizeof(T)), " (truncated or corrupt)"));
    for (Index i = 0; i < numel; ++i) {
      T x;
      std::memcpy(&x, raw.data() + i * Index(sizeof(T)), sizeof(T));  // little-endian hosts
      c.v[i] = static_cast<double>(x);
    }
  };
  auto from_field = [&](const auto& field) {
    if (field.size() != numel)
      fail(concat(what, ": holds ", field.size(), " values, shape ", shape_str(c.dims), " needs ",
                  numel));
    for (Index i = 0; i < numel; ++i) c.v[i] = static_cast<double>(field.Get(static_cast<int>(i)));
  };
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      raw.empty() && numel ? from_field(t.float_data()) : from_raw(float{});
      break;
    case onnx::TensorProto::DOUBLE:
      raw.empty() && numel ? from_field(t.double_data()) : from_raw(double{});
      break;
    case onnx::TensorProto::INT64:
      c.is_int = true;
      raw.empty() && numel ? from_field(t.int64_data()) : from_raw(std::int64_t{});
      break;
    case onnx::TensorProto::INT32:
      c.is_int = true;
      raw.empty() && numel ? from_field(t.int32_data()) : from_raw(std::int32_t{});
      break;
    case onnx::TensorProto::BOOL:
      c.is_int = true;
      raw.empty() && numel ? from_field(t.int32_data()) : from_raw(std::uint8_t{});
      break;
    default:
      fail(concat(what, ": data type ", t.data_type(),
                  " is not supported (float, double, int64, int32, bool)"));
  }
  for (Index i = 0; i < numel; ++i)
    if (!std::isfinite(c.v[i])) fail(concat(what, "[", i, "] = ", c.v[i], ": must be finite"));
  return c;
}

// The operators the converter knows (ai.onnx domain); the first check lists every other one.
const std::set<std::string>& known_operators() {
  static const std::set<std::string> ops = {
      "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant",
      "ConstantOfShape", "Conv", "Div", "Dropout", "Elu", "Equal", "Erf", "Expand", "Flatten",
      "Gather",
      "Gemm", "GlobalAveragePool", "HardSigmoid", "HardSwish", "Identity", "LayerNormalization",
      "LeakyRelu", "LogSoftmax", "MatMul", "MaxPool", "Mul", "Neg", "Pad", "Pow", "ReduceMean",
      "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Softmax", "Sqrt", "Squeeze", "Sub",
      "Tanh", "Transpose", "Unsqueeze", "Where"};
  return ops;
}

void Importer::check_operators() const {
  std::string bad;
  int count = 0;
  for (const auto& n : g_.node()) {
    const bool domain_ok = n.domain().empty() || n.domain() == "ai.onnx";
    if (domain_ok && known_operators().count(n.op_type())) continue;
    if (++count <= 20)
      bad += concat(count > 1 ? ", " : "", n.domain().empty() ? "" : n.domain() + ".",
                    n.op_type(), " (node '", n.name(), "')");
  }
  if (count)
    fail(concat(count, " unsupported operator", count > 1 ? "s" : "", ": ", bad,
                count > 20 ? ", ..." : "", " (docs/onnx.md lists the supported ones)"));
}

int Importer::add(const Node& n, Layer L, std::vector<int> inputs, const std::string& suffix) {
  std::string base = n.name().empty() ? n.output(0) : n.name();
  // Names without '/' (PyTorch's node names are paths like /layer1/conv1/Conv).
  while (!base.empty() && base[0] == '/') base.erase(0, 1);
  std::replace(base.begin(), base.end(), '/', '.');
  if (base.empty() || base == "input") base = concat(n.op_type(), "_", net_.layers.size());
  base += suffix;
  std::string name = base;
  for (int k = 1; names_.count(name); ++k) name = concat(base, "_", k);
  names_.insert(name);
  L.name = name;
  L.inputs = std::move(inputs);
  net_.layers.push_back(std::move(L));
  try {
    (void)infer_shapes(net_, false);
  } catch (const std::invalid_argument& e) {
    fail(n, e.what());
  }
  return static_cast<int>(net_.layers.size()) - 1;
}

Shape output_shape(const Network& net, int layer) {
  return infer_shapes(net, false)[static_cast<std::size_t>(layer)].output;
}

// A constant operand of a broadcasting operation as a constant layer: ONNX right-aligns the
// shapes, so a constant of the activation's full rank (batch axis included) must have 1 there.
int Importer::constant_layer(const Node& n, const Const& c, const Shape& act,
                             const std::string& suffix) {
  std::vector<Index> dims = c.dims;
  if (static_cast<Index>(dims.size()) > act.rank()) {
    if (static_cast<Index>(dims.size()) != act.rank() + 1 || dims[0] != 1)
      fail(n, concat("constant of shape ", shape_str(c.dims), " varies along the batch axis"));
    dims.erase(dims.begin());
  }
  if (dims.empty()) dims.push_back(1);
  Layer L = Layer::make("", LayerKind::constant);
  L.weight.shape = dims;
  L.weight.data.assign(c.v.begin(), c.v.end());
  return add(n, std::move(L), {}, suffix);
}

void Importer::fold(const Node& n) {
  const std::string& op = n.op_type();
  auto in = [&](int i) -> const Const& { return need_const(n, i, "input"); };
  if (op == "Identity" || op == "Dropout") {
    set_const(n, in(0));
  } else if (op == "Cast") {
    Const c = in(0);
    const Index to = attr_int(n, "to", 1);
    c.is_int = to != onnx::TensorProto::FLOAT && to != onnx::TensorProto::DOUBLE &&
               to != onnx::TensorProto::FLOAT16;
    if (c.is_int)
      for (double& x : c.v) x = x == kBatch ? x : std::trunc(x);
    set_const(n, std::move(c));
  } else if (op == "ConstantOfShape") {
    const Const& s = in(0);
    Const c;
    Index numel = 1;
    for (double d : s.v) {
      if (d == kBatch) fail(n, "the shape depends on the batch size");
      if (d < 0 || d > kMaxElements) fail(n, concat("shape entry ", d, " out of range"));
      c.dims.push_back(static_cast<Index>(d));
      numel *= static_cast<Index>(d);
      if (numel > kMaxElements) fail(n, "shape too large");
    }
    double value = 0;
    if (const auto* a = attr(n, "value")) {
      Const v = tensor(a->t(), concat("node '", n.name(), "' value"));
      if (v.v.size() != 1) fail(n, "value must hold one element");
      value = v.v[0];
      c.is_int = v.is_int;
    }
    c.v.assign(static_cast<std::size_t>(numel), value);
    set_const(n, std::move(c));
  } else if (op == "Shape") {
    Const c;
    c.is_int = true;
    const Const& x = in(0);
    c.dims = {static_cast<Index>(x.dims.size())};
    for (Index d : x.dims) c.v.push_back(static_cast<double>(d));
    set_const(n, std::move(c));
  } else if (op == "Gather") {
    const Const &data = in(0), &idx = in(1);
    const Index r = static_cast<Index>(data.dims.size());
    Index axis = attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) fail(n, concat("axis out of range for rank ", r));
    Index outer = 1, inner = 1;
    for (Index d = 0; d < axis; ++d) outer *= data.dims[d];
    for (Index d = axis + 1; d < r; ++d) inner *= data.dims[d];
    const Index len = data.dims[axis];
    Const c;
    c.is_int = data.is_int;
    c.dims.assign(data.dims.begin(), data.dims.begin() + axis);
    c.dims.insert(c.dims.end(), idx.dims.begin(), idx.dims.end());
    c.dims.insert(c.dims.end(), data.dims.begin() + axis + 1, data.dims.end());
    for (Index o = 0; o < outer; ++o)
      for (double iv : idx.v) {
        Index i = to_index(iv);
        if (i < 0) i += len;
        if (i < 0 || i >= len) fail(n, concat("index ", iv, " out of range [0, ", len, ")"));
        for (Index k = 0; k < inner; ++k) c.v.push_back(data.v[(o * len + i) * inner + k]);
      }
    set_const(n, std::move(c));
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    Const c = in(0);
    std::vector<Index> axes = opset_ >= 13 && input(n, 1)
                                  ? [&] {
                                      std::vector<Index> a;
                                      for (double x : in(1).v) a.push_back(to_index(x));
                                      return a;
                                    }()
                                  : attr_ints(n, "axes", {});
    if (op == "Unsqueeze") {
      const Index r = static_cast<Index>(c.dims.size() + axes.size());
      for (Index& a : axes) a = a < 0 ? a + r : a;
      std::sort(axes.begin(), axes.end());
      for (Index a : axes) {
        if (a < 0 || a > static_cast<Index>(c.dims.size())) fail(n, "axis out of range");
        c.dims.insert(c.dims.begin() + a, 1);
      }
    } else {
      const Index r = static_cast<Index>(c.dims.size());
      std::vector<Index> keep;
      for (Index d = 0; d < r; ++d) {
        bool drop = axes.empty() ? c.dims[d] == 1
                                 : std::any_of(axes.begin(), axes.end(), [&](Index a) {
                                     return (a < 0 ? a + r : a) == d;
                                   });
        if (drop && c.dims[d] != 1) fail(n, concat("axis ", d, " has size ", c.dims[d], ", not 1"));
        if (!drop) keep.push_back(c.dims[d]);
      }
      c.dims = keep;
    }
    set_const(n, std::move(c));
  } else if (op == "Concat") {
    Const c;
    const Const& first = in(0);
    const Index r = static_cast<Index>(first.dims.size());
    Index axis = attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) fail(n, "axis out of range");
    c.dims = first.dims;
    c.dims[axis] = 0;
    c.is_int = first.is_int;
    Index outer = 1;
    for (Index d = 0; d < axis; ++d) outer *= first.dims[d];
    for (int i = 0; i < n.input_size(); ++i) {
      const Const& x = in(i);
      if (static_cast<Index>(x.dims.size()) != r) fail(n, "inputs of different ranks");
      for (Index d = 0; d < r; ++d)
        if (d != axis && x.dims[d] != first.dims[d]) fail(n, "inputs differ outside the axis");
      c.dims[axis] += x.dims[axis];
    }
    for (Index o = 0; o < outer; ++o)
      for (int i = 0; i < n.input_size(); ++i) {
        const Const& x = in(i);
        const Index chunk = x.numel() / std::max<Index>(outer, 1);
        c.v.insert(c.v.end(), x.v.begin() + o * chunk, x.v.begin() + (o + 1) * chunk);
      }
    set_const(n, std::move(c));
  } else if (op == "Slice") {
    const Const& x = in(0);
    std::vector<Index> starts, ends, axes, steps;
    if (opset_ >= 10) {
      for (double v : in(1).v) starts.push_back(to_index(v));
      for (double v : in(2).v) ends.push_back(to_index(v));
      if (input(n, 3))
        for (double v : in(3).v) axes.push_back(to_index(v));
      if (input(n, 4))
        for (double v : in(4).v) steps.push_back(to_index(v));
    } else {
      starts = attr_ints(n, "starts", {});
      ends = attr_ints(n, "ends", {});
      axes = attr_ints(n, "axes", {});
    }
    const Index r = static_cast<Index>(x.dims.size());
    if (axes.empty())
      for (Index d = 0; d < static_cast<Index>(starts.size()); ++d) axes.push_back(d);
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      fail(n, "starts, ends, axes and steps differ in length");
    std::vector<Index> b(static_cast<std::size_t>(r), 0), st(static_cast<std::size_t>(r), 1),
        len(x.dims.begin(), x.dims.end());
    for (std::size_t k = 0; k < starts.size(); ++k) {
      Index a = axes[k] < 0 ? axes[k] + r : axes[k];
      if (a < 0 || a >= r) fail(n, "axis out of range");
      const Index dim = x.dims[a], s = steps[k];
      if (s == 0) fail(n, "step 0");
      auto clampi = [&](Index v, Index lo, Index hi) {
        if (v < 0) v += dim;
        return std::min(std::max(v, lo), hi);
      };
      Index s0 = s > 0 ? clampi(starts[k], 0, dim) : clampi(starts[k], -1, dim - 1);
      Index e0 = s > 0 ? clampi(ends[k], 0, dim) : clampi(ends[k], -1, dim - 1);
      b[a] = s0;
      st[a] = s;
      len[a] = s > 0 ? std::max<Index>(0, (e0 - s0 + s - 1) / s)
                     : std::max<Index>(0, (s0 - e0 + (-s) - 1) / (-s));
    }
    Const c;
    c.is_int = x.is_int;
    c.dims = len;
    const Index total = c.numel();
    const std::vector<Index> stride = row_major_strides(x.dims);
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    for (Index o = 0; o < total; ++o) {
      Index off = 0;
      for (Index d = 0; d < r; ++d) off += (b[d] + idx[d] * st[d]) * stride[d];
      c.v.push_back(x.v[off]);
      for (Index d = r - 1; d >= 0; --d) {
        if (++idx[d] < len[d]) break;
        idx[d] = 0;
      }
    }
    set_const(n, std::move(c));
  } else if (op == "Reshape") {
    Const c = in(0);
    const Const& s = in(1);
    std::vector<Index> dims;
    Index known = 1, infer = -1;
    for (std::size_t d = 0; d < s.v.size(); ++d) {
      Index v = to_index(s.v[d]);
      if (s.v[d] == kBatch) fail(n, "reshaping a constant to the batch size");
      if (v == 0 && !attr_int(n, "allowzero", 0)) v = d < c.dims.size() ? c.dims[d] : 0;
      if (v == -1) {
        if (infer >= 0) fail(n, "two -1 entries");
        infer = static_cast<Index>(d);
      } else if (v < 0) {
        fail(n, concat("shape entry ", v));
      } else {
        known *= v;
      }
      dims.push_back(v);
    }
    if (infer >= 0) dims[infer] = known ? c.numel() / known : 0;
    c.dims = dims;
    if (c.numel() != static_cast<Index>(c.v.size()))
      fail(n, concat("cannot reshape ", c.v.size(), " values to ", shape_str(dims)));
    set_const(n, std::move(c));
  } else if (op == "Transpose") {
    const Const& x = in(0);
    const Index r = static_cast<Index>(x.dims.size());
    std::vector<Index> perm = attr_ints(n, "perm", {});
    if (perm.empty())
      for (Index d = r - 1; d >= 0; --d) perm.push_back(d);
    if (static_cast<Index>(perm.size()) != r) fail(n, "perm has the wrong length");
    Const c;
    c.is_int = x.is_int;
    const std::vector<Index> stride = row_major_strides(x.dims);
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    std::vector<bool> seen(static_cast<std::size_t>(r), false);
    for (Index d = 0; d < r; ++d) {
      if (perm[d] < 0 || perm[d] >= r || seen[perm[d]]) fail(n, "perm is not a permutation");
      seen[perm[d]] = true;
      c.dims.push_back(x.dims[perm[d]]);
    }
    const Index total = x.numel();
    for (Index o = 0; o < total; ++o) {
      Index off = 0;
      for (Index d = 0; d < r; ++d) off += idx[d] * stride[perm[d]];
      c.v.push_back(x.v[off]);
      for (Index d = r - 1; d >= 0; --d) {
        if (++idx[d] < c.dims[d]) break;
        idx[d] = 0;
      }
    }
    set_const(n, std::move(c));
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" ||
             op == "Equal" || op == "Where") {
    // Where(cond, a, b): cond broadcast like a and b (exporters use it on shape values).
    const bool where = op == "Where";
    const Const &a = in(where ? 1 : 0), &b = in(where ? 2 : 1);
    const Const* cond = where ? &in(0) : nullptr;
    auto bs = broadcast_shapes(Shape{a.dims}, Shape{b.dims});
    if (!a.dims.empty() && !b.dims.empty() && !bs) fail(n, "shapes do not broadcast");
    Const c;
    c.is_int = (a.is_int && b.is_int) || op == "Equal";
    c.dims = a.dims.empty() ? b.dims : b.dims.empty() ? a.dims : bs->dims;
    if (cond) {
      auto bc = broadcast_shapes(Shape{c.dims}, Shape{cond->dims});
      if (!cond->dims.empty() && !c.dims.empty() && !bc) fail(n, "shapes do not broadcast");
      if (!cond->dims.empty()) c.dims = c.dims.empty() ? cond->dims : bc->dims;
    }
    const Index total = c.numel(), r = static_cast<Index>(c.dims.size());
    auto offset = [&](const Const& x, const std::vector<Index>& idx) {
      Index off = 0;
      const Index xr = static_cast<Index>(x.dims.size());
      for (Index d = 0; d < xr; ++d) {
        const Index i = x.dims[d] == 1 ? 0 : idx[d + (r - xr)];
        off = off * x.dims[d] + i;
      }
      return off;
    };
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    for (Index o = 0; o < total; ++o) {
      const double u = a.v[offset(a, idx)], w = b.v[offset(b, idx)];
      if (where || op == "Equal") {  // selecting and comparing may involve the batch marker
        c.v.push_back(where ? (cond->v[offset(*cond, idx)] != 0 ? u : w) : double(u == w));
        for (Index d = r - 1; d >= 0; --d) {
          if (++idx[d] < c.dims[d]) break;
          idx[d] = 0;
        }
        continue;
      }
      if (u == kBatch || w == kBatch) fail(n, "computes with the batch size, which is not known");
      double y = op == "Add" ? u + w : op == "Sub" ? u - w : op == "Mul" ? u * w
                 : op == "Pow" ? std::pow(u, w) : (c.is_int ? std::trunc(u / w) : u / w);
      if (!std::isfinite(y)) fail(n, "result is not finite");
      c.v.push_back(y);
      for (Index d = r - 1; d >= 0; --d) {
        if (++idx[d] < c.dims[d]) break;
        idx[d] = 0;
      }
    }
    set_const(n, std::move(c));
  } else if (op == "Neg" || op == "Sqrt") {
    Const c = in(0);
    for (double& x : c.v) {
      if (x == kBatch) fail(n, "computes with the batch size, which is not known");
      x = op == "Neg" ? -x : std::sqrt(x);
      if (!std::isfinite(x)) fail(n, "result is not finite");
    }
    set_const(n, std::move(c));
  } else {
    fail(n, "cannot be evaluated on constant inputs by this importer");
  }
}

// Conv: 2-D kernels -> conv2d, 1-D -> conv1d; asymmetric padding (SAME_*) -> a pad layer first.
void Importer::conv(const Node& n) {
  const Value& x = need_act(n, 0);
  const Const& w = need_const(n, 1, "weight");
  const Value* bias = input(n, 2);
  if (bias && !bias->is_const) fail(n, "bias must be a constant");
  const Index kr = static_cast<Index>(w.dims.size()) - 2;
  if (kr != 1 && kr != 2) fail(n, concat("weight of shape ", shape_str(w.dims), ": only 1-D and 2-D convolutions"));
  if (x.shape.rank() != kr + 1)
    fail(n, concat("input ", x.shape.str(), " does not match a ", kr, "-D kernel"));
  std::vector<Index> k(w.dims.begin() + 2, w.dims.end());
  auto ks = attr_ints(n, "kernel_shape", k);
  if (ks != k) fail(n, "kernel_shape does not match the weight");
  auto strides = attr_ints(n, "strides", std::vector<Index>(kr, 1));
  auto dil = attr_ints(n, "dilations", std::vector<Index>(kr, 1));
  auto pads = attr_ints(n, "pads", std::vector<Index>(2 * kr, 0));
  if (static_cast<Index>(strides.size()) != kr || static_cast<Index>(dil.size()) != kr ||
      static_cast<Index>(pads.size()) != 2 * kr)
    fail(n, "strides/dilations/pads do not match the kernel rank");
  const std::string auto_pad = attr_str(n, "auto_pad", "NOTSET");
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (Index d = 0; d < kr; ++d) {
      const Index in = x.shape.dims[1 + d], out = (in + strides[d] - 1) / strides[d];
      const Index total = std::max<Index>(0, (out - 1) * strides[d] + dil[d] * (k[d] - 1) + 1 - in);
      const Index small = total / 2, big = total - small;
      pads[d] = auto_pad == "SAME_UPPER" ? small : big;
      pads[d + kr] = auto_pad == "SAME_UPPER" ? big : small;
    }
  } else if (auto_pad == "VALID") {
    std::fill(pads.begin(), pads.end(), 0);
  } else if (auto_pad != "NOTSET") {
    fail(n, concat("auto_pad = '", auto_pad, "'"));
  }
  int src = x.layer;
  bool symmetric = true;
  for (Index d = 0; d < kr; ++d) symmetric = symmetric && pads[d] == pads[d + kr];
  if (!symmetric) {  // asymmetric zero padding: a pad layer, then an unpadded conv
    Layer P = Layer::make("", LayerKind::pad);
    for (Index d = 0; d < kr; ++d) {
      P.pads.push_back(pads[d]);
      P.pads.push_back(pads[d + kr]);
    }
    src = add(n, std::move(P), {src}, ".pad");
    std::fill(pads.begin(), pads.end(), 0);
  }
  Layer L = Layer::make("", kr == 2 ? LayerKind::conv2d : LayerKind::conv1d);
  L.groups = attr_int(n, "group", 1);
  L.out_channels = w.dims[0];
  L.in_channels = w.dims[1] * L.groups;
  if (kr == 2) {
    L.kernel_size = {k[0], k[1]};
    L.stride = {strides[0], strides[1]};
    L.padding = {pads[0], pads[1]};
    L.dilation = {dil[0], dil[1]};
  } else {
    L.kernel_size = {1, k[0]};
    L.stride = {1, strides[0]};
    L.padding = {0, pads[0]};
    L.dilation = {1, dil[0]};
  }
  L.weight.shape = w.dims;
  L.weight.data.assign(w.v.begin(), w.v.end());
  if (bias) {
    L.bias.shape = bias->c.dims;
    L.bias.data.assign(bias->c.v.begin(), bias->c.v.end());
  }
  const int i = add(n, std::move(L), {src});
  vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
}

// Gemm(A, B, C) = alpha * A' * B' + beta * C with a constant B: a linear layer. transA would
// transpose the batch axis into the features, which no per-sample layer can do.
void Importer::gemm(const Node& n) {
  const Value& a = need_act(n, 0);
  const Const& b = need_const(n, 1, "B");
  const Value* cval = input(n, 2);
  if (cval && !cval->is_const) fail(n, "C must be a constant");
  if (attr_int(n, "transA", 0)) fail(n, "transA = 1 transposes the batch axis (not supported)");
  if (a.shape.rank() != 1) fail(n, concat("input A per sample ", a.shape.str(), ": expected (K)"));
  if (b.dims.size() != 2) fail(n, "B must be 2-D");
  const bool tb = attr_int(n, "transB", 0) != 0;
  const double alpha = attr_float(n, "alpha", 1.0), beta = attr_float(n, "beta", 1.0);
  const Index K = tb ? b.dims[1] : b.dims[0], N = tb ? b.dims[0] : b.dims[1];
  Layer L = Layer::make_linear("", K, N);
  L.weight.shape = {N, K};
  L.weight.data.resize(static_cast<std::size_t>(N * K));
  for (Index o = 0; o < N; ++o)
    for (Index i = 0; i < K; ++i)
      L.weight.data[o * K + i] = static_cast<float>(alpha * (tb ? b.v[o * K + i] : b.v[i * N + o]));
  if (cval) {
    const Const& c = cval->c;
    // C broadcasts to (batch, N): shape (), (1), (N), (1, N) or (1, 1).
    Index cn = c.numel();
    if (!(cn == 1 || cn == N) || (c.dims.size() == 2 && c.dims[0] != 1))
      fail(n, concat("C of shape ", shape_str(c.dims), " does not broadcast to (batch, ", N, ")"));
    L.bias.shape = {N};
    for (Index o = 0; o < N; ++o)
      L.bias.data.push_back(static_cast<float>(beta * c.v[cn == 1 ? 0 : o]));
  }
  const int i = add(n, std::move(L), {a.layer});
  vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
}

// MatMul: by a constant matrix -> linear (over the last axis); of two activations -> matmul
// (digital); a bias added right after a linear (one consumer) is folded into it.
void Importer::matmul(const Node& n) {
  const Value& a = need_act(n, 0);
  const Value& b = need(n, 1);
  if (!b.is_const) {
    const int i = add(n, Layer::make("", LayerKind::matmul), {a.layer, b.layer});
    vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
    return;
  }
  if (b.c.dims.size() != 2)
    fail(n, concat("constant operand of shape ", shape_str(b.c.dims), ": only a matrix (K, N)"));
  const Index K = b.c.dims[0], N = b.c.dims[1];
  Layer L = Layer::make_linear("", K, N);
  L.weight.shape = {N, K};
  L.weight.data.resize(static_cast<std::size_t>(N * K));
  for (Index o = 0; o < N; ++o)
    for (Index i = 0; i < K; ++i) L.weight.data[o * K + i] = static_cast<float>(b.c.v[i * N + o]);
  const int i = add(n, std::move(L), {a.layer});
  vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
}

void Importer::binary(const Node& n) {
  const std::string& op = n.op_type();
  const Value* a = &need(n, 0);
  const Value* b = &need(n, 1);
  if (op == "Pow") {
    if (a->is_const || !b->is_const || b->c.v.size() != 1)
      fail(n, "only an activation raised to a constant scalar power");
    Layer L = Layer::make("", LayerKind::pow);
    L.exponent = b->c.v[0];
    const int i = add(n, std::move(L), {a->layer});
    vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
    return;
  }
  const bool swapped = a->is_const;
  if (swapped) std::swap(a, b);
  if (!b->is_const) {  // two activations
    LayerKind k = op == "Add" ? LayerKind::add : op == "Sub" ? LayerKind::sub
                  : op == "Mul" ? LayerKind::mul : LayerKind::div;
    const int i = add(n, Layer::make("", k), {need(n, 0).layer, need(n, 1).layer});
    vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
    return;
  }
  const Const& c = b->c;
  // A bias after MatMul: fold into the linear layer when nothing else reads its output.
  if (op == "Add" && c.numel() > 1 && a->layer >= 0) {
    Layer& prev = net_.layers[static_cast<std::size_t>(a->layer)];
    const std::string& src_name = swapped ? n.input(1) : n.input(0);
    if (prev.kind == LayerKind::linear && prev.bias.empty() && uses_[src_name] == 1 &&
        a->layer + 1 == static_cast<int>(net_.layers.size()) && c.numel() == prev.out_features) {
      bool row = true;  // shape (N), (1, N), (1, 1, N), ...
      for (std::size_t d = 0; d + 1 < c.dims.size(); ++d) row = row && c.dims[d] == 1;
      if (row && !c.dims.empty() && c.dims.back() == prev.out_features) {
        prev.bias.shape = {prev.out_features};
        prev.bias.data.assign(c.v.begin(), c.v.end());
        vals_[n.output(0)] = *a;
        return;
      }
    }
  }
  if (c.v.size() == 1) {  // a scalar: one scale layer
    const double s = c.v[0];
    Layer L = Layer::make("", LayerKind::scale);
    if (op == "Add") {
      L.shift = s;
    } else if (op == "Sub") {
      L.scale = swapped ? -1.0 : 1.0;
      L.shift = swapped ? s : -s;
    } else if (op == "Mul") {
      L.scale = s;
    } else if (!swapped) {  // x / s
      if (s == 0) fail(n, "division by zero");
      L.scale = 1.0 / s;
    } else {
      goto general;  // s / x
    }
    {
      const int i = add(n, std::move(L), {a->layer});
      vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
    }
    return;
  }
general : {
  const int ci = constant_layer(n, c, a->shape, ".const");
  LayerKind k = op == "Add" ? LayerKind::add : op == "Sub" ? LayerKind::sub
                : op == "Mul" ? LayerKind::mul : LayerKind::div;
  std::vector<int> ins = swapped ? std::vector<int>{ci, a->layer} : std::vector<int>{a->layer, ci};
  const int i = add(n, Layer::make("", k), ins);
  vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
}
}

void Importer::pool(const Node& n) {
  const Value& x = need_act(n, 0);
  if (n.output_size() > 1 && !n.output(1).empty()) fail(n, "the indices output is not supported");
  if (x.shape.rank() != 3) fail(n, concat("input per sample ", x.shape.str(), ": only 2-D pooling of (C, H, W)"));
  auto k = attr_ints(n, "kernel_shape", {});
  if (k.size() != 2) fail(n, "kernel_shape must have 2 entries");
  auto strides = attr_ints(n, "strides", {1, 1});
  auto pads = attr_ints(n, "pads", {0, 0, 0, 0});
  auto dil = attr_ints(n, "dilations", {1, 1});
  const std::string auto_pad = attr_str(n, "auto_pad", "NOTSET");
  if (auto_pad != "NOTSET" && auto_pad != "VALID") fail(n, concat("auto_pad = '", auto_pad, "'"));
  if (auto_pad == "VALID") pads = {0, 0, 0, 0};
  if (strides.size() != 2 || pads.size() != 4 || dil.size() != 2)
    fail(n, "strides/pads/dilations must be 2-D");
  if (pads[0] != pads[2] || pads[1] != pads[3])
    fail(n, concat("asymmetric pads [", pads[0], ", ", pads[1], ", ", pads[2], ", ", pads[3], "]"));
  if (attr_int(n, "storage_order", 0)) fail(n, "storage_order = 1");
  const bool avg = n.op_type() == "AveragePool";
  Layer L = Layer::make("", avg ? LayerKind::avgpool2d : LayerKind::maxpool2d);
  L.kernel_size = {k[0], k[1]};
  L.stride = {strides[0], strides[1]};
  L.padding = {pads[0], pads[1]};
  L.dilation = {dil[0], dil[1]};
  L.ceil_mode = attr_int(n, "ceil_mode", 0) != 0;
  if (avg) L.count_include_pad = attr_int(n, "count_include_pad", 0) != 0;
  const int i = add(n, std::move(L), {x.layer});
  vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
}

// Reshape of an activation: entry 0 of the target is the batch axis (the marker from Shape(),
// the exported batch size, 0 or -1); the per-sample rest may hold one -1 and 0 (copy).
void Importer::reshape(const Node& n, std::vector<Index> full) {
  const Value& x = need_act(n, 0);
  if (full.empty()) fail(n, "target shape is empty");
  std::vector<Index> rest(full.begin() + 1, full.end());
  for (std::size_t d = 0; d < rest.size(); ++d) {
    if (rest[d] == static_cast<Index>(kBatch))
      fail(n, "moves the batch size into a per-sample axis (operators must not mix samples)");
    if (rest[d] == 0) {
      if (static_cast<Index>(d) >= x.shape.rank()) fail(n, "0 (copy) entry beyond the input rank");
      rest[d] = x.shape.dims[d];
    }
  }
  if (full[0] == -1) {  // batch inferred: the rest must hold one sample exactly
    if (std::count(rest.begin(), rest.end(), -1))
      fail(n, "two -1 entries (batch and a per-sample axis)");
  }
  if (rest.empty()) rest.push_back(1);
  Index known = 1;
  for (Index v : rest) known *= v == -1 ? 1 : v;
  if (known > 0 && std::count(rest.begin(), rest.end(), -1) == 0 && known != x.shape.size())
    fail(n, concat("target ", shape_str(full), " does not keep one sample's ", x.shape.size(),
                   " values together (input per sample ", x.shape.str(), ")"));
  Layer L = Layer::make("", LayerKind::reshape);
  L.shape = rest;
  const int i = add(n, std::move(L), {x.layer});
  vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
}

void Importer::pad(const Node& n) {
  const Value& x = need_act(n, 0);
  std::vector<Index> pads;
  double value = 0;
  if (opset_ >= 11) {
    for (double v : need_const(n, 1, "pads").v) pads.push_back(to_index(v));
    if (const Value* cv = input(n, 2)) {
      if (!cv->is_const || cv->c.v.size() != 1) fail(n, "constant_value must be a constant scalar");
      value = cv->c.v[0];
    }
  } else {
    pads = attr_ints(n, "pads", {});
    value = attr_float(n, "value", 0.0);
  }
  const Index r = x.shape.rank() + 1;
  if (static_cast<Index>(pads.size()) != 2 * r)
    fail(n, concat("pads has ", pads.size(), " values, expected ", 2 * r));
  if (pads[0] != 0 || pads[r] != 0) fail(n, "pads the batch axis");
  const std::string mode = attr_str(n, "mode", "constant");
  Layer L = Layer::make("", LayerKind::pad);
  L.pad_mode = mode == "reflect" ? PadMode::reflect : mode == "edge" ? PadMode::replicate : PadMode::constant;
  if (mode != "constant" && mode != "reflect" && mode != "edge") fail(n, concat("mode = '", mode, "'"));
  L.pad_value = value;
  Index first = 1;
  while (first < r && pads[first] == 0 && pads[first + r] == 0) ++first;
  for (Index d = 1; d < r; ++d)
    if (pads[d] < 0 || pads[d + r] < 0) fail(n, "negative pads (cropping) are not supported");
  if (first == r) {
    alias(n, x);
    return;
  }
  for (Index d = first; d < r; ++d) {
    L.pads.push_back(pads[d]);
    L.pads.push_back(pads[d + r]);
  }
  const int i = add(n, std::move(L), {x.layer});
  vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)};
}

void Importer::convert(const Node& n) {
  const std::string& op = n.op_type();
  auto done = [&](int i) { vals_[n.output(0)] = Value{false, {}, i, output_shape(net_, i)}; };
  auto unary = [&](LayerKind k) {
    done(add(n, Layer::make("", k), {need_act(n, 0).layer}));
  };
  if (op == "Conv") return conv(n);
  if (op == "Gemm") return gemm(n);
  if (op == "MatMul") return matmul(n);
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow") return binary(n);
  if (op == "MaxPool" || op == "AveragePool") return pool(n);
  if (op == "Pad") return pad(n);
  if (op == "Relu") return unary(LayerKind::relu);
  if (op == "Sigmoid") return unary(LayerKind::sigmoid);
  if (op == "Tanh") return unary(LayerKind::tanh);
  if (op == "Erf") return unary(LayerKind::erf);
  if (op == "Sqrt") return unary(LayerKind::sqrt);
  if (op == "HardSwish") return unary(LayerKind::hardswish);
  if (op == "GlobalAveragePool") {
    if (need_act(n, 0).shape.rank() != 3) fail(n, "only 2-D inputs (C, H, W)");
    return unary(LayerKind::global_avgpool);
  }
  if (op == "Identity" || op == "Dropout" || op == "Cast") {
    if (op == "Cast") {
      const Index to = attr_int(n, "to", 1);
      if (to != onnx::TensorProto::FLOAT && to != onnx::TensorProto::DOUBLE)
        fail(n, concat("cast of an activation to type ", to, " (only to float)"));
    }
    if (op == "Dropout" && n.output_size() > 1 && !n.output(1).empty() && uses_[n.output(1)])
      fail(n, "the mask output is used");
    return alias(n, need_act(n, 0));
  }
  if (op == "Neg") {
    Layer L = Layer::make("", LayerKind::scale);
    L.scale = -1;
    return done(add(n, std::move(L), {need_act(n, 0).layer}));
  }
  if (op == "LeakyRelu") {
    Layer L = Layer::make("", LayerKind::leaky_relu);
    L.negative_slope = attr_float(n, "alpha", 0.01);
    return done(add(n, std::move(L), {need_act(n, 0).layer}));
  }
  if (op == "Elu") {
    Layer L = Layer::make("", LayerKind::elu);
    L.alpha = attr_float(n, "alpha", 1.0);
    return done(add(n, std::move(L), {need_act(n, 0).layer}));
  }
  if (op == "HardSigmoid") {
    const double a = attr_float(n, "alpha", 0.2), b = attr_float(n, "beta", 0.5);
    if (std::abs(a - 1.0 / 6) > 1e-6 || std::abs(b - 0.5) > 1e-6)
      fail(n, concat("alpha = ", a, ", beta = ", b, " (only PyTorch's Hardsigmoid: 1/6, 0.5)"));
    return unary(LayerKind::hardsigmoid);
  }
  if (op == "Clip") {
    double lo = -std::numeric_limits<double>::infinity(), hi = -lo;
    if (opset_ >= 11) {
      if (const Value* v = input(n, 1)) {
        if (!v->is_const || v->c.v.size() != 1) fail(n, "min must be a constant scalar");
        lo = v->c.v[0];
      }
      if (const Value* v = input(n, 2)) {
        if (!v->is_const || v->c.v.size() != 1) fail(n, "max must be a constant scalar");
        hi = v->c.v[0];
      }
    } else {
      lo = attr_float(n, "min", lo);
      hi = attr_float(n, "max", hi);
    }
    if (lo == 0 && hi == 6) return unary(LayerKind::relu6);
    if (lo == 0 && std::isinf(hi)) return unary(LayerKind::relu);
    if (!std::isfinite(lo) || !std::isfinite(hi) || !(lo < hi))
      fail(n, concat("clip to [", lo, ", ", hi, "]: needs finite bounds (or [0, inf), [0, 6])"));
    Layer L = Layer::make("", LayerKind::hardtanh);
    L.min_val = lo;
    L.max_val = hi;
    return done(add(n, std::move(L), {need_act(n, 0).layer}));
  }
  if (op == "Softmax" || op == "LogSoftmax") {
    const Value& x = need_act(n, 0);
    const Index full = x.shape.rank() + 1;
    Index axis = attr_int(n, "axis", opset_ >= 13 ? -1 : 1);
    if (axis < 0) axis += full;
    // Before opset 13 the input is coerced to 2-D at `axis`: the same only for the last axis.
    if (opset_ < 13 && axis != full - 1)
      fail(n, concat("axis = ", axis, " at opset ", opset_,
                     " (softmax over the flattened trailing axes; only the last axis)"));
    Layer L = Layer::make("", op == "Softmax" ? LayerKind::softmax : LayerKind::log_softmax);
    L.axis = per_sample_axis(n, axis, full, "axis");
    return done(add(n, std::move(L), {x.layer}));
  }
  if (op == "BatchNormalization") {
    const Value& x = need_act(n, 0);
    if (attr_int(n, "training_mode", 0)) fail(n, "training_mode = 1");
    for (int o = 1; o < n.output_size(); ++o)
      if (!n.output(o).empty() && uses_[n.output(o)]) fail(n, "training outputs are used");
    const Const &s = need_const(n, 1, "scale"), &b = need_const(n, 2, "B"),
                &m = need_const(n, 3, "mean"), &v = need_const(n, 4, "var");
    if (x.shape.rank() != 3 && x.shape.rank() != 1)
      fail(n, concat("input per sample ", x.shape.str(), ": only (C, H, W) and (F)"));
    Layer L = Layer::make("", x.shape.rank() == 3 ? LayerKind::batchnorm2d : LayerKind::batchnorm1d);
    L.num_features = x.shape.dims[0];
    L.eps = attr_float(n, "epsilon", 1e-5);
    auto t = [](const Const& c) {
      Tensor r;
      r.shape = c.dims;
      r.data.assign(c.v.begin(), c.v.end());
      return r;
    };
    L.weight = t(s);
    L.bias = t(b);
    L.running_mean = t(m);
    L.running_var = t(v);
    return done(add(n, std::move(L), {x.layer}));
  }
  if (op == "LayerNormalization") {
    const Value& x = need_act(n, 0);
    const Index full = x.shape.rank() + 1;
    const Index axis = per_sample_axis(n, attr_int(n, "axis", -1), full, "axis");
    for (int o = 1; o < n.output_size(); ++o)
      if (!n.output(o).empty() && uses_[n.output(o)]) fail(n, "mean / inv_std_dev outputs are used");
    Layer L = Layer::make("", LayerKind::layernorm);
    L.shape.assign(x.shape.dims.begin() + axis, x.shape.dims.end());
    L.eps = attr_float(n, "epsilon", 1e-5);
    const Const& s = need_const(n, 1, "scale");
    L.weight.shape = L.shape;
    L.weight.data.assign(s.v.begin(), s.v.end());
    if (const Value* b = input(n, 2)) {
      if (!b->is_const) fail(n, "B must be a constant");
      L.bias.shape = L.shape;
      L.bias.data.assign(b->c.v.begin(), b->c.v.end());
    }
    return done(add(n, std::move(L), {x.layer}));
  }
  if (op == "Flatten") {
    const Value& x = need_act(n, 0);
    const Index full = x.shape.rank() + 1;
    Index axis = attr_int(n, "axis", 1);
    if (axis < 0) axis += full;
    if (axis != 1)
      fail(n, concat("axis = ", axis, ": only 1 (keeps the batch axis; others mix samples)"));
    if (x.shape.rank() == 1) return alias(n, x);
    return unary(LayerKind::flatten);
  }
  if (op == "Reshape") {
    std::vector<Index> full;
    for (double v : need_const(n, 1, "shape").v) full.push_back(v == kBatch ? Index(kBatch) : to_index(v));
    return reshape(n, full);
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    const Value& x = need_act(n, 0);
    std::vector<Index> axes;
    if (opset_ >= 13 && input(n, 1)) {
      for (double v : need_const(n, 1, "axes").v) axes.push_back(to_index(v));
    } else {
      axes = attr_ints(n, "axes", {});
    }
    std::vector<Index> dims = x.shape.dims;  // per sample
    if (op == "Unsqueeze") {
      const Index r = x.shape.rank() + 1 + static_cast<Index>(axes.size());
      for (Index& a : axes) a = a < 0 ? a + r : a;
      std::sort(axes.begin(), axes.end());
      for (Index a : axes) {
        if (a <= 0 || a - 1 > static_cast<Index>(dims.size())) fail(n, "axis 0 or out of range");
        dims.insert(dims.begin() + (a - 1), 1);
      }
    } else {
      if (axes.empty()) fail(n, "squeeze without axes (would squeeze a batch of 1)");
      const Index r = x.shape.rank() + 1;
      std::vector<Index> keep;
      for (Index d = 0; d < x.shape.rank(); ++d) {
        bool drop = std::any_of(axes.begin(), axes.end(),
                                [&](Index a) { return (a < 0 ? a + r : a) == d + 1; });
        if (drop && dims[d] != 1) fail(n, concat("axis ", d + 1, " has size ", dims[d]));
        if (!drop) keep.push_back(dims[d]);
      }
      for (Index a : axes)
        if ((a < 0 ? a + r : a) == 0) fail(n, "squeezes the batch axis");
      dims = keep;
    }
    std::vector<Index> full{0};
    full.insert(full.end(), dims.begin(), dims.end());
    return reshape(n, full);
  }
  if (op == "Transpose") {
    const Value& x = need_act(n, 0);
    auto perm = attr_ints(n, "perm", {});
    if (static_cast<Index>(perm.size()) != x.shape.rank() + 1 || perm[0] != 0)
      fail(n, "perm must keep the batch axis first");
    Layer L = Layer::make("", LayerKind::transpose);
    for (std::size_t d = 1; d < perm.size(); ++d) L.perm.push_back(perm[d] - 1);
    return done(add(n, std::move(L), {x.layer}));
  }
  if (op == "Concat") {
    const Value* act = nullptr;
    for (int i = 0; i < n.input_size(); ++i)
      if (!need(n, i).is_const) act = &need(n, i);
    const Index full = act->shape.rank() + 1;
    Layer L = Layer::make("", LayerKind::concat);
    L.axis = per_sample_axis(n, attr_int(n, "axis", 0), full, "axis");
    std::vector<int> ins;
    for (int i = 0; i < n.input_size(); ++i) {
      const Value& v = need(n, i);
      ins.push_back(v.is_const ? constant_layer(n, v.c, act->shape, concat(".const", i)) : v.layer);
    }
    return done(add(n, std::move(L), ins));
  }
  if (op == "ReduceMean") {
    const Value& x = need_act(n, 0);
    const Index full = x.shape.rank() + 1;
    auto axes = attr_ints(n, "axes", {});
    if (axes.empty()) fail(n, "reduces over all axes, the batch axis included");
    Layer L = Layer::make("", LayerKind::reduce_mean);
    for (Index a : axes) L.axes.push_back(per_sample_axis(n, a, full, "axis"));
    L.keepdims = attr_int(n, "keepdims", 1) != 0;
    return done(add(n, std::move(L), {x.layer}));
  }
  if (op == "Gather") {
    const Value& data = need(n, 0);
    const Value& idx = need(n, 1);
    if (!data.is_const || idx.is_const || attr_int(n, "axis", 0) != 0 || data.c.dims.size() != 2)
      fail(n, "only an embedding lookup: a constant table (V, D) indexed by an activation, axis 0");
    Layer L = Layer::make("", LayerKind::embedding);
    L.num_embeddings = data.c.dims[0];
    L.embedding_dim = data.c.dims[1];
    L.weight.shape = data.c.dims;
    L.weight.data.assign(data.c.v.begin(), data.c.v.end());
    return done(add(n, std::move(L), {idx.layer}));
  }
  if (op == "Expand") {
    const Value& x = need(n, 0);
    const Const& target = need_const(n, 1, "shape");
    std::vector<Index> rest;
    for (std::size_t d = 1; d < target.v.size(); ++d) {
      if (target.v[d] == kBatch) fail(n, "expands a per-sample axis to the batch size");
      rest.push_back(to_index(target.v[d]));
    }
    if (x.is_const) {  // e.g. a class token expanded over the batch: a constant layer
      std::vector<Index> cd = x.c.dims;
      if (cd.size() == rest.size() + 1) {
        if (cd[0] != 1) fail(n, "constant varies along the batch axis");
        cd.erase(cd.begin());
      }
      auto b = broadcast_shapes(Shape{cd}, Shape{rest});
      if (!b) fail(n, "shapes do not broadcast");
      Const c;
      c.dims = b->dims;
      const Index r = static_cast<Index>(c.dims.size());
      std::vector<Index> idx(static_cast<std::size_t>(r), 0);
      for (Index o = 0; o < Shape{c.dims}.size(); ++o) {
        Index off = 0;
        const Index xr = static_cast<Index>(cd.size());
        for (Index d = 0; d < xr; ++d) off = off * cd[d] + (cd[d] == 1 ? 0 : idx[d + r - xr]);
        c.v.push_back(x.c.v[off]);
        for (Index d = r - 1; d >= 0; --d) {
          if (++idx[d] < c.dims[d]) break;
          idx[d] = 0;
        }
      }
      const int i = constant_layer(n, c, Shape{c.dims}, "");
      return done(i);
    }
    auto b = broadcast_shapes(x.shape, Shape{rest});
    if (!b || *b != x.shape) fail(n, "expands an activation (only a no-op expand is supported)");
    return alias(n, x);
  }
  if (op == "Shape") {  // of an activation: the batch marker, then the per-sample shape
    const Value& x = need_act(n, 0);
    Const c;
    c.is_int = true;
    c.dims = {x.shape.rank() + 1};
    c.v.push_back(kBatch);
    for (Index d : x.shape.dims) c.v.push_back(static_cast<double>(d));
    return set_const(n, std::move(c));
  }
  fail(n, "cannot be converted here (its inputs are not supported in this combination)");
}

// Removes layers the output does not depend on (e.g. constants of a dead branch).
void prune(Network& net, int out) {
  const int n = static_cast<int>(net.layers.size());
  std::vector<bool> live(static_cast<std::size_t>(n), false);
  live[out] = true;
  for (int i = out; i >= 0; --i)
    if (live[i])
      for (int j : net.layer_inputs(i))
        if (j >= 0) live[j] = true;
  std::vector<int> remap(static_cast<std::size_t>(n), -1);
  std::vector<Layer> kept;
  for (int i = 0; i <= out; ++i)
    if (live[i]) {
      remap[i] = static_cast<int>(kept.size());
      kept.push_back(std::move(net.layers[i]));
      for (int& j : kept.back().inputs)
        if (j >= 0) j = remap[j];
    }
  net.layers = std::move(kept);
  // Plain chains read more easily without explicit inputs: drop "the previous layer".
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    Layer& L = net.layers[i];
    const int prev = i == 0 ? kNetworkInput : static_cast<int>(i) - 1;
    if (L.inputs.size() == 1 && L.inputs[0] == prev) L.inputs.clear();
  }
}

Network Importer::run() {
  // Opset.
  for (const auto& o : model_.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = static_cast<int>(o.version());
  if (opset_ == 0) fail("no default-domain (ai.onnx) opset is imported");
  if (opset_ < kOnnxMinOpset || opset_ > kOnnxMaxOpset)
    fail(concat("opset ", opset_, " is not supported (this pcmsim reads opsets ", kOnnxMinOpset,
                " to ", kOnnxMaxOpset, "; re-export with torch.onnx.export(..., opset_version=",
                std::min(std::max(opset_, kOnnxMinOpset), kOnnxMaxOpset), ")"));
  check_operators();

  for (const auto& n : g_.node())
    for (const auto& i : n.input()) ++uses_[i];
  for (const auto& o : g_.output()) ++uses_[o.name()];

  for (const auto& t : g_.initializer()) {
    if (t.name().empty()) fail("an initializer has no name");
    Value v;
    v.is_const = true;
    v.c = tensor(t, concat("initializer '", t.name(), "'"));
    vals_[t.name()] = std::move(v);
  }
  // The one real input (graph inputs that are not initializers).
  const onnx::ValueInfoProto* in = nullptr;
  for (const auto& i : g_.input()) {
    if (vals_.count(i.name())) continue;
    if (in) fail(concat("the graph has several inputs ('", in->name(), "', '", i.name(), "'); pcmsim models take one"));
    in = &i;
  }
  if (!in) fail("the graph has no input");
  if (!in->type().has_tensor_type()) fail(concat("input '", in->name(), "' is not a tensor"));
  const auto& tt = in->type().tensor_type();
  const int et = tt.elem_type();
  if (et != onnx::TensorProto::FLOAT && et != onnx::TensorProto::DOUBLE &&
      et != onnx::TensorProto::INT64 && et != onnx::TensorProto::INT32)
    fail(concat("input '", in->name(), "' has element type ", et, " (float or integer indices)"));
  std::vector<Index> dims;
  for (int d = 1; d < tt.shape().dim_size(); ++d) {
    const auto& dim = tt.shape().dim(d);
    if (!dim.has_dim_value() || dim.dim_value() < 1 || dim.dim_value() > (Index(1) << 24))
      fail(concat("input '", in->name(), "': dimension ", d,
                  " is not a fixed size (only the batch axis 0 may be symbolic)"));
    dims.push_back(dim.dim_value());
  }
  if (dims.empty() || dims.size() > 3)
    fail(concat("input '", in->name(), "' has rank ", dims.size() + 1,
                ": expected (batch, C, H, W), (batch, C, L) or (batch, F)"));
  // PyTorch names every graph "torch_jit" (older: "torch-jit-export"): the file name says more.
  const bool generic = g_.name().empty() || g_.name().rfind("torch_jit", 0) == 0 ||
                       g_.name().rfind("torch-jit", 0) == 0;
  net_.name = generic ? std::filesystem::path(path_).stem().string() : g_.name();
  net_.input_shape = dims.size() == 3   ? std::array<Index, 3>{dims[0], dims[1], dims[2]}
                     : dims.size() == 2 ? std::array<Index, 3>{dims[0], 1, dims[1]}
                                        : std::array<Index, 3>{1, 1, dims[0]};
  net_.num_classes = 1;  // set from the output at the end

  // Normalisation: options, else metadata_props, else 0 / 1.
  std::map<std::string, std::string> meta;
  for (const auto& p : model_.metadata_props()) meta[p.key()] = p.value();
  const Index C = net_.input_shape[0];
  auto channel_values = [&](std::vector<double> v, const char* key, double dflt) {
    if (v.empty() && meta.count(key))
      for (const auto& s : split_commas(meta[key])) {
        try {
          std::size_t used = 0;
          v.push_back(std::stod(s, &used));
          if (used != s.size()) throw std::invalid_argument(s);
        } catch (const std::exception&) {
          fail(concat("metadata_props ", key, " = \"", meta[key], "\": not a list of numbers"));
        }
      }
    if (v.empty()) v.push_back(dflt);
    if (v.size() == 1) v.assign(static_cast<std::size_t>(C), v[0]);
    if (static_cast<Index>(v.size()) != C)
      fail(concat(key, " has ", v.size(), " values; the input has ", C, " channels"));
    return std::vector<float>(v.begin(), v.end());
  };
  net_.input_mean = channel_values(input_.input_mean, "input_mean", 0.0);
  net_.input_std = channel_values(input_.input_std, "input_std", 1.0);
  // Class names are set once the output size is known (the shapes are checked on the way).
  const std::vector<std::string> class_names =
      meta.count("class_names") ? split_commas(meta["class_names"]) : std::vector<std::string>{};

  Value x;
  x.layer = kNetworkInput;
  x.shape = Shape{{net_.input_shape[0], net_.input_shape[1], net_.input_shape[2]}};
  if (dims.size() != 3) {  // the network input is (C, H, W); give the graph its own shape
    Layer L = Layer::make("input_reshape", LayerKind::reshape);
    L.shape = dims;
    L.inputs = {kNetworkInput};
    names_.insert(L.name);
    net_.layers.push_back(std::move(L));
    x.layer = 0;
    x.shape = Shape{dims};
  }
  vals_[in->name()] = x;

  for (const auto& n : g_.node()) {
    if (n.output_size() < 1 || n.output(0).empty()) fail(n, "has no output");
    if (n.op_type() == "Constant") {
      const auto* a = attr(n, "value");
      if (a && a->type() == onnx::AttributeProto::TENSOR) {
        set_const(n, tensor(a->t(), concat("node '", n.name(), "' value")));
      } else if (const auto* f = attr(n, "value_float")) {
        set_const(n, Const{{}, {f->f()}, false});
      } else if (const auto* i = attr(n, "value_int")) {
        set_const(n, Const{{}, {static_cast<double>(i->i())}, true});
      } else if (const auto* fs = attr(n, "value_floats")) {
        set_const(n, Const{{fs->floats_size()}, {fs->floats().begin(), fs->floats().end()}, false});
      } else if (const auto* is = attr(n, "value_ints")) {
        set_const(n, Const{{is->ints_size()}, {is->ints().begin(), is->ints().end()}, true});
      } else {
        fail(n, "has no supported value attribute");
      }
      continue;
    }
    bool all_const = true;
    for (int i = 0; i < n.input_size(); ++i)
      if (const Value* v = input(n, i)) all_const = all_const && v->is_const;
    // Expand of a constant over the batch is a constant layer (convert), not a folded value.
    if (all_const && n.input_size() > 0 && n.op_type() != "Expand")
      fold(n);
    else
      convert(n);
  }

  if (g_.output_size() != 1) fail(concat("the graph has ", g_.output_size(), " outputs; expected one (the logits)"));
  auto it = vals_.find(g_.output(0).name());
  if (it == vals_.end()) fail(concat("output '", g_.output(0).name(), "' is never computed"));
  if (it->second.is_const) fail("the output is a constant");
  const Value out = it->second;
  if (out.layer == kNetworkInput) fail("the output is the input: no layers");
  Shape os = out.shape;
  int last = out.layer;
  prune(net_, last);
  last = static_cast<int>(net_.layers.size()) - 1;
  if (os.rank() != 1) {
    if (os.size() < 1) fail(concat("output per sample ", os.str()));
    for (Index d = 0; d + 1 < os.rank(); ++d)
      if (os.dims[d] != 1) fail(concat("output per sample ", os.str(), ": expected (classes)"));
    Layer L = Layer::make("output_flatten", LayerKind::flatten);
    for (int k = 1; net_.find_layer(L.name) >= 0; ++k) L.name = concat("output_flatten_", k);
    net_.layers.push_back(std::move(L));
  }
  net_.num_classes = os.size();
  if (!class_names.empty() && static_cast<Index>(class_names.size()) != net_.num_classes)
    fail(concat("metadata_props class_names has ", class_names.size(), " names, the model outputs ",
                net_.num_classes, " classes"));
  net_.class_names = class_names;
  std::string producer = model_.producer_name();
  if (!model_.producer_version().empty()) producer += " " + model_.producer_version();
  net_.converted_from = concat("onnx: ", std::filesystem::path(path_).filename().string(), " (",
                               producer.empty() ? std::string("unknown producer") : producer,
                               ", opset ", opset_, ")");
  net_.source = path_;
  try {
    net_.validate();
  } catch (const std::invalid_argument& e) {
    fail(e.what());
  }
  return std::move(net_);
}

}  // namespace

Network import_onnx(const std::string& path, const ModelInputOptions& input) {
  input.validate();
  std::ifstream f(path, std::ios::binary);
  if (!f) core::throw_io(kTag, concat(path, ": cannot open"));
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) core::throw_io(kTag, concat(path, ": read error"));
  if (bytes.empty()) core::throw_io(kTag, concat(path, ": the file is empty"));
  if (bytes.size() > (std::size_t(1) << 31) - 1)
    core::throw_io(kTag, concat(path, ": larger than 2 GiB (protobuf's limit)"));
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())))
    core::throw_io(kTag, concat(path, ": not a valid ONNX model (the protobuf does not parse: "
                                      "truncated, corrupt or another format)"));
  if (model.ir_version() < 3 || !model.has_graph() || model.graph().node_size() == 0)
    core::throw_io(kTag, concat(path, ": not an ONNX model (ir_version ", model.ir_version(),
                                ", ", model.has_graph() ? model.graph().node_size() : 0,
                                " nodes; truncated or another format?)"));
  return Importer(model, path, input).run();
}

#endif  // PCMSIM_HAVE_ONNX

}  // namespace pcmsim::nets
