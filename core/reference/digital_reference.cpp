#include "core/reference/digital_reference.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace pcmsim::core::reference {

namespace {
double round_away(double v) { return std::round(v); }  // ties away from zero
}  // namespace

MatrixD accumulate(const DigitalParams& params, Index batch, Index cols,
                   const std::vector<PlacedReadout>& parts, long long* saturations) {
  params.validate();
  MatrixD out = MatrixD::Zero(batch, cols);
  long long sat = 0;
  for (Index b = 0; b < batch; ++b) {
    for (Index j = 0; j < cols; ++j) {
      // The terms of output (b, j), in the order the digital unit adds them.
      std::vector<double> terms;
      std::vector<float> terms_f;
      for (const PlacedReadout& p : parts) {
        const TileReadout& ro = *p.readout;
        const Index nc = ro.output_scale.size();
        if (j < p.col0 || j >= p.col0 + nc) continue;
        const Index jj = j - p.col0;
        const double a = p.alpha.size() == 0 ? 1.0 : p.alpha(jj);
        const double colf = ro.output_scale(jj) * a;
        for (std::size_t r = 0; r < ro.reads.size(); ++r) {
          const double read = ro.reads[r](b, jj);
          terms.push_back(((read * ro.read_weight[r]) * static_cast<double>(ro.input_scale(b))) *
                          colf);
          terms_f.push_back(((ro.reads[r](b, jj) * static_cast<float>(ro.read_weight[r])) *
                             ro.input_scale(b)) *
                            static_cast<float>(colf));
        }
      }
      double y = 0;
      switch (params.accumulator) {
        case Accumulator::float64:
          for (double t : terms) y += t;
          break;
        case Accumulator::float32: {
          float yf = 0;
          for (float t : terms_f) yf += t;
          y = yf;
          break;
        }
        case Accumulator::fixed_point: {
          const double lsb = std::pow(2.0, -params.acc_frac_bits);
          const double max_int = std::pow(2.0, params.acc_bits - 1) - 1;
          double acc = 0;  // integer, in LSB units
          for (double t : terms) {
            const double sum = acc + round_away(t / lsb);
            if (sum > max_int) {
              acc = max_int;
              ++sat;
            } else if (sum < -max_int) {
              acc = -max_int;
              ++sat;
            } else {
              acc = sum;
            }
          }
          y = acc * lsb;
          break;
        }
        case Accumulator::block_floating_point: {
          double mx = 0;
          for (double t : terms) mx = std::max(mx, std::abs(t));
          if (mx == 0) break;
          // E: the smallest integer with max|term| < 2^E.
          int e = static_cast<int>(std::floor(std::log2(mx))) + 1;
          while (std::pow(2.0, e - 1) > mx) --e;
          while (std::pow(2.0, e) <= mx) ++e;
          const double lsb = std::pow(2.0, e - params.bfp_window_bits);
          double isum = 0;
          for (double t : terms) isum += round_away(t / lsb);
          y = isum * lsb;
          break;
        }
      }
      out(b, j) = y;
    }
  }
  if (saturations != nullptr) *saturations = sat;
  return out;
}

}  // namespace pcmsim::core::reference
