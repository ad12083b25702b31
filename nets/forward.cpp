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

// Activations live in one of two layouts inside forward():
// - image (channels-last): a per-sample tensor (C, positions...) of a batch is a
//   (B*positions) x C matrix (row = sample, then position; column = channel). The conv GEMM
//   produces exactly this layout (no transposes), and per-channel operations (bias, BN) and
//   pooling work on contiguous channel vectors, which the compiler vectorises. H, W: the spatial
//   size (conv1d: H = 1).
// - plain: B x numel, each sample in PyTorch's C order. Feature vectors (F) are B x F either way;
//   other ranks (sequences (T, D), attention maps) are reshaped views of the same memory.
// Layers convert their input to the layout they need (as_image / as_plain).
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


// The input in the image layout for a (C, H, W) shape (conv1d: (C, L) as (C, 1, L)).
const Act& as_image(const Act& x, Index B, Index C, Index H, Index W, Act& tmp) {
  if (x.image) return x;
  tmp = from_chw(Eigen::Map<const MatrixF>(x.m.data(), B, C * H * W), C, H, W);
  return tmp;
}

// The input in the plain layout (B x numel, C order).
const Act& as_plain(const Act& x, Index B, Act& tmp) {
  if (!x.image && x.m.rows() == B) return x;
  if (x.image) {
    tmp = flatten(x, B);
  } else {
    tmp.m = Eigen::Map<const MatrixF>(x.m.data(), B, x.m.size() / B);
  }
  return tmp;
}

// Splits a per-sample shape around `axis` into outer x n x inner.
void split_axis(const Shape& s, Index axis, Index& outer, Index& n, Index& inner) {
  outer = inner = 1;
  for (Index d = 0; d < axis; ++d) outer *= s.dims[d];
  n = s.dims[axis];
  for (Index d = axis + 1; d < s.rank(); ++d) inner *= s.dims[d];
}

Index normalise_axis(Index a, Index rank) { return a < 0 ? a + rank : a; }

// Softmax / log-softmax along a strided axis: `count` vectors of n values, `stride` apart.
void softmax_strided(float* base, Index vectors, Index inner, Index n, bool log) {
  const Index per_outer = n * inner;
  for_row_blocks(vectors, n, [&](Index v0, Index len) {
    for (Index v = v0; v < v0 + len; ++v) {
      float* p = base + (v / inner) * per_outer + (v % inner);
      float mx = p[0];
      for (Index c = 1; c < n; ++c) mx = std::max(mx, p[c * inner]);
      float sum = 0.f;
      for (Index c = 0; c < n; ++c) sum += std::exp(p[c * inner] - mx);
      if (log) {
        const float lse = std::log(sum);
        for (Index c = 0; c < n; ++c) p[c * inner] = p[c * inner] - mx - lse;
      } else {
        for (Index c = 0; c < n; ++c) p[c * inner] = std::exp(p[c * inner] - mx) / sum;
      }
    }
  });
}

// LayerNorm over the last N values of each row group; statistics in double (PyTorch
// accumulates in higher precision too), biased variance as PyTorch.
void run_layernorm(MatrixF& m, const Layer& L, Index N) {
  const Index rows = m.size() / N;
  float* base = m.data();
  for_row_blocks(rows, N, [&](Index r0, Index len) {
    for (Index r = r0; r < r0 + len; ++r) {
      float* p = base + r * N;
      double mean = 0;
      for (Index i = 0; i < N; ++i) mean += p[i];
      mean /= double(N);
      double var = 0;
      for (Index i = 0; i < N; ++i) var += (p[i] - mean) * (p[i] - mean);
      var /= double(N);
      const double inv = 1.0 / std::sqrt(var + L.eps);
      for (Index i = 0; i < N; ++i) {
        float v = static_cast<float>((p[i] - mean) * inv);
        if (!L.weight.empty()) v *= L.weight.data[i];
        if (!L.bias.empty()) v += L.bias.data[i];
        p[i] = v;
      }
    }
  });
}

