#pragma once

// The SQL of retention: purging idempotency keys and delivered outbox rows
// once they are past their retention period, a bounded batch per call.
// Blocking: called only by database workers.
//
// What stays, always: orders, their items, their audit receipts (the
// business record), unfinished checkouts and upgrades. Of the two queues,
// only rows whose work is over go: keys `completed`, or `recorded` with their
// order stored (never `in_flight`, never one an unfinished checkout still
// names), and outbox rows delivered (never pending or dead-lettered ones).

#include <chrono>
#include <cstdint>

#include <caf/meta/type_name.hpp>

namespace ap::persistence {

class connection;

/// A table the retention janitor purges.
enum class retention_table : std::uint8_t { idempotency_keys, audit_outbox };

/// "idempotency_keys" or "audit_outbox": the metrics' `table` label.
const char* to_string(retention_table table);

/// One batch to purge: up to `limit` rows of `table` older than
/// `older_than_s` seconds.
struct purge_terms {
  retention_table table = retention_table::idempotency_keys;
  std::int64_t older_than_s = 0;
  std::int32_t limit = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, purge_terms& x) {
  return f(caf::meta::type_name("purge_terms"), x.table, x.older_than_s, x.limit);
}

/// What one batch came to: how many rows went, and whether another instance
/// was purging, in which case this one purged nothing.
struct purge_outcome {
  std::int32_t purged = 0;
  bool locked_out = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, purge_outcome& x) {
  return f(caf::meta::type_name("purge_outcome"), x.purged, x.locked_out);
}

/// The advisory lock a batch takes (for its transaction only), so that one
/// instance purges at a time: batches of two instances never run together,
/// and an instance that finds it taken ends its sweep.
constexpr std::int64_t retention_lock_key = 0x61705f72657461LL; // "ap_reta"

/// Deletes one batch in a short transaction of its own: the rows of
/// `terms.table` past retention, oldest first, at most `terms.limit`, picked
/// FOR UPDATE SKIP LOCKED (a row some other statement holds is left for the
/// next sweep, never waited for) and deleted by their ctid. Idempotency keys
/// go when `completed` and both created and last updated before the cut-off,
/// and no unfinished checkout names them; outbox rows when delivered before
/// the cut-off and not dead-lettered.
purge_outcome purge_batch(connection& db, const purge_terms& terms);

/// Vacuums the two queue tables, `unfinished_checkouts` (a row from a
/// checkout's record until its order is stored, SPEC §9) and `audit_outbox`
/// (a row per event until the Kernel has it): each checkout inserts and
/// deletes three rows there. Between two of autovacuum's visits (a minute
/// apart by default, and slowed by its cost limit) the dead rows pile up:
/// 131 MB of them in `unfinished_checkouts` alone after 90 s at about 1,750
/// checkouts a second, against a few dozen live rows. Inserts then always
/// extend the table, the pages written once are soon written out of the
/// buffer cache, and the periodic scans over the tables (the reconciler's
/// statistics and lease) read every dead row: the statistics took up to a
/// third of a second. Vacuumed every few seconds, each table stays at 8–15 MB
/// under load and its pages are reused.
///
/// SKIP_LOCKED: a table another vacuum holds (autovacuum's, another
/// instance's) is skipped, never waited for. TRUNCATE false: the empty pages
/// at a table's end stay (the queue fills them again within seconds), so
/// the vacuum never takes the exclusive lock that truncating needs, which
/// would hold up the checkouts' inserts. Outside a transaction, as VACUUM
/// must be, and under the connection's statement timeout: a vacuum cut short
/// leaves the rest to the next one, and to autovacuum. A table the
/// connection's role does not own is skipped with a warning from the server,
/// which is not an error.
void vacuum_queues(connection& db);

/// Age in seconds of the oldest row of the purgeable kind still kept
/// (completed keys by creation, delivered outbox rows by delivery); 0 when
/// there is none.
std::int64_t oldest_kept_seconds(connection& db, retention_table table);

} // namespace ap::persistence
