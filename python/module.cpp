// The `_pcmsim` extension module: calls every binder registered with PCMSIM_BIND (the
// bind_*.cpp files, one or more per C++ folder) in order. The pure-Python package `pcmsim`
// (python/pcmsim/) re-exports it.
#include <algorithm>

#include "python/bind_common.h"

PYBIND11_MODULE(_pcmsim, m) {
  m.doc() = "pcmsim: analog in-memory computing simulator for PCM crossbar inference "
            "(compiled core; use the `pcmsim` package).";
  // The CMake project version (python/CMakeLists.txt), the one place it is written; setup.py
  // reads the same line for the package metadata.
  m.attr("__version__") = PCMSIM_VERSION;
  auto binders = pcmsim::python::binder_registry();
  std::stable_sort(binders.begin(), binders.end(),
                   [](const auto& a, const auto& b) { return a.order < b.order; });
  for (const auto& b : binders) b.fn(m);
}
