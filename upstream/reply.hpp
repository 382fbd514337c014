#pragma once

// The completion of one outbound HTTP exchange, as actors receive it. No
// Beast here: handles and messages stay nameable without the client.

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace ap::upstream {

/// What one request to an upstream came to: its status and body, or status 0
/// and `error` saying why there is no answer.
struct reply {
  std::int32_t status = 0;
  std::string body;
  /// Why there is no answer: "queue_full", "timeout", "tls: <reason>",
  /// "connect: <reason>", "closed before the reply", ...
  std::string error;
  /// The request was written whole before the exchange failed: the upstream
  /// may have acted on it, so its outcome is in doubt (SPEC §9). False when
  /// it never left this process (queue full, expired while queued, no
  /// connection, failed handshake).
  bool sent = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reply& x) {
  return f(caf::meta::type_name("upstream_reply"), x.status, x.body, x.error, x.sent);
}

} // namespace ap::upstream
