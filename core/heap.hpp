#pragma once

#include <string>

namespace ap::heap {

/// What the process's allocator reports about the heap. The service links
/// jemalloc (CMake option AP_JEMALLOC); builds under a sanitizer keep the
/// C library's allocator, which the sanitizer replaces.
struct figures {
  std::string allocator; ///< "jemalloc" or "glibc"
  double allocated = 0;  ///< bytes in live allocations
  double held = 0;       ///< bytes the allocator holds from the system, in use or not
};

/// Reads the figures now (jemalloc: refreshes its statistics first).
figures now();

/// The allocator that `now` reads, without reading it.
const char* allocator();

} // namespace ap::heap
