#include "persistence/retention_store.hpp"

#include <string>

#include "persistence/connection.hpp"

namespace ap::persistence {

const char* to_string(retention_table table) {
  switch (table) {
    case retention_table::idempotency_keys:
      return "idempotency_keys";
    case retention_table::audit_outbox:
      return "audit_outbox";
  }
  return "unknown";
}

namespace {

// The rows are picked by an index walk from the oldest (migration 0014) and
// deleted by ctid, so the delete is a TID scan of exactly those rows and no
// plan can turn it into a join over the whole table.
constexpr const char* purge_keys_sql =
  "DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY("
  "  SELECT k.ctid FROM idempotency_keys k"
  "   WHERE k.created_at < now() - make_interval(secs => $1::double precision)"
  "     AND k.updated_at < now() - make_interval(secs => $1::double precision)"
  "     AND (k.state = 'completed'"
  "          OR (k.state = 'recorded'"
  "              AND EXISTS (SELECT 1 FROM orders o WHERE o.order_id = k.order_id)))"
  "     AND NOT EXISTS (SELECT 1 FROM unfinished_checkouts u"
  "                      WHERE u.customer_id = k.customer_id AND u.idem_key = k.idem_key)"
  "   ORDER BY k.created_at LIMIT $2::integer"
  "   FOR UPDATE OF k SKIP LOCKED))";

constexpr const char* purge_outbox_sql =
  "DELETE FROM audit_outbox WHERE ctid = ANY(ARRAY("
  "  SELECT o.ctid FROM audit_outbox o"
  "   WHERE o.delivered_at IS NOT NULL"
  "     AND o.delivered_at < now() - make_interval(secs => $1::double precision)"
  "     AND o.dead_lettered_at IS NULL"
  "   ORDER BY o.delivered_at LIMIT $2::integer"
  "   FOR UPDATE SKIP LOCKED))";

} // namespace

purge_outcome purge_batch(connection& db, const purge_terms& terms) {
  return db.transaction([&] {
    purge_outcome out;
    // A batch is short by construction. One that is not (a cold cache, a
    // stalled disk) ends at the session's statement_timeout like any other
    // statement of the service, a server error inside the call's deadline,
    // so it never holds its row locks for long.
    auto got = db.exec("SELECT pg_try_advisory_xact_lock($1::bigint)",
                       {std::to_string(retention_lock_key)});
    if (got.value(0, 0) != "t") {
      out.locked_out = true;
      return out;
    }
    auto sql = terms.table == retention_table::idempotency_keys ? purge_keys_sql : purge_outbox_sql;
    auto deleted = db.exec(sql, {std::to_string(terms.older_than_s), std::to_string(terms.limit)});
    out.purged = static_cast<std::int32_t>(deleted.affected());
    return out;
  });
}

void vacuum_queues(connection& db) {
  db.exec("VACUUM (SKIP_LOCKED, TRUNCATE false) unfinished_checkouts, audit_outbox");
}

std::int64_t oldest_kept_seconds(connection& db, retention_table table) {
  // Each is the first entry of an index (migration 0014).
  auto sql = table == retention_table::idempotency_keys
               ? "SELECT coalesce(extract(epoch FROM now() - min(created_at))::bigint, 0)"
                 " FROM idempotency_keys WHERE state IN ('completed', 'recorded')"
               : "SELECT coalesce(extract(epoch FROM now() - min(delivered_at))::bigint, 0)"
                 " FROM audit_outbox WHERE delivered_at IS NOT NULL";
  return std::stoll(db.exec(sql).value(0, 0));
}

} // namespace ap::persistence
