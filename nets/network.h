// Stage 1 of the pipeline: the passive description of a network.
//
// A Network is a list of layers in execution order (name, kind, parameters, weights in
// PyTorch's layouts, fused activation) plus the graph edges (each layer's inputs) for residual
// networks. It does no computation; nets/forward.h runs it. The HDF5 file format is in
// docs/formats.md; nets/model_io.h reads and writes it.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/types.h"
#include "mapping/chip_spec.h"

namespace pcmsim::nets {

using core::Index;
using core::MatrixF;

enum class LayerKind {
  linear,
  conv2d,
  batchnorm1d,
  batchnorm2d,
  // element-wise activations
  relu,
  relu6,
  leaky_relu,
  sigmoid,
  tanh,
  gelu,
  silu,
  elu,
  hardtanh,
  hardswish,
  hardsigmoid,
  // over the feature vector (1-D input)
  softmax,
  log_softmax,
  // pooling and reshaping
  maxpool2d,
  avgpool2d,
  global_avgpool,
  flatten,
  add,
  identity,
  dropout,
  // added for transformers and imported (ONNX) graphs; see docs/formats.md
  conv1d,               // (C, L) -> (O, L'); on tiles like conv2d with a 1-row kernel
  adaptive_avgpool2d,   // (C, H, W) -> (C, oh, ow), PyTorch's AdaptiveAvgPool2d
  pad,                  // constant / reflect / replicate padding of the trailing axes
  concat,               // two or more inputs joined along `axis`
  layernorm,            // over the trailing axes `shape` (normalized_shape)
  reshape,              // to `shape` (one -1 allowed), C order
  transpose,            // permutes the per-sample axes by `perm`
  matmul,               // two activations, batched over leading axes (digital: no weights)
  scale,                // y = x * scale + shift, two scalars
  constant,             // no input: outputs `weight` (a learned tensor, e.g. a position embedding)
  embedding,            // integer-valued input -> rows of `weight` [num_embeddings, dim] (digital)
  // element-wise arithmetic of imported graphs (add above broadcasts too)
  sub,                  // a - b, NumPy broadcasting of the per-sample shapes
  mul,                  // a * b, broadcasting
  div,                  // a / b, broadcasting
  sqrt,
  erf,
  pow,                  // x ^ exponent
  reduce_mean,          // mean over `axes` (keepdims)
};

// Padding modes of LayerKind::pad (PyTorch's F.pad / ONNX Pad names).
enum class PadMode { constant, reflect, replicate };
std::string_view pad_mode_name(PadMode m);
std::optional<PadMode> parse_pad_mode(std::string_view name);

// The file-format name of a kind ("conv2d", "leaky_relu", ...) and back (nullopt if unknown).
std::string_view kind_name(LayerKind kind);
std::optional<LayerKind> parse_kind(std::string_view name);
// All kind names, for error messages ("one of linear, conv2d, ...").
std::string all_kind_names();
bool is_activation(LayerKind kind);  // element-wise, one input
bool is_matrix(LayerKind kind);      // linear, conv2d or conv1d (placed on tiles)
bool is_binary(LayerKind kind);      // add, sub, mul, div (two inputs, broadcasting)

// Activation fused after linear/conv2d/batchnorm/add: the parameter-free activations.
enum class Activation { none, relu, relu6, sigmoid, tanh, gelu, silu, hardswish, hardsigmoid };
std::string_view activation_name(Activation a);
std::optional<Activation> parse_activation(std::string_view name);
// The element-wise layer that computes a fused activation (identity for none).
LayerKind activation_kind(Activation a);

// A dense float32 tensor in row-major (C) order with its shape (PyTorch layout).
struct Tensor {
  std::vector<float> data;
  std::vector<Index> shape;
  bool empty() const { return data.empty() && shape.empty(); }
  Index numel() const;
};

// Per-sample shape of a layer's input or output: {C, H, W} (image), {F} (features), or any
// other rank (e.g. {T, D}, a sequence of T tokens of D features).
struct Shape {
  std::vector<Index> dims;
  bool is_image() const { return dims.size() == 3; }
  Index rank() const { return static_cast<Index>(dims.size()); }
  Index size() const;
  std::string str() const;  // "(16, 14, 14)"
  bool operator==(const Shape& o) const { return dims == o.dims; }
  bool operator!=(const Shape& o) const { return dims != o.dims; }
};

// C-order (row-major) strides of `dims`, in elements: the last axis has stride 1.
std::vector<Index> row_major_strides(const std::vector<Index>& dims);

// NumPy broadcasting of two per-sample shapes (right-aligned; equal or 1); nullopt if they do
// not broadcast.
std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b);

