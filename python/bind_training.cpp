// Python bindings of hardware-aware training (nets/training.h): TrainingParams, the training
// forward (the evaluation pipeline on the step's weights) and its straight-through backward.
// pcmsim.torch wraps them in autograd functions; arrays cross without a copy (float32,
// C-contiguous views in, NumPy arrays owning the C++ result out).
#include "nets/training.h"
#include "python/bind_common.h"

#include <tuple>
#include <utility>

namespace pcmsim::python {
namespace {

using namespace nets;

// A NumPy array that takes over a matrix's buffer (no copy).
py::array_t<float> adopt(MatrixF&& m) {
  auto* owned = new MatrixF(std::move(m));
  py::capsule free_when_done(owned, [](void* p) { delete static_cast<MatrixF*>(p); });
  return py::array_t<float>({static_cast<py::ssize_t>(owned->rows()),
                             static_cast<py::ssize_t>(owned->cols())},
                            owned->data(), free_when_done);
}

void bind_training(py::module_& m) {
  StructBinder<TrainingParams>(m, "TrainingParams",
                               "Hardware-aware training settings beside a SimulationConfig: the "
                               "drift-time distribution of the training steps (log-uniform, "
                               "seconds) and the rows used to calibrate ranges per step.")
      .settings()
      .def("validate", &TrainingParams::validate)
      .def("check_trainable", &TrainingParams::check_trainable, py::arg("config"),
           "ValueError naming the parameter when `config` cannot be trained.");

  m.def("training_key", &training_key, py::arg("seed"), py::arg("layer"), py::arg("step"),
        "The random key of one training step of one layer.");
  m.def("training_time", &training_time, py::arg("params"), py::arg("key"),
        "The drift time (s) of a training step: log-uniform over [t_train_min, t_train_max], "
        "the same for every layer of the step.");

  m.def(
      "analog_train_forward",
      [](py::handle weights, py::handle x, const std::string& name, Index in_features,
         Index out_features, Index kernel_h, Index kernel_w, const SimulationConfig& config,
         const TrainingParams& params, const core::RngKey& key, double learned_input_range) {
        const char* where = "pcmsim.analog_train_forward";
        TrainingLayerShape shape{name, in_features, out_features, kernel_h, kernel_w};
        const auto w = matrix_view(weights, where, "weights", shape.rows(), true);
        const auto xv = matrix_view(x, where, "x", shape.rows(), true);
        TrainingForward out;
        {
          py::gil_scoped_release release;
          out = analog_train_forward(w, xv, shape, config, params, key, learned_input_range);
        }
        return py::make_tuple(adopt(std::move(out.y)), out.t_inference, out.input_clip,
                              out.input_range, out.dac_bits);
      },
      py::arg("weights"), py::arg("x"), py::arg("name"), py::arg("in_features"),
      py::arg("out_features"), py::arg("kernel_h") = 0, py::arg("kernel_w") = 0,
      py::arg("config"), py::arg("params"), py::arg("key"), py::arg("learned_input_range") = 0.0,
      "One training step's forward of an analog layer through the evaluation pipeline "
      "(nets/training.h). weights: [out, in(, kh, kw)] float32; x: batch x rows (im2col'd for a "
      "conv); learned_input_range: the layer's learned range with params.learn_input_ranges (0 "
      "on the first step). Returns (y [batch, out] float32, t_inference s, input_clip, "
      "input_range, dac_bits).");
  m.def(
      "analog_train_backward",
      [](py::handle weights, py::handle x, py::handle grad_y, double input_clip,
         double input_range, int dac_bits) {
        const char* where = "pcmsim.analog_train_backward";
        const auto w = matrix_view(weights, where, "weights", -1, true);
        const auto xv = matrix_view(x, where, "x", w.cols(), true);
        const auto gy = matrix_view(grad_y, where, "grad_y", w.rows(), true);
        py::array_t<float> gx({static_cast<py::ssize_t>(xv.rows()),
                               static_cast<py::ssize_t>(xv.cols())});
        py::array_t<float> gw({static_cast<py::ssize_t>(w.rows()),
                               static_cast<py::ssize_t>(w.cols())});
        Eigen::Map<MatrixF> gxm(gx.mutable_data(), xv.rows(), xv.cols());
        Eigen::Map<MatrixF> gwm(gw.mutable_data(), w.rows(), w.cols());
        double grad_range = 0;
        {
          py::gil_scoped_release release;
          grad_range =
              analog_train_backward(w, xv, gy, input_clip, gxm, gwm, input_range, dac_bits);
        }
        return py::make_tuple(gx, gw, grad_range);
      },
      py::arg("weights"), py::arg("x"), py::arg("grad_y"), py::arg("input_clip") = 0.0,
      py::arg("input_range") = 0.0, py::arg("dac_bits") = 0,
      "Straight-through backward: (grad_x, grad_w, grad_input_range) of y = x . W^T for the "
      "clean weights, zero gradient for inputs beyond input_clip (0 = none); with a learned "
      "input_range > 0 (input_clip = input_range * in_bound) the LSQ gradient of the range, "
      "else 0.");

  // im2col / col2im of a conv2d on NCHW or NHWC images, for pcmsim.torch's AnalogConv2d. The
  // geometry is validated before the output is sized from it.
  using Pair = std::pair<Index, Index>;
  auto geometry = [](Index channels, Index height, Index width, Pair kernel, Pair stride,
                     Pair padding, Pair dilation, bool channels_last) {
    ConvGeometry g;
    g.channels_last = channels_last;
    g.channels = channels;
    g.height = height;
    g.width = width;
    std::tie(g.kernel_h, g.kernel_w) = kernel;
    std::tie(g.stride_h, g.stride_w) = stride;
    std::tie(g.pad_h, g.pad_w) = padding;
    std::tie(g.dilation_h, g.dilation_w) = dilation;
    g.validate();
    return g;
  };
  m.def(
      "training_im2col",
      [geometry](py::handle images, Index channels, Index height, Index width, Pair kernel,
                 Pair stride, Pair padding, Pair dilation, bool channels_last) {
        const ConvGeometry g =
            geometry(channels, height, width, kernel, stride, padding, dilation, channels_last);
        const auto x = matrix_view(images, "pcmsim.training_im2col", "images",
                                   channels * height * width, true);
        py::array_t<float> cols({static_cast<py::ssize_t>(x.rows() * g.out_h() * g.out_w()),
                                 static_cast<py::ssize_t>(g.rows())});
        Eigen::Map<MatrixF> cm(cols.mutable_data(), x.rows() * g.out_h() * g.out_w(), g.rows());
        {
          py::gil_scoped_release release;
          training_im2col(x, g, cm);
        }
        return cols;
      },
      py::arg("images"), py::arg("channels"), py::arg("height"), py::arg("width"),
      py::arg("kernel"), py::arg("stride") = Pair{1, 1}, py::arg("padding") = Pair{0, 0},
      py::arg("dilation") = Pair{1, 1}, py::arg("channels_last") = false,
      "im2col of NCHW (channels_last: NHWC) images (float32, C-contiguous, batch first) into "
      "(batch*H_out*W_out, C*kh*kw): rows sample-major then output position, columns "
      "channel-major then kernel row and column, zero padding (the layout of "
      "analog_train_forward's x).");
  m.def(
      "training_col2im",
      [geometry](py::handle cols, Index batch, Index channels, Index height, Index width,
                 Pair kernel, Pair stride, Pair padding, Pair dilation, bool channels_last) {
        const ConvGeometry g =
            geometry(channels, height, width, kernel, stride, padding, dilation, channels_last);
        const auto c = matrix_view(cols, "pcmsim.training_col2im", "cols", g.rows());
        if (batch < 1) throw py::value_error("[pcmsim.training_col2im] batch must be >= 1");
        std::vector<py::ssize_t> shape{batch, channels, height, width};
        if (channels_last) shape = {batch, height, width, channels};
        py::array_t<float> images(shape);
        Eigen::Map<MatrixF> im(images.mutable_data(), batch, channels * height * width);
        {
          py::gil_scoped_release release;
          training_col2im(c, g, im);
        }
        return images;
      },
      py::arg("cols"), py::arg("batch"), py::arg("channels"), py::arg("height"),
      py::arg("width"), py::arg("kernel"), py::arg("stride") = Pair{1, 1},
      py::arg("padding") = Pair{0, 0}, py::arg("dilation") = Pair{1, 1},
      py::arg("channels_last") = false,
      "The adjoint of training_im2col: (batch, C, H, W) images ((batch, H, W, C) with "
      "channels_last) whose values are the sums of the column entries they were copied to (the "
      "gradient of the images).");
}

}  // namespace

PCMSIM_BIND(43, bind_training);

}  // namespace pcmsim::python
