// The network description's vocabulary: layer-kind, pad-mode and activation names, the small
// value types, and what follows from a valid network (its matrices, parameter counts, summary).
#include "nets/network.h"

#include <cstdio>
#include <sstream>

namespace pcmsim::nets {

namespace {

// An enumeration's names, {value, name} per enumerator, and the two look-ups every table needs.
template <class E>
struct NamedValue {
  E value;
  const char* name;
};

template <class E, std::size_t N>
std::string_view name_in(const NamedValue<E> (&table)[N], E value) {
  for (const auto& e : table)
    if (e.value == value) return e.name;
  return "?";
}

template <class E, std::size_t N>
std::optional<E> value_in(const NamedValue<E> (&table)[N], std::string_view name) {
  for (const auto& e : table)
    if (name == e.name) return e.value;
  return std::nullopt;
}

constexpr NamedValue<LayerKind> kKinds[] = {
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
    {LayerKind::conv1d, "conv1d"},
    {LayerKind::adaptive_avgpool2d, "adaptive_avgpool2d"},
    {LayerKind::pad, "pad"},
    {LayerKind::concat, "concat"},
    {LayerKind::layernorm, "layernorm"},
    {LayerKind::reshape, "reshape"},
    {LayerKind::transpose, "transpose"},
    {LayerKind::matmul, "matmul"},
    {LayerKind::scale, "scale"},
    {LayerKind::constant, "constant"},
    {LayerKind::embedding, "embedding"},
    {LayerKind::sub, "sub"},
    {LayerKind::mul, "mul"},
    {LayerKind::div, "div"},
    {LayerKind::sqrt, "sqrt"},
    {LayerKind::erf, "erf"},
    {LayerKind::pow, "pow"},
    {LayerKind::reduce_mean, "reduce_mean"},
};

constexpr NamedValue<PadMode> kPadModes[] = {
    {PadMode::constant, "constant"}, {PadMode::reflect, "reflect"}, {PadMode::replicate, "replicate"}};

constexpr NamedValue<Activation> kActs[] = {
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

}  // namespace

std::string_view kind_name(LayerKind kind) { return name_in(kKinds, kind); }

std::optional<LayerKind> parse_kind(std::string_view name) { return value_in(kKinds, name); }

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

bool is_matrix(LayerKind k) {
  return k == LayerKind::linear || k == LayerKind::conv2d || k == LayerKind::conv1d;
}

bool is_binary(LayerKind k) {
  return k == LayerKind::add || k == LayerKind::sub || k == LayerKind::mul || k == LayerKind::div;
}

std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  const Index r = std::max(a.rank(), b.rank());
  Shape out;
  out.dims.assign(static_cast<std::size_t>(r), 1);
  for (Index d = 0; d < r; ++d) {
    const Index da = d - (r - a.rank()) >= 0 ? a.dims[d - (r - a.rank())] : 1;
    const Index db = d - (r - b.rank()) >= 0 ? b.dims[d - (r - b.rank())] : 1;
    if (da != db && da != 1 && db != 1) return std::nullopt;
    out.dims[d] = da == 1 ? db : da;
  }
  return out;
}

std::string_view pad_mode_name(PadMode m) { return name_in(kPadModes, m); }

std::optional<PadMode> parse_pad_mode(std::string_view name) { return value_in(kPadModes, name); }

std::string_view activation_name(Activation a) { return name_in(kActs, a); }

std::optional<Activation> parse_activation(std::string_view name) {
  return value_in(kActs, name);
}

Index Tensor::numel() const {
  Index n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::vector<Index> row_major_strides(const std::vector<Index>& dims) {
  std::vector<Index> stride(dims.size(), 1);
  for (std::size_t d = dims.size(); d-- > 1;) stride[d - 1] = stride[d] * dims[d];
  return stride;
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
  if (!l.inputs.empty() || l.kind == LayerKind::constant) return l.inputs;
  return {i == 0 ? kNetworkInput : i - 1};
}

int Network::find_layer(std::string_view n) const {
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name == n) return static_cast<int>(i);
  return -1;
}

void Network::validate() const { (void)infer_shapes(*this); }

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
    m.learned_input_range = L.learned_input_range;
    if (L.kind == LayerKind::linear) {
      m.rows = L.in_features;
      m.cols = L.out_features;
      m.groups = 1;
      m.positions = shapes[static_cast<std::size_t>(i)].output.size() / L.out_features;
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
      // conv1d's weight [out, in/g, k] has the memory layout of [out, in/g, 1, k].
      const auto& od = shapes[static_cast<std::size_t>(i)].output.dims;
      m.positions = L.kind == LayerKind::conv1d ? od[1] : od[1] * od[2];
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
    else if (L.kind == LayerKind::conv2d || L.kind == LayerKind::conv1d)
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