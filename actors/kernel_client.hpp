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
#include "kernel/http_client.hpp"

namespace ap {

/// State of the Kernel client actor.
struct kernel_client_state {
  static constexpr const char* name = "kernel-client";
  std::unique_ptr<kernel::http_client> http;
  std::uint64_t next_call = 0;
  std::map<std::uint64_t, caf::typed_response_promise<kernel::audit_ack>> audits;
  std::map<std::uint64_t, caf::typed_response_promise<bool>> probes;
  /// Upgrade steps in flight, with which step each is (to read its answer).
  std::map<std::uint64_t,
           std::pair<caf::typed_response_promise<kernel::upgrade_ack>, kernel::upgrade_call_kind>>
    calls;
};

/// The Kernel over HTTP (SPEC §6, §7). The exchanges run on the HTTP
/// client's own io thread; their completions come back to this actor as
/// `kdone` messages, so the actor never touches a socket and never blocks.
/// The Kernel's wire format (bodies, headers, appliedAt) lives here, behind
/// typed messages; audit events are submitted as coming from `source`.
/// Counts `ap_kernel_calls_total{call, outcome}`.
kernel_client_actor::behavior_type
kernel_client(kernel_client_actor::stateful_pointer<kernel_client_state> self,
              kernel::endpoint where, std::string source, metrics::registry* registry);

} // namespace ap