// General per-sample transpose in the plain layout.
MatrixF run_transpose(const MatrixF& x, Index B, const Shape& in, const std::vector<Index>& perm) {
  const Index r = in.rank(), numel = in.size();
  const std::vector<Index> in_stride = row_major_strides(in.dims);
  std::vector<Index> out_dims(r), src_stride(r);
  for (Index d = 0; d < r; ++d) {
    out_dims[d] = in.dims[perm[d]];
    src_stride[d] = in_stride[perm[d]];
  }
  MatrixF y(B, numel);
#pragma omp parallel for schedule(static) if (B * numel >= kParallelMin)
  for (Index b = 0; b < B; ++b) {
    const float* src = x.data() + b * numel;
    float* dst = y.data() + b * numel;
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    Index off = 0;  // source offset of the current output index
    for (Index o = 0; o < numel; ++o) {
      dst[o] = src[off];
      for (Index d = r - 1; d >= 0; --d) {  // odometer increment
        off += src_stride[d];
        if (++idx[d] < out_dims[d]) break;
        off -= src_stride[d] * out_dims[d];
        idx[d] = 0;
      }
    }
  }
  return y;
}

// Padding of the trailing axes in the plain layout.
MatrixF run_pad(const MatrixF& x, Index B, const Shape& in, const Shape& out, const Layer& L) {
  const Index r = in.rank(), k = static_cast<Index>(L.pads.size()) / 2;
  const Index numel_in = in.size(), numel_out = out.size();
  // Per output axis: the source index of each output index, or -1 (constant fill).
  std::vector<std::vector<Index>> src(static_cast<std::size_t>(r));
  for (Index d = 0; d < r; ++d) {
    const Index before = d >= r - k ? L.pads[2 * (d - (r - k))] : 0, n = in.dims[d];
    auto& v = src[d];
    v.resize(static_cast<std::size_t>(out.dims[d]));
    for (Index o = 0; o < out.dims[d]; ++o) {
      Index i = o - before;
      if (i < 0 || i >= n) {
        if (L.pad_mode == PadMode::constant)
          i = -1;
        else if (L.pad_mode == PadMode::replicate)
          i = i < 0 ? 0 : n - 1;
        else
          i = i < 0 ? -i : 2 * (n - 1) - i;  // reflect (pads < n, checked)
      }
      v[o] = i;
    }
  }
  const std::vector<Index> in_stride = row_major_strides(in.dims);
  const float fill = static_cast<float>(L.pad_value);
  MatrixF y(B, numel_out);
#pragma omp parallel for schedule(static) if (B * numel_out >= kParallelMin)
  for (Index b = 0; b < B; ++b) {
    const float* s = x.data() + b * numel_in;
    float* dst = y.data() + b * numel_out;
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    for (Index o = 0; o < numel_out; ++o) {
      Index off = 0;
      bool inside = true;
      for (Index d = 0; d < r && inside; ++d) {
        const Index i = src[d][idx[d]];
        inside = i >= 0;
        off += i * in_stride[d];
      }
      dst[o] = inside ? s[off] : fill;
      for (Index d = r - 1; d >= 0; --d) {
        if (++idx[d] < out.dims[d]) break;
        idx[d] = 0;
      }
    }
  }
  return y;
}

// PyTorch's adaptive_avg_pool2d: window [floor(i*H/o), ceil((i+1)*H/o)).
Act run_adaptive_avgpool(const Act& x, Index B, Index C, Index H, Index W, Index OH, Index OW) {
  Act y;
  y.image = true;
  y.H = OH;
  y.W = OW;
  y.m.resize(B * OH * OW, C);
#pragma omp parallel for schedule(static) if (B * H * W * C >= kParallelMin)
  for (Index blk = 0; blk < B * OH; ++blk) {
    const Index n = blk / OH, oh = blk % OH;
    const Index h0 = (oh * H) / OH, h1 = ((oh + 1) * H + OH - 1) / OH;
    const float* img = x.m.data() + n * H * W * C;
    for (Index ow = 0; ow < OW; ++ow) {
      const Index w0 = (ow * W) / OW, w1 = ((ow + 1) * W + OW - 1) / OW;
      float* dst = y.m.data() + ((n * OH + oh) * OW + ow) * C;
      for (Index c = 0; c < C; ++c) dst[c] = 0.f;
      for (Index ih = h0; ih < h1; ++ih)
        for (Index iw = w0; iw < w1; ++iw) {
          const float* s = img + (ih * W + iw) * C;
          for (Index c = 0; c < C; ++c) dst[c] += s[c];
        }
      const float d = static_cast<float>((h1 - h0) * (w1 - w0));
      for (Index c = 0; c < C; ++c) dst[c] /= d;
    }
  }
  return y;
}

