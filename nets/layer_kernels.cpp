// One float32 kernel per layer kind of the forward pass, and the conversions between the
// activation layouts they work on (layer_kernels.h).
#include "nets/layer_kernels.h"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/error.h"

namespace pcmsim::nets::detail {

using core::concat;

namespace {

// A conv's input matrix for one group, produced on demand: row (n, oh, ow), column (c, ky, kx)
// as the tiles hold the weights; zero padding.
class Im2colRows final : public core::RowSource {
 public:
  Im2colRows(const Layer& L, const Shape& in_shape, const Shape& out_shape, const float* image,
             Index B, Index group)
      : C_(in_shape.dims[0]), H_(in_shape.dims[1]), W_(in_shape.dims[2]),
        Ho_(out_shape.dims[1]), Wo_(out_shape.dims[2]), B_(B),
        kh_(L.kernel_size[0]), kw_(L.kernel_size[1]), sh_(L.stride[0]), sw_(L.stride[1]),
        ph_(L.padding[0]), pw_(L.padding[1]), dh_(L.dilation[0]), dw_(L.dilation[1]),
        Cg_(C_ / L.groups), image_(image + group * Cg_), zeros_(static_cast<std::size_t>(Cg_)) {
    for (Index ky = 0; ky < kh_; ++ky)
      for (Index kx = 0; kx < kw_; ++kx) tap_offset_.push_back((ky * dh_ * W_ + kx * dw_) * C_);
  }
  Index rows() const override { return B_ * Ho_ * Wo_; }
  Index cols() const override { return Cg_ * kh_ * kw_; }
  bool stored() const override { return false; }
  core::RowBlock block(Index r0, Index n, MatrixF& scratch) const override {
    scratch.resize(n, cols());
    // (sample, oh, ow) of row r0, then counted on (no divisions per row).
    const Index P = Ho_ * Wo_;
    Index s = r0 / P, oh = r0 % P / Wo_, ow = r0 % Wo_;
    for (Index i = 0; i < n; ++i) {
      row(s, oh, ow, scratch.data() + i * cols());
      if (++ow == Wo_) {
        ow = 0;
        if (++oh == Ho_) {
          oh = 0;
          ++s;
        }
      }
    }
    return core::RowBlock(scratch.data(), n, cols(), Eigen::OuterStride<>(cols()));
  }

 private:
  // The row of (sample n, oh, ow): dst[c * kh*kw + ky * kw + kx] = image(n, c, oh*sh - ph +
  // ky*dh, ow*sw - pw + kx*dw), 0 in the padding.
  void row(Index n, Index oh, Index ow, float* dst) const {
    const Index kk = kh_ * kw_;
    const float* img = image_ + n * H_ * W_ * C_;  // (ih, iw, c) at (ih*W + iw)*C + c
    const Index ih0 = oh * sh_ - ph_, iw0 = ow * sw_ - pw_;
    const bool inside =
        ih0 >= 0 && ih0 + (kh_ - 1) * dh_ < H_ && iw0 >= 0 && iw0 + (kw_ - 1) * dw_ < W_;
    if (kk > kMaxTaps) {
      strided_row(img, ih0, iw0, dst);
      return;
    }
    // Per kernel tap, its Cg channels are contiguous in the source (position-major) and kh*kw
    // apart in the row; a row of zeros where the tap falls in the padding. Inside the image the
    // taps are fixed offsets from the patch's corner (no per-row pointer table: reading back a
    // table just written by vector stores stalls store forwarding).
    if (inside) {
      const float* base = img + (ih0 * W_ + iw0) * C_;
      const Index* off = tap_offset_.data();
      copy_taps([base, off](Index t) { return base + off[t]; }, dst);
      return;
    }
    const float* taps[kMaxTaps];
    for (Index ky = 0; ky < kh_; ++ky)
      for (Index kx = 0; kx < kw_; ++kx) {
        const Index ih = ih0 + ky * dh_, iw = iw0 + kx * dw_;
        taps[ky * kw_ + kx] =
            ih >= 0 && ih < H_ && iw >= 0 && iw < W_ ? img + (ih * W_ + iw) * C_ : zeros_.data();
      }
    copy_taps([&taps](Index t) { return taps[t]; }, dst);
  }

