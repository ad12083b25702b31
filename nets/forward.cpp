#include "nets/forward.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace pcmsim::nets {

using core::concat;

namespace {

constexpr const char* kTag = "nets::forward";

using ConstRef = Eigen::Ref<const MatrixF>;

// Element-wise activation of one value; `L` gives the parameters of parametrised kinds.
inline float activate(LayerKind kind, const Layer& L, float x) {
  switch (kind) {
    case LayerKind::relu: return x > 0.f ? x : 0.f;
    case LayerKind::relu6: return std::min(std::max(x, 0.f), 6.f);
    case LayerKind::leaky_relu: return x >= 0.f ? x : x * static_cast<float>(L.negative_slope);
    case LayerKind::sigmoid: return 1.f / (1.f + std::exp(-x));
    case LayerKind::tanh: return std::tanh(x);
    case LayerKind::gelu:
      if (L.gelu_tanh) {
        const float k = 0.7978845608028654f;  // sqrt(2/pi)
        return 0.5f * x * (1.f + std::tanh(k * (x + 0.044715f * x * x * x)));
      }
      return 0.5f * x * (1.f + std::erf(x * 0.7071067811865476f));
    case LayerKind::silu: return x / (1.f + std::exp(-x));
    case LayerKind::elu:
      return x > 0.f ? x : static_cast<float>(L.alpha) * std::expm1(x);
    case LayerKind::hardtanh:
      return std::min(std::max(x, static_cast<float>(L.min_val)), static_cast<float>(L.max_val));
    case LayerKind::hardswish: return x * std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f;
    case LayerKind::hardsigmoid: return std::min(std::max(x + 3.f, 0.f), 6.f) / 6.f;
    default: return x;
  }
}

LayerKind kind_of(Activation a) {
  switch (a) {
    case Activation::relu: return LayerKind::relu;
    case Activation::relu6: return LayerKind::relu6;
    case Activation::sigmoid: return LayerKind::sigmoid;
    case Activation::tanh: return LayerKind::tanh;
    case Activation::gelu: return LayerKind::gelu;
    case Activation::silu: return LayerKind::silu;
    case Activation::hardswish: return LayerKind::hardswish;
    case Activation::hardsigmoid: return LayerKind::hardsigmoid;
    default: return LayerKind::identity;
  }
}

void apply_elementwise(MatrixF& m, LayerKind kind, const Layer& L) {
  if (kind == LayerKind::identity || kind == LayerKind::dropout) return;
  const Index rows = m.rows(), cols = m.cols();
#pragma omp parallel for schedule(static) if (rows * cols >= 65536)
  for (Index r = 0; r < rows; ++r) {
    float* p = m.data() + r * cols;
    for (Index c = 0; c < cols; ++c) p[c] = activate(kind, L, p[c]);
  }
}

void apply_fused(MatrixF& m, const Layer& L) {
  if (L.activation == Activation::none) return;
  Layer plain;  // the fused activations take no parameters; gelu is the exact one
  apply_elementwise(m, kind_of(L.activation), plain);
}

// Adds a per-channel bias to a batch x (C*P) matrix.
void add_channel_bias(MatrixF& y, const std::vector<float>& bias, Index P) {
  if (bias.empty()) return;
  const Index B = y.rows(), C = static_cast<Index>(bias.size());
#pragma omp parallel for schedule(static) if (B * C * P >= 65536)
  for (Index n = 0; n < B; ++n) {
    float* row = y.data() + n * C * P;
    for (Index c = 0; c < C; ++c) {
      const float b = bias[static_cast<std::size_t>(c)];
      for (Index p = 0; p < P; ++p) row[c * P + p] += b;
    }
  }
}

MatrixF run_conv(const Layer& L, const Shape& in, const Shape& out, const ConstRef& x,
                 int matrix_index, MatmulProvider& provider) {
  const Index B = x.rows();
  const Index C = in.dims[0], H = in.dims[1], W = in.dims[2];
  const Index O = out.dims[0], Ho = out.dims[1], Wo = out.dims[2], P = Ho * Wo;
  const Index kh = L.kernel_size[0], kw = L.kernel_size[1];
  const Index sh = L.stride[0], sw = L.stride[1], ph = L.padding[0], pw = L.padding[1];
  const Index dh = L.dilation[0], dw = L.dilation[1];
  const Index G = L.groups, Cg = C / G, Og = O / G, rows = Cg * kh * kw;

  MatrixF y(B, O * P);
  MatrixF col(B * P, rows);
  MatrixF yg(B * P, Og);
  for (Index g = 0; g < G; ++g) {
    // im2col: row (n, oh, ow), column (c, ky, kx); zero padding.
#pragma omp parallel for schedule(static) if (B * P * rows >= 65536)
    for (Index n = 0; n < B; ++n) {
      const float* img = x.data() + n * x.outerStride() + g * Cg * H * W;
      for (Index oh = 0; oh < Ho; ++oh)
        for (Index ow = 0; ow < Wo; ++ow) {
          float* dst = col.data() + ((n * Ho + oh) * Wo + ow) * rows;
          for (Index c = 0; c < Cg; ++c)
            for (Index ky = 0; ky < kh; ++ky) {
              const Index ih = oh * sh - ph + ky * dh;
              const bool row_in = ih >= 0 && ih < H;
              for (Index kx = 0; kx < kw; ++kx) {
                const Index iw = ow * sw - pw + kx * dw;
                *dst++ = (row_in && iw >= 0 && iw < W) ? img[(c * H + ih) * W + iw] : 0.f;
              }
            }
        }
    }
    provider.matmul(matrix_index, static_cast<int>(g), col, yg);
    if (yg.rows() != B * P || yg.cols() != Og)
      core::throw_invalid(kTag, concat("layer '", L.name, "': the matmul provider returned ",
                                       yg.rows(), "x", yg.cols(), ", expected ", B * P, "x", Og));
    // Scatter back to (n, channel, position).
#pragma omp parallel for schedule(static) if (B * P * Og >= 65536)
    for (Index n = 0; n < B; ++n)
      for (Index o = 0; o < Og; ++o) {
        float* dst = y.data() + n * O * P + (g * Og + o) * P;
        const float* src = yg.data() + n * P * Og + o;
        for (Index p = 0; p < P; ++p) dst[p] = src[p * Og];
      }
  }
  add_channel_bias(y, L.bias.data, P);
  return y;
}

MatrixF run_batchnorm(const Layer& L, const Shape& in, const ConstRef& x) {
  const Index B = x.rows(), C = L.num_features, P = in.size() / C;
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
  MatrixF y(B, C * P);
#pragma omp parallel for schedule(static) if (B * C * P >= 65536)
  for (Index n = 0; n < B; ++n) {
    const float* src = x.data() + n * x.outerStride();
    float* dst = y.data() + n * C * P;
    for (Index c = 0; c < C; ++c)
      for (Index p = 0; p < P; ++p) dst[c * P + p] = src[c * P + p] * scale[c] + shift[c];
  }
  return y;
}

MatrixF run_pool(const Layer& L, const Shape& in, const Shape& out, const ConstRef& x) {
  const Index B = x.rows(), C = in.dims[0], H = in.dims[1], W = in.dims[2];
  const Index Ho = out.dims[1], Wo = out.dims[2];
  const Index kh = L.kernel_size[0], kw = L.kernel_size[1];
  const Index sh = L.stride[0], sw = L.stride[1], ph = L.padding[0], pw = L.padding[1];
  const Index dh = L.dilation[0], dw = L.dilation[1];
  const bool is_max = L.kind == LayerKind::maxpool2d;
  MatrixF y(B, C * Ho * Wo);
#pragma omp parallel for schedule(static) if (B * C * Ho * Wo * kh * kw >= 65536)
  for (Index n = 0; n < B; ++n) {
    const float* img = x.data() + n * x.outerStride();
    float* dst = y.data() + n * C * Ho * Wo;
    for (Index c = 0; c < C; ++c) {
      const float* plane = img + c * H * W;
      for (Index oh = 0; oh < Ho; ++oh)
        for (Index ow = 0; ow < Wo; ++ow) {
          float v;
          if (is_max) {
            // Padding is -inf (never selected); NaN propagates as in PyTorch.
            v = -std::numeric_limits<float>::infinity();
            for (Index ky = 0; ky < kh; ++ky) {
              const Index ih = oh * sh - ph + ky * dh;
              if (ih < 0 || ih >= H) continue;
              for (Index kx = 0; kx < kw; ++kx) {
                const Index iw = ow * sw - pw + kx * dw;
                if (iw < 0 || iw >= W) continue;
                const float e = plane[ih * W + iw];
                if (e > v || std::isnan(e)) v = e;
              }
            }
          } else {
            // PyTorch's avg_pool2d: the divisor counts padding (count_include_pad) but never
            // the part of a ceil_mode window beyond the padded input.
            Index h0 = oh * sh - ph, w0 = ow * sw - pw;
            Index h1 = std::min(h0 + kh, H + ph), w1 = std::min(w0 + kw, W + pw);
            const Index pool = (h1 - h0) * (w1 - w0);
            h0 = std::max<Index>(h0, 0);
            w0 = std::max<Index>(w0, 0);
            h1 = std::min(h1, H);
            w1 = std::min(w1, W);
            float s = 0.f;
            for (Index ih = h0; ih < h1; ++ih)
              for (Index iw = w0; iw < w1; ++iw) s += plane[ih * W + iw];
            const Index div = L.count_include_pad ? pool : (h1 - h0) * (w1 - w0);
            v = div > 0 ? s / static_cast<float>(div) : 0.f;
          }
          dst[(c * Ho + oh) * Wo + ow] = v;
        }
    }
  }
  return y;
}

MatrixF run_global_avgpool(const Shape& in, const ConstRef& x) {
  const Index B = x.rows(), C = in.dims[0], P = in.dims[1] * in.dims[2];
  MatrixF y(B, C);
#pragma omp parallel for schedule(static) if (B * C * P >= 65536)
  for (Index n = 0; n < B; ++n) {
    const float* src = x.data() + n * x.outerStride();
    for (Index c = 0; c < C; ++c) {
      float s = 0.f;
      for (Index p = 0; p < P; ++p) s += src[c * P + p];
      y(n, c) = s / static_cast<float>(P);
    }
  }
  return y;
}

}  // namespace

