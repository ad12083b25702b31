// ONNX import: operators on activations become layers, one or a few per node; axis 0 is the
// batch axis, so an operator that would mix samples is refused.
#include "nets/onnx_importer.h"

#ifdef PCMSIM_HAVE_ONNX

#include <algorithm>
#include <cmath>

namespace pcmsim::nets::onnx_detail {

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

namespace {

Shape output_shape(const Network& net, int layer) {
  return infer_shapes(net, false)[static_cast<std::size_t>(layer)].output;
}

}  // namespace

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

}  // namespace pcmsim::nets::onnx_detail

#endif  // PCMSIM_HAVE_ONNX
