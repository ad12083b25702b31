// ONNX -> Network (docs/onnx.md). The protobuf messages come from Debian's libonnx-dev
// (onnx_proto, generated from the same onnx.proto that PyTorch's exporter writes against); the
// converter walks the graph once in its (topological) order:
// - constants (initializers, Constant nodes and every node whose inputs are all constants) are
//   folded (onnx_fold.cpp), including the shape arithmetic exporters emit (Shape ->
//   Gather/Slice -> Concat -> Reshape). The batch size is unknown, so Shape() of an activation
//   yields a marker for the batch dimension, which may be moved around but not computed with;
// - every other node becomes one or a few layers (onnx_convert.cpp); axis 0 of every ONNX
//   tensor is the batch axis and the layers work on the per-sample rest, so an operator that
//   mixes samples is refused.
#include "nets/onnx_import.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "nets/model_io.h"
#include "nets/onnx_importer.h"

namespace pcmsim::nets {

using core::concat;
using onnx_detail::kTag;

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

namespace onnx_detail {

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

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace onnx_detail

using onnx_detail::Importer;

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