#include "persistence/order_store.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <stdexcept>
#include <vector>

#include "domain/delivery.hpp"
#include "domain/receipt.hpp"
#include "persistence/connection.hpp"

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "core/time.hpp"

namespace ap::persistence {

const char* to_string(claim_state s) {
  switch (s) {
    case claim_state::claimed:
      return "claimed";
    case claim_state::replay:
      return "replay";
    case claim_state::in_flight:
      return "in_flight";
    case claim_state::mismatch:
      return "mismatch";
    case claim_state::released:
      return "released";
  }
  return "unknown";
}

const char* to_string(undo_decision d) {
  switch (d) {
    case undo_decision::undo:
      return "undo";
    case undo_decision::stored:
      return "stored";
    case undo_decision::gone:
      return "gone";
  }
  return "unknown";
}

const char* to_string(order_part part) {
  switch (part) {
    case order_part::result:
      return "result";
    case order_part::proof:
      return "proof";
    case order_part::license:
      return "license";
    case order_part::delivery:
      return "delivery";
  }
  return "unknown";
}

namespace {

// The outcome a completed key replays: its order's, or a refusal for a key
// abandoned without an order (no status).
domain::checkout_outcome_kind replay_outcome(const std::string& order_status) {
  auto status = domain::order_status_from(order_status);
  return status ? domain::outcome_of(*status) : domain::checkout_outcome_kind::refused;
}

} // namespace

std::vector<domain::catalog_item> load_catalog(connection& db) {
  auto rows = db.exec("SELECT sku, title, unit_amount, currency, artifact_url, artifact_sha256"
                      " FROM catalog_items ORDER BY sku");
  std::vector<domain::catalog_item> out;
  out.reserve(static_cast<std::size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i)
    out.push_back({rows.value(i, 0), rows.value(i, 1), std::stoll(rows.value(i, 2)),
                   rows.value(i, 3), rows.value(i, 4), rows.value(i, 5)});
  return out;
}

claim_result claim_idempotency_key(connection& db, const idempotency_claim& claim) {
  // A concurrent release can delete the row between the INSERT and the
  // SELECT; a second round then claims it.
  for (int round = 0; round < 3; ++round) {
    auto inserted = db.exec(
      "INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state)"
      " VALUES ($1, $2, $3, 'in_flight') ON CONFLICT (customer_id, idem_key) DO NOTHING",
      {claim.customer_id, claim.key, claim.fingerprint});
    if (inserted.affected() == 1)
      return {claim_state::claimed, {}, {}};
    auto row = db.exec(
      // A completed key answers its order's outcome (a key without an
      // order: the refusal it was abandoned with), and the body stored with
      // it, or else its order's result. A key recorded with its checkout
      // (migration 0018) is completed by its order's row.
      "SELECT k.fingerprint, k.state, coalesce(o.status, ''),"
      " coalesce(k.response_body, order_result(o.result, o.delivery_ciphertext, o.ciphertext_at)),"
      " k.updated_at < now() - make_interval(secs => $3) AS stale"
      " FROM idempotency_keys k LEFT JOIN orders o ON o.order_id = k.order_id"
      " WHERE k.customer_id = $1 AND k.idem_key = $2",
      {claim.customer_id, claim.key, std::to_string(stale_claim_seconds)});
    if (row.rows() == 0)
      continue;
    if (row.value(0, 0) != claim.fingerprint)
      return {claim_state::mismatch, {}, {}};
    const auto& state = row.value(0, 1);
    if (state == "completed" || (state == "recorded" && !row.value(0, 2).empty()))
      return {claim_state::replay, replay_outcome(row.value(0, 2)),
              domain::result_naming_delivery_key(row.value(0, 3))};
    // A recorded key's checkout has its unfinished record until the order
    // is stored or the checkout abandoned: never released here.
    if (state == "in_flight" && row.value(0, 4) == "t") {
      // Left by a release that recorded no unfinished checkout, and that
      // stopped: nothing will finish it, so it is released.
      auto released = db.exec(
        "DELETE FROM idempotency_keys k"
        " WHERE customer_id = $1 AND idem_key = $2 AND state = 'in_flight'"
        " AND updated_at < now() - make_interval(secs => $3)"
        " AND NOT EXISTS (SELECT 1 FROM unfinished_checkouts u"
        "                  WHERE u.customer_id = k.customer_id AND u.idem_key = k.idem_key)",
        {claim.customer_id, claim.key, std::to_string(stale_claim_seconds)});
      if (released.affected() == 1)
        return {claim_state::released, {}, {}};
    }
    return {claim_state::in_flight, {}, {}};
  }
  return {claim_state::in_flight, {}, {}};
}

std::vector<claim_result> claim_idempotency_keys(connection& db,
                                                 const std::vector<idempotency_claim>& claims) {
  std::vector<std::string> customers, keys, fingerprints;
  customers.reserve(claims.size());
  keys.reserve(claims.size());
  fingerprints.reserve(claims.size());
  for (const auto& c : claims) {
    customers.push_back(c.customer_id);
    keys.push_back(c.key);
    fingerprints.push_back(c.fingerprint);
  }
  auto inserted = db.exec(
    "INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state)"
    " SELECT c, k, f, 'in_flight' FROM unnest($1::text[], $2::text[], $3::text[]) AS t(c, k, f)"
    " ON CONFLICT (customer_id, idem_key) DO NOTHING RETURNING customer_id, idem_key",
    {text_array(customers), text_array(keys), text_array(fingerprints)});
  std::set<std::pair<std::string, std::string>> fresh;
  for (int i = 0; i < inserted.rows(); ++i)
    fresh.emplace(inserted.value(i, 0), inserted.value(i, 1));
  std::vector<claim_result> out;
  out.reserve(claims.size());
  for (const auto& c : claims) {
    // The first of duplicates takes the fresh row; the others find it.
    if (fresh.erase({c.customer_id, c.key}) == 1)
      out.push_back({claim_state::claimed, {}, {}});
    else
      out.push_back(claim_idempotency_key(db, c));
  }
  return out;
}

void release_idempotency_key(connection& db, const std::string& customer_id,
                             const std::string& key) {
  db.exec("DELETE FROM idempotency_keys"
          " WHERE customer_id = $1 AND idem_key = $2 AND state = 'in_flight'",
          {customer_id, key});
}

namespace {

/// The columns of one call of begin_checkouts() for `all`, each (customer,
/// key) once: a second checkout with the same key finds the first one's
/// claim afterwards (finish_begins). Empty when there is nothing to send.
/// The requests' own strings go into the arrays, not copies of them.
params begin_columns(const std::vector<checkout_begin>& all) {
  std::set<std::pair<std::string_view, std::string_view>> keys;
  std::vector<const std::string*> order, customer, key, fingerprint, payment_key, intent;
  for (auto* v : {&order, &customer, &key, &fingerprint, &payment_key, &intent})
    v->reserve(all.size());
  for (const auto& c : all) {
    if (!c.key.empty() && !keys.emplace(c.customer_id, c.key).second)
      continue;
    order.push_back(&c.order_id);
    customer.push_back(&c.customer_id);
    key.push_back(c.key.empty() ? nullptr : &c.key);
    fingerprint.push_back(&c.fingerprint);
    payment_key.push_back(&c.payment_key);
    intent.push_back(&c.intent);
  }
  if (order.empty())
    return {};
  return params_of(text_array(order), text_array(customer), text_array(key),
                   text_array(fingerprint), text_array(payment_key), text_array(intent));
}

/// The ids begin_checkouts() recorded, called with `columns`.
std::vector<std::string> begin_ids(connection& db, const params& columns) {
  auto rows = db.exec_prepared("begin_checkouts",
                               "SELECT * FROM begin_checkouts($1::text[], $2::text[],"
                               " $3::text[], $4::text[], $5::text[], $6::text[])",
                               columns);
  std::vector<std::string> begun;
  begun.reserve(static_cast<std::size_t>(rows.rows()));
  for (int r = 0; r < rows.rows(); ++r)
    begun.push_back(rows.value(r, 0));
  return begun;
}

} // namespace

std::vector<claim_result> finish_begins(connection& db, const std::vector<checkout_begin>& all,
                                        const std::vector<std::string>& begun_ids) {
  std::set<std::string_view> begun(begun_ids.begin(), begun_ids.end());
  std::vector<claim_result> out(all.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto& c = all[i];
    if (begun.count(c.order_id) == 1) {
      out[i] = {claim_state::claimed, {}, {}};
      continue;
    }
    auto found = claim_idempotency_key(db, {c.customer_id, c.key, c.fingerprint});
    if (found.state == claim_state::claimed || found.state == claim_state::released) {
      // The key was free again (released meanwhile): record it alone.
      auto again = begin_checkouts(db, {c});
      out[i] = again.front().state == claim_state::released
                 ? claim_result{claim_state::in_flight, {}, {}}
                 : std::move(again.front());
      continue;
    }
    out[i] = std::move(found);
  }
  return out;
}

std::vector<claim_result> begin_checkouts(connection& db,
                                          const std::vector<checkout_begin>& all) {
  auto columns = begin_columns(all);
  std::vector<std::string> begun;
  if (!columns.empty())
    begun = begin_ids(db, columns);
  return finish_begins(db, all, begun);
}

bool abandon_checkout(connection& db, const std::string& order_id, const std::string& body) {
  auto rows = db.exec("SELECT abandon_checkout($1, $2)", {order_id, body});
  return rows.value(0, 0) == "t";
}

undo_decision decide_undo(connection& db, const std::string& order_id, const std::string& reason) {
  auto decided = db.exec("SELECT decide_undo($1, $2)", {order_id, reason}).value(0, 0);
  if (decided == "undo")
    return undo_decision::undo;
  if (decided == "stored")
    return undo_decision::stored;
  return undo_decision::gone;
}

std::vector<unfinished_checkout> lease_unfinished(connection& db, const lease_terms& terms,
                                                  int older_ms) {
  auto rows = db.exec("SELECT * FROM lease_unfinished_checkouts($1, $2::integer, $3::integer,"
                      " $4::integer)",
                      {terms.owner, std::to_string(older_ms), std::to_string(terms.limit),
                       std::to_string(terms.lease_ms)});
  std::vector<unfinished_checkout> out;
  out.reserve(static_cast<std::size_t>(rows.rows()));
  for (int i = 0; i < rows.rows(); ++i)
    out.push_back({rows.value(i, 0), rows.value(i, 1), rows.value(i, 2), rows.value(i, 3),
                   std::stoi(rows.value(i, 4)), std::stoll(rows.value(i, 5))});
  return out;
}

unfinished_stats unfinished_statistics(connection& db) {
  // Rows come and go thousands of times a second, so between two vacuums
  // this reads mostly dead rows (up to tens of milliseconds): the facade
  // sends it to its worker for periodic scans.
  auto rows = db.exec("SELECT count(*),"
                      " coalesce((extract(epoch FROM now() - min(created_at)) * 1000)::bigint, 0)"
                      " FROM unfinished_checkouts");
  return {std::stoll(rows.value(0, 0)), std::stoll(rows.value(0, 1))};
}

bool is_unfinished(connection& db, const std::string& order_id) {
  return db.exec("SELECT 1 FROM unfinished_checkouts WHERE order_id = $1", {order_id}).rows() == 1;
}

namespace {

/// An order's result as its row stores it (migration 0025): the base64 of
/// its delivery's ciphertext cut out, and the bytes it encodes beside it.
struct cut_result {
  std::string rest;
  std::string ciphertext;
  /// Where order_result() puts the base64 back, in characters from 1.
  std::int64_t at = 0;
};

/// `result` cut as above; nullopt when it has no ciphertext to cut, or one
/// that is not strict base64 (which order_result() would not put back as
/// it was), or one placed after a character outside ASCII (whose position
/// in characters depends on the database's encoding): that result is
/// stored whole. Strict base64 is the only encoding of its bytes, the one
/// order_result() writes, so the document reads back byte for byte.
std::optional<cut_result> cut_ciphertext(const std::string& result) {
  static constexpr std::string_view member = R"("cipherText":")";
  auto begin = result.find(member);
  if (begin == std::string::npos)
    return std::nullopt;
  begin += member.size();
  auto end = result.find('"', begin);
  if (end == std::string::npos || end == begin)
    return std::nullopt;
  auto before = std::string_view{result}.substr(0, begin);
  if (std::any_of(before.begin(), before.end(),
                  [](char c) { return static_cast<unsigned char>(c) >= 0x80; }))
    return std::nullopt;
  auto bytes = crypto::base64_decode(std::string_view{result}.substr(begin, end - begin));
  if (!bytes)
    return std::nullopt;
  cut_result out;
  out.rest.reserve(result.size() - (end - begin));
  out.rest.append(result, 0, begin).append(result, end, std::string::npos);
  out.ciphertext = std::move(*bytes);
  out.at = static_cast<std::int64_t>(begin) + 1;
  return out;
}

/// The orders given by `at(i)`, i < count, as the columns of one call of
/// store_orders() (migration 0025), `$1` to `$23`.
template <class At>
params store_columns(const outbox_lease& lease, std::size_t count, At at) {
  auto optional = [](const std::string& s) -> std::optional<std::string> {
    if (s.empty())
      return std::nullopt;
    return s;
  };
  // The records' own strings go into the arrays as they are (their
  // results and payloads are kilobytes each); only what is computed here
  // is held here.
  using texts = std::vector<const std::string*>;
  auto or_null = [](const std::string& s) { return s.empty() ? nullptr : &s; };
  texts order_id, customer, email, currency, payment, entry, result, ciphertext;
  std::vector<std::string> status, total, items, created;
  std::vector<std::optional<std::string>> ciphertext_at;
  // Each result's cut, where it has one; reserved, so that the pointers
  // into it stay put.
  std::vector<cut_result> cuts;
  cuts.reserve(count);
  texts event_id, event_type, event_order, payload;
  texts key_customer, key, body, key_order;
  for (auto* v : {&order_id, &customer, &email, &currency, &payment, &entry, &result, &ciphertext})
    v->reserve(count);
  ciphertext_at.reserve(count);
  for (auto* v : {&status, &total, &items, &created})
    v->reserve(count);
  for (auto* v : {&event_id, &event_type, &event_order, &payload})
    v->reserve(2 * count);
  for (std::size_t n = 0; n < count; ++n) {
    const domain::order_record& o = at(n);
    order_id.push_back(&o.order_id);
    customer.push_back(&o.customer_id);
    email.push_back(&o.email);
    status.emplace_back(domain::to_string(o.status));
    currency.push_back(&o.currency);
    total.push_back(std::to_string(o.total));
    payment.push_back(&o.payment_id);
    entry.push_back(or_null(o.finance_entry_id));
    if (auto cut = cut_ciphertext(o.result)) {
      cuts.push_back(std::move(*cut));
      result.push_back(&cuts.back().rest);
      ciphertext.push_back(&cuts.back().ciphertext);
      ciphertext_at.emplace_back(std::to_string(cuts.back().at));
    } else {
      result.push_back(&o.result);
      ciphertext.push_back(nullptr);
      ciphertext_at.emplace_back(std::nullopt);
    }
    items.push_back(domain::priced_items_text(o.items));
    created.push_back(o.created_at);
    for (const auto& e : o.events) {
      event_id.push_back(&e.event_id);
      event_type.push_back(&e.event_type);
      event_order.push_back(&o.order_id);
      payload.push_back(&e.payload);
    }
    if (!o.idempotency_key.empty()) {
      key_customer.push_back(&o.customer_id);
      key.push_back(&o.idempotency_key);
      // A completed checkout answers the order's result, which is stored
      // once, with the order.
      body.push_back(or_null(o.failure_body));
      key_order.push_back(&o.order_id);
    }
  }
  return params_of(text_array(order_id), text_array(customer), text_array(email),
                   text_array(status), text_array(currency), to_pg_array(total),
                   text_array(payment), text_array(entry), text_array(result),
                   text_array(items), bytea_array(ciphertext), to_pg_array(ciphertext_at),
                   to_pg_array(created),
                   text_array(event_id), text_array(event_type), text_array(event_order),
                   text_array(payload),
                   text_array(key_customer), text_array(key),
                   text_array(body), text_array(key_order), optional(lease.owner),
                   std::to_string(lease.lease_ms));
}

/// The orders given by `at(i)`, i < count, written by one call of
/// store_orders(): one round trip and one commit. Answers the ids of those
/// stored before.
template <class At>
std::vector<std::string> store_all(connection& db, const outbox_lease& lease, std::size_t count,
                                   At at) {
  if (count == 0)
    return {};
  auto rows = db.exec_prepared("store_orders",
          "SELECT store_orders($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
          " $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bytea[],"
          " $12::integer[], $13::timestamptz[],"
          " $14::text[], $15::text[], $16::text[], $17::text[],"
          " $18::text[], $19::text[], $20::text[], $21::text[],"
          " $22::text, $23::integer)",
          store_columns(lease, count, at));
  return from_pg_array(rows.value(0, 0));
}

// What each order's store came to: its events, written now under `lease`
// and committed about now, unless it was stored before.
template <class At>
std::vector<stored_order> outcomes_of(const std::vector<std::string>& stored_before,
                                      const outbox_lease& lease, std::size_t count, At at) {
  auto committed = unix_ms_now();
  std::int32_t attempts = lease.owner.empty() ? 0 : 1;
  std::vector<stored_order> out(count);
  for (std::size_t n = 0; n < count; ++n) {
    const domain::order_record& o = at(n);
    if (std::find(stored_before.begin(), stored_before.end(), o.order_id) != stored_before.end())
      continue;
    out[n].stored_now = true;
    out[n].events = o.events;
    for (auto& e : out[n].events) {
      e.committed_at_ms = committed;
      e.attempts = attempts;
    }
  }
  return out;
}

} // namespace

