#pragma once

// Wall-clock time and its RFC 3339 form (the timestamps of SPEC's documents).

#include <cstdint>
#include <string>

namespace ap {

/// Unix time in milliseconds, from the system clock.
std::int64_t unix_ms_now();

/// Current time as RFC 3339 UTC with millisecond precision.
std::string now_rfc3339();

/// `unix_ms` as RFC 3339 UTC: `…T12:34:56.789Z`, or `…T12:34:56Z` without
/// `with_millis`.
std::string format_rfc3339(std::int64_t unix_ms, bool with_millis = true);

/// Reads an RFC 3339 time, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, as
/// Unix milliseconds (the fraction's first three digits); 0 when `text` is
/// anything else, trailing characters included.
std::int64_t parse_rfc3339_ms(const std::string& text);

} // namespace ap