  // dst[c * kh*kw + t] = tap(t)[c].
  template <class Tap>
  void copy_taps(const Tap& tap, float* dst) const {
    const Index kk = kh_ * kw_;
    Index c0 = 0;
#if defined(__AVX2__)
    // Eight channels by eight taps at a time: eight loads, a register transpose, eight stores,
    // instead of 64 scalar stores kh*kw floats apart.
    if (kk >= 8)
      for (; c0 + 8 <= Cg_; c0 += 8) {
        Index t0 = 0;
        for (; t0 + 8 <= kk; t0 += 8) {
          __m256 v[8];
          for (int j = 0; j < 8; ++j) v[j] = _mm256_loadu_ps(tap(t0 + j) + c0);
          transpose8(v);
          for (int i = 0; i < 8; ++i) _mm256_storeu_ps(dst + (c0 + i) * kk + t0, v[i]);
        }
        for (Index t = t0; t < kk; ++t)
          for (Index i = 0; i < 8; ++i) dst[(c0 + i) * kk + t] = tap(t)[c0 + i];
      }
#endif
    // The other channels one by one, in the order of dst.
    for (Index c = c0; c < Cg_; ++c)
      for (Index t = 0; t < kk; ++t) dst[c * kk + t] = tap(t)[c];
  }

  // Kernels of more than kMaxTaps taps: per tap, its channels kh*kw apart in dst.
  void strided_row(const float* img, Index ih0, Index iw0, float* dst) const {
    const Index kk = kh_ * kw_;
    std::fill(dst, dst + Cg_ * kk, 0.f);
    for (Index ky = 0; ky < kh_; ++ky) {
      const Index ih = ih0 + ky * dh_;
      if (ih < 0 || ih >= H_) continue;
      for (Index kx = 0; kx < kw_; ++kx) {
        const Index iw = iw0 + kx * dw_;
        if (iw < 0 || iw >= W_) continue;
        const float* s = img + (ih * W_ + iw) * C_;
        float* d = dst + ky * kw_ + kx;
        for (Index c = 0; c < Cg_; ++c) d[c * kk] = s[c];
      }
    }
  }

#if defined(__AVX2__)
  // v[i][j] <- v[j][i].
  static void transpose8(__m256 v[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; ++i) {
      t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
      t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
    for (int i = 0; i < 2; ++i) {
      u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
      v[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
  }
#endif

  static constexpr Index kMaxTaps = 64;  // larger kernels take the strided loop
  Index C_, H_, W_, Ho_, Wo_, B_, kh_, kw_, sh_, sw_, ph_, pw_, dh_, dw_, Cg_;
  const float* image_;  // the group's first channel of the first sample
  std::vector<float> zeros_;         // a padding tap's channels
  std::vector<Index> tap_offset_;    // per tap (ky, kx): its offset from the patch's corner
};

}  // namespace

Act run_conv(const Layer& L, const Shape& in_shape, const Shape& out_shape, const Act& x, Index B,
             int matrix_index, MatmulProvider& provider) {
  const Index O = out_shape.dims[0], Ho = out_shape.dims[1], Wo = out_shape.dims[2];
  const Index rows_total = B * Ho * Wo;
  const Index G = L.groups, Og = O / G;

  Act y;
  y.image = true;
  y.H = Ho;
  y.W = Wo;
  y.m.resize(rows_total, O);
  MatrixF yg;
  for (Index g = 0; g < G; ++g) {
    MatrixF& target = G == 1 ? y.m : yg;
    target.resize(rows_total, Og);
    provider.matmul(matrix_index, static_cast<int>(g),
                    Im2colRows(L, in_shape, out_shape, x.m.data(), B, g), target);
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

}  // namespace pcmsim::nets::detail