// ------------------------------------------------------------------------------ Fp32Matmul

Fp32Matmul::Fp32Matmul(const Network& net) : layers_(matrix_layers(net)) {}

void Fp32Matmul::matmul(int mi, int group, const Eigen::Ref<const MatrixF>& x, MatrixF& y) {
  if (mi < 0 || mi >= static_cast<int>(layers_.size()))
    core::throw_invalid("nets::Fp32Matmul", concat("matrix layer index ", mi, " out of [0, ",
                                                   layers_.size(), ")"));
  const MatrixLayer& m = layers_[static_cast<std::size_t>(mi)];
  if (group < 0 || group >= static_cast<int>(m.groups))
    core::throw_invalid("nets::Fp32Matmul",
                        concat("layer '", m.name, "': group ", group, " out of [0, ", m.groups, ")"));
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
    core::throw_invalid(kTag, concat("images have ", images.cols(), " values per sample, the model '",
                                     net.name, "' expects C*H*W = ", net.input_size()));
  const Index B = images.rows();
  const int n = static_cast<int>(net.layers.size());
  if (B == 0) return MatrixF(0, net.num_classes);
  provider.begin_batch(first_sample, B);

  // Free each intermediate output after its last use.
  std::vector<int> last_use(static_cast<std::size_t>(n), -1);
  for (int i = 0; i < n; ++i)
    for (int j : net.layer_inputs(i))
      if (j >= 0) last_use[static_cast<std::size_t>(j)] = i;

  std::vector<MatrixF> outs(static_cast<std::size_t>(n));
  auto input = [&](int j) -> ConstRef {
    return j == kNetworkInput ? ConstRef(images) : ConstRef(outs[static_cast<std::size_t>(j)]);
  };

  int matrix_index = 0;
  for (int i = 0; i < n; ++i) {
    const Layer& L = net.layers[static_cast<std::size_t>(i)];
    const LayerShapes& S = shapes[static_cast<std::size_t>(i)];
    const std::vector<int> ins = net.layer_inputs(i);
    const ConstRef x = input(ins[0]);
    MatrixF y;
    switch (L.kind) {
      case LayerKind::linear: {
        y.resize(B, L.out_features);
        provider.matmul(matrix_index++, 0, x, y);
        if (y.rows() != B || y.cols() != L.out_features)
          core::throw_invalid(kTag, concat("layer '", L.name, "': the matmul provider returned ",
                                           y.rows(), "x", y.cols(), ", expected ", B, "x",
                                           L.out_features));
        add_channel_bias(y, L.bias.data, 1);
        break;
      }
      case LayerKind::conv2d:
        y = run_conv(L, S.inputs[0], S.output, x, matrix_index++, provider);
        break;
      case LayerKind::batchnorm1d:
      case LayerKind::batchnorm2d:
        y = run_batchnorm(L, S.inputs[0], x);
        break;
      case LayerKind::maxpool2d:
      case LayerKind::avgpool2d:
        y = run_pool(L, S.inputs[0], S.output, x);
        break;
      case LayerKind::global_avgpool:
        y = run_global_avgpool(S.inputs[0], x);
        break;
      case LayerKind::add: {
        const ConstRef x2 = input(ins[1]);
        y = x + x2;
        break;
      }
      default:  // activations, flatten, identity, dropout: same data, C order kept
        y = x;
        apply_elementwise(y, L.kind, L);
        break;
    }
    apply_fused(y, L);
    outs[static_cast<std::size_t>(i)] = std::move(y);
    for (int j : ins)
      if (j >= 0 && last_use[static_cast<std::size_t>(j)] == i)
        outs[static_cast<std::size_t>(j)] = MatrixF();
  }
  return std::move(outs.back());
}

MatrixF logits(const Network& net, const MatrixF& images, MatmulProvider& provider,
               Index batch_size) {
  if (batch_size < 1) core::throw_invalid(kTag, concat("batch_size = ", batch_size, ": must be >= 1"));
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
    core::throw_invalid("nets::accuracy", concat(predictions.size(), " predictions but ",
                                                 labels.size(), " labels"));
  if (labels.empty()) core::throw_invalid("nets::accuracy", "no samples");
  std::size_t ok = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) ok += predictions[i] == labels[i];
  return static_cast<double>(ok) / static_cast<double>(labels.size());
}

}  // namespace pcmsim::nets
