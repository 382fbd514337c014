#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"

namespace ap {

/// How the audit forwarder runs.
struct audit_forwarder_config {
  /// Names this instance in outbox leases.
  std::string instance_id = "local";
  std::int32_t batch_size = 100;
  /// Lease-send-settle cycles in flight at once; a full batch starts the
  /// next cycle while its events are still on their way.
  int max_cycles = 4;
  /// How long a leased row stays reserved for this instance. Short, so that
  /// the rows of an instance that died are taken over within the budget; a
  /// row sent twice (a Kernel slower than the lease) is stored once by the
  /// Kernel.
  std::int32_t lease_ms = 2000;
  /// A wake-up leases after this long, so that the events of the checkouts
  /// committed meanwhile travel in the same lease and settle (one lease per
  /// gather window instead of one per checkout); zero leases at once.
  std::chrono::milliseconds gather{10};
  /// Handed-over rows held at most while every cycle is busy (a Kernel that
  /// does not keep up); further ones wait for their lease to run out and are
  /// then leased by a poll, so the memory stays bounded and no row is lost.
  std::size_t max_handed = 20000;
  /// Polls this often even without a wake-up (another instance's rows, retries).
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds stats_interval{1000};
  /// One Kernel call may take this long; longer than the budget, so a slow
  /// Kernel delays events rather than making the forwarder give up early.
  std::chrono::milliseconds kernel_timeout{5000};
  std::chrono::milliseconds budget = domain::audit_freshness_budget;
  /// Wall-clock Unix milliseconds; tests pass simulated time.
  std::function<std::int64_t()> now_ms;
  /// Where the outbox and the Kernel are (looked up at each use, so a
  /// restarted actor is picked up).
  std::function<outbox_actor()> outbox;
  std::function<kernel_actor()> kernel;
};

/// State of the audit forwarder.
struct audit_forwarder_state {
  static constexpr const char* name = "audit-forwarder";
  int in_flight = 0;
  bool wake_pending = false;
  /// A gather window is open: what arrives is sent when it ends.
  bool gathering = false;
  /// A wake-up asked for a lease at the end of the window.
  bool lease_wanted = false;
  /// Rows handed over, already leased to this instance, not yet sent.
  std::deque<domain::audit_event> handed;
  std::chrono::steady_clock::time_point last_stats{};
};

/// The timed audit forwarder: submits outbox rows to the Kernel
/// concurrently, records each outcome (delivered with the Kernel's id, or
/// released for a retry with backoff). The rows of this instance's
/// checkouts are handed over by the checkout, written already leased; it
/// polls for the others (another instance's, retries, expired leases),
/// leasing them (FOR UPDATE SKIP LOCKED) and repeating while rows remain. Measures
/// the lag from commit to Kernel ack (`ap_audit_lag_seconds`), counts events
/// past the budget (`ap_audit_freshness_breaches_total`, logged once each),
/// and exports the outbox figures as gauges.
audit_forwarder_actor::behavior_type
audit_forwarder(audit_forwarder_actor::stateful_pointer<audit_forwarder_state> self,
                audit_forwarder_config cfg, metrics::registry* registry);

} // namespace ap