// Concatenation along a per-sample axis in the plain layout.
MatrixF run_concat(const std::vector<const MatrixF*>& xs, const std::vector<Shape>& shapes, Index B,
                   Index axis, const Shape& out) {
  Index outer = 1, inner = 1;
  for (Index d = 0; d < axis; ++d) outer *= out.dims[d];
  for (Index d = axis + 1; d < out.rank(); ++d) inner *= out.dims[d];
  const Index numel = out.size();
  MatrixF y(B, numel);
#pragma omp parallel for schedule(static) if (B * numel >= kParallelMin)
  for (Index b = 0; b < B; ++b) {
    float* dst = y.data() + b * numel;
    for (Index o = 0; o < outer; ++o)
      for (std::size_t k = 0; k < xs.size(); ++k) {
        const Index chunk = shapes[k].dims[axis] * inner;
        const float* s = xs[k]->data() + b * shapes[k].size() + o * chunk;
        dst = std::copy(s, s + chunk, dst);
      }
  }
  return y;
}

// Batched matrix product of two activations: per sample and leading index, (n x k) * (k x m).
// Digital (no stored weights): float32 GEMM, each product independent of the batch split.
MatrixF run_matmul(const MatrixF& a, const MatrixF& b, Index B, const Shape& sa, const Shape& sb) {
  const Index n = sa.dims[sa.rank() - 2], k = sa.dims.back(), m = sb.dims.back();
  const Index lead = sa.size() / (n * k), count = B * lead;
  MatrixF y(B, lead * n * m);
#pragma omp parallel for schedule(static) if (count * n * k * m >= kParallelMin)
  for (Index i = 0; i < count; ++i) {
    Eigen::Map<const MatrixF> A(a.data() + i * n * k, n, k), Bm(b.data() + i * k * m, k, m);
    Eigen::Map<MatrixF> Y(y.data() + i * n * m, n, m);
    Y.noalias() = A * Bm;
  }
  return y;
}

// Embedding lookup (digital): every input value must be an integer index in range.
MatrixF run_embedding(const MatrixF& x, const Layer& L) {
  const Index D = L.embedding_dim;
  MatrixF y(x.rows(), x.cols() * D);
  for (Index i = 0; i < x.size(); ++i) {
    const float v = x.data()[i];
    if (!(v >= 0.f) || v >= static_cast<float>(L.num_embeddings) || v != std::floor(v))
      core::throw_invalid(kTag, concat("layer '", L.name, "' (embedding): input value ", v,
                                       " is not an index in [0, ", L.num_embeddings, ")"));
    const float* row = L.weight.data.data() + static_cast<Index>(v) * D;
    std::copy(row, row + D, y.data() + i * D);
  }
  return y;
}

// Element-wise a (op) b with NumPy broadcasting of the per-sample shapes, plain layout.
MatrixF run_binary(LayerKind kind, const MatrixF& a, const MatrixF& b, Index B, const Shape& sa,
                   const Shape& sb, const Shape& out) {
  const Index r = out.rank(), numel = out.size(), na = sa.size(), nb = sb.size();
  // Strides of a and b over the output's axes (0 where an axis is broadcast).
  std::vector<Index> stride_a(static_cast<std::size_t>(r), 0), stride_b(stride_a);
  for (int which = 0; which < 2; ++which) {
    const Shape& s = which ? sb : sa;
    std::vector<Index>& st = which ? stride_b : stride_a;
    Index acc = 1;
    for (Index d = s.rank() - 1; d >= 0; --d) {
      const Index od = d + (r - s.rank());
      st[od] = s.dims[d] == 1 ? 0 : acc;
      acc *= s.dims[d];
    }
  }
  MatrixF y(B, numel);
#pragma omp parallel for schedule(static) if (B * numel >= kParallelMin)
  for (Index n = 0; n < B; ++n) {
    const float* pa = a.data() + n * na;
    const float* pb = b.data() + n * nb;
    float* dst = y.data() + n * numel;
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    Index oa = 0, ob = 0;
    for (Index o = 0; o < numel; ++o) {
      const float u = pa[oa], v = pb[ob];
      switch (kind) {
        case LayerKind::add: dst[o] = u + v; break;
        case LayerKind::sub: dst[o] = u - v; break;
        case LayerKind::mul: dst[o] = u * v; break;
        default: dst[o] = u / v; break;
      }
      for (Index d = r - 1; d >= 0; --d) {  // odometer over the output
        oa += stride_a[d];
        ob += stride_b[d];
        if (++idx[d] < out.dims[d]) break;
        oa -= stride_a[d] * out.dims[d];
        ob -= stride_b[d] * out.dims[d];
        idx[d] = 0;
      }
    }
  }
  return y;
}

