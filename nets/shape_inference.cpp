// infer_shapes(): propagates the per-sample shapes through a Network and checks every layer's
// parameters on the way, so that loading, importing and running can trust a validated network.
#include "nets/network.h"

#include <cmath>
#include <unordered_map>

#include "core/error.h"

namespace pcmsim::nets {

using core::concat;

namespace {

constexpr const char* kTag = "nets::Network";
// Bounds that keep all shape arithmetic far from overflow and reject absurd files early.
constexpr Index kMaxDim = Index(1) << 24;
constexpr Index kMaxValuesPerSample = Index(1) << 28;

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
    if (L.kind == LayerKind::concat) {
      if (ins.size() < 2) fail(concat("has ", ins.size(), " inputs, expected at least 2"));
    } else {
      const std::size_t arity = is_binary(L.kind) || L.kind == LayerKind::matmul ? 2
                                : L.kind == LayerKind::constant                          ? 0
                                                                                         : 1;
      if (ins.size() != arity) fail(concat("has ", ins.size(), " inputs, expected ", arity));
    }
    LayerShapes& S = shapes[static_cast<std::size_t>(i)];
    for (int j : ins) {
      if (j != kNetworkInput && (j < 0 || j >= i))
        fail(concat("input ", j, " is not an earlier layer (only layers 0..", i - 1,
                    " or the network input may feed it)"));
      if (j != kNetworkInput) used[static_cast<std::size_t>(j)] = true;
      S.inputs.push_back(j == kNetworkInput ? input : shapes[static_cast<std::size_t>(j)].output);
    }
    const Shape none_shape;
    const Shape& in = S.inputs.empty() ? none_shape : S.inputs[0];
    // A per-sample axis: negative counts from the end.
    auto norm_axis = [&](Index a, Index rank, const char* what) {
      const Index r = a < 0 ? a + rank : a;
      if (r < 0 || r >= rank)
        fail(concat(what, " = ", a, ": out of range for the per-sample input ", in.str(),
                    " (axes 0..", rank - 1, " or -", rank, "..-1; the batch axis is not counted)"));
      return r;
    };

    if (L.activation != Activation::none &&
        !(is_matrix(L.kind) || L.kind == LayerKind::batchnorm1d ||
          L.kind == LayerKind::batchnorm2d || L.kind == LayerKind::add))
      fail(concat("a fused activation ('", activation_name(L.activation),
                  "') is only allowed on linear, conv1d, conv2d, batchnorm and add"));
    if (!parse_activation(activation_name(L.activation))) fail("unknown fused activation");
    if (!(L.learned_input_range >= 0) || !std::isfinite(L.learned_input_range))
      fail(concat("learned_input_range = ", L.learned_input_range, ": must be finite and >= 0"));
    if (L.learned_input_range > 0 && !is_matrix(L.kind))
      fail(concat("learned_input_range = ", L.learned_input_range,
                  ": only linear, conv1d and conv2d layers have an input range"));

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
    // What conv1d and conv2d share: channel counts, groups, the window pairs, the input's channels.
    auto check_conv_channels_and_window = [&] {
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
        fail(concat("in_channels = ", L.in_channels, " but its input ", in.str(), " has ",
                    in.dims[0], " channels"));
    };

