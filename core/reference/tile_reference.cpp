#include "core/reference/tile_reference.h"

#include <cmath>

#include "core/quantiser.h"
#include "core/tile.h"

namespace pcmsim::core::reference {
namespace {

// One random variate of element `index` (the optimised tile fills whole rows; the value of an
// element does not depend on how the fill is split).
double normal_at(const RngKey& key, std::uint32_t draw, std::uint64_t index) {
  float v;
  fill_normal(key, draw, index, 1, &v);
  return v;
}
double uniform_at(const RngKey& key, std::uint32_t draw, std::uint64_t index) {
  float v;
  fill_uniform(key, draw, index, 1, &v);
  return v;
}

}  // namespace

TileReadoutRef tile_forward(const ConductanceBlock& block, const IoParams& io, double input_range,
                            const VectorF& out_bounds, const MatrixF& x, const RngKey& key,
                            std::uint64_t first_row) {
  io.validate();
  const Index rows = block.rows(), cols = block.cols(), batch = x.rows();
  const int n_planes = static_cast<int>(block.planes.size());

  // Groups: each plane alone (digital readout) or all planes together (analog).
  std::vector<std::vector<int>> groups;
  if (block.readout == PlaneReadout::analog) {
    groups.emplace_back();
    for (int k = 0; k < n_planes; ++k) groups.back().push_back(k);
  } else {
    for (int k = 0; k < n_planes; ++k) groups.push_back({k});
  }
  const int n_groups = static_cast<int>(groups.size());
  std::vector<double> group_weight(n_groups, 0.0);
  std::vector<MatrixD> w(n_groups, MatrixD::Zero(rows, cols));
  for (int g = 0; g < n_groups; ++g) {
    for (int k : groups[g]) group_weight[g] += block.planes[k].significance;
    for (int k : groups[g])
      for (Index i = 0; i < rows; ++i)
        for (Index j = 0; j < cols; ++j)
          w[g](i, j) += block.planes[k].significance *
                        (double(block.planes[k].g_plus(i, j)) - block.planes[k].g_minus(i, j)) /
                        block.g_max / group_weight[g];
  }

  const bool bit_serial = io.b_in > 0;
  const int cycles = io.input_cycles();
  const int n_reads = n_groups * cycles;
  const bool stochastic = io.rounding == Rounding::stochastic;
  const QuantiserSpec dac{io.p_in, io.in_bound};

  TileReadoutRef out;
  out.reads.assign(n_reads, MatrixD::Zero(batch, cols));
  out.read_weight.resize(n_reads);
  for (int g = 0; g < n_groups; ++g)
    for (int c = 0; c < cycles; ++c)
      out.read_weight[g * cycles + c] =
          group_weight[g] * (bit_serial ? std::pow(2.0, io.b_in * c) *
                                              (std::pow(2.0, io.b_in) - 1.0) * dac.step() /
                                              io.in_bound
                                        : 1.0);
  out.output_scale.resize(cols);
  for (Index j = 0; j < cols; ++j) out.output_scale[j] = block.g_max / block.weight_scale[j];
  std::vector<double> bound(cols);
  out.adc_steps.resize(cols);
  for (Index j = 0; j < cols; ++j) {
    bound[j] = out_bounds.size() ? double(out_bounds[j]) : io.out_bound;
    out.adc_steps[j] = QuantiserSpec{io.p_out, bound[j]}.step();
  }
  out.input_scale.resize(batch);
  out.bm_rounds.assign(batch, 0);
  out.clipped.assign(batch, 0);

  const int max_rounds = io.bm_rounds();
  for (Index b = 0; b < batch; ++b) {
    double s0 = 1.0;
    if (io.noise_management == NoiseManagement::abs_max) {
      s0 = 0;
      for (Index i = 0; i < rows; ++i) s0 = std::max(s0, std::fabs(double(x(b, i))));
    } else if (io.noise_management == NoiseManagement::static_range) {
      s0 = input_range;
    }
    for (int round = 0;; ++round) {
      const double s = s0 * std::pow(2.0, round);
      bool clipped = false;
      // DAC levels / values of this sample.
      std::vector<double> xq0(rows);
      std::vector<long> level(rows);
      for (Index i = 0; i < rows; ++i) {
        const double v = s > 0 ? double(x(b, i)) / s : 0.0;
        const std::uint64_t idx = (first_row + std::uint64_t(b)) * rows + i;
        double u = 0;
        if (stochastic && io.p_in != 0)
          u = uniform_at(key, tile_draw(round, 0, TileNoiseKind::dac_stochastic), idx);
        xq0[i] = stochastic ? quantise_stochastic(dac, v, u) : quantise_nearest(dac, v);
        if (bit_serial) level[i] = std::lround(xq0[i] / dac.step());
      }
      for (int c = 0; c < cycles; ++c) {
        std::vector<double> xq(rows);
        for (Index i = 0; i < rows; ++i) {
          if (bit_serial) {
            const long a = std::labs(level[i]);
            const long digit = (a >> (io.b_in * c)) & ((1L << io.b_in) - 1);
            xq[i] = (level[i] < 0 ? -1.0 : 1.0) * digit * io.in_bound /
                    (std::pow(2.0, io.b_in) - 1.0);
          } else {
            xq[i] = xq0[i];
          }
          if (io.in_noise > 0)
            xq[i] += io.in_noise * normal_at(key, tile_draw(round, c, TileNoiseKind::input_noise),
                                             (first_row + std::uint64_t(b)) * rows + i);
        }
        for (int g = 0; g < n_groups; ++g) {
          const int r = g * cycles + c;
          for (Index j = 0; j < cols; ++j) {
            const std::uint64_t idx = (first_row + std::uint64_t(b)) * cols + j;
            double y = 0;
            for (Index i = 0; i < rows; ++i) y += xq[i] * w[g](i, j);
            if (io.read_noise != ReadNoise::none && io.w_noise > 0) {
              double var = 0;
              for (Index i = 0; i < rows; ++i)
                var += (io.read_noise == ReadNoise::pcm_like ? std::fabs(w[g](i, j)) : 1.0) *
                       xq[i] * xq[i];
              y += io.w_noise * std::sqrt(var) *
                   normal_at(key, tile_draw(round, r, TileNoiseKind::read_noise), idx);
            }
            if (io.out_noise > 0)
              y += io.out_noise *
                   normal_at(key, tile_draw(round, r, TileNoiseKind::output_noise), idx);
            if (std::fabs(y) > bound[j]) clipped = true;
            const QuantiserSpec adc{io.p_out, bound[j]};
            if (stochastic && io.p_out != 0)
              y = quantise_stochastic(
                  adc, y, uniform_at(key, tile_draw(round, r, TileNoiseKind::adc_stochastic), idx));
            else
              y = quantise_nearest(adc, y);
            out.reads[r](b, j) = y;
          }
        }
      }
      out.input_scale[b] = s;
      out.bm_rounds[b] = round;
      out.clipped[b] = clipped ? 1 : 0;
      if (!clipped || round >= max_rounds || !(s > 0)) break;
    }
  }
  return out;
}

MatrixD descale(const TileReadoutRef& readout) {
  const Index batch = readout.input_scale.size(), cols = readout.output_scale.size();
  MatrixD y = MatrixD::Zero(batch, cols);
  for (std::size_t r = 0; r < readout.reads.size(); ++r)
    for (Index b = 0; b < batch; ++b)
      for (Index j = 0; j < cols; ++j)
        y(b, j) += readout.input_scale[b] * readout.output_scale[j] * readout.read_weight[r] *
                   readout.reads[r](b, j);
  return y;
}

}  // namespace pcmsim::core::reference
