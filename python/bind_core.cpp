// Python bindings of core/: IoParams, DigitalParams, GdcParams, CalibrationParams, RngKey,
// the converter (quantise), conductance blocks, the tile, the digital unit (LayerAccumulator)
// and global drift compensation.
#include "core/calibration.h"
#include "core/conductance_block.h"
#include "core/digital_unit.h"
#include "core/gdc.h"
#include "core/io_params.h"
#include "core/memory.h"
#include "core/quantiser.h"
#include "core/tile.h"
#include "python/bind_common.h"

namespace pcmsim::python {
namespace {

using namespace core;

std::string stage_name(Stage s) {
  switch (s) {
    case Stage::programming: return "programming";
    case Stage::snapshot: return "snapshot";
    case Stage::tile_forward: return "tile_forward";
    case Stage::calibration: return "calibration";
    case Stage::device_report: return "device_report";
    case Stage::user: return "user";
  }
  return "user";
}
Stage stage_from(const std::string& s) {
  for (Stage v : {Stage::programming, Stage::snapshot, Stage::tile_forward, Stage::calibration,
                  Stage::device_report, Stage::user})
    if (stage_name(v) == s) return v;
  throw_invalid("pcmsim.RngKey", concat("stage = '", s,
                                        "': expected programming, snapshot, tile_forward, "
                                        "calibration, device_report or user"));
}


// Copies a NumPy array of any float dtype into a float32 matrix (for stored data such as
// conductance planes, where a copy is made anyway).
MatrixF matrix_copy(const py::handle& obj, const std::string& where, const std::string& name) {
  auto a = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a) throw_type(where, concat(name, ": expected a 2-D array of numbers"));
  if (a.ndim() != 2)
    throw py::value_error(tagged(where, concat(name, ": shape ", shape_str(a), ", expected 2-D")));
  MatrixF m(a.shape(0), a.shape(1));
  if (m.size()) std::memcpy(m.data(), a.data(), sizeof(float) * m.size());
  return m;
}

VectorD vector_d(const py::handle& obj, const std::string& where, const std::string& name) {
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a || a.ndim() != 1) throw_type(where, concat(name, ": expected a 1-D array of numbers"));
  VectorD v(a.shape(0));
  for (Index i = 0; i < v.size(); ++i) v(i) = a.data()[i];
  return v;
}

py::dict readout_dict(const TileReadout& r) {
  py::dict d;
  py::list reads;
  for (const auto& m : r.reads) reads.append(to_numpy(m));
  d["reads"] = reads;
  d["read_weight"] = r.read_weight;
  d["input_scale"] = vector_to_numpy(r.input_scale.data(), r.input_scale.size());
  d["adc_step"] = r.adc_step;
  d["adc_steps"] = vector_to_numpy(r.adc_steps.data(), r.adc_steps.size());
  d["output_scale"] = vector_to_numpy(r.output_scale.data(), r.output_scale.size());
  d["bm_rounds"] = vector_to_numpy(r.bm_rounds.data(), r.bm_rounds.size());
  d["clipped"] = vector_to_numpy(r.clipped.data(), r.clipped.size());
  return d;
}

