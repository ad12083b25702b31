#include "core/memory.h"

#include <cstddef>  // defines __GLIBC__ (through features.h) before the test below
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace pcmsim::core {

void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

}  // namespace pcmsim::core
