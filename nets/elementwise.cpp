// Element-wise work of the forward pass: activations (standalone or fused into a layer) and
// per-channel affine maps (bias, batch norm), one vectorisable loop per kind where possible.
#include "nets/layer_kernels.h"

#include <algorithm>
#include <cmath>

namespace pcmsim::nets::detail {

namespace {

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

}  // namespace

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
  apply_elementwise(m, activation_kind(L.activation), plain);
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

}  // namespace pcmsim::nets::detail

namespace pcmsim::nets {

LayerKind activation_kind(Activation a) {
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

}  // namespace pcmsim::nets
