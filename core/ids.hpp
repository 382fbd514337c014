#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ap {

/// Returns `bytes` random bytes from the operating system's CSPRNG as
/// lower-case hex (2 * bytes characters).
std::string random_hex(std::size_t bytes);

/// Returns a fresh request id (`req_` + 16 hex) for a request that came
/// without a usable `X-Request-Id`.
std::string new_request_id();

/// Whether a client-supplied request id may be echoed back and logged:
/// 1-128 characters of `[A-Za-z0-9._:-]`, so it cannot break a header or a
/// log line.
bool is_acceptable_request_id(std::string_view id);

/// Current time as RFC 3339 UTC with millisecond precision.
std::string now_rfc3339();

/// Unix time in milliseconds, from the system clock.
std::int64_t unix_ms_now();

/// `unix_ms` as RFC 3339 UTC: `…T12:34:56.789Z`, or `…T12:34:56Z` without
/// `with_millis`.
std::string format_rfc3339(std::int64_t unix_ms, bool with_millis = true);

} // namespace ap
