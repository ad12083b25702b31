// Basic types and the units policy of pcmsim.
//
// Units: SI everywhere in code (seconds, siemens, amperes). A quantity in another unit carries
// the unit as a name suffix (g_max_uS, t_read_ns) and is converted at the boundary.
// Matrices are row-major so that a batch of inputs (batch x features) is contiguous per sample
// and maps onto NumPy's default layout without a copy.
#pragma once

#include <Eigen/Core>
#include <cstdint>

namespace pcmsim::core {

using Index = Eigen::Index;

using MatrixF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixD = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using VectorF = Eigen::VectorXf;
using VectorD = Eigen::VectorXd;
using MapMatrixF = Eigen::Map<MatrixF>;
using ConstMapMatrixF = Eigen::Map<const MatrixF>;

// Unit conversions at the boundary (user-facing values in µS, code in S).
constexpr double kMicro = 1e-6;
constexpr double siemens_from_uS(double g_uS) { return g_uS * kMicro; }
constexpr double uS_from_siemens(double g) { return g / kMicro; }

}  // namespace pcmsim::core
