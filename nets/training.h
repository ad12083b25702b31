// Hardware-aware training through the simulator's own forward (issue 12).
//
// A training step of one analog layer is the evaluation pipeline of nets/simulation.h run on a
// one-layer network holding the layer's current weights: ProgrammedChip (mapping plan, tile
// split, unit-cell targets, programming noise), ChipSnapshot at a drift time drawn for the step
// (drift, accumulated read noise, wire resistance), ConverterSetup (per-layer I/O, ranges
// calibrated on the step's own batch when config.calibrate, GDC references) and ChipForward
// (DAC, one GEMM per tile, read and output noise, ADC, digital unit, GDC). Nothing of the
// physics is re-implemented here: which non-idealities are on is the SimulationConfig's (an
// `ideal` device has no programming noise or drift, out_noise = 0 no output noise, p_in = 0 no
// DAC, ...), so what is trained for is what `pcmsim run` measures with the same config.
//
// The backward is the straight-through estimator: the analog forward is treated as x.W of the
// clean weights, with a zero gradient for inputs the DAC clipped (static_range noise management:
// |x| > input_range * in_bound) and the clipped input in the weight gradient.
//
// Random numbers: the step's key (seed, layer, step) selects every stream: the programming,
// snapshot, tile-forward and calibration streams come from a per-(layer, step) seed, the drift
// time from (seed, step) alone, so all layers of a step see the same time after programming.
// Same key, same bits, for any thread count.
#pragma once

#include <cstdint>
#include <string>

#include "core/rng.h"
#include "core/settings.h"
#include "core/types.h"
#include "nets/simulation.h"

namespace pcmsim::nets {

struct TrainingParams {
  // Drift time of each step, log-uniform over [t_train_min, t_train_max] seconds after
  // programming (t_train_min = t_train_max: always that time; both 0: the programmed state).
  // Default: an hour to a year.
  double t_train_min = 3600.0;
  double t_train_max = 31536000.0;
  // When config.calibrate: the converter ranges of each step are calibrated (as evaluation does,
  // core/calibration.h) on the first calibration_rows rows of the step's layer input.
  std::int64_t calibration_rows = 4096;
  // Learn each layer's DAC input range (static_range noise management) with the LSQ gradient
  // (analog_train_backward) instead of calibrating it per step; the first step starts it at
  // the calibration statistic of its batch. ADC ranges stay calibrated (config.calibrate).
  bool learn_input_ranges = false;

  // Throws std::invalid_argument "[nets::TrainingParams] <field> = <value>: ...".
  void validate() const;
  // validate() and the config (validate()) and the pair: throws naming the parameter when the
  // config cannot be trained, e.g. calibrated output ranges with the ADC off (p_out = 0).
  void check_trainable(const SimulationConfig& config) const;

