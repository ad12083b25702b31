#include "nets/forward.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace pcmsim::nets {

using core::concat;

namespace {

constexpr const char* kTag = "nets::forward";

// Element-wise activation of one value; `L` gives the parameters of parametrised kinds.
inline float activate(LayerKind kind, const Layer& L, float x) {
  switch (kind) {
    case LayerKind::relu:
      return x < 0.f ? 0.f : x;
    case LayerKind::relu6:
      return std::min(std::max(x, 0.f), 6.f);
    case LayerKind::leaky_relu:
      return x >= 0.f ? x : x * static_cast<float>(L.negative_slope);
    case LayerKind::sigmoid:
      return 1.f / (1.f + std::exp(-x));
    case LayerKind::tanh:
      return std::tanh(x);
    case LayerKind::gelu:
      if (L.gelu_tanh) {
        const float k = 0.7978845608028654f;  // sqrt(2/pi)
        return 0.5f * x * (1.f + std::tanh(k * (x + 0.044715f * x * x * x)));
      }
      return 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f));
    case LayerKind::silu:
      return x / (1.f + std::exp(-x));
    case LayerKind::elu:
      return x > 0.f ? x : static_cast<float>(L.alpha) * std::expm1(x);
    case LayerKind::hardtanh:
      return std::min(std::max(x, static_cast<float>(L.min_val)), static_cast<float>(L.max_val));
    case LayerKind::hardswish:
      return x * std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f;
    case LayerKind::hardsigmoid:
      return std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f;
    default:
      return x;
  }
}

LayerKind kind_of(Activation a) {
  switch (a) {
    case Activation::relu:
      return LayerKind::relu;
    case Activation::relu6:
      return LayerKind::relu6;
    case Activation::sigmoid:
      return LayerKind::sigmoid;
    case Activation::tanh:
      return LayerKind::tanh;
    case Activation::gelu:
      return LayerKind::gelu;
    case Activation::silu:
      return LayerKind::silu;
    case Activation::hardswish:
      return LayerKind::hardswish;
    case Activation::hardsigmoid:
      return LayerKind::hardsigmoid;
    default:
      return LayerKind::identity;
  }
}

// Activations live in position-major (NHWC) matrices inside forward(): an image tensor of a
// batch is (B*H*W) x C (row = sample, then pixel; column = channel), a feature vector B x F.
// The conv GEMM produces exactly this layout (no transposes), and per-channel operations (bias,
// BN) and pooling work on contiguous channel vectors, which the compiler vectorises.
struct Act {
  MatrixF m;
  bool image = false;
  Index H = 1, W = 1;  // image only
};

// Rows per OpenMP work block for element-wise work: fixed, so the split never depends on the
// thread count (each element is computed by the same operations anyway).
constexpr Index kRowBlock = 64;
// Below this many values a parallel region costs more than it saves.
constexpr Index kParallelMin = 32768;

template <class F>
void for_row_blocks(Index rows, Index cols, F f) {
  const Index blocks = (rows + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMin && blocks > 1)
  for (Index b = 0; b < blocks; ++b) f(b * kRowBlock, std::min(kRowBlock, rows - b * kRowBlock));
}

template <class F>
void map_inplace(MatrixF& m, F f) {
  const Index cols = m.cols();
  for_row_blocks(m.rows(), cols, [&](Index r0, Index n) {
    float* p = m.data() + r0 * cols;
    const Index len = n * cols;
    for (Index i = 0; i < len; ++i) p[i] = f(p[i]);
  });
}

