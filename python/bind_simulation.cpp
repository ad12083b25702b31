// Python bindings of the simulation pipeline (nets/simulation.h, nets/evaluation.h): the
// configuration, the pipeline's values (ProgrammedChip, ChipSnapshot, ConverterSetup), the
// notebook chip (AnalogChip) and evaluation.
#include "nets/evaluation.h"
#include "nets/simulation.h"
#include "python/bind_common.h"
#include "python/nets_arrays.h"

namespace pcmsim::python {
namespace {

using namespace nets;

// The pipeline's values keep what they borrow alive on the Python side: a programmed chip owns
// its copy of the network; a converter set-up and a snapshot hold their programmed chip.
struct PyProgrammed {
  std::shared_ptr<const Network> net;
  std::shared_ptr<const ProgrammedChip> chip;
};
struct PySnapshot {
  std::shared_ptr<const ProgrammedChip> chip;
  std::shared_ptr<const ChipSnapshot> snapshot;
};
struct PyConverters {
  std::shared_ptr<const ProgrammedChip> chip;
  std::shared_ptr<const ConverterSetup> setup;
};

// The convenience chip of notebooks: one programmed chip, its converter set-up and the forward
// at the current snapshot. calibrate() and set_time() may come in any order: each rebuilds the
// value it changes.
struct PyChip {
  PyProgrammed programmed;
  std::shared_ptr<const ConverterSetup> converters;  // null until calibrated, when calibrating
  std::shared_ptr<const ChipSnapshot> snapshot;
  std::unique_ptr<ChipForward> forward;

