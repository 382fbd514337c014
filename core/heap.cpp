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

// jemalloc caches its statistics until the epoch advances.
double jemalloc_size(const char* name) {
  std::uint64_t epoch = 1;
  std::size_t epoch_length = sizeof epoch;
  mallctl("epoch", &epoch, &epoch_length, &epoch, epoch_length);
  std::size_t value = 0;
  std::size_t length = sizeof value;
  return mallctl(name, &value, &length, nullptr, 0) == 0 ? static_cast<double>(value) : 0.0;
}

} // namespace

const char* allocator() { return mallctl ? "jemalloc" : "glibc"; }

double allocated_bytes() {
  if (mallctl)
    return jemalloc_size("stats.allocated");
  auto info = ::mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd);
}

double held_bytes() {
  if (mallctl)
    return jemalloc_size("stats.resident");
  auto info = ::mallinfo2();
  return static_cast<double>(info.arena + info.hblkhd);
}

} // namespace ap::heap
