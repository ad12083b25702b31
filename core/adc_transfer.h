// A measured ADC transfer curve (IoParams::adc_inl_table, docs/adc-errors.md): the integral
// non-linearity as a table instead of the parametric bow of IoParams::adc_inl.
//
// File format (CSV, '#' comments and blank lines ignored): a header line `ideal,actual`, then one
// row per point: the ideal input of the ADC and the level it actually converts it to, both in
// units of that ADC's full scale B (so -1..1; an ideal code k of a p-bit ADC is k / (2^(p-1) - 1)).
// `ideal` strictly increasing from <= -1 to >= 1 (the table covers the full scale), |actual| <= 2.
// The ADC then converts a(v) = g v + o + B D(v_c / B), with D = actual - ideal interpolated
// linearly between the points and v_c the input clipped to +-B: the deviation of each point is
// applied to the input (unlike gain and offset, which the table does not describe). An identity
// table (actual = ideal) gives the ideal ADC bit for bit.
#pragma once

#include <string>
#include <vector>

namespace pcmsim::core {

struct AdcTransferTable {
  std::vector<double> ideal, deviation;  // deviation = actual - ideal, full-scale units
  std::string source;                    // the file, for messages
};

// Reads and checks the table; throws std::runtime_error for a file that cannot be read and
// std::invalid_argument naming the file, line and value for bad contents.
AdcTransferTable read_adc_transfer_table(const std::string& path);

}  // namespace pcmsim::core