// The network input, referred to in Layer::inputs.
constexpr int kNetworkInput = -1;

struct Layer {
  std::string name;  // unique within the network, no '/'
  LayerKind kind = LayerKind::identity;
  // Indices of the layers feeding this one (kNetworkInput = the network input). Empty = the
  // previous layer (or the network input for layer 0). add, sub, mul, div, matmul: exactly
  // two; concat: two
  // or more; constant: none; others: one.
  std::vector<int> inputs;
  Activation activation = Activation::none;  // fused; linear, conv2d, batchnorm*, add only

  // linear
  Index in_features = 0, out_features = 0;
  // conv2d
  Index in_channels = 0, out_channels = 0, groups = 1;
  // conv2d and pooling: [h, w]
  std::array<Index, 2> kernel_size{1, 1}, stride{1, 1}, padding{0, 0}, dilation{1, 1};
  // pooling
  bool ceil_mode = false;
  bool count_include_pad = true;  // avgpool2d
  // batchnorm
  Index num_features = 0;
  double eps = 1e-5;
  // activation parameters
  double negative_slope = 0.01;          // leaky_relu
  double alpha = 1.0;                    // elu
  double min_val = -1.0, max_val = 1.0;  // hardtanh
  bool gelu_tanh = false;                // gelu: approximate = "tanh"
  // Per-sample axes (the batch axis is not counted; negative: from the end).
  Index axis = -1;                        // concat, softmax, log_softmax
  Index start_dim = 0, end_dim = -1;      // flatten
  std::vector<Index> shape;               // reshape (one -1 allowed); layernorm: normalized_shape
  std::vector<Index> perm;                // transpose
  // pad: [begin, end] per trailing axis, e.g. [top, bottom, left, right] for (C, H, W)
  std::vector<Index> pads;
  PadMode pad_mode = PadMode::constant;
  double pad_value = 0.0;                 // pad, constant mode
  std::array<Index, 2> output_size{1, 1};  // adaptive_avgpool2d [oh, ow]
  double scale = 1.0, shift = 0.0;        // scale
  Index num_embeddings = 0, embedding_dim = 0;  // embedding
  double exponent = 2.0;                  // pow
  std::vector<Index> axes;                // reduce_mean
  bool keepdims = true;                   // reduce_mean
  // linear, conv1d, conv2d: the DAC input range learned in training (pcmsim.torch with
  // TrainingParams::learn_input_ranges), used as the layer's static input range when
  // SimulationConfig::use_learned_input_ranges; 0 = none (calibrated or 1).
  double learned_input_range = 0;

  // Weights in PyTorch's layouts. linear: weight [out, in], bias [out]. conv2d: weight
  // [out, in/groups, kh, kw], bias [out]. conv1d: [out, in/groups, k] (kernel_size etc. hold
  // [1, k]). batchnorm: weight (gamma), bias (beta), running_mean, running_var [F]. layernorm:
  // weight, bias of normalized_shape. constant: weight = the output. embedding: weight
  // [num_embeddings, embedding_dim]. Empty = absent (bias: zero; norm weight/bias: 1/0).
  Tensor weight, bias, running_mean, running_var;

