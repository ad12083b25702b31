#include "nets/model_io.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>

#include "core/error.h"
#include "h5/hdf5_io.h"

namespace pcmsim::nets {

using core::concat;
namespace h5 = ::pcmsim::h5;

namespace {

constexpr const char* kLoadTag = "nets::load_network";
constexpr const char* kSaveTag = "nets::save_network";

std::string trim(const std::string& s) {
  std::size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
}

// Reads the attributes of one group with error messages naming file and object.
class Reader {
 public:
  Reader(const h5::Group& g, std::string where) : g_(g), where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& msg) const {
    core::throw_io(kLoadTag, concat(where_, ": ", msg));
  }
  bool has(const std::string& name) const { return g_.has_attribute(name); }
  void require(const std::string& name) const {
    if (!has(name)) fail(concat("attribute '", name, "' is missing"));
  }
  // The h5 helpers already name file, object and attribute; re-tag with the layer context.
  template <class F>
  auto wrap(const std::string& name, F f) const -> decltype(f()) {
    try {
      return f();
    } catch (const std::runtime_error& e) {
      fail(concat("attribute '", name, "': ", e.what()));
    }
  }
  std::string str(const std::string& name) const {
    require(name);
    return wrap(name, [&] { return g_.read_string_attribute(name); });
  }
  std::string str_or(const std::string& name, const std::string& dflt) const {
    return has(name) ? str(name) : dflt;
  }
  Index integer(const std::string& name) const {
    require(name);
    return wrap(name, [&] { return static_cast<Index>(g_.read_int_attribute(name)); });
  }
  Index integer_or(const std::string& name, Index dflt) const {
    return has(name) ? integer(name) : dflt;
  }
  bool flag_or(const std::string& name, bool dflt) const {
    if (!has(name)) return dflt;
    Index v = integer(name);
    if (v != 0 && v != 1) fail(concat("attribute '", name, "' = ", v, ": must be 0 or 1"));
    return v == 1;
  }
  double number(const std::string& name) const {
    require(name);
    double v = wrap(name, [&] { return g_.read_double_attribute(name); });
    if (!std::isfinite(v)) fail(concat("attribute '", name, "' = ", v, ": must be finite"));
    return v;
  }
  double number_or(const std::string& name, double dflt) const {
    return has(name) ? number(name) : dflt;
  }
  std::vector<double> numbers(const std::string& name) const {
    require(name);
    return wrap(name, [&] { return g_.read_double_list_attribute(name); });
  }
  std::vector<Index> integers(const std::string& name) const {
    require(name);
    auto v = wrap(name, [&] { return g_.read_int_list_attribute(name); });
    return std::vector<Index>(v.begin(), v.end());
  }
  // An int2 attribute: [h, w] or a single int used for both.
  std::array<Index, 2> pair_or(const std::string& name, std::array<Index, 2> dflt) const {
    if (!has(name)) return dflt;
    auto v = integers(name);
    if (v.size() == 1) return {v[0], v[0]};
    if (v.size() == 2) return {v[0], v[1]};
    fail(concat("attribute '", name, "' has ", v.size(), " values, expected 1 or 2 ([h, w])"));
  }
  std::array<Index, 2> pair(const std::string& name) const {
    require(name);
    return pair_or(name, {0, 0});
  }
  // A float tensor dataset, or an empty Tensor if absent (and optional).
  Tensor tensor(const std::string& name, bool optional) const {
    h5::Kind k = g_.kind_of(name);
    if (k == h5::Kind::missing) {
      if (optional) return {};
      fail(concat("dataset '", name, "' is missing"));
    }
    if (k != h5::Kind::dataset) fail(concat("'", name, "' is not a dataset"));
    h5::Array<float> a;
    try {
      a = g_.read_dataset<float>(name);
    } catch (const std::runtime_error& e) {
      fail(concat("dataset '", name, "': ", e.what()));
    }
    Tensor t;
    t.data = std::move(a.data);
    for (auto d : a.shape) t.shape.push_back(static_cast<Index>(d));
    if (t.data.empty()) fail(concat("dataset '", name, "' is empty"));
    // Every tensor of a model (weights, biases, statistics, reference margins and logits) is
    // finite: a NaN or Inf is a corrupted or broken export, caught here, naming it.
    for (std::size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i]))
        fail(concat(name, "[", i, "] = ", t.data[i], ": must be finite"));
    return t;
  }

 private:
  const h5::Group& g_;
  std::string where_;
};

