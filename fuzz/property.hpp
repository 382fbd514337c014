#pragma once

// What every fuzz target does when a property fails: say which, then trap,
// so libFuzzer keeps the input as a crash.

#include <cstdio>
#include <string>

namespace ap::fuzz {

[[noreturn]] inline void violated(const char* what, const std::string& detail = {}) {
  if (detail.empty())
    std::fprintf(stderr, "property violated: %s\n", what);
  else
    std::fprintf(stderr, "property violated: %s: %s\n", what, detail.c_str());
  std::fflush(stderr);
  __builtin_trap();
}

inline void require(bool property, const char* what) {
  if (!property)
    violated(what);
}

} // namespace ap::fuzz
