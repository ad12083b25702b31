// Python bindings of mapping/: ChipSpec, MapperOptions, LayerMatrix, the plan and the
// utilisation report as Python objects.
#include "mapping/chip_spec.h"
#include "mapping/mapping_plan.h"
#include "mapping/utilisation.h"
#include "python/bind_common.h"

namespace pcmsim::python {
namespace {

using namespace mapping;

void bind_mapping(py::module_& m) {
  StructBinder<ChipSpec>(m, "ChipSpec",
                         "The crossbar chip: tile shape (word lines x bit lines) and tile "
                         "budget. Default: 256 x 256 tiles (HERMES), unbounded.")
      .settings()
      .def("validate", &ChipSpec::validate, "Raises ValueError naming the bad field.")
      .def("bounded", &ChipSpec::bounded)
      .def("cells_per_tile", &ChipSpec::cells_per_tile);

  StructBinder<MapperOptions>(m, "MapperOptions", "How layers are split and placed on tiles.")
      .settings()
      .def("validate", &MapperOptions::validate);

  StructBinder<LayerMatrix> layer_matrix(m, "LayerMatrix",
                            "One mappable layer as `groups` weight matrices of rows (inputs, "
                            "im2col order) x cols (outputs).");
  layer_matrix.field("name", &LayerMatrix::name, "unique layer name")
      .field("rows", &LayerMatrix::rows, "inputs of one group")
      .field("cols", &LayerMatrix::cols, "outputs of one group")
      .field("groups", &LayerMatrix::groups, ">= 1")
      .field("kernel_h", &LayerMatrix::kernel_h, "1 for linear")
      .field("kernel_w", &LayerMatrix::kernel_w, "1 for linear")
      .field("digital", &LayerMatrix::digital, "kept digital regardless of options")
      .def("validate", &LayerMatrix::validate)
      .def("weights", &LayerMatrix::weights);
  layer_matrix.cls()
      .def_static("linear", &LayerMatrix::linear, py::arg("name"), py::arg("in_features"),
                  py::arg("out_features"))
      .def_static("conv2d", &LayerMatrix::conv2d, py::arg("name"), py::arg("in_channels"),
                  py::arg("out_channels"), py::arg("kernel_h"), py::arg("kernel_w"),
                  py::arg("groups") = 1);

  StructBinder<TileSlice>(m, "TileSlice",
                          "Block W_group[row0:row0+rows, col0:col0+cols] on tile `tile` at "
                          "(tile_row0, tile_col0).")
      .field("tile", &TileSlice::tile, "physical tile id in [0, tiles_used)")
      .field("group", &TileSlice::group, "weight group (convolution groups)")
      .field("row0", &TileSlice::row0, "first weight row (input) of the block")
      .field("col0", &TileSlice::col0, "first weight column (output) of the block")
      .field("rows", &TileSlice::rows, "block rows (inputs)")
      .field("cols", &TileSlice::cols, "block columns (outputs)")
      .field("tile_row0", &TileSlice::tile_row0, "first tile row used (0 without packing)")
      .field("tile_col0", &TileSlice::tile_col0, "first tile column used (0 without packing)");
  StructBinder<PartialSum>(m, "PartialSum",
                           "The digital unit adds the outputs of `slices` into outputs "
                           "col0..col0+cols-1 of group `group`.")
      .field("group", &PartialSum::group, "weight group")
      .field("col0", &PartialSum::col0, "first output column of the group")
      .field("cols", &PartialSum::cols, "output columns")
      .field("slices", &PartialSum::slices, "indices into LayerPlan.slices");
  StructBinder<LayerPlan>(m, "LayerPlan", "The placement of one layer.")
      .field("layer", &LayerPlan::layer, "LayerMatrix")
      .field("digital", &LayerPlan::digital, "kept in the digital unit (no slices)")
      .field("slices", &LayerPlan::slices, "list of TileSlice")
      .field("partial_sums", &LayerPlan::partial_sums, "list of PartialSum")
      .def("tiles", &LayerPlan::tiles, "distinct physical tiles of this layer, ascending");
  py::class_<MappingPlan>(m, "MappingPlan",
                          "Stage 2 of the pipeline: every layer's slices on tiles.")
      .def_readonly("chip", &MappingPlan::chip)
      .def_readonly("options", &MappingPlan::options)
      .def_readonly("layers", &MappingPlan::layers, "list of LayerPlan")
      .def_readonly("tiles_used", &MappingPlan::tiles_used)
      .def("slices_on_tile", &MappingPlan::slices_on_tile, py::arg("tile"),
           "(layer index, slice index) of every slice on `tile`, in placement order")
      .def("layer", &MappingPlan::layer, py::arg("name"), py::return_value_policy::copy)
      .def("to_json",
           [](const MappingPlan& p) { return render_json(utilisation_report(p), &p); },
           "The utilisation report with the plan, as JSON text (pcmsim map --format json)")
      .def("__repr__", [](const MappingPlan& p) {
        return core::concat("MappingPlan(layers=", p.layers.size(), ", tiles_used=",
                            p.tiles_used, ", tile=", p.chip.tile_rows, "x", p.chip.tile_cols,
                            ")");
      });

  m.def("plan", &plan, py::arg("layers"), py::arg("chip") = ChipSpec(),
        py::arg("options") = MapperOptions(),
        "Places LayerMatrix shapes on the chip (pure, deterministic). ValueError when a layer "
        "does not fit or the chip is too small (the message says how many tiles are needed).");
  m.def("tiles_needed", &tiles_needed, py::arg("layers"), py::arg("chip") = ChipSpec(),
        py::arg("options") = MapperOptions());
  m.def("check_plan", &check_plan, py::arg("plan"), py::arg("layers"),
        "Verifies the plan's invariants; raises ValueError naming the violation.");

  StructBinder<LayerUtilisation>(m, "LayerUtilisation",
                                 "Per layer: shape, tiles used and utilisation (cells holding "
                                 "a weight / cells of the tiles used).")
      .field("name", &LayerUtilisation::name, "layer name")
      .field("rows", &LayerUtilisation::rows, "matrix rows (inputs) of one group")
      .field("cols", &LayerUtilisation::cols, "matrix columns (outputs) of one group")
      .field("groups", &LayerUtilisation::groups, "weight groups")
      .field("kernel_h", &LayerUtilisation::kernel_h, "kernel height (1 for linear)")
      .field("kernel_w", &LayerUtilisation::kernel_w, "kernel width (1 for linear)")
      .field("digital", &LayerUtilisation::digital, "kept in the digital unit")
      .field("weights", &LayerUtilisation::weights, "rows * cols * groups")
      .field("slices", &LayerUtilisation::slices, "blocks placed on tiles")
      .field("tiles", &LayerUtilisation::tiles, "distinct tiles holding a slice of the layer")
      .field("cells_used", &LayerUtilisation::cells_used, "weights on tiles (device pairs)")
      .field("cells_available", &LayerUtilisation::cells_available, "tiles * tile_rows * tile_cols")
      .field("utilisation", &LayerUtilisation::utilisation, "in [0, 1]");
  StructBinder<UtilisationReport>(m, "UtilisationReport", "How well a plan uses the chip.")
      .field("chip", &UtilisationReport::chip, "ChipSpec of the plan")
      .field("options", &UtilisationReport::options, "MapperOptions of the plan")
      .field("layers", &UtilisationReport::layers, "list of LayerUtilisation")
      .field("tiles_used", &UtilisationReport::tiles_used, "distinct tiles of the whole plan")
      .field("analog_weights", &UtilisationReport::analog_weights, "weights on tiles (= cells used)")
      .field("digital_weights", &UtilisationReport::digital_weights, "weights kept in the digital unit")
      .field("cells_available", &UtilisationReport::cells_available, "tiles_used * tile_rows * tile_cols")
      .field("utilisation", &UtilisationReport::utilisation, "in [0, 1]")
      .field("chip_occupancy", &UtilisationReport::chip_occupancy, "tiles_used / num_tiles on a bounded chip (0 if unbounded)")
      .def("text", [](const UtilisationReport& r) { return render_table(r); },
           "the aligned table of `pcmsim map`")
      .def("json", [](const UtilisationReport& r) { return render_json(r); });
  m.def("utilisation_report", &utilisation_report, py::arg("plan"));
  m.def("render_slices_table", &render_slices_table, py::arg("plan"));
}

}  // namespace

PCMSIM_BIND(30, bind_mapping);

}  // namespace pcmsim::python
