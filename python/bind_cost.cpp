// Python bindings of cost/ (the cost model, its constants and the presets) and of the cost
// side of results files. Registered after nets (SimulationConfig, Network are bound there).
#include "cost/cost_model.h"
#include "cost/cost_params.h"
#include "cost/presets.h"
#include "devices/device_factory.h"
#include "nets/cost_input.h"
#include "nets/results.h"
#include "python/bind_common.h"

namespace pcmsim::python {
namespace {

using cost::CostParams;
using cost::CostReport;

py::dict totals_dict(const CostReport& r) {
  py::dict d;
  for (const auto& [name, value] : cost::total_columns(r)) d[py::str(name)] = value;
  return d;
}

py::dict layer_dict(const CostReport& r) {
  py::dict d;
  std::vector<std::string> names;
  for (const auto& layer : r.layers) names.push_back(layer.name);
  d["layer"] = names;
  for (const auto& [name, values] : cost::layer_columns(r))
    d[py::str(name)] = vector_to_numpy(values.data(), values.size());
  return d;
}

template <class S>
py::list apply_named_preset(const std::string& name, S& s) {
  py::list applied;
  for (const auto& n : cost::apply_preset(cost::find_preset(name), s)) applied.append(n);
  return applied;
}

void bind_cost(py::module_& m) {
  StructBinder<CostParams>(m, "CostParams",
                           "Constants of the cost model (docs/cost.md): converters, array, fixed "
                           "periphery per tile read, digital unit, data movement. Defaults: the "
                           "HERMES calibration. SI units (J, s, V, S, m^2).")
      .settings()
      .def("validate", &CostParams::validate, "ValueError naming the field.")
      .def("adc_energy", &CostParams::adc_energy, py::arg("bits"),
           "J per conversion: max(adc_fom * 2**bits, adc_energy_floor).")
      ;
  m.def("adcs_per_tile", &cost::adcs_per_tile, py::arg("tile_cols"), py::arg("adc_columns"),
        "ADCs of a tile: ceil(tile_cols / adc_columns).");

  py::class_<CostReport>(m, "CostReport",
                         "Energy, latency and area of one inference, per layer and in total, and "
                         "the chip's peak figures (cost/cost_model.h).")
      .def_readonly("params", &CostReport::params)
      .def_property_readonly("totals", &totals_dict,
                             "dict: energy_per_inference_J, latency_s, inferences_per_s, "
                             "ops_per_inference, area_mm2, chip_area_mm2, tops, tops_per_w, "
                             "cores, mvm_energy_J, mvm_time_s")
      .def_property_readonly(
          "energy_per_inference", [](const CostReport& r) { return r.energy_per_inference; }, "J")
      .def_property_readonly(
          "latency", [](const CostReport& r) { return r.latency; }, "s")
      .def_property_readonly("area_mm2", [](const CostReport& r) { return r.area_mm2; })
      .def_property_readonly("tops", [](const CostReport& r) { return r.peak.tops; })
      .def_property_readonly("tops_per_w", [](const CostReport& r) { return r.peak.tops_per_w; })
      .def("layer_columns", &layer_dict,
           "Per-layer columns (layer, digital, tiles, tile_reads, ..., energy_J, latency_s, "
           "area_mm2) as a dict of lists/arrays; pcmsim.cost_table() makes it a table.")
      .def("table", &cost::render_cost_table, "The text table of `pcmsim map`.")
      .def(
          "json", [](const CostReport& r) { return "{" + cost::render_cost_json_members(r) + "}"; },
          "The cost members of `pcmsim map --format json` as one JSON object.")
      .def("__repr__", [](const CostReport& r) {
        return core::concat("CostReport(", r.layers.size(),
                            " layers, energy_per_inference=", r.energy_per_inference,
                            " J, latency=", r.latency, " s, area_mm2=", r.area_mm2,
                            ", tops=", r.peak.tops, ", tops_per_w=", r.peak.tops_per_w, ")");
      });

  m.def(
      "network_cost",
      [](const nets::Network& net, const nets::SimulationConfig& config, const CostParams& params) {
        return nets::network_cost(net, config, params);
      },
      py::arg("network"), py::arg("config") = nets::SimulationConfig{},
      py::arg("params") = CostParams{},
      "What one inference of `network` costs on the chip of `config` (CostReport). ValueError "
      "for an ideal converter (p_in or p_out 0), which has no defined cost.");
  m.def(
      "uncostable_reason",
      [](const nets::Network& net, const nets::SimulationConfig& config) {
        return cost::uncostable_reason(nets::cost_input(net, config));
      },
      py::arg("network"), py::arg("config"),
      "Why network_cost would refuse this configuration ('' when it would not).");
  m.def(
      "presets",
      [] {
        py::list out;
        for (const cost::Preset& p : cost::presets()) {
          py::dict values;
          for (const auto& [name, text] : p.values) values[py::str(name)] = text;
          out.append(py::make_tuple(p.name, p.description, values));
        }
        return out;
      },
      "[(name, description, {setting: text value})] of every preset (published chips).");
  m.def("apply_preset", &apply_named_preset<nets::SimulationConfig>, py::arg("name"),
        py::arg("config"),
        "Sets the preset's values that are settings of `config` (in place); returns their "
        "names. Also for a CostParams or a DeviceSpec.");
  m.def("apply_preset", &apply_named_preset<CostParams>, py::arg("name"), py::arg("params"));
  m.def("apply_preset", &apply_named_preset<devices::DeviceSpec>, py::arg("name"), py::arg("spec"));
  m.def(
      "load_cost_params",
      [](const std::string& path, CostParams params) {
        cost::load_cost_params(path, params);
        return params;
      },
      py::arg("path"), py::arg("params") = CostParams{},
      "`params` with the 'name = value' lines of a cost file applied (as --cost-file).");
  m.def(
      "read_run_cost",
      [](const std::string& path) {
        const nets::RunRecord run = nets::read_run_results(path);
        return py::make_tuple(run.cost_params,
                              run.cost ? py::cast(*run.cost) : py::object(py::none()));
      },
      py::arg("path"), "(CostParams, CostReport or None) recorded in a pcmsim-run results file.");
}

}  // namespace

PCMSIM_BIND(45, bind_cost);

}  // namespace pcmsim::python
