// Arrays of the nets/ bindings (bind_nets.cpp, bind_simulation.cpp): images as zero-copy views,
// checked labels, logits run in batches, predictions as NumPy.
#pragma once

#include <cmath>
#include <vector>

#include "nets/forward.h"
#include "nets/network.h"
#include "python/bind_common.h"

namespace pcmsim::python {

using nets::Network;

// Images as a zero-copy view: N x input_size float32 (N x C x H x W accepted).
// NaN or Inf images are refused here, as the data-set loaders refuse them (the FP32 path would
// pass them through to the logits).
inline Eigen::Map<const MatrixF> images_view(const Network& net, const py::handle& images,
                                      const char* where) {
  auto x = matrix_view(images, where, "images", net.input_size(), true);
  const float* p = x.data();
  for (Index i = 0; i < x.size(); ++i)
    if (!std::isfinite(p[i]))
      throw py::value_error(core::concat("[", where, "] images: sample ", i / x.cols(), " value ",
                                         i % x.cols(), " = ", p[i], ": must be finite"));
  return x;
}

inline MatrixF run_logits(const Network& net, const Eigen::Map<const MatrixF>& x,
                   nets::MatmulProvider& provider, Index batch_size) {
  if (batch_size < 1)
    core::throw_invalid("pcmsim", core::concat("batch_size = ", batch_size, ": must be >= 1"));
  MatrixF out(x.rows(), net.num_classes);
  for (Index b = 0; b < x.rows(); b += batch_size) {
    const Index len = std::min(batch_size, x.rows() - b);
    out.middleRows(b, len) = nets::forward(net, x.middleRows(b, len), provider, b);
  }
  return out;
}

// Labels as class indices: a 1-D integer array (floats are refused, not truncated), every value
// in [0, num_classes) (never wrapped to int or counted as a miss).
inline std::vector<int> labels_from(const py::handle& obj, Index n, Index num_classes,
                             const char* where) {
  const py::array raw = py::array::ensure(obj);
  if (!raw || raw.ndim() != 1 || (raw.dtype().kind() != 'i' && raw.dtype().kind() != 'u'))
    throw py::type_error(core::concat("[", where, "] labels: expected a 1-D integer array"));
  auto a = py::array_t<long long, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (raw.dtype().kind() == 'u' && raw.dtype().itemsize() >= 8) {
    // uint64 above 2^63 would turn negative in the cast; it is out of range anyway.
    auto u = py::array_t<unsigned long long, py::array::c_style>::ensure(obj);
    for (py::ssize_t i = 0; u && i < u.shape(0); ++i)
      if (u.data()[i] >= static_cast<unsigned long long>(num_classes))
        throw py::value_error(core::concat("[", where, "] labels[", i, "] = ", u.data()[i],
                                           ": out of [0, ", num_classes, ")"));
  }
  if (a.shape(0) != n)
    throw py::value_error(core::concat("[", where, "] labels: ", a.shape(0), " labels for ", n,
                                       " images"));
  std::vector<int> out(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) {
    const long long v = a.data()[i];
    if (v < 0 || v >= num_classes)
      throw py::value_error(core::concat("[", where, "] labels[", i, "] = ", v, ": out of [0, ",
                                         num_classes, ")"));
    out[i] = static_cast<int>(v);
  }
  return out;
}

inline py::array_t<long long> int_array(const std::vector<int>& v) {
  py::array_t<long long> out(static_cast<py::ssize_t>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) out.mutable_data()[i] = v[i];
  return out;
}

}  // namespace pcmsim::python