stored_order store_order(connection& db, const domain::order_record& o,
                         const outbox_lease& lease) {
  auto at = [&](std::size_t) -> const domain::order_record& { return o; };
  return outcomes_of(store_all(db, lease, 1, at), lease, 1, at).front();
}

std::vector<stored_order> store_orders(connection& db,
                                       const std::vector<domain::order_record>& orders,
                                       const outbox_lease& lease) {
  auto at = [&](std::size_t n) -> const domain::order_record& { return orders[n]; };
  return outcomes_of(store_all(db, lease, orders.size(), at), lease, orders.size(), at);
}

begun_and_stored begin_and_store(connection& db, const std::vector<checkout_begin>& begins,
                                 const std::vector<domain::order_record>& orders,
                                 const outbox_lease& lease) {
  auto at = [&](std::size_t n) -> const domain::order_record& { return orders[n]; };
  begun_and_stored out;
  auto columns = begin_columns(begins);
  if (columns.empty() || orders.empty()) {
    // One kind alone: its own call, without the other's empty arrays.
    if (!columns.empty())
      out.begun = begin_ids(db, columns);
    out.stored = outcomes_of(store_all(db, lease, orders.size(), at), lease, orders.size(), at);
    return out;
  }
  auto stored_columns = store_columns(lease, orders.size(), at);
  columns.reserve(columns.size() + stored_columns.size());
  for (auto& p : stored_columns)
    columns.push_back(std::move(p));
  auto rows = db.exec_prepared("begin_and_store",
          "SELECT begun, stored_before FROM begin_and_store("
          "$1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
          " $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],"
          " $12::bigint[], $13::text[], $14::text[], $15::text[], $16::text[], $17::bytea[],"
          " $18::integer[], $19::timestamptz[],"
          " $20::text[], $21::text[], $22::text[], $23::text[],"
          " $24::text[], $25::text[], $26::text[], $27::text[],"
          " $28::text, $29::integer)",
          columns);
  out.begun = from_pg_array(rows.value(0, 0));
  out.stored = outcomes_of(from_pg_array(rows.value(0, 1)), lease, orders.size(), at);
  return out;
}

