// Converter and per-MVM noise parameters of one crossbar tile (docs/physics.md §4).
//
// Defaults are IBM's standard inference tile (Rasch et al. 2023): 8-bit DAC and ADC, input
// range [-1, 1], output range [-10, 10], output noise 0.04, abs-max noise management and
// iterative bound management. All values are in normalised units: an input of 1 is the DAC's
// full scale after noise management, an output of 1 is the current of a full-scale weight
// (G+ - G- = g_max) driven by a full-scale input on one row.
#pragma once

#include <string>

#include "core/settings.h"

namespace pcmsim::core {

// How the digital unit scales each input vector before the DAC (docs/physics.md §4 step 1).
enum class NoiseManagement {
  abs_max,       // s = max_i |x_i| per input vector (default)
  static_range,  // s = a constant (calibrated) input range, Tile::set_input_range
  none,          // s = 1
};

// Per-MVM read noise of the analog product, output-referred (normalised units).
enum class ReadNoise {
  none,      // default
  pcm_like,  // sigma_j = w_noise * sqrt(sum_i |W_ij| * x_i^2)
  additive,  // sigma_j = w_noise * ||x||_2
};

// Iterative bound management (docs/physics.md §4 step 6): a sample whose output clipped at the ADC
// is redone with its input scale doubled, at most floor(log2(bm_max_factor)) times.
enum class BoundManagement {
  automatic,  // iterative unless noise_management == static_range (default)
  iterative,
  off,
};

// Rounding of both converters.
enum class Rounding {
  nearest,     // to the nearest level, ties away from zero (default)
  stochastic,  // down or up with probability given by the distance (unbiased)
};

struct IoParams {
  // DAC resolution in bits, 2..16, or 0 = no quantisation. A p-bit signed converter has the
  // levels k*step, |k| <= 2^(p-1)-1, step = 2*in_bound/(2^p-2). (p = 1 would have the single
  // level 0 under that formula, so it is rejected.)
  int p_in = 8;
  // ADC resolution in bits, 2..16, or 0 = no quantisation (same level formula over out_bound).
  int p_out = 8;
  // DAC full scale: inputs x/s are clipped to [-in_bound, in_bound] (normalised units, > 0;
  // may be +infinity only when p_in = 0).
  double in_bound = 1.0;
  // ADC full scale: outputs are clipped to [-out_bound, out_bound] (normalised units, > 0;
  // may be +infinity only when p_out = 0). Tile::set_output_bounds overrides it per column.
  double out_bound = 10.0;
  // Std of Gaussian noise added to each DAC output value (normalised units, >= 0).
  double in_noise = 0.0;
  // Std of Gaussian noise added to each output before the ADC (normalised units, >= 0).
  double out_noise = 0.04;
  ReadNoise read_noise = ReadNoise::none;
  // Scale of the per-MVM read noise (dimensionless, >= 0); unused when read_noise == none.
  double w_noise = 0.0;
  NoiseManagement noise_management = NoiseManagement::abs_max;
  BoundManagement bound_management = BoundManagement::automatic;
  // Largest factor by which bound management may grow the input scale (>= 1, finite);
  // rounds = floor(log2(bm_max_factor)). Default as aihwkit's max_bm_factor.
  double bm_max_factor = 1000.0;
  Rounding rounding = Rounding::nearest;
  // Bit-serial inputs: 0 = the whole p_in-bit value in one DAC cycle (default). Otherwise the
  // p_in - 1 magnitude bits of the DAC level k are applied b_in bits per cycle, least
  // significant first, in ceil((p_in-1)/b_in) cycles; each cycle drives sign(k) * digit, a
  // value of a (b_in+1)-bit signed DAC, and the digital unit shifts and adds (read_weight).
  // Requires p_in >= 2 and 1 <= b_in <= p_in - 1 (b_in = p_in - 1 is one cycle).
  int b_in = 0;
  // Real ADCs (docs/ir-drop.md#adcs): each ADC converts a(v) = g * v + o + adc_inl * (1 -
  // (v/B)^2) instead of v, B its full scale, with per-ADC gain g = exp(adc_gain_std * z1) and
  // offset o = adc_offset_std * z2 drawn once per programmed chip (Tile::draw_adc_errors), and
  // adc_inl the mid-scale deviation of a bow-shaped integral non-linearity.
  double adc_offset_std = 0.0;  // normalised output units, >= 0
  double adc_gain_std = 0.0;    // dimensionless, >= 0
  double adc_inl = 0.0;         // normalised output units, finite; needs a finite out_bound
  // Or a measured INL: a CSV transfer table (core/adc_transfer.h; units of each ADC's full scale,
  // interpolated), instead of the bow. Empty: none. validate() reads and checks it.
  std::string adc_inl_table;
  // Columns sharing one ADC (converted one after another): they share its gain, offset and INL.
  // The cost model counts ceil(cols / adc_columns) ADCs per tile and adc_columns conversions.
  int adc_columns = 1;

