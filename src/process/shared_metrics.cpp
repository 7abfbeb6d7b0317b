#include "process/shared_metrics.hpp"

#include <new>
#include <sys/mman.h>

namespace forq::process {

shared_metrics* shared_metrics::create() {
  void* p = ::mmap(nullptr, sizeof(shared_metrics), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  return new (p) shared_metrics(); // zeroed by mmap; atomics start at 0
}

} // namespace forq::process
