#pragma once

#include <cstddef>
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

} // namespace ap
