#include "persistence/outbox_store.hpp"

#include <algorithm>

#include "persistence/connection.hpp"

namespace ap::persistence {

std::vector<domain::audit_event> lease_outbox(connection& db, const lease_terms& terms) {
  // One statement (migration 0006), which walks the index of undelivered
  // rows in order with bitmap scans off.
  auto rows = db.exec("SELECT * FROM lease_outbox($1, $2::integer, $3::integer)",
                      {terms.owner, std::to_string(terms.limit), std::to_string(terms.lease_ms)});
  std::vector<domain::audit_event> out;
  out.reserve(static_cast<std::size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i)
    out.push_back({rows.value(i, 0), rows.value(i, 1), rows.value(i, 2),
                   std::stoll(rows.value(i, 3)), std::stoi(rows.value(i, 4))});
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.committed_at_ms < b.committed_at_ms; });
  return out;
}

std::int32_t renew_outbox_leases(connection& db, const lease_terms& terms,
                                 const std::vector<std::string>& event_ids) {
  auto rows = db.exec("WITH renewed AS (UPDATE audit_outbox"
                      " SET leased_until = now() + make_interval(secs => $2::double precision / 1000)"
                      " WHERE event_id = ANY($3::text[]) AND leased_by = $1 AND delivered_at IS NULL"
                      " AND leased_until IS NOT NULL RETURNING 1)"
                      " SELECT count(*) FROM renewed",
                      {terms.owner, std::to_string(terms.lease_ms), text_array(event_ids)});
  return static_cast<std::int32_t>(std::stol(rows.value(0, 0)));
}

void settle_outbox(connection& db, const std::vector<domain::forwarding_outcome>& outcomes,
                   std::chrono::milliseconds max_backoff) {
  // One statement for the delivered rows of the batch and one for the
  // failed ones, not one per row. Each row's outcome stands on its own, so
  // they need no transaction: should the second fail, those leases run out
  // and the rows are sent again.
  // The outcomes' own strings go into the arrays, not copies of them.
  std::vector<const std::string*> acknowledged;
  // A receipt as its text, or as its parts (migration 0026): null where
  // the other is given.
  std::vector<const std::string*> receipts;
  std::vector<const std::string*> hashes;
  std::vector<const std::string*> prev_hashes;
  std::vector<const std::string*> signatures;
  std::vector<const std::string*> kernel_ids;
  std::vector<const std::string*> signers;
  std::vector<const std::string*> times;
  std::vector<const std::string*> failed;
  std::vector<const std::string*> refused;
  std::vector<std::string> refused_statuses;
  std::vector<const std::string*> refusals;
  acknowledged.reserve(outcomes.size());
  for (auto* v : {&receipts, &hashes, &prev_hashes, &signatures, &kernel_ids, &signers, &times})
    v->reserve(outcomes.size());
  for (const auto& o : outcomes) {
    if (o.acknowledged) {
      acknowledged.push_back(&o.event_id);
      const auto& c = o.columns;
      receipts.push_back(o.in_columns ? nullptr : &o.receipt);
      hashes.push_back(o.in_columns ? &c.hash : nullptr);
      prev_hashes.push_back(o.in_columns ? &c.prev_hash : nullptr);
      signatures.push_back(o.in_columns ? &c.signature : nullptr);
      kernel_ids.push_back(o.in_columns ? &c.kernel_id : nullptr);
      signers.push_back(o.in_columns ? &c.signer_id : nullptr);
      times.push_back(o.in_columns ? &c.ts : nullptr);
    } else if (o.refused_status != 0) {
      refused.push_back(&o.event_id);
      refused_statuses.push_back(std::to_string(o.refused_status));
      refusals.push_back(&o.refusal);
    } else {
      failed.push_back(&o.event_id);
    }
  }
  // The delivered rows leave the outbox and their receipts are written in
  // one statement, so one commit (migrations 0011, 0016, 0020): an event is
  // never gone without its receipt. The receipt takes its order, type and
  // queue time from the row deleted; a repeat finds no row and changes
  // nothing. The Kernel's id for the event is in the receipt (kernelEventId).
  if (!acknowledged.empty())
    db.exec_prepared("settle_delivered",
                     "SELECT settle_delivered($1::text[], $2::text[], $3::bytea[], $4::bytea[],"
                     " $5::bytea[], $6::text[], $7::text[], $8::text[])",
                     params_of(text_array(acknowledged), text_array(receipts), bytea_array(hashes),
                               bytea_array(prev_hashes), bytea_array(signatures),
                               text_array(kernel_ids), text_array(signers), text_array(times)));
  // Backoff grows with the attempts: 100 ms doubling, at most max_backoff.
  if (!failed.empty())
    db.exec("UPDATE audit_outbox SET leased_until = NULL, next_attempt_at = now()"
            " + make_interval(secs => least($2::double precision,"
            "                              100 * power(2, least(attempts, 20))) / 1000)"
            " WHERE event_id = ANY($1::text[]) AND delivered_at IS NULL",
            {text_array(failed), std::to_string(max_backoff.count())});
  // The refused rows are dead-lettered, with the Kernel's status and its
  // answer cut to the column's bound; lease_outbox skips them from now on.
  if (!refused.empty())
    db.exec("UPDATE audit_outbox o SET dead_lettered_at = now(), leased_until = NULL,"
            "   dead_letter_status = d.status, dead_letter_reason = left(d.reason, 1000)"
            " FROM unnest($1::text[], $2::integer[], $3::text[]) AS d(event_id, status, reason)"
            " WHERE o.event_id = d.event_id AND o.delivered_at IS NULL",
            {text_array(refused), to_pg_array(refused_statuses), text_array(refusals)});
}

std::int64_t requeue_dead_letters(connection& db, const std::vector<std::string>& event_ids) {
  // Due at once, with the record of the refusal cleared: should the Kernel
  // refuse the event again, a new one is written.
  auto rows = db.exec("WITH requeued AS (UPDATE audit_outbox"
                      " SET dead_lettered_at = NULL, dead_letter_status = NULL,"
                      "     dead_letter_reason = NULL, next_attempt_at = now()"
                      " WHERE dead_lettered_at IS NOT NULL AND delivered_at IS NULL"
                      "   AND (cardinality($1::text[]) = 0 OR event_id = ANY($1::text[]))"
                      " RETURNING 1)"
                      " SELECT count(*) FROM requeued",
                      {text_array(event_ids)});
  return std::stoll(rows.value(0, 0));
}

domain::outbox_stats outbox_statistics(connection& db, std::chrono::milliseconds budget) {
  auto rows = db.exec(
    "SELECT count(*),"
    " coalesce((extract(epoch FROM now() - min(created_at)) * 1000)::bigint, 0),"
    " count(*) FILTER (WHERE created_at < now() - make_interval(secs => $1::double precision / 1000))"
    " FROM audit_outbox WHERE delivered_at IS NULL AND dead_lettered_at IS NULL",
    {std::to_string(budget.count())});
  auto dead = db.exec("SELECT count(*) FROM audit_outbox"
                      " WHERE dead_lettered_at IS NOT NULL AND delivered_at IS NULL");
  return {std::stoll(rows.value(0, 0)), std::stoll(rows.value(0, 1)), std::stoll(rows.value(0, 2)),
          std::stoll(dead.value(0, 0))};
}

} // namespace ap::persistence
