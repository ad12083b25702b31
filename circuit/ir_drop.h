// Wire resistance of a crossbar array (docs/ir-drop.md): the settings of the `ir_drop` group and
// the step that turns a snapshot's conductances into the effective matrices the tile multiplies
// by (docs/architecture.md: circuit effects sit between the snapshot and the forward).
#pragma once

#include "core/conductance_block.h"
#include "core/settings.h"

namespace pcmsim::circuit {

// Resistances of the circuit of circuit/crossbar.h, in ohms, each finite and >= 0. All zero
// (the default) is the ideal crossbar: conductances are used as they are, bit for bit.
struct IrDropParams {
  double r_row = 0.0;     // word-line segment between two cells (and source -> first cell)
  double r_col = 0.0;     // bit-line segment between two cells (and last cell -> sense amp)
  double r_driver = 0.0;  // output resistance of each row driver, in series with the first segment
  double r_sense = 0.0;   // input resistance of each sense amplifier, in series with the last

  bool ideal() const { return r_row == 0 && r_col == 0 && r_driver == 0 && r_sense == 0; }
  // Throws std::invalid_argument "[circuit::IrDropParams] r_row = -1: must be finite and >= 0".
  void validate() const;
  bool operator==(const IrDropParams& o) const {
    return r_row == o.r_row && r_col == o.r_col && r_driver == o.r_driver && r_sense == o.r_sense;
  }

  template <class V>
  static void fields(V& v);
};

// Wire resistance is a property of the physical chip: another value is another chip, so the
// settings are `programming` ones (a sweep over them programs a chip per value; snapshots of one
// chip, which already carry the effective matrices, are shared only between equal values).
template <class V>
void IrDropParams::fields(V& v) {
  using S = IrDropParams;
  const core::Affects p = core::Affects::programming;
  v.field({"r_row", "ohm", ">= 0", "word-line wire resistance per cell segment (0 = ideal)", p},
          [](S& s) -> auto& { return s.r_row; });
  v.field({"r_col", "ohm", ">= 0", "bit-line wire resistance per cell segment (0 = ideal)", p},
          [](S& s) -> auto& { return s.r_col; });
  v.field({"r_driver", "ohm", ">= 0", "row driver output resistance (in series with the first "
                                      "word-line segment)", p},
          [](S& s) -> auto& { return s.r_driver; });
  v.field({"r_sense", "ohm", ">= 0", "sense amplifier input resistance (in series with the last "
                                     "bit-line segment)", p},
          [](S& s) -> auto& { return s.r_sense; });
}

// Replaces every plane's G+ and G- (siemens) by its effective matrix under `params`, each array
// its own circuit (the pair shares only the ideal row sources, which decouple them). One sparse
// factorisation per array, arrays in parallel (OpenMP; each whole on one thread, so the bits do
// not depend on the thread count). Nothing changes when params.ideal(). The block's g_max and weight
// scales stay: effective conductances are normalised as the programmed ones.
void apply_ir_drop(const IrDropParams& params, core::ConductanceBlock& block);

}  // namespace pcmsim::circuit
