// Python bindings of nets/: Network and Layer (build from NumPy, load/save the HDF5 format),
// data sets, the FP32 forward pass and the results files (the simulation: bind_simulation.cpp).
#include "nets/dataset.h"
#include "nets/evaluation.h"
#include "nets/forward.h"
#include "nets/model_io.h"
#include "nets/onnx_import.h"
#include "git_revision.h"  // generated at build time: PCMSIM_GIT_REVISION
#include "nets/network.h"
#include "nets/results.h"
#include "nets/sweep.h"
#include "nets/simulation.h"
#include "python/bind_common.h"
#include "python/nets_arrays.h"

namespace pcmsim::python {
namespace {

using namespace nets;

// ---- tensors
py::object tensor_to_numpy(const Tensor& t) {
  if (t.empty()) return py::none();
  std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
  py::array_t<float> out(shape);
  if (!t.data.empty()) std::memcpy(out.mutable_data(), t.data.data(), sizeof(float) * t.data.size());
  return std::move(out);
}
Tensor tensor_from(const py::object& obj, const char* name) {
  Tensor t;
  if (obj.is_none()) return t;
  auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a)
    throw py::type_error(core::concat("[pcmsim.Layer] ", name,
                                      ": expected an array of numbers (or None)"));
  t.data.assign(a.data(), a.data() + a.size());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) t.shape.push_back(a.shape(i));
  return t;
}

template <Tensor Layer::*member>
void tensor_property(StructBinder<Layer>& b, const char* name, const char* doc) {
  b.property(
      name, [](const Layer& l) { return tensor_to_numpy(l.*member); },
      [name](Layer& l, py::object a) { l.*member = tensor_from(a, name); }, doc);
}

std::string kind_str(LayerKind k) { return std::string(kind_name(k)); }
LayerKind kind_from(const std::string& s) {
  const auto k = parse_kind(s);
  if (!k)
    core::throw_invalid("pcmsim.Layer", core::concat("kind = '", s, "': expected one of ",
                                                     all_kind_names()));
  return *k;
}
std::string act_str(Activation a) { return std::string(activation_name(a)); }
Activation act_from(const std::string& s) {
  const auto a = parse_activation(s);
  if (!a)
    core::throw_invalid("pcmsim.Layer",
                        core::concat("activation = '", s,
                                     "': expected none, relu, relu6, sigmoid, tanh, gelu, silu, "
                                     "hardswish or hardsigmoid"));
  return *a;
}

std::string pad_mode_str(PadMode m) { return std::string(pad_mode_name(m)); }
PadMode pad_mode_from(const std::string& s) {
  const auto m = parse_pad_mode(s);
  if (!m)
    core::throw_invalid("pcmsim.Layer", core::concat("pad_mode = '", s,
                                                     "': expected constant, reflect or replicate"));
  return *m;
}



