// Process-wide allocator tuning for programs that run the simulator on large batches.
#pragma once

namespace pcmsim::core {

// The forward (and a training step) allocates its large per-layer buffers (im2col, layer
// outputs, tile readouts, device states) afresh; glibc serves blocks above its mmap threshold
// with fresh pages and returns them on free, so every batch or step pays page faults for them
// again (ResNet evaluation: 9.7x the FP32 path with, 1.8x without; docs/performance.md). This
// keeps freed memory in the heap (mmap threshold 256 MiB, trim threshold 1 GiB) so that the
// next batch reuses it. It changes the whole process's malloc, so the library never calls it
// itself: programs do (the pcmsim CLI, the benchmarks, pcmsim.keep_freed_memory() in Python:
// a pcmsim.torch training step, one thread, ResNet 287-290 ms with it, 332-349 ms without).
// No-op without glibc.
void keep_freed_memory();

}  // namespace pcmsim::core
