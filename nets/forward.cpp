// The batched forward pass: runs the layers in order on the kernels of nets/layer_kernels.h, the
// matrix products through a MatmulProvider (Fp32Matmul: the digital reference).
#include "nets/forward.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/gemm.h"
#include "nets/layer_kernels.h"

namespace pcmsim::nets {

using core::concat;
using namespace detail;

// ------------------------------------------------------------------------------ Fp32Matmul

Fp32Matmul::Fp32Matmul(const Network& net) : layers_(matrix_layers(net)) {
  packed_.resize(layers_.size());
  for (std::size_t i = 0; i < layers_.size(); ++i)
    for (const MatrixF& w : layers_[i].weights) {
      packed_[i].emplace_back();
      packed_[i].back().pack(w);
    }
}

void Fp32Matmul::matmul(int mi, int group, const core::RowSource& x, MatrixF& y) {
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
  const core::PackedWeights& packed =
      packed_[static_cast<std::size_t>(mi)][static_cast<std::size_t>(group)];
  const Index P = x.rows();
  y.resize(P, m.cols);
  const Index blocks = (P + kPositionBlock - 1) / kPositionBlock;
  const int threads = std::max(1, omp_get_max_threads());
  if (static_cast<int>(scratch_.size()) < threads) scratch_.resize(threads);
  // Fixed blocks of positions: each row of y is computed the same way whatever the thread count.
#pragma omp parallel for schedule(static) if (blocks > 1)
  for (Index b = 0; b < blocks; ++b) {
    const Index r0 = b * kPositionBlock, len = std::min(kPositionBlock, P - r0);
    const core::RowBlock xb = x.block(r0, len, scratch_[static_cast<std::size_t>(omp_get_thread_num())]);
    core::gemm_packed(len, xb.data(), xb.outerStride(), packed, y.data() + r0 * y.outerStride(),
                      y.outerStride());
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
    // The first input as the start of an in-place output: moved when this layer is its only
    // and last reader, else copied.
    auto x_for_update = [&]() -> Act {
      const int j = ins.empty() ? kNetworkInput : ins[0];
      if (j == kNetworkInput || last_use[static_cast<std::size_t>(j)] != i ||
          std::count(ins.begin(), ins.end(), j) != 1)
        return x;
      return std::move(outs[static_cast<std::size_t>(j)]);
    };
    Act y, tmp;
    const Shape& in = S.inputs.empty() ? S.output : S.inputs[0];
    switch (L.kind) {
      case LayerKind::linear: {
        const Act& xp = as_plain(x, B, tmp);
        const Index pos = in.size() / L.in_features;  // over the last axis
        y.m.resize(B * pos, L.out_features);
        provider.matmul(
            matrix_index++, 0,
            core::MatrixRows(Eigen::Map<const MatrixF>(xp.m.data(), B * pos, L.in_features)), y.m);
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
        y = x_for_update();
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
        y = x_for_update();
        map_inplace(y.m, [](float v) { return std::sqrt(v); });
        break;
      case LayerKind::erf:
        y = x_for_update();
        map_inplace(y.m, [](float v) { return std::erf(v); });
        break;
      case LayerKind::pow: {
        y = x_for_update();
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
        y = x_for_update();
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