std::vector<int> parse_inputs(const std::string& text, const std::map<std::string, int>& names,
                              int n_layers, const Reader& r) {
  std::vector<int> out;
  std::size_t pos = 0;
  while (true) {
    std::size_t comma = text.find(',', pos);
    std::string tok =
        trim(text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (tok.empty()) r.fail(concat("inputs = \"", text, "\": empty entry"));
    if (tok == "input") {
      out.push_back(kNetworkInput);
    } else if (all_digits(tok)) {
      if (tok.size() > 9 || std::stoi(tok) >= n_layers)
        r.fail(concat("inputs = \"", text, "\": layer index ", tok, " does not exist (", n_layers,
                      " layers)"));
      out.push_back(std::stoi(tok));
    } else {
      auto it = names.find(tok);
      if (it == names.end()) r.fail(concat("inputs = \"", text, "\": no layer named '", tok, "'"));
      out.push_back(it->second);
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

Layer read_layer(const h5::Group& g, const std::string& name, int index,
                 const std::map<std::string, int>& names, int n_layers, const std::string& path) {
  Reader r(g, concat(path, ": layer ", index, " '", name, "'"));
  Layer L;
  L.name = name;
  std::string kind = r.str("kind");
  auto k = parse_kind(kind);
  if (!k) r.fail(concat("kind = \"", kind, "\": unknown (one of ", all_kind_names(), ")"));
  L.kind = *k;
  Reader rk(g, concat(path, ": layer ", index, " '", name, "' (", kind, ")"));

  if (rk.has("inputs")) L.inputs = parse_inputs(rk.str("inputs"), names, n_layers, rk);
  if (rk.has("activation")) {
    std::string a = rk.str("activation");
    auto act = parse_activation(a);
    if (!act)
      rk.fail(concat("activation = \"", a,
                     "\": unknown (one of none, relu, relu6, sigmoid, tanh, "
                     "gelu, silu, hardswish, hardsigmoid)"));
    L.activation = *act;
  }
  L.learned_input_range = rk.number_or("learned_input_range", 0.0);

  switch (L.kind) {
    case LayerKind::linear:
      L.in_features = rk.integer("in_features");
      L.out_features = rk.integer("out_features");
      L.weight = rk.tensor("weight", false);
      L.bias = rk.tensor("bias", true);
      break;
    case LayerKind::conv2d:
      L.in_channels = rk.integer("in_channels");
      L.out_channels = rk.integer("out_channels");
      L.groups = rk.integer_or("groups", 1);
      L.kernel_size = rk.pair("kernel_size");
      L.stride = rk.pair_or("stride", {1, 1});
      L.padding = rk.pair_or("padding", {0, 0});
      L.dilation = rk.pair_or("dilation", {1, 1});
      if (rk.has("padding_mode") && rk.str("padding_mode") != "zeros")
        rk.fail(
            concat("padding_mode = \"", rk.str("padding_mode"), "\": only \"zeros\" is supported"));
      L.weight = rk.tensor("weight", false);
      L.bias = rk.tensor("bias", true);
      break;
    case LayerKind::batchnorm1d:
    case LayerKind::batchnorm2d:
      L.num_features = rk.integer("num_features");
      L.eps = rk.number_or("eps", 1e-5);
      L.running_mean = rk.tensor("running_mean", false);
      L.running_var = rk.tensor("running_var", false);
      L.weight = rk.tensor("weight", true);
      L.bias = rk.tensor("bias", true);
      break;
    case LayerKind::leaky_relu:
      L.negative_slope = rk.number_or("negative_slope", 0.01);
      break;
    case LayerKind::elu:
      L.alpha = rk.number_or("alpha", 1.0);
      break;
    case LayerKind::hardtanh:
      L.min_val = rk.number_or("min_val", -1.0);
      L.max_val = rk.number_or("max_val", 1.0);
      break;
    case LayerKind::gelu: {
      std::string a = rk.str_or("approximate", "none");
      if (a != "none" && a != "tanh")
        rk.fail(concat("approximate = \"", a, "\": must be \"none\" or \"tanh\""));
      L.gelu_tanh = a == "tanh";
      break;
    }
    case LayerKind::maxpool2d:
    case LayerKind::avgpool2d:
      L.kernel_size = rk.pair("kernel_size");
      L.stride = rk.pair_or("stride", L.kernel_size);
      L.padding = rk.pair_or("padding", {0, 0});
      L.dilation = rk.pair_or("dilation", {1, 1});
      L.ceil_mode = rk.flag_or("ceil_mode", false);
      if (L.kind == LayerKind::avgpool2d) {
        L.count_include_pad = rk.flag_or("count_include_pad", true);
        if (rk.has("divisor_override")) rk.fail("attribute 'divisor_override' is not supported");
      }
      break;
    case LayerKind::conv1d: {
      // One-row conv2d inside: the file holds plain ints and weight [out, in/groups, k].
      L.in_channels = rk.integer("in_channels");
      L.out_channels = rk.integer("out_channels");
      L.groups = rk.integer_or("groups", 1);
      L.kernel_size = {1, rk.integer("kernel_size")};
      L.stride = {1, rk.integer_or("stride", 1)};
      L.padding = {0, rk.integer_or("padding", 0)};
      L.dilation = {1, rk.integer_or("dilation", 1)};
      L.weight = rk.tensor("weight", false);
      L.bias = rk.tensor("bias", true);
      break;
    }
    case LayerKind::adaptive_avgpool2d:
      L.output_size = rk.pair("output_size");
      break;
    case LayerKind::pad: {
      L.pads = rk.integers("pads");
      std::string m = rk.str_or("mode", "constant");
      auto mode = parse_pad_mode(m);
      if (!mode) rk.fail(concat("mode = \"", m, "\": one of constant, reflect, replicate"));
      L.pad_mode = *mode;
      L.pad_value = rk.number_or("value", 0.0);
      break;
    }
    case LayerKind::concat:
    case LayerKind::softmax:
    case LayerKind::log_softmax:
      L.axis = rk.integer_or("axis", -1);
      break;
    case LayerKind::flatten:
      L.start_dim = rk.integer_or("start_dim", 0);
      L.end_dim = rk.integer_or("end_dim", -1);
      break;
    case LayerKind::layernorm:
      L.shape = rk.integers("normalized_shape");
      L.eps = rk.number_or("eps", 1e-5);
      L.weight = rk.tensor("weight", true);
      L.bias = rk.tensor("bias", true);
      break;
    case LayerKind::reshape:
      L.shape = rk.integers("shape");
      break;
    case LayerKind::transpose:
      L.perm = rk.integers("perm");
      break;
    case LayerKind::scale:
      L.scale = rk.number_or("scale", 1.0);
      L.shift = rk.number_or("shift", 0.0);
      break;
    case LayerKind::constant:
      L.weight = rk.tensor("weight", false);
      break;
    case LayerKind::pow:
      L.exponent = rk.number("exponent");
      break;
    case LayerKind::reduce_mean:
      L.axes = rk.integers("axes");
      L.keepdims = rk.flag_or("keepdims", true);
      break;
    case LayerKind::embedding:
      L.num_embeddings = rk.integer("num_embeddings");
      L.embedding_dim = rk.integer("embedding_dim");
      L.weight = rk.tensor("weight", false);
      break;
    default:
      break;
  }
  return L;
}

void read_reference(const h5::Group& ref, Network& net, const std::string& path) {
  Reader r(ref, path + ": reference");
  Reference R;
  R.dataset = r.str_or("dataset", "");
  if (r.has("accuracy")) {
    R.accuracy = r.number("accuracy");
    if (R.accuracy < 0 || R.accuracy > 1)
      r.fail(concat("accuracy = ", R.accuracy, ": must be in [0, 1]"));
  }
  if (!ref.has_dataset("predictions")) r.fail("dataset 'predictions' is missing");
  h5::Array<std::int32_t> p;
  try {
    p = ref.read_dataset<std::int32_t>("predictions");
  } catch (const std::runtime_error& e) {
    r.fail(concat("dataset 'predictions': ", e.what()));
  }
  if (p.shape.size() != 1) r.fail(concat("predictions has rank ", p.shape.size(), ", expected 1"));
  const Index n = static_cast<Index>(p.data.size());
  for (Index i = 0; i < n; ++i)
    if (p.data[i] < 0 || p.data[i] >= net.num_classes)
      r.fail(concat("predictions[", i, "] = ", p.data[i], ": out of [0, ", net.num_classes, ")"));
  R.predictions.assign(p.data.begin(), p.data.end());
  if (r.has("num_images") && r.integer("num_images") != n)
    r.fail(
        concat("num_images = ", r.integer("num_images"), " but predictions has ", n, " entries"));
  if (ref.kind_of("margin") != h5::Kind::missing) {
    Tensor m = r.tensor("margin", false);
    if (m.shape != std::vector<Index>{n})
      r.fail(concat("margin has shape ", Shape{m.shape}.str(), ", expected (", n, ")"));
    R.margin = std::move(m.data);
  }
  if (ref.kind_of("logits") != h5::Kind::missing) {
    Tensor l = r.tensor("logits", false);
    if (l.shape != std::vector<Index>{n, net.num_classes})
      r.fail(concat("logits has shape ", Shape{l.shape}.str(), ", expected (", n, ", ",
                    net.num_classes, ")"));
    R.logits = core::ConstMapMatrixF(l.data.data(), n, net.num_classes);
  }
  net.reference = std::move(R);
}

}  // namespace

Network load_network(const std::string& path) {
  h5::File f = [&] {
    try {
      return h5::File::open_read(path);
    } catch (const std::runtime_error& e) {
      core::throw_io(kLoadTag, concat("cannot open model file: ", e.what()));
    }
  }();
  Reader root(f, path);
  Network net;
  net.source = path;

  if (!root.has("format"))
    root.fail(
        "attribute 'format' is missing: not a pcmsim model file (expected format = "
        "\"pcmsim-model\", see docs/formats.md)");
  std::string format = root.str("format");
  if (format != kModelFormat)
    root.fail(concat("format = \"", format, "\": expected \"", kModelFormat, "\""));
  Index version = root.integer("format_version");
  if (version > kModelFormatVersion)
    root.fail(concat("format_version = ", version,
                     ": written by a newer pcmsim (this one reads "
                     "version ",
                     kModelFormatVersion, ")"));
  if (version < 1) root.fail(concat("format_version = ", version, ": must be >= 1"));

  net.name = root.str("name");
  auto shape = root.integers("input_shape");
  if (shape.size() != 3)
    root.fail(concat("input_shape has ", shape.size(), " values, expected 3 (C, H, W)"));
  for (int d = 0; d < 3; ++d) {
    if (shape[d] < 1 || shape[d] > (Index(1) << 24))
      root.fail(concat("input_shape[", d, "] = ", shape[d], ": must be in [1, 2^24]"));
    net.input_shape[d] = shape[d];
  }
  net.num_classes = root.integer("num_classes");
  if (net.num_classes < 1 || net.num_classes > (Index(1) << 24))
    root.fail(concat("num_classes = ", net.num_classes, ": must be >= 1"));
  for (const char* key : {"input_mean", "input_std"}) {
    auto v = root.numbers(key);
    std::vector<float>& dst = std::string(key) == "input_mean" ? net.input_mean : net.input_std;
    dst.assign(v.begin(), v.end());
  }
  net.converted_from = root.str_or("converted_from", "");
  if (root.has("class_names"))
    net.class_names =
        root.wrap("class_names", [&] { return f.read_string_list_attribute("class_names"); });

  // Layers: NNN_name, indices 0..n-1.
  if (!f.has_group("layers")) root.fail("group 'layers' is missing");
  h5::Group layers = f.open_group("layers");
  std::vector<std::string> members = layers.members();
  if (members.empty()) root.fail("group 'layers' is empty");
  std::map<int, std::string> by_index;
  std::map<std::string, int> names;
  for (const auto& m : members) {
    std::size_t us = m.find('_');
    std::string idx = m.substr(0, us == std::string::npos ? 0 : us);
    if (us == std::string::npos || idx.size() < 3 || !all_digits(idx) || us + 1 >= m.size())
      root.fail(concat("layers/", m,
                       ": name must be NNN_<layer name> (zero-padded index of at "
                       "least 3 digits, then '_' and the name)"));
    if (idx.size() > 9) root.fail(concat("layers/", m, ": index too large"));
    int i = std::stoi(idx);
    if (by_index.count(i))
      root.fail(concat("layers/", m, ": index ", i, " also used by layers/", by_index[i]));
    by_index[i] = m;
    std::string lname = m.substr(us + 1);
    if (names.count(lname))
      root.fail(concat("layers/", m, ": layer name '", lname, "' is used twice"));
    names[lname] = i;
  }
  const int n = static_cast<int>(by_index.size());
  if (by_index.rbegin()->first != n - 1) {
    int expect = 0;
    for (auto& [i, m] : by_index) {
      if (i != expect)
        root.fail(concat("layers: index ", expect, " is missing (indices must be 0..", n - 1,
                         " without gaps; found layers/", m, ")"));
      ++expect;
    }
  }
  for (auto& [i, m] : by_index) {
    if (!layers.has_group(m)) root.fail(concat("layers/", m, ": is not a group"));
    h5::Group g = layers.open_group(m);
    net.layers.push_back(read_layer(g, m.substr(m.find('_') + 1), i, names, n, path));
  }

  if (f.has_group("reference"))
    read_reference(f.open_group("reference"), net, path);
  else if (f.kind_of("reference") != h5::Kind::missing)
    root.fail("'reference' is not a group");

  try {
    net.validate();
  } catch (const std::invalid_argument& e) {
    core::throw_io(kLoadTag, e.what());
  }
  return net;
}

namespace {

void write_tensor(h5::Group& g, const std::string& name, const Tensor& t) {
  if (t.empty()) return;
  std::vector<std::size_t> shape(t.shape.begin(), t.shape.end());
  g.write_dataset(name, t.data, shape, t.data.size() >= 4096 ? 4 : 0);
}

std::vector<std::int64_t> as_list(const std::array<Index, 2>& v) { return {v[0], v[1]}; }
std::vector<std::int64_t> as_list(const std::vector<Index>& v) { return {v.begin(), v.end()}; }

}  // namespace

void save_network(const Network& net, const std::string& path) {
  net.validate();
  const std::string tmp = path + ".tmp";
  try {
    {
      h5::File f = h5::File::create(tmp);
      f.write_attribute("format", kModelFormat);
      f.write_attribute("format_version", kModelFormatVersion);
      f.write_attribute("name", net.name);
      f.write_attribute("input_shape",
                        std::vector<std::int64_t>(net.input_shape.begin(), net.input_shape.end()));
      f.write_attribute("num_classes", static_cast<std::int64_t>(net.num_classes));
      f.write_attribute("input_mean",
                        std::vector<double>(net.input_mean.begin(), net.input_mean.end()));
      f.write_attribute("input_std",
                        std::vector<double>(net.input_std.begin(), net.input_std.end()));
      if (!net.class_names.empty()) f.write_attribute("class_names", net.class_names);
      if (!net.converted_from.empty()) f.write_attribute("converted_from", net.converted_from);

      {  // groups closed before f.close(), so that its flush errors are reported
        h5::Group layers = f.create_group("layers");
        const int n = static_cast<int>(net.layers.size());
        const int digits = std::max<int>(3, static_cast<int>(std::to_string(n - 1).size()));
        for (int i = 0; i < n; ++i) {
          const Layer& L = net.layers[static_cast<std::size_t>(i)];
          std::string idx = std::to_string(i);
          idx.insert(0, static_cast<std::size_t>(digits) - idx.size(), '0');
          h5::Group g = layers.create_group(idx + "_" + L.name);
          g.write_attribute("kind", std::string(kind_name(L.kind)));
          if (!L.inputs.empty()) {
            std::string s;
            for (int j : L.inputs)
              s += (s.empty() ? "" : ",") +
                   (j == kNetworkInput ? std::string("input") : std::to_string(j));
            g.write_attribute("inputs", s);
          }
          if (L.activation != Activation::none)
            g.write_attribute("activation", std::string(activation_name(L.activation)));
          if (L.learned_input_range > 0)
            g.write_attribute("learned_input_range", L.learned_input_range);
          switch (L.kind) {
            case LayerKind::linear:
              g.write_attribute("in_features", static_cast<std::int64_t>(L.in_features));
              g.write_attribute("out_features", static_cast<std::int64_t>(L.out_features));
              break;
            case LayerKind::conv2d:
              g.write_attribute("in_channels", static_cast<std::int64_t>(L.in_channels));
              g.write_attribute("out_channels", static_cast<std::int64_t>(L.out_channels));
              g.write_attribute("groups", static_cast<std::int64_t>(L.groups));
              g.write_attribute("kernel_size", as_list(L.kernel_size));
              g.write_attribute("stride", as_list(L.stride));
              g.write_attribute("padding", as_list(L.padding));
              g.write_attribute("dilation", as_list(L.dilation));
              break;
            case LayerKind::batchnorm1d:
            case LayerKind::batchnorm2d:
              g.write_attribute("num_features", static_cast<std::int64_t>(L.num_features));
              g.write_attribute("eps", L.eps);
              break;
            case LayerKind::leaky_relu:
              g.write_attribute("negative_slope", L.negative_slope);
              break;
            case LayerKind::elu:
              g.write_attribute("alpha", L.alpha);
              break;
            case LayerKind::hardtanh:
              g.write_attribute("min_val", L.min_val);
              g.write_attribute("max_val", L.max_val);
              break;
            case LayerKind::gelu:
              g.write_attribute("approximate", std::string(L.gelu_tanh ? "tanh" : "none"));
              break;
            case LayerKind::maxpool2d:
            case LayerKind::avgpool2d:
              g.write_attribute("kernel_size", as_list(L.kernel_size));
              g.write_attribute("stride", as_list(L.stride));
              g.write_attribute("padding", as_list(L.padding));
              g.write_attribute("dilation", as_list(L.dilation));
              g.write_attribute("ceil_mode", static_cast<std::int64_t>(L.ceil_mode));
              if (L.kind == LayerKind::avgpool2d)
                g.write_attribute("count_include_pad",
                                  static_cast<std::int64_t>(L.count_include_pad));
              break;
            case LayerKind::conv1d:
              g.write_attribute("in_channels", static_cast<std::int64_t>(L.in_channels));
              g.write_attribute("out_channels", static_cast<std::int64_t>(L.out_channels));
              g.write_attribute("groups", static_cast<std::int64_t>(L.groups));
              g.write_attribute("kernel_size", static_cast<std::int64_t>(L.kernel_size[1]));
              g.write_attribute("stride", static_cast<std::int64_t>(L.stride[1]));
              g.write_attribute("padding", static_cast<std::int64_t>(L.padding[1]));
              g.write_attribute("dilation", static_cast<std::int64_t>(L.dilation[1]));
              break;
            case LayerKind::adaptive_avgpool2d:
              g.write_attribute("output_size", as_list(L.output_size));
              break;
            case LayerKind::pad:
              g.write_attribute("pads", as_list(L.pads));
              g.write_attribute("mode", std::string(pad_mode_name(L.pad_mode)));
              g.write_attribute("value", L.pad_value);
              break;
            case LayerKind::concat:
            case LayerKind::softmax:
            case LayerKind::log_softmax:
              g.write_attribute("axis", static_cast<std::int64_t>(L.axis));
              break;
            case LayerKind::flatten:
              g.write_attribute("start_dim", static_cast<std::int64_t>(L.start_dim));
              g.write_attribute("end_dim", static_cast<std::int64_t>(L.end_dim));
              break;
            case LayerKind::layernorm:
              g.write_attribute("normalized_shape", as_list(L.shape));
              g.write_attribute("eps", L.eps);
              break;
            case LayerKind::reshape:
              g.write_attribute("shape", as_list(L.shape));
              break;
            case LayerKind::transpose:
              g.write_attribute("perm", as_list(L.perm));
              break;
            case LayerKind::scale:
              g.write_attribute("scale", L.scale);
              g.write_attribute("shift", L.shift);
              break;
            case LayerKind::pow:
              g.write_attribute("exponent", L.exponent);
              break;
            case LayerKind::reduce_mean:
              g.write_attribute("axes", as_list(L.axes));
              g.write_attribute("keepdims", static_cast<std::int64_t>(L.keepdims));
              break;
            case LayerKind::embedding:
              g.write_attribute("num_embeddings", static_cast<std::int64_t>(L.num_embeddings));
              g.write_attribute("embedding_dim", static_cast<std::int64_t>(L.embedding_dim));
              break;
            default:
              break;
          }
          write_tensor(g, "weight", L.weight);
          write_tensor(g, "bias", L.bias);
          write_tensor(g, "running_mean", L.running_mean);
          write_tensor(g, "running_var", L.running_var);
        }
      }
      if (net.reference) {
        const Reference& R = *net.reference;
        h5::Group r = f.create_group("reference");
        if (!R.dataset.empty()) r.write_attribute("dataset", R.dataset);
        r.write_attribute("num_images", static_cast<std::int64_t>(R.predictions.size()));
        if (R.accuracy >= 0) r.write_attribute("accuracy", R.accuracy);
        std::vector<std::int64_t> p(R.predictions.begin(), R.predictions.end());
        r.write_dataset("predictions", p, {p.size()}, p.size() >= 4096 ? 4 : 0);
        if (!R.margin.empty()) {
          if (R.margin.size() != R.predictions.size())
            core::throw_invalid(kSaveTag, concat("reference margin has ", R.margin.size(),
                                                 " entries, predictions ", R.predictions.size()));
          r.write_dataset("margin", R.margin, {R.margin.size()}, 4);
        }
        if (R.logits.size() > 0) {
          if (R.logits.rows() != static_cast<Index>(R.predictions.size()) ||
              R.logits.cols() != net.num_classes)
            core::throw_invalid(
                kSaveTag, concat("reference logits are ", R.logits.rows(), "x", R.logits.cols(),
                                 ", expected ", R.predictions.size(), "x", net.num_classes));
          r.write_dataset("logits", R.logits.data(),
                          {static_cast<std::size_t>(R.logits.rows()),
                           static_cast<std::size_t>(R.logits.cols())},
                          4);
        }
      }
      f.close();
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) core::throw_io(kSaveTag, concat(path, ": cannot rename ", tmp, ": ", ec.message()));
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
}

}  // namespace pcmsim::nets
