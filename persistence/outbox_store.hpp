#pragma once

// The SQL of the transactional audit outbox (SPEC §6): events are written
// with their order (order_store.hpp), leased by a forwarder, and settled
// with the Kernel's acknowledgement or a retry time. Blocking: called only
// by database workers.

#include <chrono>
#include <vector>

#include "domain/audit.hpp"
#include "persistence/order_store.hpp"

namespace ap::persistence {

class connection;

/// Leases up to `terms.limit` unacknowledged rows that are due and not
/// leased, with FOR UPDATE SKIP LOCKED, to `terms.owner` for
/// `terms.lease_ms`; oldest first. Counts an attempt on each.
std::vector<domain::audit_event> lease_outbox(connection& db, const lease_terms& terms);

/// Extends the leases `terms.owner` holds on `event_ids` to `terms.lease_ms`
/// from now (rows still undelivered and still leased to it); answers how
/// many were extended. A call to the Kernel slower than the lease keeps its
/// rows, so a poll does not send them a second time.
std::int32_t renew_outbox_leases(connection& db, const lease_terms& terms,
                                 const std::vector<std::string>& event_ids);

/// Records the outcomes: acknowledged rows leave the outbox and their
/// receipts are kept (audit_receipts, with the row's order, type and queue
/// time), in one statement for the batch; rows the Kernel refused for what they carry
/// (`refused_status`) are dead-lettered with its status and answer, in one
/// statement, and never leased again until requeued; the others are
/// released and retried after a backoff that grows with their attempts
/// (100 ms doubling, at most `max_backoff`). Idempotent: settling a
/// delivered row again changes nothing.
void settle_outbox(connection& db, const std::vector<domain::forwarding_outcome>& outcomes,
                   std::chrono::milliseconds max_backoff = domain::audit_max_retry_backoff);

/// Clears the dead-letter state of the dead-lettered rows among
/// `event_ids` (of all of them when it is empty), so they are leased again
/// at once; answers how many. For an operator who fixed what made the
/// Kernel refuse them (docs/runbooks/audit-freshness.md).
std::int64_t requeue_dead_letters(connection& db, const std::vector<std::string>& event_ids);

/// Pending count, oldest pending age and how many are older than `budget`,
/// dead-lettered rows apart; and how many are dead-lettered.
domain::outbox_stats outbox_statistics(
  connection& db, std::chrono::milliseconds budget = domain::audit_freshness_budget);

} // namespace ap::persistence
