// Programming and time snapshots of whole conductance blocks (docs/architecture.md, stages 3 and 4).
//
// program_block() programs every device of every plane of a target block once ("one programmed
// chip") and keeps the frozen device state; at_time() derives the conductances at any inference
// time from that state (drift + accumulated read noise) without re-programming.
//
// Device numbering: device (plane p, sign s, row i, col j), with s = 0 for G+ and 1 for G-, has
// the index ((2p + s) * rows + i) * cols + j within its block. Its random numbers come from that
// element index of the key, so the results are bit-identical for any OpenMP thread count and any
// chunking. The work is split into fixed chunks of kBlockChunk devices (never crossing a
// plane/sign array), distributed with schedule(static).
//
// Keys: program_block uses key.with_stage(Stage::programming) and at_time uses
// key.with_stage(Stage::snapshot), whatever stage the caller's key names, so that programming
// noise and read noise are independent streams even when one key is passed to both. Give each
// snapshot its own key (e.g. with_sub(snapshot number)) for independent read noise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "core/conductance_block.h"
#include "core/rng.h"
#include "core/types.h"
#include "devices/device_model.h"

namespace pcmsim::devices {

// Devices per work chunk (a multiple of 4, the Philox block width).
constexpr std::size_t kBlockChunk = 16384;

// 64-byte aligned allocator that leaves new elements uninitialised: the device arrays are
// written once, by the threads that program them, without a serial zero-fill pass first.
template <class T>
struct DeviceAllocator {
  using value_type = T;
  DeviceAllocator() = default;
  template <class U>
  DeviceAllocator(const DeviceAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    if (n == 0) return nullptr;
    void* p = ::operator new(n * sizeof(T), std::align_val_t(64));
    return static_cast<T*>(p);
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t(64)); }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0)
      ::new (static_cast<void*>(p)) U;  // default-init: no zero fill
    else
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const DeviceAllocator<U>&) const noexcept { return true; }
  template <class U>
  bool operator!=(const DeviceAllocator<U>&) const noexcept { return false; }
};
using DeviceArray = std::vector<float, DeviceAllocator<float>>;

// The frozen state of one programmed block: every device of every plane, structure of arrays
// in the device numbering above, plus what the read-back needs (scales, significances, readout).
struct ProgrammedBlock {
  core::Index rows = 0;
  core::Index cols = 0;
  std::vector<double> significances;  // F_k per plane
  core::VectorD weight_scale;         // s_j per column, siemens per weight unit
  core::PlaneReadout readout = core::PlaneReadout::digital;
  double g_max = 25e-6;  // of the target block, siemens
  std::shared_ptr<const DeviceModel> model;

  DeviceArray g_prog;        // programmed conductance, siemens
  DeviceArray nu;            // drift exponent
  DeviceArray read_noise_q;  // Q_s of the accumulated read noise

  std::size_t num_planes() const { return significances.size(); }
  std::size_t devices_per_array() const {
    return static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  }
  std::size_t num_devices() const { return 2 * num_planes() * devices_per_array(); }
  // Index of device (plane, sign: 0 = G+, 1 = G-, row, col) in the arrays and the RNG streams.
  std::uint64_t device_index(std::size_t plane, int sign, core::Index row, core::Index col) const {
    return ((2 * plane + static_cast<std::size_t>(sign)) * static_cast<std::size_t>(rows) +
            static_cast<std::size_t>(row)) *
               static_cast<std::size_t>(cols) +
           static_cast<std::size_t>(col);
  }
  ConstDeviceStateView state() const { return {g_prog.data(), nu.data(), read_noise_q.data()}; }

  // Throws std::invalid_argument when the sizes are inconsistent or the model is missing.
  void validate() const;
};

// Programs every device of `targets` (planes' G+ and G- in [0, g_max], as weights_to_targets
// makes them) with `model`. Throws std::invalid_argument for a null model, a malformed block,
// a block g_max above the model's g_max, or a target the model rejects.
ProgrammedBlock program_block(const core::ConductanceBlock& targets,
                              std::shared_ptr<const DeviceModel> model, const core::RngKey& key);
// Same, reusing the storage of `out` (for Monte Carlo trials of one block).
void program_block(const core::ConductanceBlock& targets, std::shared_ptr<const DeviceModel> model,
                   const core::RngKey& key, ProgrammedBlock& out);

// The conductances t_inference seconds after programming (finite, >= 0): drift plus
// accumulated read noise drawn from `key`. t_inference = 0 gives the programmed state.
core::ConductanceBlock at_time(const ProgrammedBlock& programmed, double t_inference,
                               const core::RngKey& key);
// Same, writing into `out`, whose planes are resized only when their shape differs (reuse one
// block across times).
void at_time(const ProgrammedBlock& programmed, double t_inference, const core::RngKey& key,
             core::ConductanceBlock& out);

}  // namespace pcmsim::devices