void apply_elementwise(MatrixF& m, LayerKind kind, const Layer& L) {
  switch (kind) {  // one loop per kind so that the simple ones vectorise
    case LayerKind::relu:
      return map_inplace(m, [](float x) { return x < 0.f ? 0.f : x; });
    case LayerKind::relu6:
      return map_inplace(m, [](float x) { return std::min(std::max(x, 0.f), 6.f); });
    case LayerKind::hardtanh: {
      const float lo = static_cast<float>(L.min_val), hi = static_cast<float>(L.max_val);
      return map_inplace(m, [lo, hi](float x) { return std::min(std::max(x, lo), hi); });
    }
    case LayerKind::leaky_relu: {
      const float s = static_cast<float>(L.negative_slope);
      return map_inplace(m, [s](float x) { return x >= 0.f ? x : x * s; });
    }
    case LayerKind::hardswish:
      return map_inplace(m,
                         [](float x) { return x * std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f; });
    case LayerKind::hardsigmoid:
      return map_inplace(m, [](float x) { return std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f; });
    case LayerKind::identity:
    case LayerKind::dropout:
    case LayerKind::flatten:
      return;
    default:
      return map_inplace(m, [&L, kind](float x) { return activate(kind, L, x); });
  }
}

void apply_fused(MatrixF& m, const Layer& L) {
  if (L.activation == Activation::none) return;
  Layer plain;  // the fused activations take no parameters; gelu is the exact one
  apply_elementwise(m, kind_of(L.activation), plain);
}

// y(r, c) = y(r, c) * scale[c] + shift[c] (scale empty: + shift[c]); channels are columns.
void channel_affine(MatrixF& y, const std::vector<float>& scale, const std::vector<float>& shift) {
  const Index C = y.cols();
  for_row_blocks(y.rows(), C, [&](Index r0, Index n) {
    for (Index r = r0; r < r0 + n; ++r) {
      float* p = y.data() + r * C;
      if (scale.empty())
        for (Index c = 0; c < C; ++c) p[c] += shift[static_cast<std::size_t>(c)];
      else
        for (Index c = 0; c < C; ++c)
          p[c] = p[c] * scale[static_cast<std::size_t>(c)] + shift[static_cast<std::size_t>(c)];
    }
  });
}

Act run_conv(const Layer& L, const Shape& in_shape, const Shape& out_shape, const Act& x, Index B,
             int matrix_index, MatmulProvider& provider) {
  const Index C = in_shape.dims[0], H = in_shape.dims[1], W = in_shape.dims[2];
  const Index O = out_shape.dims[0], Ho = out_shape.dims[1], Wo = out_shape.dims[2];
  const Index P = Ho * Wo, rows_total = B * P;
  const Index kh = L.kernel_size[0], kw = L.kernel_size[1];
  const Index sh = L.stride[0], sw = L.stride[1], ph = L.padding[0], pw = L.padding[1];
  const Index dh = L.dilation[0], dw = L.dilation[1];
  const Index G = L.groups, Cg = C / G, Og = O / G, kk = kh * kw, rows = Cg * kk;

  Act y;
  y.image = true;
  y.H = Ho;
  y.W = Wo;
  y.m.resize(rows_total, O);
  MatrixF col(rows_total, rows);  // im2col (uninitialised; every entry is written below)
  MatrixF yg;
  const float* src = x.m.data();
  for (Index g = 0; g < G; ++g) {
    // im2col: row (n, oh, ow); column (c, ky, kx) as the tiles hold the weights; zero padding.
    // One work block per output row (oh) of one sample.
    const Index blocks = B * Ho;
#pragma omp parallel for schedule(static) if (rows_total * rows >= kParallelMin)
    for (Index blk = 0; blk < blocks; ++blk) {
      const Index n = blk / Ho, oh = blk % Ho;
      const float* img = src + n * H * W * C + g * Cg;  // (ih, iw, c) at (ih*W + iw)*C + c
      for (Index ow = 0; ow < Wo; ++ow) {
        float* dst = col.data() + ((n * Ho + oh) * Wo + ow) * rows;
        const Index ih0 = oh * sh - ph, iw0 = ow * sw - pw;
        const bool inside =
            ih0 >= 0 && ih0 + (kh - 1) * dh < H && iw0 >= 0 && iw0 + (kw - 1) * dw < W;
        if (!inside) std::fill(dst, dst + rows, 0.f);
        // Per kernel tap, the Cg channels are contiguous in the source (position-major) and
        // kh*kw apart in the patch: a long, simple inner loop.
        for (Index ky = 0; ky < kh; ++ky) {
          const Index ih = ih0 + ky * dh;
          if (!inside && (ih < 0 || ih >= H)) continue;
          for (Index kx = 0; kx < kw; ++kx) {
            const Index iw = iw0 + kx * dw;
            if (!inside && (iw < 0 || iw >= W)) continue;
            const float* s = img + (ih * W + iw) * C;
            float* d = dst + ky * kw + kx;
            for (Index c = 0; c < Cg; ++c) d[c * kk] = s[c];
          }
        }
      }
    }
    MatrixF& target = G == 1 ? y.m : yg;
    target.resize(rows_total, Og);
    provider.matmul(matrix_index, static_cast<int>(g), col, target);
    if (target.rows() != rows_total || target.cols() != Og)
      core::throw_invalid(
          kTag, concat("layer '", L.name, "': the matmul provider returned ", target.rows(), "x",
                       target.cols(), ", expected ", rows_total, "x", Og));
    if (G > 1) y.m.middleCols(g * Og, Og) = yg;
  }
  if (!L.bias.empty()) channel_affine(y.m, {}, L.bias.data);
  return y;
}

