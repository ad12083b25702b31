#include "nets/training.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/calibration.h"
#include "core/error.h"
#include "core/gemm.h"
#include "core/quantiser.h"

namespace pcmsim::nets {
namespace {
constexpr const char* kWhere = "nets::TrainingParams";
constexpr const char* kForward = "nets::analog_train_forward";
// Stream of the drift-time draw (Stage::user, layer marker, sub).
constexpr std::uint32_t kTimeLayer = 0xffffffffu;
}  // namespace

void TrainingParams::validate() const {
  core::require_non_negative(kWhere, "t_train_min", t_train_min);
  core::require_finite(kWhere, "t_train_max", t_train_max);
  if (!(t_train_max >= t_train_min))
    core::throw_invalid(kWhere, core::concat("t_train_max = ", t_train_max,
                                             ": must be >= t_train_min = ", t_train_min));
  if (t_train_min == 0 && t_train_max > 0)
    core::throw_invalid(kWhere, core::concat("t_train_min = 0 with t_train_max = ", t_train_max,
                                             ": a log-uniform time needs t_train_min > 0 (or "
                                             "both 0 for the programmed state)"));
  if (calibration_rows < 1)
    core::throw_invalid(kWhere,
                        core::concat("calibration_rows = ", calibration_rows, ": must be >= 1"));
}

void TrainingParams::check_trainable(const SimulationConfig& config) const {
  validate();
  config.validate();
  const core::IoParams& io = config.io;
  if (io.noise_management == core::NoiseManagement::static_range && !config.calibrate &&
      !learn_input_ranges)
    core::throw_invalid(kWhere, "io.noise_management = static_range with calibrate = false: the "
                                "input range would stay 1 in every training step; set calibrate "
                                "(ranges calibrated on each step's batch), learn_input_ranges, "
                                "or use abs_max");
  if (learn_input_ranges && io.noise_management != core::NoiseManagement::static_range)
    core::throw_invalid(kWhere, core::concat("learn_input_ranges with io.noise_management = ",
                                             core::to_string(io.noise_management),
                                             ": only static_range uses an input range"));
  if (learn_input_ranges && io.p_in == 0)
    core::throw_invalid(kWhere, "io.p_in = 0 with learn_input_ranges: there is no DAC whose "
                                "range could be learned; set p_in >= 2");
  if (config.calibrate && config.calibration.calibrate_output && io.p_out == 0)
    core::throw_invalid(kWhere, "io.p_out = 0 with calibrated ADC ranges (calibrate = true, "
                                "calibration_output = true): there is no ADC whose range could "
                                "be trained for; set p_out >= 2 or calibration_output = false");
}

core::RngKey training_key(std::uint64_t seed, std::uint32_t layer, std::uint64_t step) {
  return core::RngKey{seed, core::Stage::user, layer, static_cast<std::uint32_t>(step >> 32),
                      static_cast<std::uint32_t>(step), 0};
}

double training_time(const TrainingParams& params, const core::RngKey& key) {
  params.validate();
  if (params.t_train_min == params.t_train_max) return params.t_train_min;
  float u = 0;
  core::fill_uniform(key.with_layer(kTimeLayer), 0, 0, 1, &u);
  const double lo = std::log(params.t_train_min), hi = std::log(params.t_train_max);
  return std::exp(lo + (hi - lo) * static_cast<double>(u));
}

TrainingForward analog_train_forward(const Eigen::Ref<const MatrixF>& weights,
                                     const Eigen::Ref<const MatrixF>& x,
                                     const TrainingLayerShape& shape,
                                     const SimulationConfig& config,
                                     const TrainingParams& params, const core::RngKey& key,
                                     double learned_input_range) {
  params.check_trainable(config);
  if (!(learned_input_range >= 0) || !std::isfinite(learned_input_range))
    core::throw_invalid(kForward, core::concat("layer '", shape.name, "': learned_input_range = ",
                                               learned_input_range,
                                               ": must be finite and >= 0 (0: start from the "
                                               "batch; a learned range that went negative: "
                                               "lower the learning rate)"));
  if (learned_input_range > 0 && !params.learn_input_ranges)
    core::throw_invalid(kForward, core::concat("layer '", shape.name, "': learned_input_range = ",
                                               learned_input_range,
                                               " given with learn_input_ranges off"));
  const Index rows = shape.rows();
  if (shape.in_features < 1 || shape.out_features < 1 || shape.kernel_h < 0 ||
      shape.kernel_w < 0 || (shape.kernel_h > 0) != (shape.kernel_w > 0))
    core::throw_invalid(kForward, core::concat("layer '", shape.name, "': shape in = ",
                                               shape.in_features, ", out = ", shape.out_features,
                                               ", kernel = ", shape.kernel_h, "x",
                                               shape.kernel_w, ": invalid"));
  if (weights.rows() != shape.out_features || weights.cols() != rows)
    core::throw_invalid(kForward, core::concat("layer '", shape.name, "': weights are ",
                                               weights.rows(), "x", weights.cols(),
                                               ", expected ", shape.out_features, "x", rows));
  if (x.cols() != rows || x.rows() < 1)
    core::throw_invalid(kForward, core::concat("layer '", shape.name, "': input is ", x.rows(),
                                               "x", x.cols(), ", expected batch x ", rows));

  // The one-layer network holding the current weights (a flatten before a linear layer, after
  // a conv2d, whose single output position then gives out_features classes).
  Network net;
  net.name = shape.name;
  Layer layer;
  if (shape.kernel_h > 0) {
    net.input_shape = {shape.in_features, shape.kernel_h, shape.kernel_w};
    layer = Layer::make_conv2d(shape.name, shape.in_features, shape.out_features,
                               {shape.kernel_h, shape.kernel_w});
    layer.weight.shape = {shape.out_features, shape.in_features, shape.kernel_h, shape.kernel_w};
  } else {
    net.input_shape = {shape.in_features, 1, 1};
    net.layers.push_back(Layer::make(shape.name + "_flatten", LayerKind::flatten));
    layer = Layer::make_linear(shape.name, shape.in_features, shape.out_features);
    layer.weight.shape = {shape.out_features, shape.in_features};
  }
  layer.weight.data.assign(weights.data(), weights.data() + weights.size());
  if (params.learn_input_ranges) {
    // The first step starts the range where calibration would put it on its batch (the same
    // statistic and headroom; an all-zero batch is calibration's error).
    double range = learned_input_range;
    if (range == 0) {
      core::CalibrationParams input_only = config.calibration;
      input_only.calibrate_input = true;
      input_only.calibrate_output = false;
      const Index n = std::min<Index>(x.rows(), params.calibration_rows);
      range = core::calibrate_ranges({}, {MatrixF(x.topRows(n))}, input_only, key).input_range;
    }
    layer.learned_input_range = range;
  }
  net.layers.push_back(std::move(layer));
  if (shape.kernel_h > 0) net.layers.push_back(Layer::make(shape.name + "_flatten", LayerKind::flatten));
  net.num_classes = shape.out_features;
  net.input_mean = std::vector<float>(static_cast<std::size_t>(net.input_shape[0]), 0.0f);
  net.input_std = std::vector<float>(static_cast<std::size_t>(net.input_shape[0]), 1.0f);

  // The config of this layer: its own layer_precision entry; it is analog (the caller keeps
  // digital layers out of training); every stream keyed by (seed, layer, step).
  SimulationConfig c = config;
  c.layer_precision.clear();
  const auto it = config.layer_precision.find(shape.name);
  if (it != config.layer_precision.end()) c.layer_precision[shape.name] = it->second;
  c.mapper.digital_layers.clear();
  c.use_learned_input_ranges = params.learn_input_ranges;
  c.seed = key.philox_key();

  TrainingForward out;
  out.t_inference = training_time(params, key);
  const ProgrammedChip chip(net, c, 0);
  const ChipSnapshot snapshot = chip.at(out.t_inference);
  MatrixF calibration;
  if (c.calibrate) calibration = x.topRows(std::min<Index>(x.rows(), params.calibration_rows));
  const ConverterSetup converters(chip, c, c.calibrate ? &calibration : nullptr);
  ChipForward forward(chip, converters, snapshot);
  forward.begin_batch(0, x.rows());
  forward.matmul(0, 0, core::MatrixRows(x), out.y);

  const core::IoParams& io = converters.io(0);
  out.dac_bits = io.p_in;
  if (params.learn_input_ranges && io.p_in == 0)
    core::throw_invalid(kForward, core::concat("layer '", shape.name, "': p_in = 0 (layer_precision) "
                                               "with learn_input_ranges: no DAC range to learn"));
  if (io.noise_management == core::NoiseManagement::static_range) {
    const auto ranges = converters.calibrated_ranges().find({0, 0});
    out.input_range = params.learn_input_ranges ? chip.layers().front().learned_input_range
                      : ranges != converters.calibrated_ranges().end() &&
                              ranges->second.input_range > 0
                          ? ranges->second.input_range
                          : 1.0;
    if (!io.bound_management_active() && std::isfinite(io.in_bound))
      out.input_clip = out.input_range * io.in_bound;
  }
  return out;
}

double analog_train_backward(const Eigen::Ref<const MatrixF>& weights,
                             const Eigen::Ref<const MatrixF>& x,
                             const Eigen::Ref<const MatrixF>& grad_y, double input_clip,
                             Eigen::Ref<MatrixF> grad_x, Eigen::Ref<MatrixF> grad_w,
                             double input_range, int dac_bits) {
  constexpr const char* kBackward = "nets::analog_train_backward";
  if (x.cols() != weights.cols() || grad_y.cols() != weights.rows() ||
      grad_y.rows() != x.rows())
    core::throw_invalid(kBackward, core::concat("shapes: weights ", weights.rows(), "x",
                                                weights.cols(), ", x ", x.rows(), "x", x.cols(),
                                                ", grad_y ", grad_y.rows(), "x",
                                                grad_y.cols(), ": inconsistent"));
  core::require_non_negative(kBackward, "input_clip", input_clip);
  if (grad_x.rows() != x.rows() || grad_x.cols() != x.cols() ||
      grad_w.rows() != weights.rows() || grad_w.cols() != weights.cols())
    core::throw_invalid(kBackward, "grad_x / grad_w: wrong shape (must match x / weights)");
  core::require_non_negative(kBackward, "input_range", input_range);
  if (input_range > 0 && !(input_clip > 0))
    core::throw_invalid(kBackward, core::concat("input_range = ", input_range,
                                                " needs the DAC's clip (input_clip > 0)"));
  // The products through the fastest sgemm (core::gemm_plain), cut into fixed blocks (never
  // by the thread count) so that the bits are the same for any number of threads.
  constexpr Index kRowBlock = 1024, kColBlock = 64;
  const Index n = x.rows(), rows = x.cols(), cols = weights.rows();
  const Index row_blocks = (n + kRowBlock - 1) / kRowBlock;
#pragma omp parallel for schedule(static) if (row_blocks > 1)
  for (Index blk = 0; blk < row_blocks; ++blk) {
    const Index b0 = blk * kRowBlock, m = std::min(kRowBlock, n - b0);
    core::gemm_plain(m, rows, cols, grad_y.data() + b0 * grad_y.outerStride(),
                     grad_y.outerStride(), weights.data(), weights.outerStride(),
                     grad_x.data() + b0 * grad_x.outerStride(), grad_x.outerStride());
  }
  // grad_w = grad_y^T x, per block of grad_w's columns.
  auto weight_gradient = [&](const float* xd, Index ldx) {
    const Index col_blocks = (rows + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (col_blocks > 1)
    for (Index blk = 0; blk < col_blocks; ++blk) {
      const Index c0 = blk * kColBlock, w = std::min(kColBlock, rows - c0);
      core::gemm_plain_at(cols, w, n, grad_y.data(), grad_y.outerStride(), xd + c0, ldx,
                          grad_w.data() + c0, grad_w.outerStride());
    }
  };
  double grad_range = 0;
  if (input_range > 0) {
    // LSQ: d x_hat / d r = Q(u) - u inside, sign(u) * in_bound outside (u = x / r); summed in
    // double in element order (the same bits for any thread count).
    const double bound = input_clip / input_range;
    const core::QuantiserSpec dac{dac_bits, bound};
    const double levels = static_cast<double>(dac.max_level());
    const double inv_step = dac.inv_step();
    const float* xd = x.data();
    const float* g = grad_x.data();
    for (Index i = 0; i < grad_x.size(); ++i) {
      const double u = static_cast<double>(xd[i]) / input_range;
      double d;
      if (std::fabs(u) > bound)
        d = std::copysign(bound, u);
      else
        d = dac_bits == 0 ? 0.0 : core::round_ties_away(u * inv_step) / inv_step - u;
      grad_range += static_cast<double>(g[i]) * d;
    }
    grad_range /= std::sqrt(static_cast<double>(x.cols()) * std::max(1.0, levels));
  }
  const float c = static_cast<float>(input_clip);
  if (input_clip > 0 && x.size() > 0 && !(x.cwiseAbs().maxCoeff() <= c)) {
    // The weights saw the clipped inputs; clipped inputs get no gradient (STE of the clip).
    const MatrixF xc = x.cwiseMax(-c).cwiseMin(c);
    weight_gradient(xc.data(), xc.outerStride());
    const float* xd = x.data();
    float* g = grad_x.data();
    for (Index i = 0; i < grad_x.size(); ++i)
      if (!(std::fabs(xd[i]) <= c)) g[i] = 0.0f;
  } else {
    weight_gradient(x.data(), x.outerStride());
  }
  return grad_range;
}

void ConvGeometry::validate() const {
  constexpr const char* kGeometry = "nets::ConvGeometry";
  const std::pair<const char*, Index> positive[] = {
      {"channels", channels}, {"height", height},       {"width", width},
      {"kernel_h", kernel_h}, {"kernel_w", kernel_w},   {"stride_h", stride_h},
      {"stride_w", stride_w}, {"dilation_h", dilation_h}, {"dilation_w", dilation_w}};
  for (const auto& [name, v] : positive)
    if (v < 1) core::throw_invalid(kGeometry, core::concat(name, " = ", v, ": must be >= 1"));
  if (pad_h < 0 || pad_w < 0)
    core::throw_invalid(kGeometry, core::concat("padding = ", pad_h, "x", pad_w, ": must be >= 0"));
  if (out_h() < 1 || out_w() < 1)
    core::throw_invalid(kGeometry, core::concat("kernel ", kernel_h, "x", kernel_w, " on ", height,
                                                "x", width, " (padding ", pad_h, "x", pad_w,
                                                "): no output position"));
}

namespace {
// Calls f(image_offset, column_offset) for every in-image tap of sample n and pad(column_offset)
// for every padding tap, in a fixed order. NCHW: per output row and column entry (c, ky, kx),
// the row's positions (the in-image output columns of a kernel column are one interval, found
// once, so the inner loop is a strided copy without checks). NHWC: per output position and
// kernel tap, the tap's channels, which are contiguous in the image.
template <class F, class Pad>
void for_each_tap(const ConvGeometry& g, Index n, F&& f, Pad&& pad) {
  const Index H = g.height, W = g.width, Ho = g.out_h(), Wo = g.out_w();
  const Index kh = g.kernel_h, kw = g.kernel_w, kk = kh * kw, rows = g.rows();
  const Index image = n * g.channels * H * W, col_base = n * Ho * Wo * rows;
  if (!g.channels_last) {
    // Per kernel column kx: ow in [lo, hi) keeps iw = ow * stride_w + dx inside [0, W).
    std::vector<Index> lo(static_cast<std::size_t>(kw)), hi(lo.size());
    for (Index kx = 0; kx < kw; ++kx) {
      const Index dx = kx * g.dilation_w - g.pad_w;
      Index l = 0, h = Wo;
      while (l < Wo && l * g.stride_w + dx < 0) ++l;
      while (h > l && (h - 1) * g.stride_w + dx >= W) --h;
      lo[std::size_t(kx)] = l;
      hi[std::size_t(kx)] = h;
    }
    // One output row at a time, so its columns block (Wo x rows) stays in the L1 cache.
    for (Index oh = 0; oh < Ho; ++oh)
      for (Index c = 0; c < g.channels; ++c)
        for (Index ky = 0; ky < kh; ++ky) {
          const Index ih = oh * g.stride_h - g.pad_h + ky * g.dilation_h;
          const bool inside = ih >= 0 && ih < H;
          const Index src = image + (c * H + ih) * W;
          for (Index kx = 0; kx < kw; ++kx) {
            const Index col_row = col_base + oh * Wo * rows + c * kk + ky * kw + kx;
            const Index dx = kx * g.dilation_w - g.pad_w;
            const Index l = inside ? lo[std::size_t(kx)] : Wo, h = inside ? hi[std::size_t(kx)] : Wo;
            for (Index ow = 0; ow < l; ++ow) pad(col_row + ow * rows);
            for (Index ow = l; ow < h; ++ow) f(src + ow * g.stride_w + dx, col_row + ow * rows);
            for (Index ow = h; ow < Wo; ++ow) pad(col_row + ow * rows);
          }
        }
    return;
  }
  for (Index oh = 0; oh < Ho; ++oh)
    for (Index ow = 0; ow < Wo; ++ow) {
      const Index col0 = col_base + (oh * Wo + ow) * rows;
      const Index ih0 = oh * g.stride_h - g.pad_h, iw0 = ow * g.stride_w - g.pad_w;
      for (Index ky = 0; ky < kh; ++ky) {
        const Index ih = ih0 + ky * g.dilation_h;
        for (Index kx = 0; kx < kw; ++kx) {
          const Index iw = iw0 + kx * g.dilation_w;
          const Index dst = col0 + ky * kw + kx;
          if (ih < 0 || ih >= H || iw < 0 || iw >= W) {
            for (Index c = 0; c < g.channels; ++c) pad(dst + c * kk);
            continue;
          }
          const Index src = image + (ih * W + iw) * g.channels;
          for (Index c = 0; c < g.channels; ++c) f(src + c, dst + c * kk);
        }
      }
    }
}

void check_im2col_shapes(const char* where, const ConvGeometry& g, Index batch, Index image_cols,
                         Index col_rows, Index col_cols) {
  g.validate();
  const Index positions = g.out_h() * g.out_w();
  if (image_cols != g.channels * g.height * g.width || col_cols != g.rows() ||
      col_rows != batch * positions)
    core::throw_invalid(where, core::concat("images are ", batch, "x", image_cols, ", columns ",
                                            col_rows, "x", col_cols, "; the geometry needs ",
                                            batch, "x", g.channels * g.height * g.width, " and ",
                                            batch * positions, "x", g.rows()));
}
}  // namespace

void training_im2col(const Eigen::Ref<const MatrixF>& images, const ConvGeometry& geometry,
                     Eigen::Ref<MatrixF> cols) {
  check_im2col_shapes("nets::training_im2col", geometry, images.rows(), images.cols(),
                      cols.rows(), cols.cols());
  const float* src = images.data();
  float* dst = cols.data();
  const Index batch = images.rows();
#pragma omp parallel for schedule(static)
  for (Index n = 0; n < batch; ++n)
    for_each_tap(geometry, n, [&](Index i, Index j) { dst[j] = src[i]; },
                 [&](Index j) { dst[j] = 0.0f; });
}

void training_col2im(const Eigen::Ref<const MatrixF>& cols, const ConvGeometry& geometry,
                     Eigen::Ref<MatrixF> images) {
  check_im2col_shapes("nets::training_col2im", geometry, images.rows(), images.cols(),
                      cols.rows(), cols.cols());
  const float* src = cols.data();
  float* dst = images.data();
  const Index batch = images.rows(), image = images.cols();
#pragma omp parallel for schedule(static)
  for (Index n = 0; n < batch; ++n) {
    std::fill(dst + n * image, dst + (n + 1) * image, 0.0f);
    for_each_tap(geometry, n, [&](Index i, Index j) { dst[i] += src[j]; }, [](Index) {});
  }
}

}  // namespace pcmsim::nets
