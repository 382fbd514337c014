#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "core/secret_source.hpp"
#include "domain/secret_versions.hpp"
#include "upstream/client.hpp"

namespace ap {

/// Where the Kernel is and how the service proves who it is (SPEC §6, §10).
struct kernel_client_config {
  /// KERNEL_URL.
  upstream::endpoint where;
  /// CA_FILE, KERNEL_CLIENT_CERT and KERNEL_CLIENT_KEY.
  upstream::tls_options tls;
  /// KERNEL_TOKEN (value or @file), sent as `Authorization: Bearer` on every
  /// request; none when empty.
  secret_source token;
  /// Every Kernel token version (each value or @file) and the active one,
  /// read at each request so that a rotation applied anywhere takes effect
  /// (SPEC §12). Null: only `token`.
  std::shared_ptr<const domain::secret_versions> secrets;
  /// The source the audit events name.
  std::string source = "artifact-publisher";
  /// Connections to the Kernel, and requests that may wait for one: more than
  /// the forwarder's cycles × batch size, so a healthy Kernel never sees a
  /// full queue.
  std::size_t max_connections = 16;
  std::size_t max_queue = 1024;
};

/// State of the Kernel client actor.
struct kernel_client_state {
  static constexpr const char* name = "kernel-client";
  /// Null when the client could not be made (a TLS file unreadable since
  /// the start): every call then fails as if the Kernel were unreachable.
  std::unique_ptr<upstream::client> http;
  secret_source token;
  /// Each version of the token set used so far, by kid (a file is watched
  /// from its first use).
  std::map<std::string, secret_source> tokens;
  std::chrono::steady_clock::time_point last_unauthorized_log{};
  std::uint64_t next_call = 0;
  /// Audit calls in flight, each several events answered together.
  std::map<std::uint64_t, caf::typed_response_promise<std::vector<kernel::audit_answer>>> audits;
  std::map<std::uint64_t, caf::typed_response_promise<bool>> probes;
  std::map<std::uint64_t, caf::typed_response_promise<std::vector<kernel::signer_key>>> key_reads;
  /// Upgrade steps in flight, with which step each is (to read its answer).
  std::map<std::uint64_t,
           std::pair<caf::typed_response_promise<kernel::upgrade_ack>, kernel::upgrade_call_kind>>
    calls;
};

/// What the Kernel's answer to an upgrade step or read comes to: the
/// Kernel's refusal as the service's own error of that kind (named
/// `kernel_refused`), `upstream_unavailable` when it did not answer or
/// answered what the service cannot read (an appliedAt that is not an RFC
/// 3339 time among them), else its record of the upgrade.
caf::expected<kernel::upgrade_ack> kernel_upgrade_answer(kernel::upgrade_call_kind kind,
                                                         const upstream::reply& reply);

/// Whether a Kernel answering `status` to an audit submission refuses the
/// event itself, for what it carries (400, 413, 422, ...): every 4xx but
/// those about the credentials (401, 403, 407), the route (404) or the
/// timing (408, 409, 425, 429), which say nothing against the event.
bool refuses_the_event(std::int32_t status);

/// The error an audit submission answered `reply` (anything but a 2xx)
/// ends with: `make_upstream_refusal` with the status and a bounded,
/// printable excerpt of the answer when the Kernel refuses the event
/// (`refuses_the_event`), so the forwarder dead-letters it instead of
/// sending it again; `upstream_unavailable` otherwise, and it is retried.
caf::error audit_submission_error(const upstream::reply& reply);

/// At most this many bytes of the Kernel's answer are kept with a refused
/// event (logged, and stored with its dead-letter record).
constexpr std::size_t refusal_excerpt_limit = 200;

/// The Kernel over HTTP(S) (SPEC §6, §7, §10). The exchanges run on the
/// upstream client's own io thread; their completions come back to this
/// actor as `kdone` messages, so the actor never touches a socket and never
/// blocks. The Kernel's wire format (bodies, headers, the bearer token,
/// appliedAt) lives here, behind typed messages. The token file is looked
/// at before every request, so a rotated token is used from the next one.
/// Counts `ap_kernel_calls_total{call, outcome}`.
kernel_client_actor::behavior_type
kernel_client(kernel_client_actor::stateful_pointer<kernel_client_state> self,
              kernel_client_config cfg, metrics::registry* registry);

} // namespace ap