void bind_nets(py::module_& m) {
  // ---- Layer
  StructBinder<Layer> layer(m, "Layer",
                            "One layer of a Network (docs/formats.md): kind, parameters and "
                            "weights in PyTorch's layouts (linear weight [out, in], conv2d "
                            "[out, in/groups, kh, kw]). Weights are copied to float32 on "
                            "assignment; reading returns a copy.");
  layer.field("name", &Layer::name, "unique name, no '/'")
      .enum_field("kind", &Layer::kind, kind_str, kind_from,
                  "linear, conv2d, batchnorm1d, batchnorm2d, relu, ..., maxpool2d, avgpool2d, "
                  "global_avgpool, flatten, add, identity, dropout")
      .field("inputs", &Layer::inputs,
             "indices of the layers feeding this one (-1 = network input); [] = previous layer")
      .enum_field("activation", &Layer::activation, act_str, act_from,
                  "activation fused after linear/conv2d/batchnorm/add (none)")
      .field("in_features", &Layer::in_features, "linear")
      .field("out_features", &Layer::out_features, "linear")
      .field("in_channels", &Layer::in_channels, "conv2d")
      .field("out_channels", &Layer::out_channels, "conv2d")
      .field("groups", &Layer::groups, "conv2d")
      .field("kernel_size", &Layer::kernel_size, "conv2d/pooling [h, w]")
      .field("stride", &Layer::stride, "conv2d/pooling [h, w]")
      .field("padding", &Layer::padding, "conv2d/pooling [h, w]")
      .field("dilation", &Layer::dilation, "conv2d/maxpool2d [h, w]")
      .field("ceil_mode", &Layer::ceil_mode, "pooling")
      .field("count_include_pad", &Layer::count_include_pad, "avgpool2d")
      .field("num_features", &Layer::num_features, "batchnorm")
      .field("eps", &Layer::eps, "batchnorm")
      .field("negative_slope", &Layer::negative_slope, "leaky_relu")
      .field("alpha", &Layer::alpha, "elu")
      .field("min_val", &Layer::min_val, "hardtanh")
      .field("max_val", &Layer::max_val, "hardtanh")
      .field("gelu_tanh", &Layer::gelu_tanh, "gelu approximate='tanh'")
      .field("axis", &Layer::axis, "concat/softmax/log_softmax: per-sample axis (-1 = last)")
      .field("start_dim", &Layer::start_dim, "flatten: first per-sample axis merged")
      .field("end_dim", &Layer::end_dim, "flatten: last per-sample axis merged")
      .field("shape", &Layer::shape, "reshape: per-sample shape; layernorm: normalized_shape")
      .field("perm", &Layer::perm, "transpose: permutation of the per-sample axes")
      .field("pads", &Layer::pads, "pad: [begin, end] per trailing axis")
      .enum_field("pad_mode", &Layer::pad_mode, pad_mode_str, pad_mode_from,
                  "pad: constant, reflect or replicate")
      .field("pad_value", &Layer::pad_value, "pad: fill value of constant mode")
      .field("output_size", &Layer::output_size, "adaptive_avgpool2d [oh, ow]")
      .field("scale", &Layer::scale, "scale: y = x * scale + shift")
      .field("shift", &Layer::shift, "scale: y = x * scale + shift")
      .field("num_embeddings", &Layer::num_embeddings, "embedding")
      .field("embedding_dim", &Layer::embedding_dim, "embedding")
      .field("exponent", &Layer::exponent, "pow: y = x ** exponent")
      .field("learned_input_range", &Layer::learned_input_range,
             "linear/conv: the DAC input range learned in training (0 = none)")
      .field("axes", &Layer::axes, "reduce_mean: per-sample axes")
      .field("keepdims", &Layer::keepdims, "reduce_mean: keep the reduced axes as 1");
  tensor_property<&Layer::weight>(layer, "weight", "weight (float32 array) or None");
  tensor_property<&Layer::bias>(layer, "bias", "bias [out] or None (zero)");
  tensor_property<&Layer::running_mean>(layer, "running_mean", "batchnorm running mean");
  tensor_property<&Layer::running_var>(layer, "running_var", "batchnorm running variance");
  layer.def("__repr__", [](const Layer& l) {
    std::string s = core::concat("Layer(name='", l.name, "', kind='", kind_name(l.kind), "'");
    if (!l.inputs.empty()) {
      s += ", inputs=[";
      for (std::size_t i = 0; i < l.inputs.size(); ++i) s += (i ? ", " : "") + std::to_string(l.inputs[i]);
      s += "]";
    }
    if (l.activation != Activation::none)
      s += core::concat(", activation='", activation_name(l.activation), "'");
    if (l.kind == LayerKind::linear)
      s += core::concat(", in_features=", l.in_features, ", out_features=", l.out_features);
    if (l.kind == LayerKind::conv2d)
      s += core::concat(", in_channels=", l.in_channels, ", out_channels=", l.out_channels,
                        ", kernel_size=(", l.kernel_size[0], ", ", l.kernel_size[1], ")");
    if (!l.weight.empty()) {
      s += ", weight=(";
      for (std::size_t i = 0; i < l.weight.shape.size(); ++i)
        s += (i ? ", " : "") + std::to_string(l.weight.shape[i]);
      s += ")";
    }
    return s + ")";
  }, py::prepend());

  // ---- Network
  StructBinder<Network> network(m, "Network",
                                "A passive description of a network (stage 1): layers in "
                                "execution order plus graph edges. Build from NumPy "
                                "(Network(name=..., input_shape=(C, H, W), num_classes=..., "
                                "input_mean=[...], input_std=[...], layers=[Layer(...), ...]))"
                                ", load_network(path), or pcmsim.torch_convert.from_torch.");
  network.field("name", &Network::name, "model name")
      .field("input_shape", &Network::input_shape, "(C, H, W) of one input")
      .field("num_classes", &Network::num_classes, "outputs of the last layer")
      .field("input_mean", &Network::input_mean, "per-channel normalisation mean")
      .field("input_std", &Network::input_std, "per-channel normalisation std (> 0)")
      .field("class_names", &Network::class_names, "[] or num_classes names")
      .field("layers", &Network::layers,
             "list of Layer (a copy: assign a whole list, or use append())")
      .field("source", &Network::source, "file it was loaded from")
      .field("converted_from", &Network::converted_from,
             "where a converted model came from (e.g. an ONNX file), or ''");
  network.def("validate", &Network::validate,
              "Checks everything (shapes, edges, weights); ValueError naming the layer.")
      .def("append", [](Network& n, const Layer& l) { n.layers.push_back(l); }, py::arg("layer"),
           "Appends a layer (copied).")
      .def("__len__", [](const Network& n) { return n.layers.size(); })
      .def("layer", [](const Network& n, const std::string& name) {
             const int i = n.find_layer(name);
             if (i < 0) throw py::key_error(core::concat("[pcmsim.Network] no layer '", name, "'"));
             return n.layers[i];
           }, py::arg("name"), "A copy of the layer called `name`.")
      .def("find_layer", &Network::find_layer, py::arg("name"), "index of `name`, or -1")
      .def("describe", &describe, "human-readable table of the layers")
      .def("parameter_count", [](const Network& n) { return parameter_count(n); })
      .def("layer_matrices", &layer_matrices,
           "LayerMatrix shapes of the linear/conv2d layers, for pcmsim.plan")
      .def("shapes",
           [](const Network& n) {
             py::list out;
             for (const auto& s : infer_shapes(n)) {
               py::list ins;
               for (const auto& i : s.inputs) ins.append(py::tuple(py::cast(i.dims)));
               out.append(py::make_tuple(ins, py::tuple(py::cast(s.output.dims))));
             }
             return out;
           },
           "per layer: (list of input shapes, output shape), per sample")
      ;
  network.cls()
      .def_property_readonly("input_size", &Network::input_size, "C*H*W")
      .def_property_readonly("reference",
                             [](const Network& n) -> py::object {
                               if (!n.reference) return py::none();
                               const Reference& r = *n.reference;
                               py::dict d;
                               d["dataset"] = r.dataset;
                               d["accuracy"] = r.accuracy;
                               d["predictions"] = int_array(r.predictions);
                               d["margin"] = vector_to_numpy(r.margin.data(), r.margin.size());
                               d["logits"] = to_numpy(r.logits);
                               return std::move(d);
                             },
                             "what PyTorch computed (dict), or None")
      .def("__repr__", [](const Network& n) {
        return core::concat("Network(name='", n.name, "', input_shape=(", n.input_shape[0], ", ",
                            n.input_shape[1], ", ", n.input_shape[2], "), num_classes=",
                            n.num_classes, ", layers=", n.layers.size(), ")");
      }, py::prepend());

  m.def(
      "load_network",
      [](const std::string& path) {
        py::gil_scoped_release release;
        return load_network(path);
      },
      py::arg("path"),
      "Loads and validates a pcmsim-model HDF5 file (RuntimeError naming the file, layer and "
      "value on malformed content).");
  StructBinder<ModelInputOptions>(m, "ModelInputOptions",
                                  "Input normalisation of an ONNX model (docs/onnx.md): "
                                  "ModelInputOptions(input_mean=[0.286], input_std=[0.353]).")
      .settings()
      .def("validate", &ModelInputOptions::validate);
  m.def(
      "import_onnx",
      [](const std::string& path, const ModelInputOptions& input) {
        py::gil_scoped_release release;
        return import_onnx(path, input);
      },
      py::arg("path"), py::arg("input") = ModelInputOptions(),
      "Reads an ONNX model as a Network (docs/onnx.md): constant subgraphs folded, operators "
      "mapped to layers; RuntimeError naming every unsupported operator and its node.");
  m.def(
      "load_model",
      [](const std::string& path, const ModelInputOptions& input) {
        py::gil_scoped_release release;
        return load_model(path, input);
      },
      py::arg("path"), py::arg("input") = ModelInputOptions(),
      "A model in either format: .onnx through import_onnx, else load_network.");
  m.attr("onnx_available") = onnx_available();
  m.def(
      "save_network",
      [](const Network& net, const std::string& path) {
        py::gil_scoped_release release;
        save_network(net, path);
      },
      py::arg("network"), py::arg("path"), "Validates and writes the network (atomically).");

  // ---- data sets
  StructBinder<Dataset> dataset(m, "Dataset",
                                "Image classification data: images N x C*H*W float32 in "
                                "[0, 1] (not normalised), labels N.");
  dataset.field("name", &Dataset::name, "data set name or file")
      .field("channels", &Dataset::channels, "C")
      .field("height", &Dataset::height, "H, pixels")
      .field("width", &Dataset::width, "W, pixels")
      .property(
          "images",
          [](py::object self) {
            const Dataset& d = self.cast<const Dataset&>();
            return py::array_t<float>({d.images.rows(), d.images.cols()},
                                      {sizeof(float) * d.images.cols(), sizeof(float)},
                                      d.images.data(), self);
          },
          [](Dataset& d, py::object a) {
            auto arr = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
            if (!arr) throw py::type_error("[pcmsim.Dataset] images: expected an array");
            if (arr.ndim() < 2) throw py::value_error("[pcmsim.Dataset] images: expected N x ...");
            Index cols = 1;
            for (py::ssize_t i = 1; i < arr.ndim(); ++i) cols *= arr.shape(i);
            d.images.resize(arr.shape(0), cols);
            if (d.images.size()) std::memcpy(d.images.data(), arr.data(), sizeof(float) * d.images.size());
          },
          "N x C*H*W float32 (a view of the data set's memory; assigning copies)")
      .property(
          "labels", [](const Dataset& d) { return int_array(d.labels); },
          [](Dataset& d, py::object a) {
            const py::array raw = py::array::ensure(a);
            if (!raw || raw.ndim() != 1 || (raw.dtype().kind() != 'i' && raw.dtype().kind() != 'u'))
              throw py::type_error("[pcmsim.Dataset] labels: expected a 1-D integer array");
            // As the data-set loaders: class indices in [0, 2^24], never wrapped to int.
            const std::vector<int> labels =
                labels_from(a, raw.shape(0), (Index{1} << 24) + 1, "pcmsim.Dataset");
            d.labels = labels;
          },
          "N class indices (int64)");
  dataset.def("__len__", &Dataset::size)
      .def("__repr__", [](const Dataset& d) {
        return core::concat("Dataset('", d.name, "', ", d.size(), " images of (", d.channels,
                            ", ", d.height, ", ", d.width, "))");
      }, py::prepend());
  m.def(
      "load_dataset",
      [](const std::string& spec, Index limit) {
        py::gil_scoped_release release;
        return load_dataset(spec, limit);
      },
      py::arg("spec") = "fashion-mnist:t10k", py::arg("limit") = 0,
      "Opens a data set: 'fashion-mnist:t10k' / ':train' [@DIR], an HDF5 data set path, or an "
      "IDX images file. limit > 0 keeps the first `limit` images.");
  m.def("save_hdf5_dataset", &save_hdf5_dataset, py::arg("data"), py::arg("path"));
  m.def("check_compatible", &check_compatible, py::arg("data"), py::arg("network"),
        "ValueError unless the images fit the network's input and the labels its classes.");
  m.def(
      "normalized_images",
      [](const Dataset& d, const Network& net) { return to_numpy(normalized_images(d, net)); },
      py::arg("data"), py::arg("network"),
      "The images normalised as the model records ((x - mean[c]) / std[c]), N x C*H*W float32.");

  // ---- FP32 reference
  m.def(
      "fp32_logits",
      [](const Network& net, py::object images, Index batch_size) {
        const auto x = images_view(net, images, "pcmsim.fp32_logits");
        MatrixF out;
        {
          py::gil_scoped_release release;
          Fp32Matmul fp32(net);
          out = run_logits(net, x, fp32, batch_size);
        }
        return to_numpy(out);
      },
      py::arg("network"), py::arg("images"), py::arg("batch_size") = 128,
      "FP32 digital reference: logits (N, num_classes) float32 of normalised images (N x "
      "C*H*W or N x C x H x W, float32 C-contiguous; no copy).");
  m.def(
      "fp32_predict",
      [](const Network& net, py::object images, Index batch_size) {
        const auto x = images_view(net, images, "pcmsim.fp32_predict");
        std::vector<int> pred;
        {
          py::gil_scoped_release release;
          Fp32Matmul fp32(net);
          pred = argmax_rows(run_logits(net, x, fp32, batch_size));
        }
        return int_array(pred);
      },
      py::arg("network"), py::arg("images"), py::arg("batch_size") = 128,
      "FP32 predicted classes (N,) int64 (argmax of the logits, first maximum on ties).");

  // ---- results files (nets/results.h): the same files as `pcmsim run`
  m.def(
      "setting_columns",
      [](const SimulationConfig& config) {
        py::list columns;
        for (const auto& s : core::settings<SimulationConfig>()) {
          if (s.shortcut) continue;
          const core::Value v = s.get(config);
          // Numbers in the CSV's units (g_max_uS), on/off and lists as the CSV writes them.
          py::object value;
          if (const auto* d = std::get_if<double>(&v)) value = py::float_(*d / s.info.text_scale);
          else if (std::holds_alternative<std::int64_t>(v) || std::holds_alternative<std::uint64_t>(v) ||
                   std::holds_alternative<std::string>(v))
            value = value_to_python(v);
          else value = py::str(s.text(config));
          columns.append(py::make_tuple(s.info.external_name(), value));
        }
        return columns;
      },
      py::arg("config"),
      "The settings of a config as the columns of the results CSV: [(name, value)] in the "
      "CSV's order and units (g_max_uS in microsiemens; on/off and lists as text).");
  m.def(
      "summarize",
      [](const std::vector<double>& accuracy) {
        const PointSummary p = summarize(accuracy);
        return py::make_tuple(p.mean, p.std, p.ci_low, p.ci_high);
      },
      py::arg("accuracy"),
      "(mean, std, ci95_low, ci95_high) of per-trial accuracies: the 95 % confidence interval "
      "of the mean (Student t), as the results files record it.");
  m.def("check_results_path",
        [](const std::string& path) { check_results_path(path, "pcmsim"); }, py::arg("path"),
        "ValueError unless `path` can take a results file (checked before any work).");
  m.def(
      "write_run_results",
      [](const std::string& path, const EvaluationResult& result, const SimulationConfig& config,
         const EvaluationOptions& options, const std::string& model,
         const std::string& model_name, const std::string& data,
         const std::string& calibration_data, std::int64_t limit,
         const std::optional<cost::CostParams>& cost_params,
         const std::optional<cost::CostReport>& cost) {
        RunRecord run;
        if (cost_params) run.cost_params = *cost_params;
        run.cost = cost;
        run.model = model;
        run.model_name = model_name;
        run.data = data;
        run.calibration_data = calibration_data;
        run.limit = limit;
        run.git_revision = PCMSIM_GIT_REVISION;
        run.config = config;
        run.evaluation = options;
        run.result = result;
        write_run_results(path, run);
      },
      py::arg("path"), py::arg("result"), py::arg("config"), py::arg("options"),
      py::arg("model") = "", py::arg("model_name") = "", py::arg("data") = "",
      py::arg("calibration_data") = "", py::arg("limit") = 0, py::arg("cost_params") = py::none(),
      py::arg("cost") = py::none(),
      "Writes a pcmsim-run results file (HDF5, with the configuration structs) and its CSV "
      "views, exactly as `pcmsim run --out PATH` does; `cost` (a CostReport from network_cost "
      "with `cost_params`) adds the cost per layer and in total.");
  m.def(
      "read_run_config",
      [](const std::string& path) {
        SimulationConfig config;
        EvaluationOptions options;
        RunRecord run;
        read_run_config(path, config, options, &run);
        py::dict source;
        source["model"] = run.model;
        source["model_name"] = run.model_name;
        source["data"] = run.data;
        source["calibration_data"] = run.calibration_data;
        source["limit"] = run.limit;
        source["git_revision"] = run.git_revision;
        return py::make_tuple(config, options, source);
      },
      py::arg("path"),
      "(SimulationConfig, EvaluationOptions, {model, data, ...}) recorded in a pcmsim-run "
      "file: re-running them gives the same numbers.");
}

}  // namespace

PCMSIM_BIND(40, bind_nets);

}  // namespace pcmsim::python