    switch (L.kind) {
      case LayerKind::linear: {
        check_count(L.in_features, "in_features");
        check_count(L.out_features, "out_features");
        // Over the last axis, as PyTorch's Linear: (F) -> (out), (T, F) -> (T, out).
        if (in.dims.empty()) fail("has no input");
        if (in.dims.back() != L.in_features)
          fail(concat("in_features = ", L.in_features, " but its input ", in.str(), " has ",
                      in.dims.back(), " features along its last axis",
                      in.rank() > 1 ? " (add a flatten layer to use all of them)" : ""));
        check_tensor(L.weight, "weight", {L.out_features, L.in_features}, false);
        check_tensor(L.bias, "bias", {L.out_features}, true);
        S.output = in;
        S.output.dims.back() = L.out_features;
        break;
      }
      case LayerKind::conv1d: {
        if (in.rank() != 2) fail(concat("needs a (C, L) input, got ", in.str()));
        // Held as a conv2d of one row: the first entries of the pairs must be neutral.
        if (L.kernel_size[0] != 1 || L.stride[0] != 1 || L.padding[0] != 0 || L.dilation[0] != 1)
          fail("kernel_size/stride/padding/dilation must be [1, k]/[1, s]/[0, p]/[1, d]");
        check_conv_channels_and_window();
        const Index ext = in.dims[1] + 2 * L.padding[1];
        const Index span = L.dilation[1] * (L.kernel_size[1] - 1) + 1;
        if (span > ext)
          fail(concat("kernel (dilated extent ", span, ") is larger than the padded input (", ext,
                      "); input ", in.str()));
        check_tensor(L.weight, "weight",
                     {L.out_channels, L.in_channels / L.groups, L.kernel_size[1]}, false);
        check_tensor(L.bias, "bias", {L.out_channels}, true);
        S.output = Shape{{L.out_channels, conv_out(in.dims[1], L.kernel_size[1], L.stride[1],
                                                   L.padding[1], L.dilation[1])}};
        break;
      }
      case LayerKind::adaptive_avgpool2d:
        require_image();
        check_pair(L.output_size, "output_size", 1);
        S.output = Shape{{in.dims[0], L.output_size[0], L.output_size[1]}};
        break;
      case LayerKind::pad: {
        const Index k = static_cast<Index>(L.pads.size()) / 2;
        if (L.pads.empty() || L.pads.size() % 2 || k > in.rank())
          fail(concat("pads has ", L.pads.size(), " values: expected 2 per padded trailing axis ",
                      "(at most ", 2 * in.rank(), " for the input ", in.str(), ")"));
        if (!std::isfinite(L.pad_value))
          fail(concat("value = ", L.pad_value, ": must be finite"));
        S.output = in;
        for (Index a = 0; a < k; ++a) {
          const Index axis = in.rank() - k + a, before = L.pads[2 * a], after = L.pads[2 * a + 1];
          if (before < 0 || after < 0 || before > kMaxDim || after > kMaxDim)
            fail(concat("pads [", before, ", ", after, "] of axis ", axis, ": must be in [0, ",
                        kMaxDim, "]"));
          if (L.pad_mode == PadMode::reflect && (before >= in.dims[axis] || after >= in.dims[axis]))
            fail(concat("reflect padding [", before, ", ", after, "] of axis ", axis,
                        " must be smaller than its size ", in.dims[axis]));
          S.output.dims[axis] += before + after;
        }
        break;
      }
      case LayerKind::concat: {
        const Index ax = norm_axis(L.axis, in.rank(), "axis");
        S.output = in;
        for (std::size_t k = 1; k < S.inputs.size(); ++k) {
          const Shape& o = S.inputs[k];
          bool ok = o.rank() == in.rank();
          for (Index d = 0; ok && d < in.rank(); ++d) ok = d == ax || o.dims[d] == in.dims[d];
          if (!ok)
            fail(concat("input ", k, " has shape ", o.str(), ", which does not match ", in.str(),
                        " outside axis ", ax));
          S.output.dims[ax] += o.dims[ax];
        }
        break;
      }
      case LayerKind::layernorm: {
        const Index k = static_cast<Index>(L.shape.size());
        bool ok = k >= 1 && k <= in.rank();
        for (Index d = 0; ok && d < k; ++d) ok = L.shape[d] == in.dims[in.rank() - k + d];
        if (!ok)
          fail(concat("normalized_shape ", Shape{L.shape}.str(),
                      " must equal the trailing dimensions of its input ", in.str()));
        if (!(L.eps > 0) || !std::isfinite(L.eps))
          fail(concat("eps = ", L.eps, ": must be finite and > 0"));
        check_tensor(L.weight, "weight", L.shape, true);
        check_tensor(L.bias, "bias", L.shape, true);
        S.output = in;
        break;
      }
      case LayerKind::reshape: {
        Index known = 1, infer = -1;
        if (L.shape.empty()) fail("shape is empty");
        for (std::size_t d = 0; d < L.shape.size(); ++d) {
          if (L.shape[d] == -1 && infer < 0) {
            infer = static_cast<Index>(d);
          } else if (L.shape[d] < 1 || L.shape[d] > kMaxValuesPerSample) {
            fail(concat("shape ", Shape{L.shape}.str(), ": entries must be >= 1, one may be -1"));
          } else {
            known *= L.shape[d];
            if (known > kMaxValuesPerSample) fail(concat("shape ", Shape{L.shape}.str(), " too large"));
          }
        }
        S.output = Shape{L.shape};
        if (infer >= 0) {
          if (in.size() % known)
            fail(concat("shape ", Shape{L.shape}.str(), " does not fit the input ", in.str()));
          S.output.dims[infer] = in.size() / known;
        }
        if (S.output.size() != in.size())
          fail(concat("shape ", Shape{L.shape}.str(), " holds ", S.output.size(),
                      " values, its input ", in.str(), " holds ", in.size()));
        break;
      }
      case LayerKind::transpose: {
        std::vector<bool> seen(static_cast<std::size_t>(in.rank()), false);
        bool ok = static_cast<Index>(L.perm.size()) == in.rank();
        for (std::size_t d = 0; ok && d < L.perm.size(); ++d) {
          ok = L.perm[d] >= 0 && L.perm[d] < in.rank() && !seen[L.perm[d]];
          if (ok) seen[L.perm[d]] = true;
        }
        if (!ok)
          fail(concat("perm ", Shape{L.perm}.str(), " is not a permutation of the ", in.rank(),
                      " per-sample axes of its input ", in.str()));
        S.output = in;
        for (std::size_t d = 0; d < L.perm.size(); ++d) S.output.dims[d] = in.dims[L.perm[d]];
        break;
      }
      case LayerKind::matmul: {
        const Shape& b = S.inputs[1];
        bool ok = in.rank() >= 2 && b.rank() == in.rank() && in.dims.back() == b.dims[b.rank() - 2];
        for (Index d = 0; ok && d + 2 < in.rank(); ++d) ok = in.dims[d] == b.dims[d];
        if (!ok)
          fail(concat("cannot multiply ", in.str(), " by ", b.str(),
                      " (expected (..., n, k) x (..., k, m) with equal leading axes)"));
        S.output = in;
        S.output.dims.back() = b.dims.back();
        break;
      }
      case LayerKind::scale:
        if (!std::isfinite(L.scale) || !std::isfinite(L.shift))
          fail(concat("scale = ", L.scale, ", shift = ", L.shift, ": must be finite"));
        S.output = in;
        break;
      case LayerKind::constant:
        if (L.weight.empty()) fail("weight (the constant's value) is missing");
        for (Index d : L.weight.shape) check_count(d, "weight dimension");
        check_tensor(L.weight, "weight", L.weight.shape, false);
        S.output = Shape{L.weight.shape};
        break;
      case LayerKind::embedding:
        check_count(L.num_embeddings, "num_embeddings");
        check_count(L.embedding_dim, "embedding_dim");
        check_tensor(L.weight, "weight", {L.num_embeddings, L.embedding_dim}, false);
        S.output = in;
        S.output.dims.push_back(L.embedding_dim);
        break;
      case LayerKind::conv2d: {
        require_image();
        check_conv_channels_and_window();
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
        (void)norm_axis(L.axis, in.rank(), "axis");
        S.output = in;
        break;
      case LayerKind::global_avgpool:
        require_image();
        S.output = Shape{{in.dims[0], 1, 1}};
        break;
      case LayerKind::flatten: {
        const Index a = norm_axis(L.start_dim, in.rank(), "start_dim");
        const Index b = norm_axis(L.end_dim, in.rank(), "end_dim");
        if (a > b) fail(concat("start_dim = ", L.start_dim, " comes after end_dim = ", L.end_dim));
        S.output.dims.assign(in.dims.begin(), in.dims.begin() + a);
        Index merged = 1;
        for (Index d = a; d <= b; ++d) merged *= in.dims[d];
        S.output.dims.push_back(merged);
        S.output.dims.insert(S.output.dims.end(), in.dims.begin() + b + 1, in.dims.end());
        break;
      }
      case LayerKind::add:
      case LayerKind::sub:
      case LayerKind::mul:
      case LayerKind::div: {
        auto b = broadcast_shapes(S.inputs[0], S.inputs[1]);
        if (!b)
          fail(concat("inputs have shapes ", S.inputs[0].str(), " and ", S.inputs[1].str(),
                      ", which do not broadcast (equal, or 1, per trailing axis)"));
        S.output = *b;
        break;
      }
      case LayerKind::pow:
        if (!std::isfinite(L.exponent)) fail(concat("exponent = ", L.exponent, ": must be finite"));
        S.output = in;
        break;
      case LayerKind::reduce_mean: {
        if (L.axes.empty()) fail("axes is empty");
        std::vector<bool> reduce(static_cast<std::size_t>(in.rank()), false);
        for (Index a : L.axes) {
          const Index r = norm_axis(a, in.rank(), "axes entry");
          if (reduce[r]) fail(concat("axis ", a, " is listed twice"));
          reduce[r] = true;
        }
        for (Index d = 0; d < in.rank(); ++d)
          if (!reduce[d])
            S.output.dims.push_back(in.dims[d]);
          else if (L.keepdims)
            S.output.dims.push_back(1);
        if (S.output.dims.empty()) S.output.dims.push_back(1);  // a per-sample scalar: (1)
        break;
      }
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
                               L.kind == LayerKind::batchnorm2d || L.kind == LayerKind::layernorm ||
                               L.kind == LayerKind::constant || L.kind == LayerKind::embedding))
      fail("has weights but its kind takes none");
  }

  for (int i = 0; check_output && i + 1 < n; ++i)
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

}  // namespace pcmsim::nets
