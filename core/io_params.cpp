#include "core/io_params.h"

#include <cmath>
#include <limits>

#include "core/adc_transfer.h"
#include "core/error.h"

namespace pcmsim::core {
namespace {

constexpr const char* kWhere = "core::IoParams";

void check_bits(const char* name, int bits) {
  if (bits == 0) return;
  if (bits == 1)
    throw_invalid(kWhere, concat(name, " = 1: a 1-bit signed converter has only the level 0; use "
                                       "2..16 bits or 0 (off)"));
  if (bits < 0 || bits > 16)
    throw_invalid(kWhere, concat(name, " = ", bits, ": must be 0 (off) or in [2, 16]"));
}

// bound > 0; +inf only when the converter does not quantise.
void check_bound(const char* name, double bound, const char* bits_name, int bits) {
  if (std::isnan(bound) || !(bound > 0))
    throw_invalid(kWhere, concat(name, " = ", bound, ": must be > 0"));
  if (std::isinf(bound) && bits != 0)
    throw_invalid(kWhere, concat(name, " = ", bound, ": must be finite when ", bits_name, " = ",
                                 bits, " (the converter step is 2*bound/(2^p-2))"));
}

}  // namespace

void IoParams::validate() const {
  check_bits("p_in", p_in);
  check_bits("p_out", p_out);
  check_bound("in_bound", in_bound, "p_in", p_in);
  check_bound("out_bound", out_bound, "p_out", p_out);
  require_non_negative(kWhere, "in_noise", in_noise);
  require_non_negative(kWhere, "out_noise", out_noise);
  require_non_negative(kWhere, "w_noise", w_noise);
  if (read_noise != ReadNoise::none && read_noise != ReadNoise::pcm_like &&
      read_noise != ReadNoise::additive)
    throw_invalid(kWhere, concat("read_noise = ", static_cast<int>(read_noise), ": unknown"));
  if (noise_management != NoiseManagement::abs_max &&
      noise_management != NoiseManagement::static_range &&
      noise_management != NoiseManagement::none)
    throw_invalid(kWhere,
                  concat("noise_management = ", static_cast<int>(noise_management), ": unknown"));
  if (bound_management != BoundManagement::automatic &&
      bound_management != BoundManagement::iterative && bound_management != BoundManagement::off)
    throw_invalid(kWhere,
                  concat("bound_management = ", static_cast<int>(bound_management), ": unknown"));
  if (rounding != Rounding::nearest && rounding != Rounding::stochastic)
    throw_invalid(kWhere, concat("rounding = ", static_cast<int>(rounding), ": unknown"));
  if (!(bm_max_factor >= 1.0) || !std::isfinite(bm_max_factor))
    throw_invalid(kWhere, concat("bm_max_factor = ", bm_max_factor, ": must be finite and >= 1"));
  if (bm_rounds() > 64)
    throw_invalid(kWhere, concat("bm_max_factor = ", bm_max_factor,
                                 ": at most 2^64 (64 bound-management rounds)"));
  if (b_in != 0) {
    if (p_in == 0)
      throw_invalid(kWhere, concat("b_in = ", b_in, ": bit-serial inputs need a DAC (p_in = 0)"));
    if (b_in < 1 || b_in > p_in - 1)
      throw_invalid(kWhere, concat("b_in = ", b_in, ": must be 0 (all bits at once) or in [1, ",
                                   p_in - 1, "] (the p_in - 1 magnitude bits of p_in = ", p_in,
                                   ")"));
  } else if (b_in < 0) {
    throw_invalid(kWhere, concat("b_in = ", b_in, ": must be >= 0"));
  }
  require_non_negative(kWhere, "adc_offset_std", adc_offset_std);
  require_non_negative(kWhere, "adc_gain_std", adc_gain_std);
  require_finite(kWhere, "adc_inl", adc_inl);
  if (adc_inl != 0 && !std::isfinite(out_bound))
    throw_invalid(kWhere, concat("adc_inl = ", adc_inl, ": the bow is relative to the ADC full "
                                 "scale, which needs a finite out_bound (out_bound = ",
                                 out_bound, ")"));
  if (!adc_inl_table.empty()) {
    if (adc_inl != 0)
      throw_invalid(kWhere, concat("adc_inl_table = ", adc_inl_table, " and adc_inl = ", adc_inl,
                                   ": give the INL one way (the table or the bow)"));
    if (!std::isfinite(out_bound))
      throw_invalid(kWhere, concat("adc_inl_table = ", adc_inl_table,
                                   ": the table is relative to the ADC full scale, which needs a "
                                   "finite out_bound (out_bound = ",
                                   out_bound, ")"));
    read_adc_transfer_table(adc_inl_table);  // throws naming the file, line and value
  }
  if (adc_columns < 1)
    throw_invalid(kWhere, concat("adc_columns = ", adc_columns, ": must be >= 1"));
}

bool IoParams::bound_management_active() const {
  switch (bound_management) {
    case BoundManagement::iterative: return true;
    case BoundManagement::off: return false;
    case BoundManagement::automatic:
    default: return noise_management != NoiseManagement::static_range;
  }
}

int IoParams::bm_rounds() const {
  if (!bound_management_active()) return 0;
  if (!(bm_max_factor >= 1.0) || !std::isfinite(bm_max_factor)) return 0;
  // floor(log2(f)) exactly: frexp gives f = m * 2^e with m in [0.5, 1).
  int e = 0;
  std::frexp(bm_max_factor, &e);
  return e - 1;
}

int IoParams::input_cycles() const {
  if (b_in <= 0 || p_in < 2) return 1;
  return (p_in - 1 + b_in - 1) / b_in;
}

std::string to_string(NoiseManagement v) {
  switch (v) {
    case NoiseManagement::abs_max: return "abs_max";
    case NoiseManagement::static_range: return "static_range";
    case NoiseManagement::none: return "none";
  }
  return "unknown";
}
std::string to_string(ReadNoise v) {
  switch (v) {
    case ReadNoise::none: return "none";
    case ReadNoise::pcm_like: return "pcm_like";
    case ReadNoise::additive: return "additive";
  }
  return "unknown";
}
std::string to_string(BoundManagement v) {
  switch (v) {
    case BoundManagement::automatic: return "automatic";
    case BoundManagement::iterative: return "iterative";
    case BoundManagement::off: return "off";
  }
  return "unknown";
}
std::string to_string(Rounding v) {
  switch (v) {
    case Rounding::nearest: return "nearest";
    case Rounding::stochastic: return "stochastic";
  }
  return "unknown";
}

NoiseManagement noise_management_from_string(const std::string& text) {
  if (text == "abs_max") return NoiseManagement::abs_max;
  if (text == "static_range") return NoiseManagement::static_range;
  if (text == "none") return NoiseManagement::none;
  throw_invalid(kWhere, concat("noise_management = '", text,
                               "': must be abs_max, static_range or none"));
}
ReadNoise read_noise_from_string(const std::string& text) {
  if (text == "none") return ReadNoise::none;
  if (text == "pcm_like") return ReadNoise::pcm_like;
  if (text == "additive") return ReadNoise::additive;
  throw_invalid(kWhere, concat("read_noise = '", text, "': must be none, pcm_like or additive"));
}
BoundManagement bound_management_from_string(const std::string& text) {
  if (text == "automatic") return BoundManagement::automatic;
  if (text == "iterative") return BoundManagement::iterative;
  if (text == "off") return BoundManagement::off;
  throw_invalid(kWhere, concat("bound_management = '", text,
                               "': must be automatic, iterative or off"));
}
Rounding rounding_from_string(const std::string& text) {
  if (text == "nearest") return Rounding::nearest;
  if (text == "stochastic") return Rounding::stochastic;
  throw_invalid(kWhere, concat("rounding = '", text, "': must be nearest or stochastic"));
}

}  // namespace pcmsim::core