  // Constructors for code-built networks (weights to be filled in).
  static Layer make_linear(std::string name, Index in_features, Index out_features,
                           Activation act = Activation::none);
  static Layer make_conv2d(std::string name, Index in_channels, Index out_channels,
                           std::array<Index, 2> kernel, std::array<Index, 2> stride = {1, 1},
                           std::array<Index, 2> padding = {0, 0},
                           std::array<Index, 2> dilation = {1, 1}, Index groups = 1,
                           Activation act = Activation::none);
  static Layer make(std::string name, LayerKind kind);
};

// What PyTorch computed on a data set (optional `reference` group of the model file).
struct Reference {
  std::string dataset;           // e.g. "fashion-mnist:t10k"
  double accuracy = -1;          // PyTorch's top-1 accuracy, in [0, 1]; -1 if not recorded
  std::vector<int> predictions;  // first N images of the data set
  std::vector<float> margin;     // top-1 minus top-2 logit, or empty
  MatrixF logits;                // N x classes, or empty
};

struct Network {
  std::string name;
  std::array<Index, 3> input_shape{1, 1, 1};  // C, H, W
  Index num_classes = 0;
  std::vector<float> input_mean;         // per channel
  std::vector<float> input_std;          // per channel, > 0
  std::vector<std::string> class_names;  // empty or num_classes entries
  std::vector<Layer> layers;
  std::optional<Reference> reference;
  std::string source;  // file it was loaded from ("" if built in code); used in error messages
  // Where a converted model came from, e.g. "onnx: net.onnx (pytorch 1.13.1, opset 13)";
  // saved as the root attribute `converted_from`. Empty for native models.
  std::string converted_from;

  Index input_size() const { return input_shape[0] * input_shape[1] * input_shape[2]; }
  // Resolved input indices of layer i (empty Layer::inputs -> {i-1}).
  std::vector<int> layer_inputs(int i) const;
  // Index of the layer called `name`, or -1.
  int find_layer(std::string_view name) const;

  // Checks everything: attributes in range, unique names, graph edges (earlier layers only,
  // arity, every output but the last used), weight shapes vs declared shapes, finite weights,
  // shape propagation from input_shape, last layer outputs num_classes features. Throws
  // std::invalid_argument "[nets::Network] <source>: layer 3 'conv1': ...".
  void validate() const;
};

struct LayerShapes {
  std::vector<Shape> inputs;  // one per input
  Shape output;
};
// Per-layer input/output shapes, propagated from the input shape (validates the network).
// `check_output` = false skips the final checks (the last layer outputs (num_classes), every
// other output is used), so the shapes of a partial network can be computed.
std::vector<LayerShapes> infer_shapes(const Network& net, bool check_output = true);

// A linear or conv2d layer viewed as matrices (what the tiles hold): per group, rows = inputs
// (in_features, or in_channels/groups*kh*kw in im2col order: channel-major, then kernel row,
// then kernel column), cols = outputs (out_features, or out_channels/groups).
struct MatrixLayer {
  int matrix_index = 0;  // position in matrix_layers()
  int layer_index = 0;   // position in Network::layers
  std::string name;
  LayerKind kind = LayerKind::linear;
  Index rows = 0, cols = 0, groups = 1;
  Index kernel_h = 1, kernel_w = 1;
  Index positions = 1;  // output positions per sample (H'*W' for conv, the product of the
                        // leading axes for linear: T for a (T, D) sequence, 1 for (F))
  std::vector<MatrixF> weights;  // per group, rows x cols
  double learned_input_range = 0;  // Layer::learned_input_range
  Index kernel_size() const { return kernel_h * kernel_w; }
};
std::vector<MatrixLayer> matrix_layers(const Network& net);
// The same shapes for the mapper (no weights copied).
std::vector<mapping::LayerMatrix> layer_matrices(const Network& net);

// Number of weights (weight + bias + BN parameters) of a layer and of the network.
Index parameter_count(const Layer& layer);
Index parameter_count(const Network& net);
// A human-readable table: index, name, kind, inputs, output shape, parameters; then totals.
std::string describe(const Network& net);

}  // namespace pcmsim::nets
