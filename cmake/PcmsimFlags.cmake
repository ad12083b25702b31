# Compiler flags shared by every pcmsim target, applied through the interface target
# pcmsim_flags so that nothing is set globally.
add_library(pcmsim_flags INTERFACE)
target_compile_options(pcmsim_flags INTERFACE
  -Wall -Wextra -Wpedantic -Wno-unused-parameter
  # Bit-reproducibility: no silent fused multiply-adds, so every element is computed by
  # the same operations whether it falls in a vector body or a scalar remainder.
  -ffp-contract=off
  # Value-safe (no reassociation, no contraction): without them GCC keeps the selects of
  # core/fastmath.h and std::sqrt as branches/libcalls and the device and RNG loops stay
  # scalar (fill_normal 57 -> 245 M/s, PCM snapshot 40 -> 170 M/s per core, same bits).
  -fno-trapping-math -fno-math-errno)
target_include_directories(pcmsim_flags INTERFACE ${PROJECT_SOURCE_DIR})
target_link_libraries(pcmsim_flags INTERFACE Eigen3::Eigen OpenMP::OpenMP_CXX)
# Eigen must not start its own threads inside our OpenMP regions: pcmsim parallelises
# itself over fixed work blocks, which keeps results independent of the thread count.
target_compile_definitions(pcmsim_flags INTERFACE EIGEN_DONT_PARALLELIZE)

set(_pcmsim_arch "${PCMSIM_ARCH}")
if(_pcmsim_arch STREQUAL "auto")
  include(CheckCXXSourceRuns)
  check_cxx_source_runs([=[
    int main() { __builtin_cpu_init();
      return (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) ? 0 : 1; }
  ]=] PCMSIM_CPU_HAS_AVX2)
  if(PCMSIM_CPU_HAS_AVX2)
    set(_pcmsim_arch "x86-64-v3")
  else()
    set(_pcmsim_arch "none")
  endif()
endif()
if(NOT _pcmsim_arch STREQUAL "none")
  target_compile_options(pcmsim_flags INTERFACE -march=${_pcmsim_arch})
endif()
message(STATUS "pcmsim: target ISA ${_pcmsim_arch}")


# pcmsim_add_library(NAME DEPS lib...): one static library per folder, from the folder's
# *.cpp files (several people add files to a folder at once; the glob keeps them from
# editing one list).
function(pcmsim_add_library name)
  cmake_parse_arguments(L "" "" "DEPS;EXTRA_SOURCES" ${ARGN})
  file(GLOB _sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  list(APPEND _sources ${L_EXTRA_SOURCES})
  if(_sources)
    add_library(${name} STATIC ${_sources})
    target_link_libraries(${name} PUBLIC pcmsim_flags ${L_DEPS})
  else()  # a folder whose code is still headers only
    add_library(${name} INTERFACE)
    target_link_libraries(${name} INTERFACE pcmsim_flags ${L_DEPS})
  endif()
endfunction()

# pcmsim_add_test_folder(NAME LABEL label LIBS lib...): one GoogleTest executable from the
# *.cpp files of the current folder, registered with ctest under LABEL.
function(pcmsim_add_test_folder name)
  cmake_parse_arguments(T "" "LABEL" "LIBS" ${ARGN})
  file(GLOB _sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  if(NOT _sources)
    return()
  endif()
  add_executable(${name} ${_sources})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gtest_main pcmsim_flags)
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${T_LABEL}"
               ENVIRONMENT "PCMSIM_TEST_DATA=${PROJECT_SOURCE_DIR}/tests/data"
               # A second variable in ENVIRONMENT would be dropped by gtest_discover_tests
               # (it splits list values); CMake >= 3.22 sets it through this property.
               ENVIRONMENT_MODIFICATION "PCMSIM_SOURCE_DIR=set:${PROJECT_SOURCE_DIR}"
    DISCOVERY_TIMEOUT 60)
endfunction()

# HDF5 (C API) as one target for the folders that read or write HDF5 files.
add_library(pcmsim_hdf5 INTERFACE)
target_include_directories(pcmsim_hdf5 INTERFACE ${HDF5_INCLUDE_DIRS})
target_link_libraries(pcmsim_hdf5 INTERFACE ${HDF5_C_LIBRARIES})
target_compile_definitions(pcmsim_hdf5 INTERFACE ${HDF5_DEFINITIONS})
