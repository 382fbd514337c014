#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>

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
  std::map<std::uint64_t, caf::typed_response_promise<kernel::kernel_reply>> calls;
};

/// The Kernel over HTTP (SPEC §6). The exchanges run on the HTTP client's
/// own io thread; their completions come back to this actor as `kdone`
/// messages, so the actor never touches a socket and never blocks. Counts
/// `ap_kernel_calls_total{call, outcome}`.
kernel_actor::behavior_type kernel_client(kernel_actor::stateful_pointer<kernel_client_state> self,
                                          kernel::endpoint where, metrics::registry* registry);

} // namespace ap
