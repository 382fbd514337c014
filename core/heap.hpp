#pragma once

namespace ap::heap {

// What the process's allocator reports about the heap. The service links
// jemalloc (CMake option AP_JEMALLOC); builds under a sanitizer keep the
// C library's allocator, which the sanitizer replaces. Each reading is taken
// now (jemalloc: its statistics are refreshed first).

/// "jemalloc" or "glibc": the allocator the readings come from.
const char* allocator();

/// Bytes in live allocations.
double allocated_bytes();

/// Bytes the allocator holds from the system, in use or not.
double held_bytes();

} // namespace ap::heap