Act run_linear(const Layer& L, const Act& x, int matrix_index, MatmulProvider& provider) {
  const Index B = x.m.rows();
  Act y;
  y.m.resize(B, L.out_features);
  provider.matmul(matrix_index, 0, x.m, y.m);
  if (y.m.rows() != B || y.m.cols() != L.out_features)
    core::throw_invalid(
        kTag, concat("layer '", L.name, "': the matmul provider returned ", y.m.rows(), "x",
                     y.m.cols(), ", expected ", B, "x", L.out_features));
  if (!L.bias.empty()) channel_affine(y.m, {}, L.bias.data);
  return y;
}

Act run_batchnorm(const Layer& L, const Act& x) {
  const Index C = L.num_features;
  // Eval mode: y = (x - mean) / sqrt(var + eps) * gamma + beta = x * scale + shift,
  // scale and shift computed in double then rounded once.
  std::vector<float> scale(static_cast<std::size_t>(C)), shift(static_cast<std::size_t>(C));
  for (Index c = 0; c < C; ++c) {
    const double gamma = L.weight.empty() ? 1.0 : L.weight.data[c];
    const double beta = L.bias.empty() ? 0.0 : L.bias.data[c];
    const double s = gamma / std::sqrt(static_cast<double>(L.running_var.data[c]) + L.eps);
    scale[c] = static_cast<float>(s);
    shift[c] = static_cast<float>(beta - L.running_mean.data[c] * s);
  }
  Act y = x;
  channel_affine(y.m, scale, shift);
  return y;
}

