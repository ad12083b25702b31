// Python bindings of the mixed-precision search (nets/tune.h): TuneOptions, the result values
// and tune_result(), which pcmsim.tune wraps (data specs, tables). Registered after the cost
// model (CostParams) and the simulation (SimulationConfig, EvaluationOptions).
#include "nets/tune.h"
#include "python/bind_common.h"
#include "python/nets_arrays.h"

namespace pcmsim::python {
namespace {

using namespace nets;

void bind_tune(py::module_& m) {
  StructBinder<TuneOptions>(m, "TuneOptions",
                            "Settings of the mixed-precision search (pcmsim tune, docs/tune.md).")
      .settings()
      .def("validate", &TuneOptions::validate, "ValueError naming the field.");
  py::class_<PointSummary>(m, "PointSummary", "Mean, std and 95 % CI of per-trial accuracies.")
      .def_readonly("mean", &PointSummary::mean)
      .def_readonly("std", &PointSummary::std)
      .def_readonly("ci_low", &PointSummary::ci_low)
      .def_readonly("ci_high", &PointSummary::ci_high);
  py::class_<DropStatistics>(m, "DropStatistics",
                             "Accuracy drop below FP32 in points, with the standard errors of "
                             "the trials and of the image sample (docs/tune.md).")
      .def_readonly("mean", &DropStatistics::mean)
      .def_readonly("se_trials", &DropStatistics::se_trials)
      .def_readonly("se_images", &DropStatistics::se_images)
      .def_readonly("dof", &DropStatistics::dof, "Welch-Satterthwaite degrees of freedom")
      .def_readonly("upper95", &DropStatistics::upper95, "one-sided 95 % upper bound")
      .def_readonly("ci95_low", &DropStatistics::ci95_low)
      .def_readonly("ci95_high", &DropStatistics::ci95_high);
  m.def(
      "drop_statistics",
      [](const std::vector<double>& accuracy, const std::vector<double>& discordance,
         double fp32_accuracy, Index images) {
        return drop_statistics(accuracy, discordance, fp32_accuracy, images);
      },
      py::arg("accuracy"), py::arg("discordance"), py::arg("fp32_accuracy"), py::arg("images"),
      "The drop statistics of per-trial accuracies and FP32 discordances on `images` images.");
  py::class_<TuneCandidate>(m, "TuneCandidate", "One assignment evaluated on the validation data.")
      .def_readonly("phase", &TuneCandidate::phase)
      .def_readonly("label", &TuneCandidate::label)
      .def_readonly("assignment", &TuneCandidate::assignment,
                    "dict layer -> LayerPrecision (the analog layers)")
      .def_readonly("digital_layers", &TuneCandidate::digital_layers,
                    "tuned layers the candidate keeps digital")
      .def_readonly("energy", &TuneCandidate::energy, "J per inference")
      .def_readonly("accuracy", &TuneCandidate::accuracy, "per trial, in [0, 1]")
      .def_readonly("discordance", &TuneCandidate::discordance,
                    "per trial: fraction of images on which FP32 and the chip disagree in "
                    "correctness")
      .def_readonly("drop", &TuneCandidate::drop)
      .def_readonly("summary", &TuneCandidate::summary)
      .def_property_readonly(
          "drop_mean", [](const TuneCandidate& c) { return c.drop.mean; },
          "points below FP32 (drop.mean)")
      .def_property_readonly(
          "drop_bound", [](const TuneCandidate& c) { return c.drop.upper95; },
          "one-sided 95 % upper bound of the mean drop (trials and image sample), points "
          "(drop.upper95)")
      .def_readonly("within_budget", &TuneCandidate::within_budget)
      .def_readonly("accepted", &TuneCandidate::accepted)
      .def_readonly("pareto", &TuneCandidate::pareto);
  py::class_<TuneTestPoint>(m, "TuneTestPoint", "An assignment measured on the test data.")
      .def_readonly("label", &TuneTestPoint::label)
      .def_readonly("assignment", &TuneTestPoint::assignment)
      .def_readonly("digital_layers", &TuneTestPoint::digital_layers)
      .def_readonly("energy", &TuneTestPoint::energy, "J per inference")
      .def_readonly("accuracy", &TuneTestPoint::accuracy)
      .def_readonly("discordance", &TuneTestPoint::discordance)
      .def_readonly("drop", &TuneTestPoint::drop)
      .def_readonly("summary", &TuneTestPoint::summary)
      .def_property_readonly(
          "drop_mean", [](const TuneTestPoint& p) { return p.drop.mean; },
          "points below FP32 (drop.mean)")
      .def_property_readonly(
          "drop_ci_low", [](const TuneTestPoint& p) { return p.drop.ci95_low; })
      .def_property_readonly(
          "drop_ci_high", [](const TuneTestPoint& p) { return p.drop.ci95_high; });
  py::class_<TuneResult>(m, "TuneResult")
      .def_readonly("fp32_validation", &TuneResult::fp32_validation)
      .def_readonly("fp32_test", &TuneResult::fp32_test, "-1 without test data")
      .def_readonly("candidates", &TuneResult::candidates)
      .def_readonly("best", &TuneResult::best, "index of the chosen candidate")
      .def_readonly("feasible", &TuneResult::feasible)
      .def_readonly("test", &TuneResult::test, "list of TuneTestPoint: 'tuned', then uniform")
      .def_readonly("evaluations", &TuneResult::evaluations)
      .def_readonly("programmings", &TuneResult::programmings)
      .def_readonly("layer_precision_option", &TuneResult::run_options,
                    "the chosen assignment as `pcmsim run` options (--layer-precision, and "
                    "--digital-layers when the search keeps layers digital)");
  m.def(
      "tune_result",
      [](const Network& net, py::object validation_images, py::object validation_labels,
         py::object test_images, py::object test_labels, const SimulationConfig& config,
         const EvaluationOptions& evaluation, const TuneOptions& options,
         const cost::CostParams& cost_params, py::object calibration_images,
         py::object progress) {
        const MatrixF val = images_view(net, validation_images, "pcmsim.tune");
        const std::vector<int> val_y =
            labels_from(validation_labels, val.rows(), net.num_classes, "pcmsim.tune");
        MatrixF test, cal;
        std::vector<int> test_y;
        const bool with_test = !test_images.is_none();
        if (with_test) {
          test = images_view(net, test_images, "pcmsim.tune");
          test_y = labels_from(test_labels, test.rows(), net.num_classes, "pcmsim.tune");
        }
        if (!calibration_images.is_none()) cal = images_view(net, calibration_images, "pcmsim.tune");
        ProgressCallback cb = [progress](const Progress& p) {
          py::gil_scoped_acquire acquire;
          if (PyErr_CheckSignals() != 0) throw py::error_already_set();
          if (!progress.is_none()) progress(p.done, p.total, p.what);
        };
        TuneData data;
        data.net = &net;
        data.validation_images = &val;
        data.validation_labels = &val_y;
        if (with_test) {
          data.test_images = &test;
          data.test_labels = &test_y;
        }
        data.calibration = &cal;
        py::gil_scoped_release release;
        return tune(data, config, evaluation, options, cost_params, {}, cb);
      },
      py::arg("network"), py::arg("validation_images"), py::arg("validation_labels"),
      py::arg("test_images") = py::none(), py::arg("test_labels") = py::none(),
      py::arg("config") = SimulationConfig(), py::arg("evaluation") = EvaluationOptions(),
      py::arg("options") = TuneOptions(), py::arg("cost_params") = cost::CostParams(),
      py::arg("calibration_images") = py::none(), py::arg("progress") = py::none(),
      "nets::tune: the mixed-precision search on normalised float32 images (N, C*H*W). "
      "evaluation: trials, batch size and exactly one t_inference. Returns a TuneResult; "
      "pcmsim.tune wraps it.");
}

}  // namespace

PCMSIM_BIND(50, bind_tune);

}  // namespace pcmsim::python
