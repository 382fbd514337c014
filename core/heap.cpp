#include "core/heap.hpp"

#include <malloc.h>

#include <cstddef>
#include <cstdint>

// jemalloc's control interface. Weak: present only when the executable links
// jemalloc, null otherwise, so one build of this file serves both.
extern "C" int mallctl(const char* name, void* oldp, std::size_t* oldlenp, void* newp,
                       std::size_t newlen) __attribute__((weak));

namespace ap::heap {
namespace {

double read_size(const char* name) {
  std::size_t value = 0;
  std::size_t length = sizeof value;
  return mallctl(name, &value, &length, nullptr, 0) == 0 ? static_cast<double>(value) : 0.0;
}

} // namespace

const char* allocator() { return mallctl ? "jemalloc" : "glibc"; }

figures now() {
  figures f;
  f.allocator = allocator();
  if (mallctl) {
    // jemalloc caches its statistics until the epoch advances.
    std::uint64_t epoch = 1;
    std::size_t length = sizeof epoch;
    mallctl("epoch", &epoch, &length, &epoch, length);
    f.allocated = read_size("stats.allocated");
    f.held = read_size("stats.resident");
    return f;
  }
  auto info = ::mallinfo2();
  f.allocated = static_cast<double>(info.uordblks + info.hblkhd);
  f.held = static_cast<double>(info.arena + info.hblkhd);
  return f;
}

} // namespace ap::heap