Act run_pool(const Layer& L, const Shape& in_shape, const Shape& out_shape, const Act& x, Index B) {
  const Index C = in_shape.dims[0], H = in_shape.dims[1], W = in_shape.dims[2];
  const Index Ho = out_shape.dims[1], Wo = out_shape.dims[2];
  const Index kh = L.kernel_size[0], kw = L.kernel_size[1];
  const Index sh = L.stride[0], sw = L.stride[1], ph = L.padding[0], pw = L.padding[1];
  const Index dh = L.dilation[0], dw = L.dilation[1];
  const bool is_max = L.kind == LayerKind::maxpool2d;
  Act y;
  y.image = true;
  y.H = Ho;
  y.W = Wo;
  y.m.resize(B * Ho * Wo, C);
  const Index blocks = B * Ho;
#pragma omp parallel for schedule(static) if (B * Ho * Wo * C * kh * kw >= kParallelMin)
  for (Index blk = 0; blk < blocks; ++blk) {
    const Index n = blk / Ho, oh = blk % Ho;
    const float* img = x.m.data() + n * H * W * C;
    for (Index ow = 0; ow < Wo; ++ow) {
      float* dst = y.m.data() + ((n * Ho + oh) * Wo + ow) * C;
      if (is_max) {
        // Padding is -inf (never selected); NaN propagates as in PyTorch.
        for (Index c = 0; c < C; ++c) dst[c] = -std::numeric_limits<float>::infinity();
        for (Index ky = 0; ky < kh; ++ky) {
          const Index ih = oh * sh - ph + ky * dh;
          if (ih < 0 || ih >= H) continue;
          for (Index kx = 0; kx < kw; ++kx) {
            const Index iw = ow * sw - pw + kx * dw;
            if (iw < 0 || iw >= W) continue;
            const float* s = img + (ih * W + iw) * C;
            for (Index c = 0; c < C; ++c)
              dst[c] = (s[c] > dst[c] || std::isnan(s[c])) ? s[c] : dst[c];
          }
        }
      } else {
        // PyTorch's avg_pool2d: the divisor counts padding (count_include_pad) but never the
        // part of a ceil_mode window beyond the padded input.
        Index h0 = oh * sh - ph, w0 = ow * sw - pw;
        Index h1 = std::min(h0 + kh, H + ph), w1 = std::min(w0 + kw, W + pw);
        const Index pool = (h1 - h0) * (w1 - w0);
        h0 = std::max<Index>(h0, 0);
        w0 = std::max<Index>(w0, 0);
        h1 = std::min(h1, H);
        w1 = std::min(w1, W);
        for (Index c = 0; c < C; ++c) dst[c] = 0.f;
        for (Index ih = h0; ih < h1; ++ih)
          for (Index iw = w0; iw < w1; ++iw) {
            const float* s = img + (ih * W + iw) * C;
            for (Index c = 0; c < C; ++c) dst[c] += s[c];
          }
        const Index div = L.count_include_pad ? pool : (h1 - h0) * (w1 - w0);
        const float d = div > 0 ? static_cast<float>(div) : 1.f;
        for (Index c = 0; c < C; ++c) dst[c] /= d;
      }
    }
  }
  return y;
}

// Softmax or log-softmax of each row (the features of one sample), max-subtracted as PyTorch.
void run_softmax(MatrixF& m, bool log) {
  const Index C = m.cols();
  for_row_blocks(m.rows(), C, [&](Index r0, Index n) {
    for (Index r = r0; r < r0 + n; ++r) {
      float* p = m.data() + r * C;
      float mx = p[0];
      for (Index c = 1; c < C; ++c) mx = std::max(mx, p[c]);
      float sum = 0.f;
      for (Index c = 0; c < C; ++c) sum += std::exp(p[c] - mx);
      if (log) {
        const float lse = std::log(sum);
        for (Index c = 0; c < C; ++c) p[c] = p[c] - mx - lse;
      } else {
        for (Index c = 0; c < C; ++c) p[c] = std::exp(p[c] - mx) / sum;
      }
    }
  });
}

Act run_global_avgpool(const Act& x, Index B) {
  const Index C = x.m.cols(), P = x.H * x.W;
  Act y;
  y.image = true;  // (C, 1, 1)
  y.m.resize(B, C);
#pragma omp parallel for schedule(static) if (B * C * P >= kParallelMin)
  for (Index n = 0; n < B; ++n) {
    float* dst = y.m.data() + n * C;
    for (Index c = 0; c < C; ++c) dst[c] = 0.f;
    for (Index p = 0; p < P; ++p) {
      const float* s = x.m.data() + (n * P + p) * C;
      for (Index c = 0; c < C; ++c) dst[c] += s[c];
    }
    for (Index c = 0; c < C; ++c) dst[c] /= static_cast<float>(P);
  }
  return y;
}

