// The conductances of one mapped weight block as the tile sees them: plain numbers, no device
// physics. Produced by devices (programming + time snapshot), consumed by the tile.
#pragma once

#include <string>
#include <vector>

#include "core/error.h"
#include "core/settings.h"
#include "core/types.h"

namespace pcmsim::core {

// One differential device pair per weight: weight contribution = significance*(G+ - G-)/s.
struct ConductancePlane {
  MatrixF g_plus;   // rows x cols, siemens
  MatrixF g_minus;  // rows x cols, siemens
  double significance = 1.0;  // F_k of a multi-device cell, or 2^(b*k) of a weight slice
};

// How the planes of a block are combined.
enum class PlaneReadout {
  analog,   // currents summed with their significance (current mirrors), one ADC read
  digital,  // each plane read by its own ADC; the digital unit shifts and adds
};
inline const char* to_string(PlaneReadout r) {
  return r == PlaneReadout::analog ? "analog" : "digital";
}
inline PlaneReadout plane_readout_from_string(const std::string& text) {
  if (text == "analog") return PlaneReadout::analog;
  if (text == "digital") return PlaneReadout::digital;
  throw_invalid("core::PlaneReadout", concat("readout = '", text, "': must be analog or digital"));
}
PCMSIM_ENUM_TEXT(PlaneReadout, plane_readout_from_string, "analog", "digital");

struct ConductanceBlock {
  std::vector<ConductancePlane> planes;
  double g_max = 25e-6;  // siemens; currents are normalised by it (full-scale weight -> 1)
  // Weight-to-conductance scale s per column (siemens per weight unit):
  // W = sum_k significance_k * (G+_k - G-_k) / s.
  VectorD weight_scale;
  PlaneReadout readout = PlaneReadout::digital;

  Index rows() const { return planes.empty() ? 0 : planes.front().g_plus.rows(); }
  Index cols() const { return planes.empty() ? 0 : planes.front().g_plus.cols(); }
};

}  // namespace pcmsim::core
