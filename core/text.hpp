#pragma once

// ASCII case-insensitive comparison, for the names and tokens of protocols
// (HTTP field names, auth schemes, media types), which are ASCII and
// compared without regard to case. Not for user text.

#include <cstddef>
#include <string_view>

namespace ap {

/// `c` in lower case if it is an ASCII capital letter, else `c`: no locale.
constexpr char ascii_lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Whether `a` and `b` are the same, ASCII letters compared without case.
constexpr bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size())
    return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i]))
      return false;
  return true;
}

/// Whether `value` begins with `prefix`, ASCII letters compared without case.
constexpr bool starts_with_ignoring_case(std::string_view value, std::string_view prefix) noexcept {
  return value.size() >= prefix.size()
         && equals_ignoring_case(value.substr(0, prefix.size()), prefix);
}

} // namespace ap