  ChipForward& current(const char* where) {
    if (!converters)
      throw std::invalid_argument(std::string(where) +
                                  ": config.calibrate is set: call calibrate(images) first");
    if (!forward) forward = std::make_unique<ChipForward>(*programmed.chip, *converters, *snapshot);
    return *forward;
  }
};

PyProgrammed make_programmed(const Network& net, const SimulationConfig& config, int trial) {
  PyProgrammed p;
  auto owned = std::make_shared<const Network>(net);
  py::gil_scoped_release release;
  p.chip = std::make_shared<const ProgrammedChip>(*owned, config, trial);
  p.net = std::move(owned);
  return p;
}

void bind_simulation(py::module_& m) {
  // ---- simulation configuration
  StructBinder<LayerPrecision>(m, "LayerPrecision",
                               "Converter bits of one layer overriding SimulationConfig.io "
                               "(-1 = inherit).")
      .field("p_in", &LayerPrecision::p_in, "DAC bits or -1")
      .field("p_out", &LayerPrecision::p_out, "ADC bits or -1");
  StructBinder<SimulationConfig>(m, "SimulationConfig",
                                 "One network on one simulated PCM chip: chip, mapper, device, "
                                 "unit cell, converters, digital unit, GDC, calibration, seed. "
                                 "Nested structs are edited in place (cfg.io.p_in = 4).")
      .field("chip", &SimulationConfig::chip, "ChipSpec (256 x 256 tiles)")
      .field("mapper", &SimulationConfig::mapper, "MapperOptions")
      .field("device", &SimulationConfig::device, "DeviceSpec (PCM)")
      .field("cell", &SimulationConfig::cell, "UnitCellSpec (one pair)")
      .field("io", &SimulationConfig::io, "IoParams (8-bit DAC/ADC)")
      .field("ir_drop", &SimulationConfig::ir_drop, "IrDropParams (ideal wires)")
      .field("layer_precision", &SimulationConfig::layer_precision,
             "dict layer name -> LayerPrecision (a copy: assign a whole dict)")
      .field("layer_replicas", &SimulationConfig::layer_replicas,
             "dict layer name -> copies of its weights, outputs averaged (2..64; a copy: "
             "assign a whole dict)")
      .field("digital", &SimulationConfig::digital, "DigitalParams (float64)")
      .field("gdc", &SimulationConfig::gdc, "global drift compensation on (True)")
      .field("gdc_params", &SimulationConfig::gdc_params, "GdcParams")
      .field("calibrate", &SimulationConfig::calibrate, "calibrate converter ranges (False)")
      .field("calibration", &SimulationConfig::calibration, "CalibrationParams")
      .field("use_learned_input_ranges", &SimulationConfig::use_learned_input_ranges,
             "use the models' learned input ranges under static_range (True)")
      .field("seed", &SimulationConfig::seed, "random seed (0)")
      .def("validate", &SimulationConfig::validate, "ValueError naming the field.");
  StructBinder<EvaluationOptions>(m, "EvaluationOptions",
                                  "Inference times, Monte Carlo trials and batching of an "
                                  "evaluation.")
      .settings()
      .def("validate", &EvaluationOptions::validate);

  m.def("programming_key", &programming_key, py::arg("seed"), py::arg("matrix_layer"),
        py::arg("slice"), py::arg("trial"));
  m.def("snapshot_key", &snapshot_key, py::arg("seed"), py::arg("matrix_layer"),
        py::arg("slice"), py::arg("trial"), py::arg("t_inference"));

  // ---- the pipeline as values
  py::class_<PySnapshot>(m, "ChipSnapshot",
                         "The conductances of every slice of a ProgrammedChip at one time "
                         "(ProgrammedChip.at(t)).")
      .def_property_readonly("t_inference",
                             [](const PySnapshot& s) { return s.snapshot->t_inference; },
                             "seconds after programming");
  py::class_<PyConverters>(m, "ConverterSetup",
                           "The converter set-up of a ProgrammedChip: per-layer I/O settings, "
                           "ranges calibrated on data (config.calibrate) and GDC references "
                           "(config.gdc). Independent of the time.")
      .def(py::init([](const PyProgrammed& chip, py::object config, py::object images) {
             const SimulationConfig c =
                 config.is_none() ? chip.chip->config() : config.cast<SimulationConfig>();
             MatrixF cal;
             if (!images.is_none())
               cal = images_view(*chip.net, images, "pcmsim.ConverterSetup");
             PyConverters out{chip.chip, nullptr};
             py::gil_scoped_release release;
             out.setup = std::make_shared<const ConverterSetup>(*chip.chip, c,
                                                                images.is_none() ? nullptr : &cal);
             return out;
           }),
           py::arg("chip"), py::arg("config") = py::none(),
           py::arg("calibration_images") = py::none(),
           "config (default: the chip's) must share the chip's programming settings; "
           "calibration_images (normalised) are needed when config.calibrate.")
      .def_property_readonly("config", [](const PyConverters& c) { return c.setup->config(); })
      .def_property_readonly(
          "calibrated", [](const PyConverters& c) { return !c.setup->calibrated_ranges().empty(); });
  py::class_<PyProgrammed>(m, "ProgrammedChip",
                           "One Monte Carlo trial of a network programmed on a PCM chip "
                           "(the mapping plan and the frozen device state). Immutable: at(t) "
                           "gives a ChipSnapshot, ConverterSetup(chip, config) a converter "
                           "set-up; AnalogChip.from_values runs them.")
      .def(py::init(&make_programmed), py::arg("network"),
           py::arg("config") = SimulationConfig(), py::arg("trial") = 0,
           "Copies the network, plans and programs every slice (trial selects the programming "
           "keys).")
      .def(
          "at",
          [](const PyProgrammed& c, double t) {
            PySnapshot out{c.chip, nullptr};
            py::gil_scoped_release release;
            out.snapshot = std::make_shared<const ChipSnapshot>(c.chip->at(t));
            return out;
          },
          py::arg("t_inference"), "The snapshot at t_inference seconds after programming.")
      .def_property_readonly("trial", [](const PyProgrammed& c) { return c.chip->trial(); })
      .def_property_readonly("config", [](const PyProgrammed& c) { return c.chip->config(); })
      .def_property_readonly("plan", [](const PyProgrammed& c) { return c.chip->plan(); },
                             "the MappingPlan (a copy)")
      .def_property_readonly("network", [](const PyProgrammed& c) { return *c.net; });

  // ---- AnalogChip
  auto run = [](PyChip& c, py::object images, Index batch_size, const char* where) {
    const auto x = images_view(*c.programmed.net, images, where);
    ChipForward& forward = c.current(where);
    py::gil_scoped_release release;
    return run_logits(*c.programmed.net, x, forward, batch_size);
  };
  py::class_<PyChip>(m, "AnalogChip",
                     "One Monte Carlo trial of a network on a PCM chip at one time: a "
                     "ProgrammedChip, its ConverterSetup and the ChipSnapshot at time(). "
                     "set_time(t) and calibrate(images) may be called in any order; "
                     "logits/predict/accuracy run batches through tiles and digital unit.")
      .def(py::init([](const Network& net, const SimulationConfig& config, int trial) {
             auto c = std::make_unique<PyChip>();
             c->programmed = make_programmed(net, config, trial);
             py::gil_scoped_release release;
             if (!config.calibrate)
               c->converters = std::make_shared<const ConverterSetup>(*c->programmed.chip, config);
             c->snapshot = std::make_shared<const ChipSnapshot>(c->programmed.chip->at(0.0));
             return c;
           }),
           py::arg("network"), py::arg("config") = SimulationConfig(), py::arg("trial") = 0,
           "Copies the network, plans and programs every slice (trial selects the programming "
           "keys); the chip starts at t = 0.")
      .def_static(
          "from_values",
          [](const PyProgrammed& chip, const PyConverters& converters,
             const PySnapshot& snapshot) {
            if (converters.chip != chip.chip || snapshot.chip != chip.chip)
              throw std::invalid_argument(
                  "pcmsim.AnalogChip.from_values: converters and snapshot must come from this "
                  "ProgrammedChip");
            auto c = std::make_unique<PyChip>();
            c->programmed = chip;
            c->converters = converters.setup;
            c->snapshot = snapshot.snapshot;
            return c;
          },
          py::arg("chip"), py::arg("converters"), py::arg("snapshot"),
          "The forward of a programmed chip with a converter set-up at a snapshot.")
      .def(
          "calibrate",
          [](PyChip& c, py::object images) {
            if (!c.programmed.chip->config().calibrate)
              throw std::invalid_argument(
                  "pcmsim.AnalogChip.calibrate: config.calibrate is false");
            const MatrixF x = images_view(*c.programmed.net, images, "pcmsim.AnalogChip.calibrate");
            py::gil_scoped_release release;
            c.converters = std::make_shared<const ConverterSetup>(
                *c.programmed.chip, c.programmed.chip->config(), &x);
            c.forward.reset();
          },
          py::arg("images"), "Calibrates converter ranges on normalised images at the programmed "
                             "state (needs config.calibrate); any time before or after set_time.")
      .def(
          "set_time",
          [](PyChip& c, double t) {
            py::gil_scoped_release release;
            c.snapshot = std::make_shared<const ChipSnapshot>(c.programmed.chip->at(t));
            if (c.forward) c.forward->set_snapshot(*c.snapshot);
          },
          py::arg("t_inference"), "Snapshot at t_inference seconds after programming.")
      .def_property_readonly("time", [](const PyChip& c) { return c.snapshot->t_inference; })
      .def_property_readonly("trial", [](const PyChip& c) { return c.programmed.chip->trial(); })
      .def_property_readonly("config", [](const PyChip& c) {
        return c.converters ? c.converters->config() : c.programmed.chip->config();
      })
      .def_property_readonly("plan", [](const PyChip& c) { return c.programmed.chip->plan(); },
                             "the MappingPlan (a copy)")
      .def_property_readonly("network", [](const PyChip& c) { return *c.programmed.net; })
      .def_property_readonly("programmed", [](const PyChip& c) { return c.programmed; })
      .def_property_readonly("snapshot", [](const PyChip& c) {
        return PySnapshot{c.programmed.chip, c.snapshot};
      })
      .def_property_readonly(
          "gdc_alpha",
          [](PyChip& c) {
            py::list layers;
            for (const auto& layer : c.current("pcmsim.AnalogChip.gdc_alpha").gdc_alpha()) {
              py::list slices;
              for (const auto& a : layer) slices.append(vector_to_numpy(a.data(), a.size()));
              layers.append(slices);
            }
            return layers;
          },
          "[matrix layer][slice] -> GDC factor per column at the current time")
      .def(
          "logits",
          [run](PyChip& c, py::object images, Index batch_size) {
            return to_numpy(run(c, images, batch_size, "pcmsim.AnalogChip.logits"));
          },
          py::arg("images"), py::arg("batch_size") = 256,
          "Logits (N, num_classes) of normalised images (float32 C-contiguous, no copy) at the "
          "current time. The tile noise is keyed by (seed, layer, slice, trial) and the global "
          "sample index and position: the same bits for any batch_size and thread count.")
      .def(
          "predict",
          [run](PyChip& c, py::object images, Index batch_size) {
            return int_array(argmax_rows(run(c, images, batch_size, "pcmsim.AnalogChip.predict")));
          },
          py::arg("images"), py::arg("batch_size") = 256, "Predicted classes (N,) int64.")
      .def(
          "accuracy",
          [run](PyChip& c, py::object images, py::object labels, Index batch_size) {
            const auto x = images_view(*c.programmed.net, images, "pcmsim.AnalogChip.accuracy");
            const auto y = labels_from(labels, x.rows(), c.programmed.net->num_classes,
                                       "pcmsim.AnalogChip.accuracy");
            return accuracy(argmax_rows(run(c, images, batch_size, "pcmsim.AnalogChip.accuracy")),
                            y);
          },
          py::arg("images"), py::arg("labels"), py::arg("batch_size") = 256,
          "Top-1 accuracy in [0, 1] at the current time.");

  // ---- evaluation
  py::class_<TimeSummary>(m, "TimeSummary", "Accuracy at one inference time over the trials.")
      .def_readonly("t_inference", &TimeSummary::t_inference, "seconds")
      .def_readonly("accuracy", &TimeSummary::accuracy, "per trial, in [0, 1]")
      .def_readonly("mean", &TimeSummary::mean)
      .def_readonly("std", &TimeSummary::std, "sample std over trials");
  py::class_<EvaluationResult>(m, "EvaluationResult")
      .def_readonly("fp32_accuracy", &EvaluationResult::fp32_accuracy, "-1 if not evaluated")
      .def_readonly("times", &EvaluationResult::times, "list of TimeSummary")
      .def_readonly("images", &EvaluationResult::images);
  m.def(
      "evaluate_result",
      [](const Network& net, py::object images, py::object labels, const SimulationConfig& config,
         const EvaluationOptions& options, py::object calibration_images, py::object progress) {
        const auto x = images_view(net, images, "pcmsim.evaluate");
        const auto y = labels_from(labels, x.rows(), net.num_classes, "pcmsim.evaluate");
        MatrixF cal;
        if (!calibration_images.is_none())
          cal = images_view(net, calibration_images, "pcmsim.evaluate");
        ProgressCallback cb;
        if (!progress.is_none()) {
          cb = [progress](const Progress& p) {
            py::gil_scoped_acquire acquire;
            progress(p.done, p.total, p.what);
          };
        } else {
          // Still let Ctrl-C interrupt a long evaluation between forward passes.
          cb = [](const Progress&) {
            py::gil_scoped_acquire acquire;
            if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          };
        }
        // nets::evaluate takes a MatrixF: one copy of the images per evaluation (small next to
        // the trials x times forward passes).
        const MatrixF xm = x;
        py::gil_scoped_release release;
        return evaluate(net, xm, y, config, options, cal, cb);
      },
      py::arg("network"), py::arg("images"), py::arg("labels"),
      py::arg("config") = SimulationConfig(), py::arg("options") = EvaluationOptions(),
      py::arg("calibration_images") = py::none(), py::arg("progress") = py::none(),
      "nets::evaluate: accuracy over inference times and trials beside FP32. images: "
      "normalised float32 (N, C*H*W); labels (N,). progress(done, total, what) is called "
      "between forward passes. Returns an EvaluationResult; pcmsim.evaluate wraps it as a "
      "table.");
}

}  // namespace

// After bind_nets (Network, data sets), before bind_cost.
PCMSIM_BIND(42, bind_simulation);

}  // namespace pcmsim::python