void bind_core(py::module_& m) {
  // ---- RngKey
  StructBinder<RngKey>(m, "RngKey",
                       "Key of a counter-based random stream: every random number is a pure "
                       "function of (key, draw, element index), so results do not depend on "
                       "the thread count. Functions taking `key` also accept a plain int seed.")
      .field("seed", &RngKey::seed, "64-bit seed")
      .enum_field("stage", &RngKey::stage, stage_name, stage_from,
                  "pipeline stage: programming, snapshot, tile_forward, calibration, "
                  "device_report, user (default)")
      .field("layer", &RngKey::layer, "layer number")
      .field("slice", &RngKey::slice, "tile slice number")
      .field("trial", &RngKey::trial, "Monte Carlo trial")
      .field("sub", &RngKey::sub, "sub-stream (snapshot, batch chunk, ...)");

  // ---- IoParams
  StructBinder<IoParams>(m, "IoParams",
                         "Converter and per-MVM noise parameters of one crossbar tile "
                         "(docs/physics.md §4). Normalised units: an input of 1 is the DAC full "
                         "scale, an output of 1 the current of a full-scale weight driven by a "
                         "full-scale input on one row. Defaults: IBM's standard inference tile.")
      .settings()
      .def("validate", &IoParams::validate,
           "Raises ValueError '[core::IoParams] <field> = <value>: ...' on a bad field.")
      .def("bound_management_active", &IoParams::bound_management_active)
      .def("bm_rounds", &IoParams::bm_rounds)
      .def("input_cycles", &IoParams::input_cycles);

  // ---- DigitalParams
  StructBinder<DigitalParams>(m, "DigitalParams",
                              "Digital unit: accumulation of the tiles' partial sums "
                              "(docs/physics.md §6).")
      .settings()
      .def("validate", &DigitalParams::validate, "Raises ValueError naming the bad field.")
      .def("acc_lsb", &DigitalParams::acc_lsb, "fixed_point LSB in output units")
      .def("acc_bound", &DigitalParams::acc_bound, "fixed_point saturation bound, output units");
  m.def("keep_freed_memory", &core::keep_freed_memory,
        "Keeps freed memory in the process's heap (glibc: mmap threshold 256 MiB, trim "
        "threshold 1 GiB), so that the large buffers of every batch or training step are reused "
        "instead of faulted in afresh, as the pcmsim command does (core/memory.h). Process-wide; "
        "call it once in a program or notebook that trains (about 15 % of a pcmsim.torch step).");
  m.def("frac_bits_for_range", &frac_bits_for_range, py::arg("max_abs"), py::arg("acc_bits"),
        "Largest acc_frac_bits such that an acc_bits accumulator holds +-max_abs.");

  // ---- GdcParams
  StructBinder<GdcParams>(m, "GdcParams", "Global drift compensation (docs/physics.md §5).")
      .settings()
      .def("validate", &GdcParams::validate, "Raises ValueError naming the bad field.");

  // ---- CalibrationParams
  StructBinder<CalibrationParams>(m, "CalibrationParams",
                                  "Calibrated converter ranges (input range per layer, ADC "
                                  "bounds per tile or column).")
      .settings()
      .def("validate", &CalibrationParams::validate, "Raises ValueError naming the bad field.");

  // ---- converter
  m.def(
      "quantise",
      [](py::object x, int bits, double bound, py::object out) {
        QuantiserSpec q{bits, bound};
        q.validate("pcmsim.quantise", "bits");
        const FlatView in = flat_view(x, "pcmsim.quantise", "x");
        py::array result;
        if (out.is_none()) {
          result = py::array_t<float>(in.shape);
        } else {
          const FlatView o = flat_view(out, "pcmsim.quantise", "out");
          if (o.shape != in.shape)
            throw py::value_error("[pcmsim.quantise] out: shape differs from x");
          result = py::reinterpret_borrow<py::array>(out);
          if (!result.writeable()) throw py::value_error("[pcmsim.quantise] out: read-only");
        }
        float* dst = static_cast<float*>(result.mutable_data());
        {
          py::gil_scoped_release release;
          quantise_nearest(q, in.data, dst, in.size);
        }
        return result;
      },
      py::arg("x"), py::arg("bits"), py::arg("bound") = 1.0, py::arg("out") = py::none(),
      "Signed `bits`-bit converter of docs/physics.md §4 (round to nearest, ties away from zero, "
      "clip to [-bound, bound]; bits = 0: clip only). x: float32 C-contiguous array of any "
      "shape. out: None (a new array) or a float32 array of x's shape written in place "
      "(out=x quantises x without a copy). Returns the quantised array.");

  // ---- conductance blocks
  py::class_<ConductancePlane>(m, "ConductancePlane",
                               "One differential device pair per weight: G+ and G- (siemens, "
                               "rows x cols float32) and the plane's significance.")
      .def(py::init([](py::object g_plus, py::object g_minus, double significance) {
             ConductancePlane p;
             p.g_plus = matrix_copy(g_plus, "pcmsim.ConductancePlane", "g_plus");
             p.g_minus = matrix_copy(g_minus, "pcmsim.ConductancePlane", "g_minus");
             p.significance = significance;
             return p;
           }),
           py::arg("g_plus"), py::arg("g_minus"), py::arg("significance") = 1.0)
      .def_property(
          "g_plus", [](const ConductancePlane& p) { return to_numpy(p.g_plus); },
          [](ConductancePlane& p, py::object a) {
            p.g_plus = matrix_copy(a, "pcmsim.ConductancePlane", "g_plus");
          },
          "G+ conductances, siemens, rows x cols (a copy)")
      .def_property(
          "g_minus", [](const ConductancePlane& p) { return to_numpy(p.g_minus); },
          [](ConductancePlane& p, py::object a) {
            p.g_minus = matrix_copy(a, "pcmsim.ConductancePlane", "g_minus");
          },
          "G- conductances, siemens, rows x cols (a copy)")
      .def_readwrite("significance", &ConductancePlane::significance)
      .def("__repr__", [](const ConductancePlane& p) {
        return concat("ConductancePlane(", p.g_plus.rows(), "x", p.g_plus.cols(),
                      ", significance=", p.significance, ")");
      });

  py::class_<ConductanceBlock>(m, "ConductanceBlock",
                               "The conductances of one mapped weight block as the tile sees "
                               "them: planes, g_max (S), per-column weight scale s (S per "
                               "weight unit; W = sum_k F_k (G+_k - G-_k) / s) and readout.")
      .def(py::init([](std::vector<ConductancePlane> planes, double g_max, py::object weight_scale,
                       const std::string& readout) {
             ConductanceBlock b;
             b.planes = std::move(planes);
             b.g_max = g_max;
             b.weight_scale = vector_d(weight_scale, "pcmsim.ConductanceBlock", "weight_scale");
             b.readout = core::plane_readout_from_string(readout);
             return b;
           }),
           py::arg("planes"), py::arg("g_max"), py::arg("weight_scale"),
           py::arg("readout") = "digital")
      .def_readwrite("planes", &ConductanceBlock::planes,
                     "list of ConductancePlane (assign a whole list to change it)")
      .def_readwrite("g_max", &ConductanceBlock::g_max, "siemens")
      .def_property(
          "weight_scale",
          [](const ConductanceBlock& b) {
            return vector_to_numpy(b.weight_scale.data(), b.weight_scale.size());
          },
          [](ConductanceBlock& b, py::object a) {
            b.weight_scale = vector_d(a, "pcmsim.ConductanceBlock", "weight_scale");
          },
          "per-column scale s_j, siemens per weight unit (float64, cols)")
      .def_property(
          "readout", [](const ConductanceBlock& b) { return std::string(core::to_string(b.readout)); },
          [](ConductanceBlock& b, const std::string& s) { b.readout = core::plane_readout_from_string(s); },
          "analog or digital plane readout")
      .def_property_readonly("rows", &ConductanceBlock::rows)
      .def_property_readonly("cols", &ConductanceBlock::cols)
      .def("__repr__", [](const ConductanceBlock& b) {
        return concat("ConductanceBlock(", b.rows(), "x", b.cols(), ", planes=", b.planes.size(),
                      ", g_max=", b.g_max, ", readout='", std::string(core::to_string(b.readout)), "')");
      });

  // ---- tile
  py::class_<TileReadout>(m, "TileReadout",
                          "Raw result of one tile forward, before the digital unit.")
      .def_property_readonly("reads",
                             [](const TileReadout& r) {
                               py::list l;
                               for (const auto& x : r.reads) l.append(to_numpy(x));
                               return l;
                             },
                             "list of batch x cols ADC outputs (normalised units), one per "
                             "(plane group, input cycle)")
      .def_readonly("read_weight", &TileReadout::read_weight)
      .def_property_readonly("input_scale", [](const TileReadout& r) {
        return vector_to_numpy(r.input_scale.data(), r.input_scale.size());
      }, "per sample: the scale the input was divided by")
      .def_readonly("adc_step", &TileReadout::adc_step)
      .def_property_readonly("output_scale", [](const TileReadout& r) {
        return vector_to_numpy(r.output_scale.data(), r.output_scale.size());
      }, "per column: normalised units -> weight units")
      .def_property_readonly("bm_rounds", [](const TileReadout& r) {
        return vector_to_numpy(r.bm_rounds.data(), r.bm_rounds.size());
      }, "per sample: bound-management rounds applied")
      .def_property_readonly("clipped", [](const TileReadout& r) {
        return vector_to_numpy(r.clipped.data(), r.clipped.size());
      }, "per sample: 1 when an output still clipped")
      .def("to_dict", &readout_dict);

  py::class_<Tile>(m, "Tile",
                   "One crossbar tile: analog MVM of a batch against a conductance block with "
                   "DAC, ADC and per-MVM noise (docs/physics.md §4 steps 1-6).")
      .def(py::init<ConductanceBlock, IoParams>(), py::arg("block"), py::arg("io") = IoParams(),
           "Validates block and io (ValueError naming the field).")
      .def_property_readonly("rows", &Tile::rows)
      .def_property_readonly("cols", &Tile::cols)
      .def_property_readonly("groups", &Tile::groups)
      .def_property_readonly("cycles", &Tile::cycles)
      .def_property_readonly("io", &Tile::io)
      .def(
          "forward",
          [](const Tile& t, py::object x, py::object key) {
            const auto xv = matrix_view(x, "pcmsim.Tile.forward", "x", t.rows());
            const RngKey k = key_from(key, Stage::tile_forward);
            TileReadout out;
            {
              py::gil_scoped_release release;
              t.forward(xv, k, out);
            }
            return out;
          },
          py::arg("x"), py::arg("key") = 0,
          "x: float32 C-contiguous (batch, rows), used without a copy. key: RngKey or int "
          "seed (stage tile_forward). Returns the TileReadout (before the digital unit).")
      .def(
          "matmul",
          [](const Tile& t, py::object x, py::object key, const DigitalParams& digital,
             double alpha) {
            const auto xv = matrix_view(x, "pcmsim.Tile.matmul", "x", t.rows());
            const RngKey k = key_from(key, Stage::tile_forward);
            MatrixF y;
            {
              py::gil_scoped_release release;
              TileReadout out;
              t.forward(xv, k, out);
              LayerAccumulator acc(digital);
              acc.begin(xv.rows(), t.cols());
              acc.add(out, 0, alpha);
              acc.finish(y);
            }
            return to_numpy(y);
          },
          py::arg("x"), py::arg("key") = 0, py::arg("digital") = DigitalParams(),
          py::arg("alpha") = 1.0,
          "Tile forward + digital unit: y = x @ W_effective in weight units, (batch, cols) "
          "float32. x: float32 C-contiguous (batch, rows), no copy. alpha: drift compensation "
          "factor applied digitally.")
      .def_property("input_range", &Tile::input_range, &Tile::set_input_range,
                    "static input range (NoiseManagement static_range), > 0")
      .def("set_output_bounds",
           [](Tile& t, py::object bounds) {
             VectorD d = vector_d(bounds, "pcmsim.Tile.set_output_bounds", "bounds");
             t.set_output_bounds(d.cast<float>());
           },
           py::arg("bounds"), "ADC full scale per column (normalised, each > 0); [] = uniform")
      .def_property_readonly("output_bounds", [](const Tile& t) {
        return vector_to_numpy(t.output_bounds().data(), t.output_bounds().size());
      })
      .def("set_conductances", &Tile::set_conductances, py::arg("block"),
           "A new time snapshot of the same block shape.")
      .def("group_weights", [](const Tile& t, int g) { return to_numpy(t.group_weights(g)); },
           py::arg("group"), "normalised weights of a read group, rows x cols")
      .def_property_readonly("output_scale", [](const Tile& t) {
        return vector_to_numpy(t.output_scale().data(), t.output_scale().size());
      });

  py::class_<LayerAccumulator>(m, "LayerAccumulator",
                               "The digital unit of one layer: accumulates tile readouts at "
                               "the DigitalParams precision. begin(batch, cols); add(readout, "
                               "col0, alpha) per tile; finish() -> (batch, cols) float32.")
      .def(py::init<DigitalParams>(), py::arg("params") = DigitalParams())
      .def_property("params", &LayerAccumulator::params, &LayerAccumulator::set_params)
      .def("begin", &LayerAccumulator::begin, py::arg("batch"), py::arg("cols"))
      .def(
          "add",
          [](LayerAccumulator& acc, const TileReadout& r, Index col0, py::object alpha) {
            if (alpha.is_none()) {
              acc.add(r, col0, nullptr);
            } else if (py::isinstance<py::float_>(alpha) || py::isinstance<py::int_>(alpha)) {
              acc.add(r, col0, alpha.cast<double>());
            } else {
              const VectorD a = vector_d(alpha, "pcmsim.LayerAccumulator.add", "alpha");
              acc.add(r, col0, &a);
            }
          },
          py::arg("readout"), py::arg("col0") = 0, py::arg("alpha") = py::none(),
          "alpha: None (1), a float (per tile) or one factor per readout column.")
      .def("finish", [](LayerAccumulator& acc) { return to_numpy(acc.finish()); })
      .def_property_readonly("saturations", &LayerAccumulator::saturations);

  // ---- GDC
  py::class_<GdcReference>(m, "GdcReference", "What GDC keeps of the reference of one tile.")
      .def_property_readonly("r0", [](const GdcReference& r) {
        return vector_to_numpy(r.r0.data(), r.r0.size());
      })
      .def_readonly("selected_count", &GdcReference::selected_count)
      .def_readonly("params", &GdcReference::params);
  py::class_<GdcResult>(m, "GdcResult", "alpha = r0 / r(t) per tile column.")
      .def_property_readonly("alpha", [](const GdcResult& r) {
        return vector_to_numpy(r.alpha.data(), r.alpha.size());
      })
      .def_property_readonly("r_t", [](const GdcResult& r) {
        return vector_to_numpy(r.r_t.data(), r.r_t.size());
      })
      .def_readonly("resolved", &GdcResult::resolved)
      .def_readonly("resolved_fraction", &GdcResult::resolved_fraction);
  m.def(
      "gdc_reference",
      [](Tile& tile, const GdcParams& params, py::object key) {
        const RngKey k = key_from(key, Stage::user);
        py::gil_scoped_release release;
        return gdc_reference(tile, params, k);
      },
      py::arg("tile"), py::arg("params") = GdcParams(), py::arg("key") = 0,
      "GDC reference measured through `tile` holding the t = 0 snapshot.");
  m.def(
      "gdc_reference_exact",
      [](Tile& tile, py::object weights, const GdcParams& params, py::object key) {
        const auto w = matrix_view(weights, "pcmsim.gdc_reference_exact", "weights");
        const RngKey k = key_from(key, Stage::user);
        py::gil_scoped_release release;
        return gdc_reference_exact(tile, w, params, k);
      },
      py::arg("tile"), py::arg("weights"), py::arg("params"), py::arg("key") = 0,
      "Exact GDC reference from the unprogrammed weights (rows x cols float32); "
      "params.reference must be 'exact'.");
  m.def(
      "gdc_alpha",
      [](Tile& tile, const GdcReference& ref, py::object key) {
        const RngKey k = key_from(key, Stage::user);
        py::gil_scoped_release release;
        return gdc_alpha(tile, ref, k);
      },
      py::arg("tile"), py::arg("reference"), py::arg("key") = 0,
      "Drift compensation factors at the tile's current snapshot.");

  // Diagnostics for the zero-copy contract.
  m.def(
      "_input_address",
      [](py::object x) {
        const auto v = matrix_view(x, "pcmsim._input_address", "x", -1, true);
        return reinterpret_cast<std::uintptr_t>(v.data());
      },
      py::arg("x"),
      "Address of the buffer the C++ side reads for an input array (the same conversion every "
      "binding uses): equals x.ctypes.data when no copy is made.");
}

}  // namespace

PCMSIM_BIND(10, bind_core);

}  // namespace pcmsim::python
