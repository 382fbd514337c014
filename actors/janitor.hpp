#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"

namespace ap {

/// How the retention janitor runs. The defaults keep up with 2,000
/// checkouts a second with room to spare: a sweep may purge 200 batches of
/// 2,000 rows of each table, 400,000, against 120,000 written a minute.
struct janitor_config {
  /// IDEMPOTENCY_RETENTION_HOURS: a completed key is kept at least this
  /// long (SPEC §4: at least 72 h by default; never under 24 h).
  std::chrono::hours idempotency_retention{72};
  /// OUTBOX_RETENTION_HOURS: an outbox row marked delivered by a release
  /// before migration 0016 is kept this long after its delivery; since
  /// then a delivered event leaves the outbox at once, its receipt kept for
  /// good.
  std::chrono::hours outbox_retention{168};
  /// RETENTION_SWEEP_INTERVAL_MS: how often a sweep starts.
  std::chrono::milliseconds interval{60000};
  /// Rows per batch: each batch is one short transaction.
  std::int32_t batch = 2000;
  /// Batches per table per sweep, so that a backlog (after an outage, or on
  /// the first start over years of rows) is worked off over several sweeps
  /// and the background database worker is never taken for long.
  int max_batches = 200;
  /// The pause after each batch, in which the worker serves other scans
  /// and autovacuum catches up.
  std::chrono::milliseconds pause{20};
  /// QUEUE_VACUUM_INTERVAL_MS: how often the queue tables are vacuumed
  /// (persistence::vacuum_queues); 0: never, autovacuum alone.
  std::chrono::milliseconds vacuum_interval{5000};
  /// Where the batches go: looked up at each batch, so that a restarted
  /// database facade is found (filled in by start_node; a stub in tests).
  std::function<retention_store_actor()> store;
};

/// State of the retention janitor.
struct janitor_state {
  static constexpr const char* name = "janitor";
  /// A sweep is under way (a timer that fires meanwhile starts none).
  bool sweeping = false;
  /// The table being purged: an index into the tables the janitor purges,
  /// in order (keys, then outbox).
  std::size_t table = 0;
  /// Batches of that table in this sweep.
  int batches = 0;
  /// Rows purged in this sweep, per table.
  std::array<std::int64_t, 2> purged{};
  /// A vacuum of the queue tables is under way (a timer that fires
  /// meanwhile starts none).
  bool vacuuming = false;
  /// The last vacuum failed: the next failure is not logged again.
  bool vacuum_failed = false;
};

/// The retention janitor: every `interval`, purges completed idempotency
/// keys and delivered outbox rows past retention through the database
/// actor, a batch at a time with `pause` between batches, until a batch
/// comes back short, `max_batches` is reached, or another instance holds the
/// retention lock (it is sweeping: this one stops until the next interval).
/// Then it sets `ap_retention_oldest_kept_seconds{table}` and logs what it
/// purged, if anything. Counts `ap_retention_rows_purged_total{table}`.
/// Apart from the sweeps, every `vacuum_interval` it has the queue tables
/// vacuumed, one vacuum at a time, and counts them in
/// `ap_queue_vacuums_total{outcome}` (`done`, `failed`); the first failure
/// after a success is logged.
janitor_actor::behavior_type janitor(janitor_actor::stateful_pointer<janitor_state> self,
                                     janitor_config cfg, metrics::registry* registry);

} // namespace ap
