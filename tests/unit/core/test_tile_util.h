// Helpers shared by the tile tests: hand-built conductance blocks and the exact products.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>

#include "core/conductance_block.h"
#include "core/io_params.h"
#include "core/tile.h"
#include "core/types.h"

namespace pcmsim::test {

using core::ConductanceBlock;
using core::ConductancePlane;
using core::Index;
using core::MatrixD;
using core::MatrixF;

// A block of `planes` random differential pairs, both devices in [0, g_max], significances
// 1, F, F^2, ..., per-column weight scales in [0.5, 2] * g_max / sum F.
inline ConductanceBlock random_block(Index rows, Index cols, int planes, std::uint32_t seed,
                                     core::PlaneReadout readout = core::PlaneReadout::digital,
                                     double factor = 2.0, double g_max = 25e-6) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> g(0.0f, static_cast<float>(g_max));
  std::uniform_real_distribution<double> sc(0.5, 2.0);
  ConductanceBlock block;
  block.g_max = g_max;
  block.readout = readout;
  double f = 1.0;
  for (int k = 0; k < planes; ++k, f *= factor) {
    ConductancePlane p;
    p.g_plus.resize(rows, cols);
    p.g_minus.resize(rows, cols);
    for (Index i = 0; i < p.g_plus.size(); ++i) {
      p.g_plus.data()[i] = g(gen);
      p.g_minus.data()[i] = g(gen);
    }
    p.significance = f;
    block.planes.push_back(std::move(p));
  }
  block.weight_scale.resize(cols);
  for (Index j = 0; j < cols; ++j) block.weight_scale[j] = sc(gen) * g_max;
  return block;
}

// Differential pair, one scale for the block: s = g_max / max|W|.
inline ConductanceBlock pair_block(const MatrixF& w, double g_max = 25e-6) {
  const double s = g_max / w.cwiseAbs().maxCoeff();
  ConductanceBlock b;
  b.g_max = g_max;
  ConductancePlane p;
  p.g_plus = (w * static_cast<float>(s)).cwiseMax(0.f);
  p.g_minus = (-w * static_cast<float>(s)).cwiseMax(0.f);
  b.planes.push_back(p);
  b.weight_scale = core::VectorD::Constant(w.cols(), s);
  return b;
}

// Two planes, digitally read: the low-significance pair holds half the weight, the high one
// (F = 2) a quarter, so W = 1*(G+_0 - G-_0)/s + 2*(G+_1 - G-_1)/s.
inline ConductanceBlock two_plane_block(const MatrixF& w, double g_max = 25e-6) {
  const double s = 2 * g_max / w.cwiseAbs().maxCoeff();  // total range (1 + 2) g_max >= s max|W|
  ConductanceBlock b;
  b.g_max = g_max;
  for (double f : {1.0, 2.0}) {
    ConductancePlane p;
    const MatrixF part = w * static_cast<float>(s * (f == 1.0 ? 0.5 : 0.25));
    p.g_plus = part.cwiseMax(0.f);
    p.g_minus = (-part).cwiseMax(0.f);
    p.significance = f;
    b.planes.push_back(p);
  }
  b.weight_scale = core::VectorD::Constant(w.cols(), s);
  b.readout = core::PlaneReadout::digital;
  return b;
}

// Expects p.validate() to throw std::invalid_argument whose message names `field`.
template <class Params>
void expect_validate_rejects(const Params& p, const char* field) {
  try {
    p.validate();
    FAIL() << "accepted bad " << field;
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  }
}

// The weights the block encodes, in weight units: sum_k F_k (G+_k - G-_k) / s_j.
inline MatrixD block_weights(const ConductanceBlock& block) {
  MatrixD w = MatrixD::Zero(block.rows(), block.cols());
  for (const auto& p : block.planes)
    for (Index i = 0; i < block.rows(); ++i)
      for (Index j = 0; j < block.cols(); ++j)
        w(i, j) += p.significance * (double(p.g_plus(i, j)) - p.g_minus(i, j)) /
                   block.weight_scale[j];
  return w;
}

inline MatrixF random_input(Index batch, Index rows, std::uint32_t seed, float lo = -1.0f,
                            float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  MatrixF x(batch, rows);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = u(gen);
  return x;
}

// What the digital unit forms from a readout (double): y = s_b * out_scale_j * sum_r w_r read_r.
inline MatrixD descale(const core::TileReadout& r) {
  const Index batch = r.input_scale.size(), cols = r.output_scale.size();
  MatrixD y = MatrixD::Zero(batch, cols);
  for (std::size_t k = 0; k < r.reads.size(); ++k)
    for (Index b = 0; b < batch; ++b)
      for (Index j = 0; j < cols; ++j)
        y(b, j) += double(r.input_scale[b]) * r.output_scale[j] * r.read_weight[k] * r.reads[k](b, j);
  return y;
}

// Every converter and noise source off: the tile must be the exact product.
inline core::IoParams ideal_io() {
  core::IoParams io;
  io.p_in = 0;
  io.p_out = 0;
  io.in_bound = INFINITY;
  io.out_bound = INFINITY;
  io.out_noise = 0.0;
  io.noise_management = core::NoiseManagement::none;
  io.bound_management = core::BoundManagement::off;
  return io;
}

}  // namespace pcmsim::test
