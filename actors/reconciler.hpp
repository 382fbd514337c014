#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "actors/directory.hpp"
#include "core/metrics.hpp"

namespace ap {

/// SPEC §9: a checkout left unfinished this long is taken over.
constexpr auto default_reconcile_after = std::chrono::milliseconds{30000};

/// How the reconciler runs.
struct reconciler_config {
  /// Names this instance in the leases of unfinished checkouts.
  std::string instance_id = "local";
  /// RECONCILE_AFTER_MS: how long a checkout may stay unfinished before any
  /// instance takes it over. Longer than a checkout's deadline, so that a
  /// checkout still running is rarely taken over (and if it is, both finish
  /// it with the same ids, which the processor, the ledger and the store
  /// each take once).
  std::chrono::milliseconds after = default_reconcile_after;
  /// At most this many are taken over per pass.
  std::int32_t batch = 32;
  /// One finishing may take this long before the pass gives up on it (its
  /// lease then runs out, and a later pass tries again).
  std::chrono::milliseconds resume_timeout{30000};
};

/// State of the reconciler.
struct reconciler_state {
  static constexpr const char* name = "reconciler";
  /// Finishings of the current pass not answered yet; a pass starts only
  /// when the last one has ended.
  int in_flight = 0;
};

/// The reconciler: every `after / 4` (at least 100 ms, at most 5 s) it
/// leases the checkouts unfinished for longer than `after` that no instance
/// holds (FOR UPDATE SKIP LOCKED), logs each takeover, and has the checkout
/// actor finish each with its recorded ids. Reports
/// `ap_checkouts_unfinished`, `ap_checkouts_unfinished_oldest_seconds` and
/// `ap_checkouts_reconciled_total{outcome}`.
reconciler_actor::behavior_type reconciler(reconciler_actor::stateful_pointer<reconciler_state> self,
                                           reconciler_config cfg, actor_directory* directory,
                                           metrics::registry* registry);

} // namespace ap
