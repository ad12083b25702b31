// Python bindings of circuit/: IrDropParams and the exact crossbar solution with wire resistance
// (crossbar_currents, crossbar_effective_weights), in float64.
#include "circuit/crossbar.h"
#include "circuit/ir_drop.h"
#include "python/bind_common.h"

namespace pcmsim::python {
namespace {

using namespace circuit;
using core::MatrixD;

// A 2-D NumPy array of any real dtype (float64 without a copy of the values' meaning; float32
// and integers converted) as a row-major double matrix.
MatrixD matrix_d(const py::handle& obj, const char* where, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw_type(where, core::concat(name, ": expected a 2-D NumPy array, got ",
                                   std::string(py::str(py::type::of(obj).attr("__name__")))));
  const auto raw = py::reinterpret_borrow<py::array>(obj);
  const char kind = raw.dtype().kind();
  if (kind != 'f' && kind != 'i' && kind != 'u')
    throw_type(where, core::concat(name, ": dtype ", std::string(py::str(raw.dtype())),
                                   ", expected float64 or float32"));
  auto a = py::array_t<double, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (a.ndim() != 2)
    throw py::value_error(core::tagged(
        where, core::concat(name, ": shape ", shape_str(a), ", expected a 2-D array")));
  MatrixD m(a.shape(0), a.shape(1));
  if (m.size()) std::memcpy(m.data(), a.data(), sizeof(double) * m.size());
  return m;
}

SparseSolver solver_from(const std::string& s) {
  if (s == "schur") return SparseSolver::schur;
  if (s == "cholmod") return SparseSolver::cholmod;
  if (s == "eigen") return SparseSolver::eigen;
  core::throw_invalid("pcmsim.crossbar", core::concat("solver = '", s,
                                                      "': expected schur, cholmod or eigen"));
}

void bind_circuit(py::module_& m) {
  StructBinder<IrDropParams>(m, "IrDropParams",
                             "Wire resistance of each crossbar array in ohms (docs/ir-drop.md); "
                             "all zero = ideal wires.")
      .settings()
      .def("validate", &IrDropParams::validate, "Raises ValueError naming the bad field.");

  m.def(
      "crossbar_effective_weights",
      [](py::object g, double r_row, double r_col, double r_driver, double r_sense,
         const std::string& solver) {
        const MatrixD G = matrix_d(g, "pcmsim.crossbar_effective_weights", "G");
        const IrDropParams r{r_row, r_col, r_driver, r_sense};
        const SparseSolver s = solver_from(solver);
        MatrixD w;
        {
          py::gil_scoped_release release;
          w = crossbar_effective_weights(G, r, s);
        }
        return to_numpy(w);
      },
      py::arg("G"), py::arg("r_row"), py::arg("r_col"), py::arg("r_driver") = 0.0,
      py::arg("r_sense") = 0.0, py::arg("solver") = "schur",
      "Effective conductance matrix W_eff (m x n, siemens, float64) of a crossbar with "
      "conductances G (m x n, siemens) and wire resistances in ohms: bit-line currents are "
      "V @ W_eff for any row voltages V (docs/ir-drop.md defines the circuit). All resistances "
      "zero returns G. solver: 'schur' (nested dissection of the grid, dense Schur complements; "
      "the default), 'cholmod' (SuiteSparse) or 'eigen'.");
  m.def(
      "crossbar_currents",
      [](py::object g, py::object v, double r_row, double r_col, double r_driver, double r_sense,
         const std::string& solver) {
        const MatrixD G = matrix_d(g, "pcmsim.crossbar_currents", "G");
        const MatrixD V = matrix_d(v, "pcmsim.crossbar_currents", "V");
        const IrDropParams r{r_row, r_col, r_driver, r_sense};
        const SparseSolver s = solver_from(solver);
        MatrixD i;
        {
          py::gil_scoped_release release;
          i = crossbar_currents(G, V, r, s);
        }
        return to_numpy(i);
      },
      py::arg("G"), py::arg("V"), py::arg("r_row"), py::arg("r_col"), py::arg("r_driver") = 0.0,
      py::arg("r_sense") = 0.0, py::arg("solver") = "schur",
      "Bit-line currents (batch x n, amperes, float64) of a crossbar with conductances G "
      "(m x n, siemens) driven by row voltages V (batch x m, volts), with wire resistances in "
      "ohms: the exact DC solution of the circuit of docs/ir-drop.md.");
}

}  // namespace

PCMSIM_BIND(35, bind_circuit);

}  // namespace pcmsim::python
