#pragma once

// The SQL of orders, idempotency keys and unfinished checkouts. Blocking:
// called only by database workers.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "domain/checkout.hpp"
#include "domain/order.hpp"

namespace ap::persistence {

class connection;

/// A request to bind an Idempotency-Key to a request fingerprint.
struct idempotency_claim {
  std::string customer_id;
  std::string key;
  std::string fingerprint;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, idempotency_claim& x) {
  return f(caf::meta::type_name("idempotency_claim"), x.customer_id, x.key, x.fingerprint);
}

/// What claiming an Idempotency-Key (or recording a checkout) found.
enum class claim_state : std::uint8_t {
  /// Claimed (and the checkout recorded): go ahead.
  claimed,
  /// Completed before: answer its stored outcome.
  replay,
  /// The first request is still running.
  in_flight,
  /// The key was used with another body.
  mismatch,
  /// A stale claim was released just now: claim again.
  released,
};

/// The name of a claim state, for logs.
const char* to_string(claim_state s);

/// What a claim found; for a replay, the outcome the key answers and its body.
struct claim_result {
  claim_state state = claim_state::claimed;
  domain::checkout_outcome_kind replay = domain::checkout_outcome_kind::completed;
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, claim_result& x) {
  return f(caf::meta::type_name("claim_result"), x.state, x.replay, x.body);
}

/// A claim left in flight longer than this by a release that recorded no
/// unfinished checkout for it is released. A claim whose checkout is
/// recorded stays until the checkout is finished (SPEC §9: 409 meanwhile).
constexpr int stale_claim_seconds = 60;

/// A checkout to record before its first external call (SPEC §9).
struct checkout_begin {
  std::string order_id;
  std::string customer_id;
  /// The client's Idempotency-Key; empty for none.
  std::string key;
  std::string fingerprint;
  /// The processor's Idempotency-Key of its charge.
  std::string payment_key;
  /// domain::encode_intent of its request and ids.
  std::string intent;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_begin& x) {
  return f(caf::meta::type_name("checkout_begin"), x.order_id, x.customer_id, x.key,
           x.fingerprint, x.payment_key, x.intent);
}

/// A checkout left unfinished, leased to a reconciler.
struct unfinished_checkout {
  std::string order_id;
  std::string key;
  std::string intent;
  /// Why its sale is being undone; empty unless that was decided.
  std::string undo_reason;
  std::int32_t attempts = 0;
  std::int64_t age_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unfinished_checkout& x) {
  return f(caf::meta::type_name("unfinished_checkout"), x.order_id, x.key, x.intent,
           x.undo_reason, x.attempts, x.age_ms);
}

/// How many checkouts are unfinished and how old the oldest is.
struct unfinished_stats {
  std::int64_t count = 0;
  std::int64_t oldest_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unfinished_stats& x) {
  return f(caf::meta::type_name("unfinished_stats"), x.count, x.oldest_ms);
}

/// Who takes a lease (of outbox rows, or of unfinished checkouts), on how
/// many rows at most, and for how long.
struct lease_terms {
  std::string owner;
  std::int32_t limit = 0;
  std::int32_t lease_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_terms& x) {
  return f(caf::meta::type_name("lease_terms"), x.owner, x.limit, x.lease_ms);
}

/// What deciding to undo a captured checkout found (migration 0008).
enum class undo_decision : std::uint8_t {
  /// Decided (now or before): refund, reverse, store it settlement_failed.
  undo,
  /// Its order is stored: it stands, nothing is undone.
  stored,
  /// Not recorded.
  gone,
};

/// "undo", "stored" or "gone".
const char* to_string(undo_decision d);

/// What storing an order came to: whether this call stored it, and then
/// the audit events it wrote, with their commit time (empty when it was
/// stored before: those events are the earlier store's).
struct stored_order {
  bool stored_now = false;
  std::vector<domain::audit_event> events;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stored_order& x) {
  return f(caf::meta::type_name("stored_order"), x.stored_now, x.events);
}

/// Which document of an order to read.
enum class order_part : std::uint8_t { result, proof, license, delivery };

/// "result", "proof", "license" or "delivery".
const char* to_string(order_part part);

/// Records checkouts, with one statement for all (migration 0008); a keyed
/// one only when its key is claimed. One result per checkout, in order:
/// claimed (recorded: go ahead) or what claim_idempotency_key found.
std::vector<claim_result> begin_checkouts(connection& db, const std::vector<checkout_begin>& all);

/// The rest of begin_checkouts once its statement has recorded the
/// checkouts `begun` (their order ids): each of `all` not among them finds
/// its key's claim, or is recorded alone when the key was free again.
std::vector<claim_result> finish_begins(connection& db, const std::vector<checkout_begin>& all,
                                        const std::vector<std::string>& begun);

/// Ends an unfinished checkout that will have no order (a definite refusal
/// before any charge); its key answers the refusal, `body`, from then on.
/// False when it was not unfinished.
bool abandon_checkout(connection& db, const std::string& order_id, const std::string& body);

/// Decides to undo a captured checkout (see migration 0008).
undo_decision decide_undo(connection& db, const std::string& order_id, const std::string& reason);

/// Leases checkouts unfinished for longer than `older_ms` (see migration 0008).
std::vector<unfinished_checkout> lease_unfinished(connection& db, const lease_terms& terms,
                                                  int older_ms);

/// Count and oldest age of the unfinished checkouts.
unfinished_stats unfinished_statistics(connection& db);

/// Whether `order_id` is a checkout recorded and not finished.
bool is_unfinished(connection& db, const std::string& order_id);

/// The catalog, sorted by SKU.
std::vector<domain::catalog_item> load_catalog(connection& db);

/// Claims `claim.key` for `claim.customer_id` (see claim_result).
claim_result claim_idempotency_key(connection& db, const idempotency_claim& claim);

/// Claims many keys with one statement; answers one result per claim, in
/// order. Keys already present (or twice in `claims`) take the path of
/// claim_idempotency_key one by one.
std::vector<claim_result> claim_idempotency_keys(connection& db,
                                                 const std::vector<idempotency_claim>& claims);

/// Forgets an in-flight claim whose checkout failed before anything was stored.
void release_idempotency_key(connection& db, const std::string& customer_id,
                             const std::string& key);

/// The lease under which stored outbox events are written: to `owner`, for
/// `lease_ms`, so that instance's forwarder sends them without leasing them
/// first (migration 0007). No owner: written free, for any lease.
struct outbox_lease {
  std::string owner;
  std::int32_t lease_ms = 0;
};

/// Writes the order, its items, its outbox events (under `lease`) and (with
/// a key) the completed idempotency record in one statement, so in one
/// transaction, and ends its unfinished checkout. A 201 body is not stored
/// beside the key: its replay reads the order's result. Idempotent: an order
/// stored already is left as it is (`stored_now` false). Throws db_error;
/// then nothing was written.
stored_order store_order(connection& db, const domain::order_record& order,
                         const outbox_lease& lease = {});

/// Writes several orders as store_order does, all in one statement (group
/// commit: one round trip, one commit); one result per order, in order.
/// Throws db_error when any of them cannot be written; then none was.
std::vector<stored_order> store_orders(connection& db,
                                       const std::vector<domain::order_record>& orders,
                                       const outbox_lease& lease = {});

/// What begin_and_store came to: the order ids of the checkouts it
/// recorded, for finish_begins, and one result per order stored, in order.
struct begun_and_stored {
  std::vector<std::string> begun;
  std::vector<stored_order> stored;
};

/// Stores `orders` as store_orders does and records `begins` as the
/// statement of begin_checkouts does, in one statement (migration 0021):
/// one round trip and one commit for both batches. Their orders differ: a
/// checkout is stored only after its record was committed. Throws db_error
/// when any part cannot be written; then nothing was. The records are
/// finished by finish_begins, after the commit.
begun_and_stored begin_and_store(connection& db, const std::vector<checkout_begin>& begins,
                                 const std::vector<domain::order_record>& orders,
                                 const outbox_lease& lease = {});

/// The stored document, or an empty string when the order (or that part of
/// it) does not exist. The parts are members of the stored result. The
/// result itself is answered with its `audit` member showing the receipts
/// of its events as they are now (domain::result_with_receipts): the stored
/// bytes, which a POST and its replays answer, say "pending" for ever.
std::string load_order_part(connection& db, const std::string& order_id, order_part part);

/// Whether an order `order_id` is stored.
bool order_exists(connection& db, const std::string& order_id);

/// That part of an order's stored result (the result itself for
/// order_part::result); empty when the order has no such part.
std::string order_part_of(const std::string& result, order_part part);

} // namespace ap::persistence