  // Throws std::invalid_argument "[core::IoParams] <field> = <value>: ..." for any field out of
  // range or inconsistent with another.
  void validate() const;

  template <class V>
  static void fields(V& v);

  // Derived values.
  bool bound_management_active() const;  // resolves `automatic`
  int bm_rounds() const;                 // 0 when bound management is off
  int input_cycles() const;              // 1 unless bit-serial
  bool adc_errors() const {
    return adc_offset_std > 0 || adc_gain_std > 0 || adc_inl != 0 || !adc_inl_table.empty();
  }
};

std::string to_string(NoiseManagement v);
std::string to_string(ReadNoise v);
std::string to_string(BoundManagement v);
std::string to_string(Rounding v);
// Parse the names above; throw std::invalid_argument naming the text.
NoiseManagement noise_management_from_string(const std::string& text);
ReadNoise read_noise_from_string(const std::string& text);
BoundManagement bound_management_from_string(const std::string& text);
Rounding rounding_from_string(const std::string& text);
PCMSIM_ENUM_TEXT(NoiseManagement, noise_management_from_string, "abs_max", "static_range", "none");
PCMSIM_ENUM_TEXT(ReadNoise, read_noise_from_string, "none", "pcm_like", "additive");
PCMSIM_ENUM_TEXT(BoundManagement, bound_management_from_string, "automatic", "iterative", "off");
PCMSIM_ENUM_TEXT(Rounding, rounding_from_string, "nearest", "stochastic");

template <class V>
void IoParams::fields(V& v) {
  using S = IoParams;
  const Affects c = Affects::converter;
  v.field({"p_in", "bits", "0 or 2..16", "DAC resolution (0 = no quantisation)", c},
          [](S& s) -> auto& { return s.p_in; });
  v.field({"p_out", "bits", "0 or 2..16", "ADC resolution (0 = no quantisation)", c},
          [](S& s) -> auto& { return s.p_out; });
  v.field({"in_bound", "", "> 0", "DAC full scale (normalised input units)", c},
          [](S& s) -> auto& { return s.in_bound; });
  v.field({"out_bound", "", "> 0", "ADC full scale (a full-scale weight times a full-scale "
                                   "input on one row is 1)", c},
          [](S& s) -> auto& { return s.out_bound; });
  v.field({"in_noise", "", ">= 0", "std of Gaussian noise on each DAC value", c},
          [](S& s) -> auto& { return s.in_noise; });
  v.field({"out_noise", "", ">= 0", "std of Gaussian noise on each output before the ADC", c},
          [](S& s) -> auto& { return s.out_noise; });
  v.field({"read_noise", "", "", "per-MVM read noise of the analog product", c},
          [](S& s) -> auto& { return s.read_noise; });
  v.field({"w_noise", "", ">= 0", "scale of the per-MVM read noise", c},
          [](S& s) -> auto& { return s.w_noise; });
  v.field({"noise_management", "", "", "input scaling before the DAC (static_range: the "
                                       "calibrated range)", c},
          [](S& s) -> auto& { return s.noise_management; });
  v.field({"bound_management", "", "", "redo clipped samples with a doubled input scale "
                                       "(automatic: unless static_range)", c},
          [](S& s) -> auto& { return s.bound_management; });
  v.field({"bm_max_factor", "", ">= 1, finite", "largest input-scale factor of bound "
                                                "management", c},
          [](S& s) -> auto& { return s.bm_max_factor; });
  v.field({"rounding", "", "", "rounding of both converters", c},
          [](S& s) -> auto& { return s.rounding; });
  v.field({"b_in", "bits", "0 or 1..p_in-1", "bit-serial input bits per DAC cycle (0 = "
                                             "parallel)", c},
          [](S& s) -> auto& { return s.b_in; });
  v.field({"adc_offset_std", "", ">= 0", "std of each ADC's offset, drawn once per chip "
                                         "(normalised output units)", c},
          [](S& s) -> auto& { return s.adc_offset_std; });
  v.field({"adc_gain_std", "", ">= 0", "std of the log of each ADC's gain, drawn once per "
                                       "chip", c},
          [](S& s) -> auto& { return s.adc_gain_std; });
  v.field({"adc_inl", "", "finite", "ADC integral non-linearity: mid-scale deviation of a "
                                    "bow, 0 at full scale (normalised output units)", c},
          [](S& s) -> auto& { return s.adc_inl; });
  v.field({"adc_inl_table", "", "CSV file", "ADC integral non-linearity as a measured transfer "
                                            "table 'ideal,actual' in units of full scale, "
                                            "interpolated (instead of adc_inl)", c},
          [](S& s) -> auto& { return s.adc_inl_table; });
  v.field({"adc_columns", "", ">= 1", "columns sharing one ADC (sequential conversions; they "
                                      "share its errors)", c},
          [](S& s) -> auto& { return s.adc_columns; });
}

}  // namespace pcmsim::core