std::string order_part_of(const std::string& result, order_part part) {
  const char* member = nullptr;
  switch (part) {
    case order_part::result:
      return result;
    case order_part::proof:
      member = "proof";
      break;
    case order_part::license:
      member = "license";
      break;
    case order_part::delivery:
      member = "delivery";
      break;
  }
  // The result is canonical JSON, so its member written canonically again
  // is byte for byte the document the checkout produced.
  rapidjson::Document doc;
  if (json::parse_strict(result, doc) || !doc.IsObject())
    throw db_error("an order's stored result is not a JSON object", "XX000", false);
  auto found = doc.FindMember(member);
  if (found == doc.MemberEnd() || !found->value.IsObject())
    return {};
  if (part == order_part::delivery)
    domain::name_delivery_key_id(found->value, doc.GetAllocator());
  return json::canonical(found->value);
}

std::string load_order_part(connection& db, const std::string& order_id, order_part part) {
  if (part != order_part::result) {
    auto rows = db.exec("SELECT order_result(result, delivery_ciphertext, ciphertext_at)"
                        " FROM orders WHERE order_id = $1",
                        {order_id});
    if (rows.rows() == 0)
      return {};
    return order_part_of(rows.value(0, 0), part);
  }
  // The result with the receipts of its events (migration 0011), each as
  // receipt_document() gives it back (migration 0026), in one round trip.
  auto rows = db.exec("SELECT order_result(o.result, o.delivery_ciphertext, o.ciphertext_at),"
                      " o.status,"
                      " ARRAY(SELECT receipt_document(r) FROM audit_receipts r"
                      "        WHERE r.order_id = o.order_id)"
                      " FROM orders o WHERE o.order_id = $1",
                      {order_id});
  if (rows.rows() == 0)
    return {};
  auto status = domain::order_status_from(rows.value(0, 1));
  if (!status)
    throw db_error("an order's stored status is not one the service writes", "XX000", false);
  try {
    return domain::result_with_receipts(rows.value(0, 0), *status, from_pg_array(rows.value(0, 2)));
  } catch (const std::invalid_argument&) {
    throw db_error("an order's stored result is not a JSON object", "XX000", false);
  }
}

bool order_exists(connection& db, const std::string& order_id) {
  return db.exec("SELECT 1 FROM orders WHERE order_id = $1", {order_id}).rows() > 0;
}

} // namespace ap::persistence

