#include "nets/network.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <unordered_map>

#include "core/error.h"

namespace pcmsim::nets {

using core::concat;

namespace {

constexpr const char* kTag = "nets::Network";
// Bounds that keep all shape arithmetic far from overflow and reject absurd files early.
constexpr Index kMaxDim = Index(1) << 24;
constexpr Index kMaxValuesPerSample = Index(1) << 28;

struct KindEntry {
  LayerKind kind;
  const char* name;
};
constexpr KindEntry kKinds[] = {
    {LayerKind::linear, "linear"},
    {LayerKind::conv2d, "conv2d"},
    {LayerKind::batchnorm1d, "batchnorm1d"},
    {LayerKind::batchnorm2d, "batchnorm2d"},
    {LayerKind::relu, "relu"},
    {LayerKind::relu6, "relu6"},
    {LayerKind::leaky_relu, "leaky_relu"},
    {LayerKind::sigmoid, "sigmoid"},
    {LayerKind::tanh, "tanh"},
    {LayerKind::gelu, "gelu"},
    {LayerKind::silu, "silu"},
    {LayerKind::elu, "elu"},
    {LayerKind::hardtanh, "hardtanh"},
    {LayerKind::hardswish, "hardswish"},
    {LayerKind::hardsigmoid, "hardsigmoid"},
    {LayerKind::softmax, "softmax"},
    {LayerKind::log_softmax, "log_softmax"},
    {LayerKind::maxpool2d, "maxpool2d"},
    {LayerKind::avgpool2d, "avgpool2d"},
    {LayerKind::global_avgpool, "global_avgpool"},
    {LayerKind::flatten, "flatten"},
    {LayerKind::add, "add"},
    {LayerKind::identity, "identity"},
    {LayerKind::dropout, "dropout"},
};

struct ActEntry {
  Activation act;
  const char* name;
};
constexpr ActEntry kActs[] = {
    {Activation::none, "none"},
    {Activation::relu, "relu"},
    {Activation::relu6, "relu6"},
    {Activation::sigmoid, "sigmoid"},
    {Activation::tanh, "tanh"},
    {Activation::gelu, "gelu"},
    {Activation::silu, "silu"},
    {Activation::hardswish, "hardswish"},
    {Activation::hardsigmoid, "hardsigmoid"},
};

// PyTorch's conv output size.
Index conv_out(Index in, Index k, Index s, Index p, Index d) {
  return (in + 2 * p - d * (k - 1) - 1) / s + 1;  // callers ensure the numerator >= 0
}

// PyTorch's pooling_output_shape (ceil_mode: the last window must start inside the input or
// the left padding).
Index pool_out(Index in, Index k, Index s, Index p, Index d, bool ceil_mode) {
  Index num = in + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  Index out = (num >= 0 ? num / s : -((-num + s - 1) / s)) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

}  // namespace

std::string_view kind_name(LayerKind kind) {
  for (auto& e : kKinds)
    if (e.kind == kind) return e.name;
  return "?";
}

std::optional<LayerKind> parse_kind(std::string_view name) {
  for (auto& e : kKinds)
    if (name == e.name) return e.kind;
  return std::nullopt;
}

std::string all_kind_names() {
  std::string s;
  for (auto& e : kKinds) {
    if (!s.empty()) s += ", ";
    s += e.name;
  }
  return s;
}

bool is_activation(LayerKind k) {
  switch (k) {
    case LayerKind::relu:
    case LayerKind::relu6:
    case LayerKind::leaky_relu:
    case LayerKind::sigmoid:
    case LayerKind::tanh:
    case LayerKind::gelu:
    case LayerKind::silu:
    case LayerKind::elu:
    case LayerKind::hardtanh:
    case LayerKind::hardswish:
    case LayerKind::hardsigmoid:
      return true;
    default:
      return false;
  }
}

bool is_matrix(LayerKind k) { return k == LayerKind::linear || k == LayerKind::conv2d; }

std::string_view activation_name(Activation a) {
  for (auto& e : kActs)
    if (e.act == a) return e.name;
  return "?";
}

std::optional<Activation> parse_activation(std::string_view name) {
  for (auto& e : kActs)
    if (name == e.name) return e.act;
  return std::nullopt;
}

Index Tensor::numel() const {
  Index n = 1;
  for (auto d : shape) n *= d;
  return n;
}

Index Shape::size() const {
  Index n = 1;
  for (auto d : dims) n *= d;
  return dims.empty() ? 0 : n;
}

std::string Shape::str() const {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

Layer Layer::make(std::string name, LayerKind kind) {
  Layer l;
  l.name = std::move(name);
  l.kind = kind;
  return l;
}

Layer Layer::make_linear(std::string name, Index in_features, Index out_features, Activation act) {
  Layer l = make(std::move(name), LayerKind::linear);
  l.in_features = in_features;
  l.out_features = out_features;
  l.activation = act;
  return l;
}

Layer Layer::make_conv2d(std::string name, Index in_channels, Index out_channels,
                         std::array<Index, 2> kernel, std::array<Index, 2> stride,
                         std::array<Index, 2> padding, std::array<Index, 2> dilation, Index groups,
                         Activation act) {
  Layer l = make(std::move(name), LayerKind::conv2d);
  l.in_channels = in_channels;
  l.out_channels = out_channels;
  l.kernel_size = kernel;
  l.stride = stride;
  l.padding = padding;
  l.dilation = dilation;
  l.groups = groups;
  l.activation = act;
  return l;
}

std::vector<int> Network::layer_inputs(int i) const {
  const Layer& l = layers.at(static_cast<std::size_t>(i));
  if (!l.inputs.empty()) return l.inputs;
  return {i == 0 ? kNetworkInput : i - 1};
}

int Network::find_layer(std::string_view n) const {
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name == n) return static_cast<int>(i);
  return -1;
}

void Network::validate() const { (void)infer_shapes(*this); }

std::vector<LayerShapes> infer_shapes(const Network& net, bool check_output) {
  const std::string src = net.source.empty() ? std::string() : net.source + ": ";
  auto fail_net = [&](const std::string& msg) { core::throw_invalid(kTag, src + msg); };

  if (net.name.empty()) fail_net("name is empty");
  for (int d = 0; d < 3; ++d)
    if (net.input_shape[d] < 1 || net.input_shape[d] > kMaxDim)
      fail_net(concat("input_shape = (", net.input_shape[0], ", ", net.input_shape[1], ", ",
                      net.input_shape[2], "): every dimension must be in [1, ", kMaxDim, "]"));
  if (double(net.input_shape[0]) * double(net.input_shape[1]) * double(net.input_shape[2]) >
      double(kMaxValuesPerSample))
    fail_net(concat("input_shape: more than ", kMaxValuesPerSample, " values per sample"));
  const Index C = net.input_shape[0];
  if (net.num_classes < 1) fail_net(concat("num_classes = ", net.num_classes, ": must be >= 1"));
  if (static_cast<Index>(net.input_mean.size()) != C)
    fail_net(concat("input_mean has ", net.input_mean.size(), " entries, expected ", C,
                    " (one per input channel)"));
  if (static_cast<Index>(net.input_std.size()) != C)
    fail_net(concat("input_std has ", net.input_std.size(), " entries, expected ", C,
                    " (one per input channel)"));
  for (Index c = 0; c < C; ++c) {
    if (!std::isfinite(net.input_mean[c]))
      fail_net(concat("input_mean[", c, "] = ", net.input_mean[c], ": must be finite"));
    if (!(net.input_std[c] > 0) || !std::isfinite(net.input_std[c]))
      fail_net(concat("input_std[", c, "] = ", net.input_std[c], ": must be finite and > 0"));
  }
  if (!net.class_names.empty() && static_cast<Index>(net.class_names.size()) != net.num_classes)
    fail_net(concat("class_names has ", net.class_names.size(),
                    " entries, expected num_classes = ", net.num_classes));
  if (net.layers.empty()) fail_net("has no layers");

  const int n = static_cast<int>(net.layers.size());
  std::unordered_map<std::string, int> names;
  std::vector<bool> used(static_cast<std::size_t>(n), false);
  std::vector<LayerShapes> shapes(static_cast<std::size_t>(n));
  const Shape input{{net.input_shape[0], net.input_shape[1], net.input_shape[2]}};

  for (int i = 0; i < n; ++i) {
    const Layer& L = net.layers[static_cast<std::size_t>(i)];
    auto fail = [&](const std::string& msg) {
      core::throw_invalid(
          kTag, concat(src, "layer ", i, " '", L.name, "' (", kind_name(L.kind), "): ", msg));
    };
    if (L.name.empty()) fail("name is empty");
    if (L.name.find('/') != std::string::npos) fail("name contains '/'");
    if (L.name == "input") fail("name 'input' is reserved for the network input");
    if (!names.emplace(L.name, i).second)
      fail(concat("name already used by layer ", names[L.name]));
    if (!parse_kind(kind_name(L.kind))) fail("unknown kind");

    // Graph edges.
    std::vector<int> ins = net.layer_inputs(i);
    const std::size_t arity = L.kind == LayerKind::add ? 2 : 1;
    if (ins.size() != arity) fail(concat("has ", ins.size(), " inputs, expected ", arity));
    LayerShapes& S = shapes[static_cast<std::size_t>(i)];
    for (int j : ins) {
      if (j != kNetworkInput && (j < 0 || j >= i))
        fail(concat("input ", j, " is not an earlier layer (only layers 0..", i - 1,
                    " or the network input may feed it)"));
      if (j != kNetworkInput) used[static_cast<std::size_t>(j)] = true;
      S.inputs.push_back(j == kNetworkInput ? input : shapes[static_cast<std::size_t>(j)].output);
    }
    const Shape& in = S.inputs[0];

    if (L.activation != Activation::none &&
        !(is_matrix(L.kind) || L.kind == LayerKind::batchnorm1d ||
          L.kind == LayerKind::batchnorm2d || L.kind == LayerKind::add))
      fail(concat("a fused activation ('", activation_name(L.activation),
                  "') is only allowed on linear, conv2d, batchnorm and add"));
    if (!parse_activation(activation_name(L.activation))) fail("unknown fused activation");

    auto check_tensor = [&](const Tensor& t, const char* what, std::vector<Index> expected,
                            bool optional) {
      if (t.empty()) {
        if (!optional) fail(concat(what, " is missing"));
        return;
      }
      if (t.shape != expected) {
        Shape got{t.shape}, want{expected};
        fail(concat(what, " has shape ", got.str(), ", expected ", want.str()));
      }
      if (static_cast<Index>(t.data.size()) != t.numel())
        fail(concat(what, " holds ", t.data.size(), " values for shape ", Shape{t.shape}.str()));
      for (std::size_t k = 0; k < t.data.size(); ++k)
        if (!std::isfinite(t.data[k]))
          fail(concat(what, "[", k, "] = ", t.data[k], ": weights must be finite"));
    };
    auto require_image = [&]() {
      if (!in.is_image()) fail(concat("needs an image input (C, H, W), got ", in.str()));
    };
    auto check_pair = [&](const std::array<Index, 2>& v, const char* what, Index lo) {
      if (v[0] < lo || v[1] < lo || v[0] > kMaxDim || v[1] > kMaxDim)
        fail(concat(what, " = [", v[0], ", ", v[1], "]: must be in [", lo, ", ", kMaxDim, "]"));
    };
    auto check_count = [&](Index v, const char* what) {
      if (v < 1 || v > kMaxDim) fail(concat(what, " = ", v, ": must be in [1, ", kMaxDim, "]"));
    };

    switch (L.kind) {
      case LayerKind::linear: {
        check_count(L.in_features, "in_features");
        check_count(L.out_features, "out_features");
        if (in.dims.size() != 1)
          fail(concat("needs a feature vector input, got ", in.str(), " (add a flatten layer)"));
        if (in.dims[0] != L.in_features)
          fail(concat("in_features = ", L.in_features, " but its input has ", in.dims[0],
                      " features"));
        check_tensor(L.weight, "weight", {L.out_features, L.in_features}, false);
        check_tensor(L.bias, "bias", {L.out_features}, true);
        S.output = Shape{{L.out_features}};
        break;
      }
      case LayerKind::conv2d: {
        require_image();
        check_count(L.in_channels, "in_channels");
        check_count(L.out_channels, "out_channels");
        check_count(L.groups, "groups");
        if (L.in_channels % L.groups || L.out_channels % L.groups)
          fail(concat("in_channels = ", L.in_channels, " and out_channels = ", L.out_channels,
                      " must both be divisible by groups = ", L.groups));
        check_pair(L.kernel_size, "kernel_size", 1);
        check_pair(L.stride, "stride", 1);
        check_pair(L.padding, "padding", 0);
        check_pair(L.dilation, "dilation", 1);
        if (in.dims[0] != L.in_channels)
          fail(concat("in_channels = ", L.in_channels, " but its input has ", in.dims[0],
                      " channels (input ", in.str(), ")"));
        Index ho = 0, wo = 0;
        for (int d = 0; d < 2; ++d) {
          Index ext = in.dims[1 + d] + 2 * L.padding[d];
          Index span = L.dilation[d] * (L.kernel_size[d] - 1) + 1;
          if (span > ext)
            fail(concat("kernel (dilated extent ", span, ") is larger than the padded input (", ext,
                        ") along ", d == 0 ? "H" : "W", "; input ", in.str()));
          (d == 0 ? ho : wo) =
              conv_out(in.dims[1 + d], L.kernel_size[d], L.stride[d], L.padding[d], L.dilation[d]);
        }
        check_tensor(L.weight, "weight",
                     {L.out_channels, L.in_channels / L.groups, L.kernel_size[0], L.kernel_size[1]},
                     false);
        check_tensor(L.bias, "bias", {L.out_channels}, true);
        S.output = Shape{{L.out_channels, ho, wo}};
        break;
      }
      case LayerKind::batchnorm1d:
      case LayerKind::batchnorm2d: {
        const bool two_d = L.kind == LayerKind::batchnorm2d;
        if (two_d)
          require_image();
        else if (in.dims.size() != 1)
          fail(concat("needs a feature vector input, got ", in.str(), " (use batchnorm2d)"));
        check_count(L.num_features, "num_features");
        if (in.dims[0] != L.num_features)
          fail(concat("num_features = ", L.num_features, " but its input ", in.str(), " has ",
                      in.dims[0], two_d ? " channels" : " features"));
        if (!(L.eps > 0) || !std::isfinite(L.eps))
          fail(concat("eps = ", L.eps, ": must be finite and > 0"));
        check_tensor(L.running_mean, "running_mean", {L.num_features}, false);
        check_tensor(L.running_var, "running_var", {L.num_features}, false);
        check_tensor(L.weight, "weight", {L.num_features}, true);
        check_tensor(L.bias, "bias", {L.num_features}, true);
        for (std::size_t k = 0; k < L.running_var.data.size(); ++k)
          if (L.running_var.data[k] < 0)
            fail(concat("running_var[", k, "] = ", L.running_var.data[k], ": must be >= 0"));
        S.output = in;
        break;
      }
      case LayerKind::leaky_relu:
        if (!std::isfinite(L.negative_slope))
          fail(concat("negative_slope = ", L.negative_slope, ": must be finite"));
        S.output = in;
        break;
      case LayerKind::elu:
        if (!(L.alpha > 0) || !std::isfinite(L.alpha))
          fail(concat("alpha = ", L.alpha, ": must be finite and > 0"));
        S.output = in;
        break;
      case LayerKind::hardtanh:
        if (!std::isfinite(L.min_val) || !std::isfinite(L.max_val) || !(L.min_val < L.max_val))
          fail(concat("min_val = ", L.min_val, ", max_val = ", L.max_val,
                      ": must be finite with min_val < max_val"));
        S.output = in;
        break;
      case LayerKind::maxpool2d:
      case LayerKind::avgpool2d: {
        require_image();
        const bool avg = L.kind == LayerKind::avgpool2d;
        check_pair(L.kernel_size, "kernel_size", 1);
        check_pair(L.stride, "stride", 1);
        check_pair(L.padding, "padding", 0);
        check_pair(L.dilation, "dilation", 1);
        if (avg && (L.dilation[0] != 1 || L.dilation[1] != 1))
          fail(concat("dilation = [", L.dilation[0], ", ", L.dilation[1],
                      "]: avgpool2d has no dilation (must be 1)"));
        Index ho = 0, wo = 0;
        for (int d = 0; d < 2; ++d) {
          if (2 * L.padding[d] > L.kernel_size[d])
            fail(concat("padding = ", L.padding[d], " must be at most half the kernel size ",
                        L.kernel_size[d]));
          Index o = pool_out(in.dims[1 + d], L.kernel_size[d], L.stride[d], L.padding[d],
                             L.dilation[d], L.ceil_mode);
          if (o < 1)
            fail(concat("output size ", o, " along ", d == 0 ? "H" : "W", " is < 1 for input ",
                        in.str()));
          (d == 0 ? ho : wo) = o;
        }
        S.output = Shape{{in.dims[0], ho, wo}};
        break;
      }
      case LayerKind::softmax:
      case LayerKind::log_softmax:
        if (in.dims.size() != 1)
          fail(concat("works over a feature vector, got ", in.str(), " (add a flatten layer)"));
        S.output = in;
        break;
      case LayerKind::global_avgpool:
        require_image();
        S.output = Shape{{in.dims[0], 1, 1}};
        break;
      case LayerKind::flatten:
        S.output = Shape{{in.size()}};
        break;
      case LayerKind::add:
        if (S.inputs[0] != S.inputs[1])
          fail(concat("inputs have different shapes ", S.inputs[0].str(), " and ",
                      S.inputs[1].str()));
        S.output = in;
        break;
      default:  // remaining element-wise activations, identity, dropout
        S.output = in;
        break;
    }
    double out_values = 1;  // in double: the product of unchecked dimensions may overflow
    for (Index d : S.output.dims) out_values *= double(d);
    if (out_values > double(kMaxValuesPerSample))
      fail(concat("output ", S.output.str(), " has more than ", kMaxValuesPerSample,
                  " values per sample (implausible; check padding and sizes)"));
    if (!L.weight.empty() && !(is_matrix(L.kind) || L.kind == LayerKind::batchnorm1d ||
                               L.kind == LayerKind::batchnorm2d))
      fail("has weights but its kind takes none");
  }

  for (int i = 0; i + 1 < n; ++i)
    if (!used[static_cast<std::size_t>(i)])
      core::throw_invalid(kTag, concat(src, "layer ", i, " '", net.layers[i].name,
                                       "': its output is never used (only the last layer's "
                                       "output may be unused)"));
  const Shape& out = shapes.back().output;
  if (check_output && (out.dims.size() != 1 || out.dims[0] != net.num_classes))
    core::throw_invalid(
        kTag, concat(src, "the last layer '", net.layers.back().name, "' outputs ", out.str(),
                     ", expected (", net.num_classes, ") = num_classes features"));
  return shapes;
}

std::vector<MatrixLayer> matrix_layers(const Network& net) {
  auto shapes = infer_shapes(net);
  std::vector<MatrixLayer> out;
  for (int i = 0; i < static_cast<int>(net.layers.size()); ++i) {
    const Layer& L = net.layers[static_cast<std::size_t>(i)];
    if (!is_matrix(L.kind)) continue;
    MatrixLayer m;
    m.matrix_index = static_cast<int>(out.size());
    m.layer_index = i;
    m.name = L.name;
    m.kind = L.kind;
    if (L.kind == LayerKind::linear) {
      m.rows = L.in_features;
      m.cols = L.out_features;
      m.groups = 1;
      // PyTorch stores [out, in]; the tile wants rows = inputs.
      MatrixF w(m.rows, m.cols);
      for (Index o = 0; o < m.cols; ++o)
        for (Index r = 0; r < m.rows; ++r) w(r, o) = L.weight.data[o * m.rows + r];
      m.weights.push_back(std::move(w));
    } else {
      const Index kh = L.kernel_size[0], kw = L.kernel_size[1];
      const Index cg = L.in_channels / L.groups, og = L.out_channels / L.groups;
      m.rows = cg * kh * kw;
      m.cols = og;
      m.groups = L.groups;
      m.kernel_h = kh;
      m.kernel_w = kw;
      const auto& od = shapes[static_cast<std::size_t>(i)].output.dims;
      m.positions = od[1] * od[2];
      for (Index g = 0; g < L.groups; ++g) {
        MatrixF w(m.rows, m.cols);
        // weight[g*og + o][c][ky][kx] -> row (c*kh + ky)*kw + kx: contiguous per output.
        for (Index o = 0; o < og; ++o) {
          const float* src = L.weight.data.data() + (g * og + o) * m.rows;
          for (Index r = 0; r < m.rows; ++r) w(r, o) = src[r];
        }
        m.weights.push_back(std::move(w));
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<mapping::LayerMatrix> layer_matrices(const Network& net) {
  net.validate();
  std::vector<mapping::LayerMatrix> out;
  for (const Layer& L : net.layers) {
    if (L.kind == LayerKind::linear)
      out.push_back(mapping::LayerMatrix::linear(L.name, L.in_features, L.out_features));
    else if (L.kind == LayerKind::conv2d)
      out.push_back(mapping::LayerMatrix::conv2d(L.name, L.in_channels, L.out_channels,
                                                 L.kernel_size[0], L.kernel_size[1], L.groups));
  }
  return out;
}

Index parameter_count(const Layer& L) {
  return static_cast<Index>(L.weight.data.size() + L.bias.data.size() + L.running_mean.data.size() +
                            L.running_var.data.size());
}

Index parameter_count(const Network& net) {
  Index n = 0;
  for (const auto& L : net.layers) n += parameter_count(L);
  return n;
}

std::string describe(const Network& net) {
  auto shapes = infer_shapes(net);
  std::ostringstream out;
  out << "model '" << net.name << "': input (" << net.input_shape[0] << ", " << net.input_shape[1]
      << ", " << net.input_shape[2] << "), " << net.num_classes << " classes\n";
  char line[256];
  std::snprintf(line, sizeof line, "%4s  %-24s %-15s %-10s %-16s %10s\n", "#", "name", "kind",
                "inputs", "output", "params");
  out << line;
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& L = net.layers[i];
    std::string ins;
    for (int j : net.layer_inputs(static_cast<int>(i)))
      ins += (ins.empty() ? "" : ",") + (j < 0 ? std::string("input") : std::to_string(j));
    std::string kind(kind_name(L.kind));
    if (L.activation != Activation::none) kind += "+" + std::string(activation_name(L.activation));
    std::snprintf(line, sizeof line, "%4zu  %-24s %-15s %-10s %-16s %10lld\n", i, L.name.c_str(),
                  kind.c_str(), ins.c_str(), shapes[i].output.str().c_str(),
                  static_cast<long long>(parameter_count(L)));
    out << line;
  }
  out << "total parameters: " << parameter_count(net) << "\n";
  return out.str();
}

}  // namespace pcmsim::nets