// Image (B*P x C, position-major) -> features (B x C*P in PyTorch's C order).
Act flatten(const Act& x, Index B) {
  if (!x.image) return x;
  const Index C = x.m.cols(), P = x.H * x.W;
  Act y;
  y.m.resize(B, C * P);
  if (P == 1 || C == 1) {
    y.m = Eigen::Map<const MatrixF>(x.m.data(), B, C * P);  // same order
    return y;
  }
#pragma omp parallel for schedule(static) if (B * C * P >= kParallelMin)
  for (Index n = 0; n < B; ++n)
    for (Index p = 0; p < P; ++p)
      for (Index c = 0; c < C; ++c) y.m(n, c * P + p) = x.m(n * P + p, c);
  return y;
}

// Network input (B x C*H*W, C order) -> position-major image.
Act from_chw(const Eigen::Ref<const MatrixF>& images, Index C, Index H, Index W) {
  const Index B = images.rows(), P = H * W;
  Act a;
  a.image = true;
  a.H = H;
  a.W = W;
  a.m.resize(B * P, C);
  if (C == 1) {
    for (Index n = 0; n < B; ++n)
      std::copy(images.row(n).data(), images.row(n).data() + P, a.m.data() + n * P);
    return a;
  }
#pragma omp parallel for schedule(static) if (B * C * P >= kParallelMin)
  for (Index n = 0; n < B; ++n)
    for (Index c = 0; c < C; ++c)
      for (Index p = 0; p < P; ++p) a.m(n * P + p, c) = images(n, c * P + p);
  return a;
}

}  // namespace

// ------------------------------------------------------------------------------ Fp32Matmul

Fp32Matmul::Fp32Matmul(const Network& net) : layers_(matrix_layers(net)) {}

void Fp32Matmul::matmul(int mi, int group, const Eigen::Ref<const MatrixF>& x, MatrixF& y) {
  if (mi < 0 || mi >= static_cast<int>(layers_.size()))
    core::throw_invalid("nets::Fp32Matmul",
                        concat("matrix layer index ", mi, " out of [0, ", layers_.size(), ")"));
  const MatrixLayer& m = layers_[static_cast<std::size_t>(mi)];
  if (group < 0 || group >= static_cast<int>(m.groups))
    core::throw_invalid("nets::Fp32Matmul", concat("layer '", m.name, "': group ", group,
                                                   " out of [0, ", m.groups, ")"));
  if (x.cols() != m.rows)
    core::throw_invalid("nets::Fp32Matmul", concat("layer '", m.name, "': input has ", x.cols(),
                                                   " columns, expected ", m.rows));
  const MatrixF& W = m.weights[static_cast<std::size_t>(group)];
  const Index P = x.rows();
  y.resize(P, m.cols);
  const Index blocks = (P + kPositionBlock - 1) / kPositionBlock;
  // Fixed blocks of positions: each row of y is computed the same way whatever the thread count.
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (Index b = 0; b < blocks; ++b) {
    const Index r0 = b * kPositionBlock, len = std::min(kPositionBlock, P - r0);
    y.middleRows(r0, len).noalias() = x.middleRows(r0, len) * W;
  }
}

// ------------------------------------------------------------------------------ forward

