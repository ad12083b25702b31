// Helpers shared by the devices tests: the exception-message check, a device-state buffer,
// conductance targets and random weight matrices.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/types.h"
#include "devices/device_model.h"

namespace pcmsim::devices::test {

// Expects `f` to throw std::invalid_argument whose message contains every fragment.
template <class F>
void expect_invalid(F&& f, std::vector<std::string> fragments) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected one mentioning '" << fragments.front() << "'";
  } catch (const std::invalid_argument& e) {
    for (const auto& frag : fragments)
      EXPECT_NE(std::string(e.what()).find(frag), std::string::npos)
          << "message: " << e.what() << "\nmissing: " << frag;
  }
}

// The programmed state of n devices, owned.
struct State {
  explicit State(std::size_t n) : g_prog(n), nu(n), q(n) {}
  DeviceStateView view() { return {g_prog.data(), nu.data(), q.data()}; }
  ConstDeviceStateView cview() const { return {g_prog.data(), nu.data(), q.data()}; }
  std::vector<float> g_prog, nu, q;
};

// n conductance targets spanning [0, g_max] in 101 levels, both ends included.
inline std::vector<float> spanning_targets(std::size_t n, double g_max) {
  std::vector<float> g(n);
  for (std::size_t i = 0; i < n; ++i)
    g[i] = static_cast<float>(g_max * static_cast<double>(i % 101) / 100.0);
  g[n - 1] = static_cast<float>(g_max);
  return g;
}

// rows x cols weights ~ N(0, spread^2) from std::mt19937(seed).
inline core::MatrixF random_weights(core::Index rows, core::Index cols, unsigned seed,
                                    float spread = 0.2f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, spread);
  core::MatrixF w(rows, cols);
  for (core::Index i = 0; i < rows; ++i)
    for (core::Index j = 0; j < cols; ++j) w(i, j) = dist(gen);
  return w;
}

}  // namespace pcmsim::devices::test