// Mean over a set of per-sample axes (plain layout); sums in double.
MatrixF run_reduce_mean(const MatrixF& x, Index B, const Shape& in, const std::vector<Index>& axes,
                        Index out_numel) {
  const Index r = in.rank(), numel = in.size();
  std::vector<bool> reduce(static_cast<std::size_t>(r), false);
  for (Index a : axes) reduce[normalise_axis(a, r)] = true;
  // Output offset stride of each input axis (0 for reduced axes).
  std::vector<Index> ostride(static_cast<std::size_t>(r), 0);
  Index acc = 1, count = 1;
  for (Index d = r - 1; d >= 0; --d) {
    if (reduce[d]) {
      count *= in.dims[d];
    } else {
      ostride[d] = acc;
      acc *= in.dims[d];
    }
  }
  MatrixF y(B, out_numel);
#pragma omp parallel for schedule(static) if (B * numel >= kParallelMin)
  for (Index n = 0; n < B; ++n) {
    std::vector<double> sum(static_cast<std::size_t>(out_numel), 0.0);
    const float* src = x.data() + n * numel;
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    Index off = 0;
    for (Index i = 0; i < numel; ++i) {
      sum[off] += src[i];
      for (Index d = r - 1; d >= 0; --d) {
        off += ostride[d];
        if (++idx[d] < in.dims[d]) break;
        off -= ostride[d] * in.dims[d];
        idx[d] = 0;
      }
    }
    for (Index o = 0; o < out_numel; ++o)
      y(n, o) = static_cast<float>(sum[o] / static_cast<double>(count));
  }
  return y;
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
    const Act& x = ins.empty() ? input : act_of(ins[0]);  // constant: no input
    Act y, tmp;
    const Shape& in = S.inputs.empty() ? S.output : S.inputs[0];
    switch (L.kind) {
      case LayerKind::linear: {
        const Act& xp = as_plain(x, B, tmp);
        const Index pos = in.size() / L.in_features;  // over the last axis
        y.m.resize(B * pos, L.out_features);
        provider.matmul(matrix_index++, 0,
                        Eigen::Map<const MatrixF>(xp.m.data(), B * pos, L.in_features), y.m);
        if (y.m.rows() != B * pos || y.m.cols() != L.out_features)
          core::throw_invalid(
              kTag, concat("layer '", L.name, "': the matmul provider returned ", y.m.rows(), "x",
                           y.m.cols(), ", expected ", B * pos, "x", L.out_features));
        if (!L.bias.empty()) channel_affine(y.m, {}, L.bias.data);
        if (pos > 1) y.m.resize(B, pos * L.out_features);  // same memory, plain layout
        break;
      }
      case LayerKind::conv2d:
        y = run_conv(L, in, S.output, as_image(x, B, in.dims[0], in.dims[1], in.dims[2], tmp), B,
                     matrix_index++, provider);
        break;
      case LayerKind::conv1d: {
        const Shape in2{{in.dims[0], 1, in.dims[1]}}, out2{{S.output.dims[0], 1, S.output.dims[1]}};
        y = run_conv(L, in2, out2, as_image(x, B, in.dims[0], 1, in.dims[1], tmp), B,
                     matrix_index++, provider);
        break;
      }
      case LayerKind::batchnorm1d:
        y = run_batchnorm(L, as_plain(x, B, tmp));
        break;
      case LayerKind::batchnorm2d:
        y = run_batchnorm(L, as_image(x, B, in.dims[0], in.dims[1], in.dims[2], tmp));
        break;
      case LayerKind::maxpool2d:
      case LayerKind::avgpool2d:
        y = run_pool(L, in, S.output, as_image(x, B, in.dims[0], in.dims[1], in.dims[2], tmp), B);
        break;
      case LayerKind::global_avgpool:
        y = run_global_avgpool(as_image(x, B, in.dims[0], in.dims[1], in.dims[2], tmp), B);
        break;
      case LayerKind::adaptive_avgpool2d:
        y = run_adaptive_avgpool(as_image(x, B, in.dims[0], in.dims[1], in.dims[2], tmp), B,
                                 in.dims[0], in.dims[1], in.dims[2], L.output_size[0],
                                 L.output_size[1]);
        break;
      case LayerKind::flatten:
      case LayerKind::reshape:
        y = as_plain(x, B, tmp);  // C order is unchanged
        break;
      case LayerKind::softmax:
      case LayerKind::log_softmax: {
        const Index axis = normalise_axis(L.axis, in.rank());
        const bool log = L.kind == LayerKind::log_softmax;
        if (x.image && axis == 0) {  // over the channels: the rows of the image layout
          y = x;
          run_softmax(y.m, log);
        } else {
          y = as_plain(x, B, tmp);
          Index outer, len, inner;
          split_axis(in, axis, outer, len, inner);
          softmax_strided(y.m.data(), B * outer * inner, inner, len, log);
        }
        break;
      }
      case LayerKind::layernorm: {
        y = as_plain(x, B, tmp);
        run_layernorm(y.m, L, Shape{L.shape}.size());
        break;
      }
      case LayerKind::transpose:
        y.m = run_transpose(as_plain(x, B, tmp).m, B, in, L.perm);
        break;
      case LayerKind::pad:
        y.m = run_pad(as_plain(x, B, tmp).m, B, in, S.output, L);
        break;
      case LayerKind::concat: {
        const Index axis = normalise_axis(L.axis, in.rank());
        bool all_image = axis == 0;
        for (int j : ins) all_image = all_image && act_of(j).image;
        if (all_image) {  // channels: side by side in the image layout
          y.image = true;
          y.H = x.H;
          y.W = x.W;
          y.m.resize(x.m.rows(), S.output.dims[0]);
          Index c0 = 0;
          for (int j : ins) {
            y.m.middleCols(c0, act_of(j).m.cols()) = act_of(j).m;
            c0 += act_of(j).m.cols();
          }
        } else {
          std::vector<Act> tmps(ins.size());
          std::vector<const MatrixF*> xs;
          for (std::size_t k = 0; k < ins.size(); ++k)
            xs.push_back(&as_plain(act_of(ins[k]), B, tmps[k]).m);
          y.m = run_concat(xs, S.inputs, B, axis, S.output);
        }
        break;
      }
      case LayerKind::matmul: {
        Act tmp2;
        y.m = run_matmul(as_plain(x, B, tmp).m, as_plain(act_of(ins[1]), B, tmp2).m, B, in,
                         S.inputs[1]);
        break;
      }
      case LayerKind::scale: {
        y = x;
        const float a = static_cast<float>(L.scale), c = static_cast<float>(L.shift);
        map_inplace(y.m, [a, c](float v) { return v * a + c; });
        break;
      }
      case LayerKind::constant:
        y.m = Eigen::Map<const Eigen::Matrix<float, 1, Eigen::Dynamic>>(L.weight.data.data(),
                                                                        L.weight.numel())
                  .replicate(B, 1);
        break;
      case LayerKind::embedding:
        y.m = run_embedding(as_plain(x, B, tmp).m, L);
        break;
      case LayerKind::sqrt:
        y = x;
        map_inplace(y.m, [](float v) { return std::sqrt(v); });
        break;
      case LayerKind::erf:
        y = x;
        map_inplace(y.m, [](float v) { return std::erf(v); });
        break;
      case LayerKind::pow: {
        y = x;
        const float e = static_cast<float>(L.exponent);
        if (e == 2.f)
          map_inplace(y.m, [](float v) { return v * v; });
        else
          map_inplace(y.m, [e](float v) { return std::pow(v, e); });
        break;
      }
      case LayerKind::reduce_mean:
        y.m = run_reduce_mean(as_plain(x, B, tmp).m, B, in, L.axes, S.output.size());
        break;
      case LayerKind::sub:
      case LayerKind::mul:
      case LayerKind::div:
      case LayerKind::add: {
        const Act& x2 = act_of(ins[1]);
        if (S.inputs[0] != S.inputs[1]) {
          Act tmp2;
          y.m = run_binary(L.kind, as_plain(x, B, tmp).m, as_plain(x2, B, tmp2).m, B, S.inputs[0],
                           S.inputs[1], S.output);
        } else if (L.kind != LayerKind::add) {
          Act tmp2;
          const Act& a = as_plain(x, B, tmp);
          const Act& b = as_plain(x2, B, tmp2);
          y.m = L.kind == LayerKind::sub   ? MatrixF(a.m - b.m)
                : L.kind == LayerKind::mul ? MatrixF(a.m.cwiseProduct(b.m))
                                           : MatrixF(a.m.cwiseQuotient(b.m));
        } else if (x.image == x2.image) {
          y.image = x.image;
          y.H = x.H;
          y.W = x.W;
          y.m = x.m + x2.m;
        } else {
          Act tmp2;
          y.m = as_plain(x, B, tmp).m + as_plain(x2, B, tmp2).m;
        }
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
  Act tmp;
  return MatrixF(as_plain(last, B, tmp).m);
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