MatrixF forward(const Network& net, const Eigen::Ref<const MatrixF>& images,
                MatmulProvider& provider, Index first_sample) {
  const std::vector<LayerShapes> shapes = infer_shapes(net);
  if (images.cols() != net.input_size())
    core::throw_invalid(
        kTag, concat("images have ", images.cols(), " values per sample, the model '", net.name,
                     "' expects C*H*W = ", net.input_size()));
  const Index B = images.rows();
  const int n = static_cast<int>(net.layers.size());
  if (B == 0) return MatrixF(0, net.num_classes);
  provider.begin_batch(first_sample, B);

  // Free each intermediate output after its last use.
  std::vector<int> last_use(static_cast<std::size_t>(n), -1);
  for (int i = 0; i < n; ++i)
    for (int j : net.layer_inputs(i))
      if (j >= 0) last_use[static_cast<std::size_t>(j)] = i;
  const Act input = from_chw(images, net.input_shape[0], net.input_shape[1], net.input_shape[2]);
  std::vector<Act> outs(static_cast<std::size_t>(n));
  auto act_of = [&](int j) -> const Act& {
    return j == kNetworkInput ? input : outs[static_cast<std::size_t>(j)];
  };

  int matrix_index = 0;
  for (int i = 0; i < n; ++i) {
    const Layer& L = net.layers[static_cast<std::size_t>(i)];
    const LayerShapes& S = shapes[static_cast<std::size_t>(i)];
    const std::vector<int> ins = net.layer_inputs(i);
    const Act& x = act_of(ins[0]);
    Act y;
    switch (L.kind) {
      case LayerKind::linear:
        y = run_linear(L, x, matrix_index++, provider);
        break;
      case LayerKind::conv2d:
        y = run_conv(L, S.inputs[0], S.output, x, B, matrix_index++, provider);
        break;
      case LayerKind::batchnorm1d:
      case LayerKind::batchnorm2d:
        y = run_batchnorm(L, x);
        break;
      case LayerKind::maxpool2d:
      case LayerKind::avgpool2d:
        y = run_pool(L, S.inputs[0], S.output, x, B);
        break;
      case LayerKind::global_avgpool:
        y = run_global_avgpool(x, B);
        break;
      case LayerKind::flatten:
        y = flatten(x, B);
        break;
      case LayerKind::softmax:
      case LayerKind::log_softmax:
        y = x;
        run_softmax(y.m, L.kind == LayerKind::log_softmax);
        break;
      case LayerKind::add: {
        const Act& x2 = act_of(ins[1]);
        y.image = x.image;
        y.H = x.H;
        y.W = x.W;
        y.m = x.m + x2.m;
        break;
      }
      default:  // element-wise activations, identity, dropout
        y = x;
        apply_elementwise(y.m, L.kind, L);
        break;
    }
    apply_fused(y.m, L);
    outs[static_cast<std::size_t>(i)] = std::move(y);
    for (int j : ins)
      if (j >= 0 && last_use[static_cast<std::size_t>(j)] == i)
        outs[static_cast<std::size_t>(j)] = Act();
  }
  // The last layer outputs (num_classes) features (checked by infer_shapes).
  Act& last = outs.back();
  return last.image ? flatten(last, B).m : std::move(last.m);
}

MatrixF logits(const Network& net, const MatrixF& images, MatmulProvider& provider,
               Index batch_size) {
  if (batch_size < 1)
    core::throw_invalid(kTag, concat("batch_size = ", batch_size, ": must be >= 1"));
  const Index N = images.rows();
  MatrixF out(N, net.num_classes);
  for (Index b = 0; b < N; b += batch_size) {
    const Index len = std::min(batch_size, N - b);
    out.middleRows(b, len) = forward(net, images.middleRows(b, len), provider, b);
  }
  return out;
}

std::vector<int> argmax_rows(const MatrixF& l) {
  std::vector<int> out(static_cast<std::size_t>(l.rows()));
  for (Index r = 0; r < l.rows(); ++r) {
    Index best = 0;
    for (Index c = 1; c < l.cols(); ++c)
      if (l(r, c) > l(r, best)) best = c;
    out[static_cast<std::size_t>(r)] = static_cast<int>(best);
  }
  return out;
}

std::vector<int> predict(const Network& net, const MatrixF& images, MatmulProvider& provider,
                         Index batch_size) {
  return argmax_rows(logits(net, images, provider, batch_size));
}

double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels) {
  if (predictions.size() != labels.size())
    core::throw_invalid("nets::accuracy",
                        concat(predictions.size(), " predictions but ", labels.size(), " labels"));
  if (labels.empty()) core::throw_invalid("nets::accuracy", "no samples");
  std::size_t ok = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) ok += predictions[i] == labels[i];
  return static_cast<double>(ok) / static_cast<double>(labels.size());
}

}  // namespace pcmsim::nets