  template <class V>
  static void fields(V& v) {
    using S = TrainingParams;
    const core::Affects p = core::Affects::programming;
    v.field({"t_train_min", "s", ">= 0, <= t_train_max",
             "shortest drift time of a training step (log-uniform)", p},
            [](S& s) -> auto& { return s.t_train_min; });
    v.field({"t_train_max", "s", ">= t_train_min, finite",
             "longest drift time of a training step (log-uniform)", p},
            [](S& s) -> auto& { return s.t_train_max; });
    v.field({"calibration_rows", "", ">= 1",
             "rows of each step's layer input used to calibrate the converter ranges", p},
            [](S& s) -> auto& { return s.calibration_rows; });
    v.field({"learn_input_ranges", "", "",
             "learn each layer's DAC input range (LSQ gradient) instead of calibrating it", p},
            [](S& s) -> auto& { return s.learn_input_ranges; });
  }
};

// The key of a training step of one layer: seed, layer (the analog layer's number in the model)
// and step (counted by the caller).
core::RngKey training_key(std::uint64_t seed, std::uint32_t layer, std::uint64_t step);

// The drift time of a step (seconds): log-uniform over the params' interval, drawn from
// (key.seed, step) only, so every layer of a step gets the same time.
double training_time(const TrainingParams& params, const core::RngKey& key);

// One analog matrix layer for training: the layer's shape, as the mapper sees it.
struct TrainingLayerShape {
  std::string name = "layer";  // the layer's name in the model (config.layer_precision applies)
  Index in_features = 0;   // linear: inputs; conv2d: in_channels
  Index out_features = 0;  // linear: outputs; conv2d: out_channels
  Index kernel_h = 0;      // 0 = linear; conv2d: kernel height and width (groups = 1)
  Index kernel_w = 0;
  Index rows() const { return kernel_h > 0 ? in_features * kernel_h * kernel_w : in_features; }
};

struct TrainingForward {
  MatrixF y;                  // batch x out_features, pre-bias, weight units (y ~ x . W^T)
  double t_inference = 0;     // the step's drift time, seconds
  double input_clip = 0;      // |x| above this was clipped by the DAC (0 = never clipped)
  double input_range = 0;     // the static input range of the step (learned or calibrated;
                              // 0 = abs_max or none): input_clip = input_range * in_bound
  int dac_bits = 0;           // the layer's p_in
};

// The forward of one training step: `weights` in PyTorch's layout ([out, in] or
// [out, in, kh, kw], as out x rows, row-major), `x` batch x rows (im2col'd for conv2d: rows
// in channel-major, kernel-row, kernel-column order). Runs the evaluation pipeline as described
// above; check_trainable() first. With params.learn_input_ranges, `learned_input_range` is the
// layer's current range (> 0; 0 on the first step: started at the calibration statistic of
// x), returned in input_range.
TrainingForward analog_train_forward(const Eigen::Ref<const MatrixF>& weights,
                                     const Eigen::Ref<const MatrixF>& x,
                                     const TrainingLayerShape& shape,
                                     const SimulationConfig& config,
                                     const TrainingParams& params, const core::RngKey& key,
                                     double learned_input_range = 0);

// The straight-through backward: grad_x = mask(x) * (grad_y . W) and grad_w = grad_y^T .
// clip(x) with mask(x) = |x| <= input_clip (input_clip = 0: no clipping). Shapes as the forward;
// grad_y is batch x out; grad_x and grad_w have the shapes of x and weights. Float32, Eigen
// GEMMs.
//
// With input_range = r > 0 (a learned range; input_clip = r * in_bound) it also returns the
// gradient of r, LSQ's (Esser et al. 2020): the DAC feeds x_hat = r * Q(x / r), so
// d x_hat / d r = Q(u) - u inside the range (u = x / r, Q the dac_bits DAC on [-in_bound,
// in_bound]; 0 without a DAC) and sign(x) * in_bound where it clipped; the sum over the
// elements of grad_x_hat * that, scaled by LSQ's 1 / sqrt(rows * max_level) so that the
// range moves at the pace of the weights. Otherwise returns 0.
double analog_train_backward(const Eigen::Ref<const MatrixF>& weights,
                             const Eigen::Ref<const MatrixF>& x,
                             const Eigen::Ref<const MatrixF>& grad_y, double input_clip,
                             Eigen::Ref<MatrixF> grad_x, Eigen::Ref<MatrixF> grad_w,
                             double input_range = 0, int dac_bits = 0);

// The geometry of a conv2d (groups = 1) on NCHW or NHWC images, for the training im2col.
struct ConvGeometry {
  Index channels = 0, height = 0, width = 0;
  Index kernel_h = 0, kernel_w = 0;
  Index stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  // The images' layout: NCHW (false) or NHWC (true: PyTorch's channels_last, which the outputs
  // of pcmsim.torch's convolutions have, so the next layer's im2col reads channels contiguously).
  bool channels_last = false;
  Index out_h() const { return (height + 2 * pad_h - dilation_h * (kernel_h - 1) - 1) / stride_h + 1; }
  Index out_w() const { return (width + 2 * pad_w - dilation_w * (kernel_w - 1) - 1) / stride_w + 1; }
  Index rows() const { return channels * kernel_h * kernel_w; }
  // Throws std::invalid_argument "[nets::ConvGeometry] <field> = <value>: ..." (sizes >= 1,
  // padding >= 0, at least one output position).
  void validate() const;
};

// im2col of a batch of NCHW (or NHWC: channels_last) images (batch x channels*height*width,
// row-major) into (batch*out_h*out_w) x rows: row (n, oh, ow), column (c, ky, kx) with zero
// padding: the layer input of analog_train_forward, without the transposed copy that torch's
// unfold needs.
void training_im2col(const Eigen::Ref<const MatrixF>& images, const ConvGeometry& geometry,
                     Eigen::Ref<MatrixF> cols);
// Its adjoint: the gradient of the images from the gradient of the columns (each image value
// gets the sum of the column entries it was copied to). Same bits for any thread count
// (parallel over samples, a fixed order within one).
void training_col2im(const Eigen::Ref<const MatrixF>& cols, const ConvGeometry& geometry,
                     Eigen::Ref<MatrixF> images);

}  // namespace pcmsim::nets
