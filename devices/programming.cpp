#include "devices/programming.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include <omp.h>

#include "core/error.h"
#include "devices/unit_cell.h"

namespace pcmsim::devices {
namespace {

constexpr const char* kProgramTag = "devices::program_block";
constexpr const char* kSnapshotTag = "devices::at_time";

// Runs body(array, first, count) over fixed chunks of every plane/sign array, in parallel.
// The chunk boundaries depend only on the block shape. An exception thrown by any chunk is
// rethrown after the loop (one escaping an OpenMP region would terminate the program).
template <class Body>
void for_each_chunk(std::size_t arrays, std::size_t per_array, Body&& body) {
  const std::size_t chunks_per_array = (per_array + kBlockChunk - 1) / kBlockChunk;
  const long long tasks = static_cast<long long>(arrays * chunks_per_array);
  std::exception_ptr error;
#pragma omp parallel for schedule(static)
  for (long long t = 0; t < tasks; ++t) {
    const std::size_t array = static_cast<std::size_t>(t) / chunks_per_array;
    const std::size_t first = (static_cast<std::size_t>(t) % chunks_per_array) * kBlockChunk;
    const std::size_t count = std::min(kBlockChunk, per_array - first);
    try {
      body(array, first, count);
    } catch (...) {
#pragma omp critical(pcmsim_devices_chunk_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

void ProgrammedBlock::validate() const {
  constexpr const char* tag = "devices::ProgrammedBlock";
  if (!model) core::throw_invalid(tag, "no device model (programmed block was never programmed)");
  if (rows <= 0 || cols <= 0 || significances.empty())
    core::throw_invalid(tag, core::concat("block is ", rows, "x", cols, " with ",
                                          significances.size(), " planes: must not be empty"));
  if (weight_scale.size() != cols)
    core::throw_invalid(tag, core::concat("weight_scale has ", weight_scale.size(),
                                          " entries: expected ", cols));
  const std::size_t n = num_devices();
  if (g_prog.size() != n || nu.size() != n || read_noise_q.size() != n)
    core::throw_invalid(tag, core::concat("device arrays have ", g_prog.size(), "/", nu.size(),
                                          "/", read_noise_q.size(), " entries: expected ", n));
}

void program_block(const core::ConductanceBlock& targets, std::shared_ptr<const DeviceModel> model,
                   const core::RngKey& key, ProgrammedBlock& out) {
  if (!model) core::throw_invalid(kProgramTag, "model is null");
  validate_block(targets, kProgramTag);
  // A block mapped onto a smaller range than the device offers is fine; a larger one is not.
  if (targets.g_max > model->g_max() * (1.0 + 1e-9))
    core::throw_invalid(kProgramTag,
                        core::concat("block g_max = ", targets.g_max, " S: above the g_max = ",
                                     model->g_max(), " S of device model '", model->name(), "'"));

  out.rows = targets.rows();
  out.cols = targets.cols();
  out.significances.resize(targets.planes.size());
  for (std::size_t k = 0; k < targets.planes.size(); ++k)
    out.significances[k] = targets.planes[k].significance;
  out.weight_scale = targets.weight_scale;
  out.readout = targets.readout;
  out.g_max = targets.g_max;
  out.model = model;
  const std::size_t n = out.num_devices();
  out.g_prog.resize(n);
  out.nu.resize(n);
  out.read_noise_q.resize(n);

  const std::size_t per_array = out.devices_per_array();
  const core::RngKey program_key = key.with_stage(core::Stage::programming);
  const DeviceModel& m = *model;
  for_each_chunk(2 * out.num_planes(), per_array,
                 [&](std::size_t array, std::size_t first, std::size_t count) {
                   const auto& plane = targets.planes[array / 2];
                   const float* target = (array % 2 == 0 ? plane.g_plus : plane.g_minus).data();
                   const std::size_t offset = array * per_array + first;
                   m.program(target + first, count, program_key, offset,
                             DeviceStateView{out.g_prog.data() + offset, out.nu.data() + offset,
                                             out.read_noise_q.data() + offset});
                 });
}

ProgrammedBlock program_block(const core::ConductanceBlock& targets,
                              std::shared_ptr<const DeviceModel> model, const core::RngKey& key) {
  ProgrammedBlock out;
  program_block(targets, std::move(model), key, out);
  return out;
}

void at_time(const ProgrammedBlock& programmed, double t_inference, const core::RngKey& key,
             core::ConductanceBlock& out) {
  programmed.validate();
  core::require_non_negative(kSnapshotTag, "t_inference", t_inference);

  const std::size_t planes = programmed.num_planes();
  out.planes.resize(planes);
  for (std::size_t k = 0; k < planes; ++k) {
    auto& p = out.planes[k];
    // resize() keeps the buffer when the shape is unchanged.
    p.g_plus.resize(programmed.rows, programmed.cols);
    p.g_minus.resize(programmed.rows, programmed.cols);
    p.significance = programmed.significances[k];
  }
  out.g_max = programmed.g_max;
  out.weight_scale = programmed.weight_scale;
  out.readout = programmed.readout;

  const std::size_t per_array = programmed.devices_per_array();
  const core::RngKey snapshot_key = key.with_stage(core::Stage::snapshot);
  const DeviceModel& m = *programmed.model;
  for_each_chunk(2 * planes, per_array,
                 [&](std::size_t array, std::size_t first, std::size_t count) {
                   auto& plane = out.planes[array / 2];
                   float* g = (array % 2 == 0 ? plane.g_plus : plane.g_minus).data();
                   const std::size_t offset = array * per_array + first;
                   m.read(ConstDeviceStateView{programmed.g_prog.data() + offset,
                                               programmed.nu.data() + offset,
                                               programmed.read_noise_q.data() + offset},
                          count, t_inference, snapshot_key, offset, g + first);
                 });
}

core::ConductanceBlock at_time(const ProgrammedBlock& programmed, double t_inference,
                               const core::RngKey& key) {
  core::ConductanceBlock out;
  at_time(programmed, t_inference, key, out);
  return out;
}

}  // namespace pcmsim::devices
