// Python bindings of devices/: device parameters and models (factory), unit cells, programming
// and time snapshots of NumPy arrays, and the Monte Carlo device report.
#include "devices/device_factory.h"
#include "devices/device_report.h"
#include "devices/programming.h"
#include "devices/unit_cell.h"
#include "python/bind_common.h"

namespace pcmsim::python {
namespace {

using namespace devices;
using core::RngKey;
using core::Stage;

using ModelPtr = std::shared_ptr<DeviceModel>;

std::shared_ptr<const DeviceModel> const_model(const ModelPtr& m) {
  if (!m) throw py::value_error("[pcmsim] model: None");
  return m;
}

// The frozen state of an array of programmed devices (any shape), for DeviceModel.program/read.
struct DeviceState {
  std::vector<py::ssize_t> shape;
  DeviceArray g_prog, nu, read_noise_q;
  std::size_t size() const { return g_prog.size(); }
};

py::array_t<float> shaped(const DeviceArray& a, const std::vector<py::ssize_t>& shape) {
  py::array_t<float> out(shape);
  if (!a.empty()) std::memcpy(out.mutable_data(), a.data(), sizeof(float) * a.size());
  return out;
}

// A model from a DeviceModel, a DeviceSpec or a model name (default parameters).
ModelPtr model_from(const py::object& obj) {
  if (py::isinstance<DeviceModel>(obj)) return obj.cast<ModelPtr>();
  DeviceSpec spec;
  if (py::isinstance<DeviceSpec>(obj))
    spec = obj.cast<DeviceSpec>();
  else if (py::isinstance<py::str>(obj))
    spec.model = obj.cast<std::string>();
  else
    throw py::type_error("[pcmsim] model: expected a DeviceModel, a DeviceSpec or a model name");
  return std::const_pointer_cast<DeviceModel>(make_device_model(spec));
}

void bind_devices(py::module_& m) {
  StructBinder<PcmParams>(m, "PcmParams",
                          "Statistical PCM model of docs/physics.md §2 (Nandakumar 2019, Joshi "
                          "2020). SI units: siemens, seconds.")
      .field("g_max", &PcmParams::g_max, "largest target conductance, siemens (25e-6)")
      .field("t0", &PcmParams::t0, "drift reference time, s (20)")
      .field("t_read", &PcmParams::t_read, "read duration of the 1/f integral, s (250e-9)")
      .field("prog_noise_scale", &PcmParams::prog_noise_scale, "multiplies sigma_prog (1)")
      .field("drift_scale", &PcmParams::drift_scale, "multiplies nu (1)")
      .field("read_noise_scale", &PcmParams::read_noise_scale, "multiplies Q_s (1)")
      .enum_field("read_noise_reference", &PcmParams::read_noise_reference,
                  [](ReadNoiseReference r) { return to_string(r); },
                  read_noise_reference_from_string,
                  "Q_s from the target (default) or the programmed conductance")
      .def("validate", &PcmParams::validate, "Raises ValueError naming the bad field.");
  StructBinder<HermesParams>(m, "HermesParams",
                             "PCM statistics of IBM's HERMES chip (docs/physics.md §3.4). SI "
                             "units: siemens, seconds.")
      .field("hermes_devices", &HermesParams::hermes_devices,
             "devices per weight of the characterisation, 1 or 2 (2)")
      .field("g_max", &HermesParams::g_max, "siemens; 0 = the characterised maximum")
      .field("t0", &HermesParams::t0, "s; 0 = the characterised first read (300 / 200 s)")
      .field("t_read", &HermesParams::t_read, "s (512e-9)")
      .field("prog_noise_scale", &HermesParams::prog_noise_scale, "(1)")
      .field("drift_scale", &HermesParams::drift_scale, "(1)")
      .field("read_noise_scale", &HermesParams::read_noise_scale, "(1)")
      .def("validate", &HermesParams::validate);
  StructBinder<IdealParams>(m, "IdealParams", "Ideal device: g = g_T at all times.")
      .field("g_max", &IdealParams::g_max, "siemens (25e-6)")
      .def("validate", &IdealParams::validate);
  StructBinder<StateIndependentParams>(m, "StateIndependentParams",
                                       "Device with conductance-independent statistics "
                                       "(docs/physics.md §3).")
      .field("g_max", &StateIndependentParams::g_max, "siemens (25e-6)")
      .field("prog_noise_std", &StateIndependentParams::prog_noise_std, "siemens (0.2e-6)")
      .field("nu_mean", &StateIndependentParams::nu_mean, "(0.1)")
      .field("nu_std", &StateIndependentParams::nu_std, "(0.05)")
      .field("read_noise_q", &StateIndependentParams::read_noise_q, "constant Q_s (0.0138)")
      .field("t0", &StateIndependentParams::t0, "s (20)")
      .field("t_read", &StateIndependentParams::t_read, "s (250e-9)")
      .field("prog_noise_scale", &StateIndependentParams::prog_noise_scale, "(1)")
      .field("drift_scale", &StateIndependentParams::drift_scale, "(1)")
      .field("read_noise_scale", &StateIndependentParams::read_noise_scale, "(1)")
      .def("validate", &StateIndependentParams::validate);
  StructBinder<TabulatedParams>(m, "TabulatedParams",
                                "Measured device table (CSV or HDF5; devices/tabulated_model.h).")
      .field("table_path", &TabulatedParams::table_path, "CSV or HDF5 device table")
      .field("g_max", &TabulatedParams::g_max, "siemens; 0 = the table's largest g_target")
      .field("t0", &TabulatedParams::t0, "s (20)")
      .field("t_read", &TabulatedParams::t_read, "s (250e-9)")
      .field("prog_noise_scale", &TabulatedParams::prog_noise_scale, "(1)")
      .field("drift_scale", &TabulatedParams::drift_scale, "(1)")
      .field("read_noise_scale", &TabulatedParams::read_noise_scale, "(1)")
      .def("validate", &TabulatedParams::validate);
  StructBinder<DeviceSpec>(m, "DeviceSpec",
                           "Which device model and the parameters of each (only the chosen "
                           "model's are used).")
      .settings()
      .field("pcm", &DeviceSpec::pcm, "PcmParams")
      .field("hermes", &DeviceSpec::hermes, "HermesParams")
      .field("ideal", &DeviceSpec::ideal, "IdealParams")
      .field("state_independent", &DeviceSpec::state_independent, "StateIndependentParams")
      .field("tabulated", &DeviceSpec::tabulated, "TabulatedParams")
      .def("validate", &DeviceSpec::validate, "Raises ValueError naming the bad field.");

  StructBinder<UnitCellSpec>(m, "UnitCellSpec",
                             "How a weight block becomes target conductances (docs/physics.md §1).")
      .settings()
      .def("validate", &UnitCellSpec::validate, "Raises ValueError naming the bad field.")
      .def("plane_significances", &UnitCellSpec::plane_significances);

  // ---- models
  py::class_<DeviceState>(m, "DeviceState",
                          "Frozen state of programmed devices ('program once, drift many'): "
                          "arrays of the target array's shape.")
      .def_property_readonly("g_prog", [](const DeviceState& s) { return shaped(s.g_prog, s.shape); },
                             "programmed conductance, siemens")
      .def_property_readonly("nu", [](const DeviceState& s) { return shaped(s.nu, s.shape); },
                             "drift exponent")
      .def_property_readonly("read_noise_q",
                             [](const DeviceState& s) { return shaped(s.read_noise_q, s.shape); },
                             "Q_s of the accumulated 1/f read noise")
      .def_property_readonly("shape", [](const DeviceState& s) { return py::tuple(py::cast(s.shape)); })
      .def("__len__", &DeviceState::size);

  py::class_<DeviceModel, ModelPtr>(m, "DeviceModel",
                                    "A device model (make_device_model). Works on NumPy "
                                    "float32 arrays of any shape; random numbers are drawn by "
                                    "element index (C order) from the key.")
      .def_property_readonly("name", &DeviceModel::name)
      .def_property_readonly("g_max", &DeviceModel::g_max, "largest target conductance, S")
      .def(
          "program",
          [](const DeviceModel& model, py::object g_target, py::object key,
             std::uint64_t first_index) {
            const FlatView in = flat_view(g_target, "pcmsim.DeviceModel.program", "g_target");
            const RngKey k = key_from(key, Stage::programming);
            DeviceState s;
            s.shape = in.shape;
            {
              py::gil_scoped_release release;
              s.g_prog.resize(in.size);
              s.nu.resize(in.size);
              s.read_noise_q.resize(in.size);
              model.program(in.data, in.size, k, first_index,
                            {s.g_prog.data(), s.nu.data(), s.read_noise_q.data()});
            }
            return s;
          },
          py::arg("g_target"), py::arg("key") = 0, py::arg("first_index") = 0,
          "Programs one device per element of g_target (siemens, float32, in [0, g_max]; no "
          "copy). key: RngKey or int seed. Returns the DeviceState.")
      .def(
          "read",
          [](const DeviceModel& model, const DeviceState& s, double t_inference, py::object key,
             std::uint64_t first_index) {
            const RngKey k = key_from(key, Stage::snapshot);
            py::array_t<float> out(s.shape);
            float* dst = out.mutable_data();
            {
              py::gil_scoped_release release;
              model.read({s.g_prog.data(), s.nu.data(), s.read_noise_q.data()}, s.size(),
                         t_inference, k, first_index, dst);
            }
            return out;
          },
          py::arg("state"), py::arg("t_inference"), py::arg("key") = 0,
          py::arg("first_index") = 0,
          "Conductances (siemens, float32, the state's shape) t_inference seconds after "
          "programming: drift + accumulated read noise (fresh draw per key). t = 0: g_prog.")
      .def("__repr__", [](const DeviceModel& m) {
        return core::concat("DeviceModel('", m.name(), "', g_max=", m.g_max(), ")");
      });

  m.def("make_device_model", &model_from, py::arg("spec") = "pcm",
        "The device model named by a DeviceSpec (validated) or a model name with default "
        "parameters: pcm, hermes, ideal, state_independent, tabulated.");
  m.def("device_model_names", &device_model_names);

  // ---- unit cells, programming, snapshots
  m.def(
      "weights_to_targets",
      [](py::object weights, const UnitCellSpec& cell, double g_max) {
        const auto w = matrix_view(weights, "pcmsim.weights_to_targets", "weights");
        py::gil_scoped_release release;
        return weights_to_targets(w, cell, g_max);
      },
      py::arg("weights"), py::arg("cell") = UnitCellSpec(), py::arg("g_max") = 25e-6,
      "Target conductances of a weight block (rows = inputs, cols = outputs; float32 "
      "C-contiguous, no copy) for a unit cell and g_max (siemens). Returns a ConductanceBlock.");
  m.def(
      "effective_weights",
      [](const core::ConductanceBlock& b) { return to_numpy(effective_weights(b)); },
      py::arg("block"),
      "The weights a conductance block represents, (rows, cols) float32: "
      "sum_k F_k (G+_k - G-_k) / s_j.");

  py::class_<ProgrammedBlock>(m, "ProgrammedBlock",
                              "Frozen state of one programmed block (every device of every "
                              "plane). Device arrays have shape (planes, 2, rows, cols), "
                              "sign 0 = G+, 1 = G-.")
      .def_readonly("rows", &ProgrammedBlock::rows)
      .def_readonly("cols", &ProgrammedBlock::cols)
      .def_readonly("significances", &ProgrammedBlock::significances)
      .def_readonly("g_max", &ProgrammedBlock::g_max)
      .def_property_readonly("weight_scale", [](const ProgrammedBlock& b) {
        return vector_to_numpy(b.weight_scale.data(), b.weight_scale.size());
      })
      .def_property_readonly("model", [](const ProgrammedBlock& b) {
        return std::const_pointer_cast<DeviceModel>(b.model);
      })
      .def_property_readonly("num_devices", &ProgrammedBlock::num_devices)
      .def_property_readonly("g_prog", [](const ProgrammedBlock& b) {
        return shaped(b.g_prog, {static_cast<py::ssize_t>(b.num_planes()), 2, b.rows, b.cols});
      }, "programmed conductances, siemens")
      .def_property_readonly("nu", [](const ProgrammedBlock& b) {
        return shaped(b.nu, {static_cast<py::ssize_t>(b.num_planes()), 2, b.rows, b.cols});
      }, "drift exponents")
      .def_property_readonly("read_noise_q", [](const ProgrammedBlock& b) {
        return shaped(b.read_noise_q,
                      {static_cast<py::ssize_t>(b.num_planes()), 2, b.rows, b.cols});
      })
      .def(
          "at_time",
          [](const ProgrammedBlock& b, double t, py::object key) {
            const RngKey k = key_from(key, Stage::snapshot);
            py::gil_scoped_release release;
            return at_time(b, t, k);
          },
          py::arg("t_inference"), py::arg("key") = 0,
          "ConductanceBlock t_inference seconds after programming (drift + read noise drawn "
          "from key; give each snapshot its own key).")
      .def("__repr__", [](const ProgrammedBlock& b) {
        return core::concat("ProgrammedBlock(", b.rows, "x", b.cols, ", planes=", b.num_planes(),
                            ", model='", b.model ? b.model->name() : "", "')");
      });

  m.def(
      "program_block",
      [](const core::ConductanceBlock& targets, py::object model, py::object key) {
        const auto mp = const_model(model_from(model));
        const RngKey k = key_from(key, Stage::programming);
        py::gil_scoped_release release;
        return program_block(targets, mp, k);
      },
      py::arg("targets"), py::arg("model") = "pcm", py::arg("key") = 0,
      "Programs every device of a target ConductanceBlock (from weights_to_targets) once. "
      "model: DeviceModel, DeviceSpec or name. Returns the ProgrammedBlock.");
  m.def(
      "program_weights",
      [](py::object weights, py::object model, const UnitCellSpec& cell, py::object key) {
        const auto w = matrix_view(weights, "pcmsim.program_weights", "weights");
        const auto mp = const_model(model_from(model));
        const RngKey k = key_from(key, Stage::programming);
        py::gil_scoped_release release;
        return program_block(weights_to_targets(w, cell, mp->g_max()), mp, k);
      },
      py::arg("weights"), py::arg("model") = "pcm", py::arg("cell") = UnitCellSpec(),
      py::arg("key") = 0,
      "weights_to_targets + program_block: programs a weight block (rows x cols float32, no "
      "copy) with the model's g_max. Snapshot it with .at_time(t, key).");
  m.def(
      "at_time",
      [](const ProgrammedBlock& b, double t, py::object key) {
        const RngKey k = key_from(key, Stage::snapshot);
        py::gil_scoped_release release;
        return at_time(b, t, k);
      },
      py::arg("programmed"), py::arg("t_inference"), py::arg("key") = 0,
      "Same as ProgrammedBlock.at_time.");

  // ---- device report
  StructBinder<DeviceReportConfig>(m, "DeviceReportConfig",
                                   "Monte Carlo of `pcmsim device` (SI units).")
      .field("g_targets", &DeviceReportConfig::g_targets, "siemens, each in [0, g_max]")
      .field("t_inference", &DeviceReportConfig::t_inference, "seconds, each >= 0")
      .field("samples", &DeviceReportConfig::samples, "devices per target (100000)")
      .field("seed", &DeviceReportConfig::seed, "(7, as the CLI)")
      .def("validate", &DeviceReportConfig::validate, py::arg("g_max"));
  py::class_<DeviceReportRow>(m, "DeviceReportRow", "One (target, time) row, SI units.")
      .def_readonly("model", &DeviceReportRow::model)
      .def_readonly("g_target", &DeviceReportRow::g_target)
      .def_readonly("t_inference", &DeviceReportRow::t_inference)
      .def_readonly("samples", &DeviceReportRow::samples)
      .def_readonly("mean", &DeviceReportRow::mean)
      .def_readonly("std", &DeviceReportRow::std)
      .def_readonly("nu_mean", &DeviceReportRow::nu_mean)
      .def_readonly("nu_std", &DeviceReportRow::nu_std);
  m.def(
      "device_report_rows",
      [](py::object model, const DeviceReportConfig& config) {
        const auto mp = const_model(model_from(model));
        py::gil_scoped_release release;
        return device_report(*mp, config);
      },
      py::arg("model"), py::arg("config") = DeviceReportConfig(),
      "The rows of the device report (targets outer, times inner).");
  m.def("device_report_csv", &device_report_csv, py::arg("rows"),
        "The CSV text `pcmsim device --format csv` prints for these rows.");
  m.def("device_report_text", &device_report_table, py::arg("rows"),
        "The aligned table `pcmsim device` prints.");
}

}  // namespace

PCMSIM_BIND(20, bind_devices);

}  // namespace pcmsim::python
