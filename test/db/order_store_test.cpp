#include <algorithm>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "bench/sample_checkout.hpp"
#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/order.hpp"
#include "domain/receipt.hpp"
#include "test/support/print.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/order_store.hpp"
#include "persistence/outbox_store.hpp"
#include "test/support/pg_cluster.hpp"

using namespace ap;
using namespace ap::persistence;

namespace {

struct store_fixture {
  connection db{test::fresh_database("ap_order_store")};
  store_fixture() { migrate(db); }

  std::string count(const std::string& table) {
    return db.exec("SELECT count(*) FROM " + table).value(0, 0);
  }

  domain::order_record order(const std::string& n, const std::string& key = {}) {
    domain::order_record o;
    o.order_id = "order_" + std::string(24 - n.size(), '0') + n;
    o.customer_id = "cust-store";
    o.email = "a@example.com";
    o.status = domain::order_status::completed;
    o.currency = "usd";
    o.total = 1200;
    o.payment_id = "pay_" + n;
    o.finance_entry_id = "fin_" + n;
    o.items = {{"creator-basic", 1, 1200, 1200}};
    o.created_at = "2026-01-01T00:00:00Z";
    // As the checkout builds them: canonical JSON, the parts members of the result.
    o.result = R"({"delivery":)" + delivery_of(n) + R"(,"license":)" + license_of(n)
               + R"(,"orderId":")" + o.order_id + R"(","proof":)" + proof_of(n) + "}";
    o.events = {{"evt_a" + n, "order.completed", "{}"}, {"evt_b" + n, "delivery.generated", "{}"}};
    o.idempotency_key = key;
    return o;
  }

  // Records `o`'s checkout with its Idempotency-Key, as a checkout does
  // before it charges.
  claim_state begin(const domain::order_record& o) {
    return begin_checkouts(db, {{o.order_id, o.customer_id, o.idempotency_key, "fp",
                                 "ck_" + o.order_id, "{}"}})
      .front()
      .state;
  }

  static std::string proof_of(const std::string&) {
    return R"({"kid":"v1","payload":{"items":[1,2],"total":1200}})";
  }
  static std::string license_of(const std::string& n) {
    return R"({"licenseId":"lic_)" + n + R"("})";
  }
  static std::string delivery_of(const std::string&) {
    return R"({"cipherText":"AAEC+/8=","keyId":"d2","nonce":"bm9uY2U="})";
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(order_store, store_fixture)

BOOST_AUTO_TEST_CASE(an_order_is_stored_whole) {
  store_order(db, order("1"));
  BOOST_TEST(count("orders") == "1");
  BOOST_TEST(count("order_items") == "1");
  BOOST_TEST(count("audit_outbox") == "2");
  // Shown with its audit receipts (none yet); stored as it was written.
  BOOST_TEST(load_order_part(db, order("1").order_id, order_part::result)
             == domain::result_with_receipts(order("1").result, domain::order_status::completed, {}));
  BOOST_TEST(db.exec("SELECT order_result(result, delivery_ciphertext, ciphertext_at) FROM orders")
               .value(0, 0)
             == order("1").result);
  BOOST_TEST(load_order_part(db, "order_nope", order_part::result).empty());
}

// Migration 0017: the items are in the order's row, as the canonical
// array its proof signs, and read through the order_items view; no row of
// their own is written.
BOOST_AUTO_TEST_CASE(the_items_are_kept_in_the_orders_row) {
  auto o = order("7");
  o.items = {{"artifact-license", 2, 800, 1600}, {"creator-basic", 1, 1200, 1200}};
  o.total = 2800;
  store_order(db, o);
  BOOST_TEST(db.exec("SELECT items FROM orders").value(0, 0)
             == R"([{"amount":1600,"quantity":2,"sku":"artifact-license","unitAmount":800},)"
                R"({"amount":1200,"quantity":1,"sku":"creator-basic","unitAmount":1200}])");
  auto rows = db.exec("SELECT order_id, sku, quantity, unit_amount, amount FROM order_items"
                      " ORDER BY sku");
  BOOST_REQUIRE_EQUAL(rows.rows(), 2);
  BOOST_TEST(rows.value(0, 0) == o.order_id);
  BOOST_TEST(rows.value(0, 1) == "artifact-license");
  BOOST_TEST(rows.value(0, 2) == "2");
  BOOST_TEST(rows.value(0, 3) == "800");
  BOOST_TEST(rows.value(0, 4) == "1600");
  BOOST_TEST(rows.value(1, 1) == "creator-basic");
  BOOST_TEST(db.exec("SELECT relkind FROM pg_class WHERE relname = 'order_items'").value(0, 0)
             == "v");
  BOOST_TEST(count("order_items_before_0017") == "0");
  // What is not a JSON array is refused, whole.
  BOOST_CHECK_EXCEPTION(db.exec("UPDATE orders SET items = '{\"sku\":1}' WHERE order_id = $1",
                                {o.order_id}),
                        db_error, [](const db_error& e) { return e.sqlstate() == "23514"; });
  BOOST_TEST(db.exec("SELECT items LIKE '[%' FROM orders").value(0, 0) == "t");
}

// Migration 0019: storing an order writes its row once. Its events name it
// without a foreign-key check, which locked the row just inserted (the
// storing transaction in its xmax, and a WAL record of its own), and the
// row goes only into its id's index and the unique keys that hold one order
// per charge and per ledger entry, none keyed by its customer.
BOOST_AUTO_TEST_CASE(an_orders_row_is_written_once_into_the_indexes_its_reads_use) {
  auto o = order("8");
  store_order(db, o);
  BOOST_TEST(db.exec("SELECT count(*) FROM audit_outbox WHERE order_id = $1", {o.order_id})
               .value(0, 0)
             == "2");
  BOOST_TEST(db.exec("SELECT xmax FROM orders WHERE order_id = $1", {o.order_id}).value(0, 0)
             == "0");
  BOOST_TEST(db.exec("SELECT string_agg(indexname, ' ' ORDER BY indexname) FROM pg_indexes"
                     " WHERE tablename = 'orders'")
               .value(0, 0)
             == "orders_finance_entry_id_key orders_payment_id_key orders_pkey");
}

// Migrations 0024 and 0025: a completed order's row, as a checkout makes
// it (the benchmark's two lines, a real proof, license and sealed
// delivery), is compressed where it is, with its delivery's ciphertext
// beside the result as bytes: four rows to a page (three with the base64
// in the result), nothing in the TOAST table, and every part reads back
// byte for byte.
BOOST_AUTO_TEST_CASE(completed_orders_are_compressed_in_their_rows_four_to_a_page) {
  std::vector<domain::order_record> stored;
  for (int n = 0; n < 12; ++n) {
    // A customer id as long as bench/checkout.lua's.
    auto o = bench::sample_checkout{"bench-1765100000-0-123456789-" + std::to_string(n)}.assemble();
    o.idempotency_key = "key-" + std::to_string(n);
    BOOST_REQUIRE(begin(o) == claim_state::claimed);
    BOOST_REQUIRE_GT(o.result.size(), 2400u);
    store_order(db, o);
    stored.push_back(o);
  }
  for (const auto& o : stored) {
    rapidjson::Document doc;
    BOOST_REQUIRE(!json::parse_strict(o.result, doc));
    std::string base64 = doc["delivery"]["cipherText"].GetString();
    BOOST_REQUIRE_GT(base64.size(), 500u);
    auto row = db.exec("SELECT pg_column_compression(result),"
                       " pg_column_size(result) < octet_length(result), pg_column_size(o.*) <= 2032,"
                       " strpos(result, $2), encode(delivery_ciphertext, 'base64'),"
                       " order_result(result, delivery_ciphertext, ciphertext_at)"
                       " FROM orders o WHERE order_id = $1",
                       {o.order_id, base64.substr(0, 40)});
    BOOST_TEST(row.value(0, 0) == "lz4");
    BOOST_TEST(row.value(0, 1) == "t");
    BOOST_TEST(row.value(0, 2) == "t");
    BOOST_TEST(row.value(0, 3) == "0");
    std::string kept = row.value(0, 4);
    kept.erase(std::remove(kept.begin(), kept.end(), '\n'), kept.end());
    BOOST_TEST(kept == base64);
    BOOST_TEST(row.value(0, 5) == o.result);
    BOOST_TEST(load_order_part(db, o.order_id, order_part::delivery)
               == json::canonical(doc["delivery"]));
    // A retry with the order's key is answered with the stored body, as sent.
    auto replay = claim_idempotency_key(db, {o.customer_id, o.idempotency_key, "fp"});
    BOOST_TEST(replay.state == claim_state::replay);
    BOOST_TEST(replay.body == o.result);
  }
  BOOST_TEST(db.exec("SELECT count(DISTINCT (ctid::text::point)[0]) FROM orders").value(0, 0)
             == "3");
  BOOST_TEST(db.exec("SELECT pg_relation_size(reltoastrelid) FROM pg_class"
                     " WHERE relname = 'orders'")
               .value(0, 0)
             == "0");
}

// Migration 0025: a result whose ciphertext cannot be cut out exactly is
// stored whole, and every result reads back as it was written.
BOOST_AUTO_TEST_CASE(a_result_is_cut_only_where_it_reads_back_exactly) {
  auto with_delivery = [](const std::string& delivery, const std::string& before = "") {
    return R"({"a":")" + before + R"(","delivery":)" + delivery
           + R"(,"license":{"issuedTo":"Zoë"}})";
  };
  std::vector<std::pair<domain::order_record, bool>> all;
  auto add = [&](const std::string& n, std::string result, bool cut) {
    auto o = order(n, "key-cut-" + n);
    o.result = std::move(result);
    BOOST_REQUIRE(begin(o) == claim_state::claimed);
    all.emplace_back(o, cut);
  };
  // Strict base64, with characters outside ASCII after it: cut.
  add("41", with_delivery(R"({"cipherText":"AAEC+/8=","nonce":"bm9uY2U=","keyId":"d2"})"), true);
  // No padding needed, and none: cut.
  add("42", with_delivery(R"({"cipherText":"AAECAwQF","keyId":"d2"})"), true);
  // Characters outside ASCII before it: their count in characters is the
  // database's, so stored whole.
  add("43", with_delivery(R"({"cipherText":"AAEC+/8=","keyId":"d2"})", "é"), false);
  // Not strict base64: trailing bits set, padding missing, a line break,
  // the URL alphabet, empty.
  add("44", with_delivery(R"({"cipherText":"AAF=","keyId":"d2"})"), false);
  add("45", with_delivery(R"({"cipherText":"AAE","keyId":"d2"})"), false);
  add("46", with_delivery(R"({"cipherText":"AAEC\n+/8=","keyId":"d2"})"), false);
  add("47", with_delivery(R"({"cipherText":"AAEC-_8=","keyId":"d2"})"), false);
  add("48", with_delivery(R"({"cipherText":"","keyId":"d2"})"), false);
  // No delivery (a refused payment's order has none).
  add("49", R"({"orderId":"x","status":"payment_failed"})", false);
  std::vector<domain::order_record> orders;
  for (const auto& [o, cut] : all)
    orders.push_back(o);
  store_orders(db, orders);
  for (const auto& [o, cut] : all) {
    auto row = db.exec("SELECT delivery_ciphertext IS NOT NULL, result = $2,"
                       " order_result(result, delivery_ciphertext, ciphertext_at)"
                       " FROM orders WHERE order_id = $1",
                       {o.order_id, o.result});
    BOOST_TEST(row.value(0, 0) == (cut ? "t" : "f"), o.result);
    BOOST_TEST(row.value(0, 1) == (cut ? "f" : "t"), o.result);
    BOOST_TEST(row.value(0, 2) == o.result);
    auto replay = claim_idempotency_key(db, {o.customer_id, o.idempotency_key, "fp"});
    BOOST_TEST(replay.body == o.result);
  }
}

// Migration 0025: the previous release's call of store_orders, without the
// ciphertexts, stores results whole, and they read back as they were.
BOOST_AUTO_TEST_CASE(the_previous_releases_store_keeps_the_result_whole) {
  auto o = order("51");
  db.exec("SELECT store_orders($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],"
          " $6::bigint[], $7::text[], $8::text[], $9::text[], $10::text[], $11::timestamptz[],"
          " '{}', '{}', '{}', '{}', '{}', '{}', '{}', '{}', NULL, 0)",
          params_of(to_pg_array(std::vector<std::string>{o.order_id}),
                    to_pg_array(std::vector<std::string>{o.customer_id}),
                    to_pg_array(std::vector<std::string>{o.email}),
                    to_pg_array(std::vector<std::string>{"completed"}),
                    to_pg_array(std::vector<std::string>{o.currency}),
                    to_pg_array(std::vector<std::string>{std::to_string(o.total)}),
                    to_pg_array(std::vector<std::string>{o.payment_id}),
                    to_pg_array(std::vector<std::string>{o.finance_entry_id}),
                    text_array(std::vector<std::string>{o.result}),
                    to_pg_array(std::vector<std::optional<std::string>>{std::nullopt}),
                    to_pg_array(std::vector<std::string>{o.created_at})));
  BOOST_TEST(db.exec("SELECT result, delivery_ciphertext IS NULL FROM orders WHERE order_id = $1",
                     {o.order_id})
               .value(0, 1)
             == "t");
  BOOST_TEST(db.exec("SELECT result FROM orders WHERE order_id = $1", {o.order_id}).value(0, 0)
             == o.result);
  BOOST_TEST(load_order_part(db, o.order_id, order_part::delivery) == delivery_of("51"));
}

BOOST_AUTO_TEST_CASE(the_parts_are_read_out_of_the_result) {
  auto o = order("6");
  store_order(db, o);
  BOOST_TEST(load_order_part(db, o.order_id, order_part::proof) == proof_of("6"));
  BOOST_TEST(load_order_part(db, o.order_id, order_part::license) == license_of("6"));
  BOOST_TEST(load_order_part(db, o.order_id, order_part::delivery) == delivery_of("6"));
  BOOST_TEST(load_order_part(db, "order_nope", order_part::proof).empty());
}

// SPEC §12: a delivery stored before deliveries named their master key was
// sealed with the legacy kid, and reads back naming it.
BOOST_AUTO_TEST_CASE(a_delivery_stored_without_its_key_id_reads_as_d1) {
  auto o = order("31");
  auto at = o.result.find(R"("keyId":"d2",)");
  BOOST_REQUIRE(at != std::string::npos);
  o.result.erase(at, std::string{R"("keyId":"d2",)"}.size());
  store_order(db, o);
  BOOST_TEST(load_order_part(db, o.order_id, order_part::delivery)
             == R"({"cipherText":"AAEC+/8=","keyId":"d1","nonce":"bm9uY2U="})");
  BOOST_TEST(load_order_part(db, o.order_id, order_part::result)
               .find(R"("delivery":{"cipherText":"AAEC+/8=","keyId":"d1","nonce":"bm9uY2U="})")
             != std::string::npos);
  // A kid it names is kept.
  auto named = order("32");
  store_order(db, named);
  BOOST_TEST(load_order_part(db, named.order_id, order_part::delivery) == delivery_of("32"));
}

BOOST_AUTO_TEST_CASE(a_201_body_is_stored_once_and_replayed_exactly) {
  BOOST_REQUIRE(claim_idempotency_key(db, {"cust-store", "once", "fp"}).state == claim_state::claimed);
  BOOST_REQUIRE(claim_idempotency_key(db, {"cust-store", "own", "fp"}).state == claim_state::claimed);
  auto created = order("7", "once");
  auto declined = order("8", "own");
  declined.status = domain::order_status::payment_failed;
  declined.failure_body = R"({"error":"payment_declined","orderId":")" + declined.order_id
                          + R"("})";
  store_orders(db, {created, declined});
  // The 201 body is the order's result: not written a second time.
  BOOST_TEST(db.exec("SELECT response_body IS NULL FROM idempotency_keys WHERE idem_key = 'once'")
               .value(0, 0) == "t");
  BOOST_TEST(db.exec("SELECT response_body FROM idempotency_keys WHERE idem_key = 'own'")
               .value(0, 0) == declined.failure_body);
  auto replay = claim_idempotency_key(db, {"cust-store", "once", "fp"});
  BOOST_TEST(replay.state == claim_state::replay);
  BOOST_TEST(replay.replay == domain::checkout_outcome_kind::completed);
  BOOST_TEST(replay.body == created.result);
  replay = claim_idempotency_key(db, {"cust-store", "own", "fp"});
  BOOST_TEST(replay.replay == domain::checkout_outcome_kind::payment_failed);
  BOOST_TEST(replay.body == declined.failure_body);
}

// A generic plan made while a table was small read it whole for every batch
// once it was large (change 8 of docs/performance.md). store_orders and
// settle_delivered keep the plans they make (migration 0020). One session
// stores and settles while the tables are small, and again after they grew:
// the later calls must read no table whole, only the rows they name.
BOOST_AUTO_TEST_CASE(kept_plans_read_only_the_rows_named_as_the_tables_grow) {
  // A key claimed alone (in_flight): its order completes it with an UPDATE.
  auto store_claimed = [&](int n) {
    auto o = order(std::to_string(n), "grow-" + std::to_string(n));
    BOOST_REQUIRE(claim_idempotency_key(db, {o.customer_id, o.idempotency_key, "fp"}).state
                  == claim_state::claimed);
    store_order(db, o);
  };
  // A checkout recorded first (its unfinished row and its recorded key), as
  // the service stores one; then its events are settled as delivered.
  auto store_recorded = [&](int n) {
    auto o = order(std::to_string(n), "rec-" + std::to_string(n));
    BOOST_REQUIRE(begin(o) == claim_state::claimed);
    store_order(db, o);
    settle_outbox(db, {{o.events[0].event_id, true, "kae_" + std::to_string(n), 1, "{}", 0, {}},
                       {o.events[1].event_id, true, "kae_b" + std::to_string(n), 1, "{}", 0, {}}});
  };
  struct reads {
    long long scans;
    long long rows;
  };
  auto reads_of = [&](const std::string& table) {
    db.exec("SELECT pg_stat_force_next_flush()");  // this session's counts, flushed when idle
    db.exec("SELECT pg_stat_clear_snapshot()");
    // Rows read from the table, and entries read from its indexes (an
    // index-only scan reads the index whole without fetching a row).
    auto r = db.exec("SELECT t.seq_scan, t.seq_tup_read + coalesce(t.idx_tup_fetch, 0)"
                     " + (SELECT coalesce(sum(i.idx_tup_read), 0) FROM pg_stat_user_indexes i"
                     "    WHERE i.relid = t.relid)"
                     " FROM pg_stat_user_tables t WHERE t.relname = $1",
                     {table});
    return reads{std::stoll(r.value(0, 0)), std::stoll(r.value(0, 1))};
  };
  const std::vector<std::string> tables{"idempotency_keys", "unfinished_checkouts", "audit_outbox"};
  // Statistics of the small tables, as autovacuum may take them, then more
  // calls than PL/pgSQL's five custom plans before it may keep a generic one.
  db.exec("ANALYZE idempotency_keys, unfinished_checkouts, audit_outbox");
  for (int n = 100; n < 110; ++n) {
    store_claimed(n);
    store_recorded(n + 1000);
  }
  // 50,000 rows more in each table, none of them named by a later call.
  db.exec("INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state)"
          " SELECT 'bulk', 'k' || g, 'fp', 'in_flight' FROM generate_series(1, 50000) g");
  db.exec("INSERT INTO unfinished_checkouts (order_id, customer_id, payment_key, intent)"
          " SELECT 'order_f' || lpad(to_hex(g), 23, '0'), 'bulk', 'ck' || g, '{}'"
          " FROM generate_series(1, 50000) g");
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload)"
          " SELECT 'evt_bulk' || g, 'order.completed', '{}' FROM generate_series(1, 50000) g");
  std::vector<reads> before;
  for (const auto& t : tables)
    before.push_back(reads_of(t));
  for (int n = 200; n < 204; ++n) {
    store_claimed(n);
    store_recorded(n + 1000);
  }
  for (std::size_t i = 0; i < tables.size(); ++i) {
    auto after = reads_of(tables[i]);
    BOOST_TEST_CONTEXT(tables[i]) {
      BOOST_TEST(after.scans == before[i].scans);
      // Eight checkouts read a few rows and index entries each; a table or
      // an index read whole is 50,000.
      BOOST_TEST(after.rows - before[i].rows < 100);
    }
  }
  BOOST_TEST(count("idempotency_keys WHERE state = 'completed'") == "14");
  BOOST_TEST(count("unfinished_checkouts WHERE customer_id <> 'bulk'") == "0");
  BOOST_TEST(count("audit_receipts") == "28");
}

BOOST_AUTO_TEST_CASE(events_stored_under_a_lease_are_not_leased_again_until_it_ends) {
  store_order(db, order("7"), {"instance-a", 60000});
  store_order(db, order("8"));
  auto leased = db.exec("SELECT leased_by, leased_until > now() + interval '50 s', attempts"
                        " FROM audit_outbox WHERE event_id = 'evt_a7'");
  BOOST_TEST(leased.value(0, 0) == "instance-a");
  BOOST_TEST(leased.value(0, 1) == "t");
  BOOST_TEST(leased.value(0, 2) == "1");
  // Only the free rows are due for a lease.
  auto rows = lease_outbox(db, {"instance-b", 10, 2000});
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  for (const auto& r : rows)
    BOOST_TEST((r.event_id == "evt_a8" || r.event_id == "evt_b8"));
  // Once the lease has run out, anyone may take them.
  db.exec("UPDATE audit_outbox SET leased_until = now() - interval '1 s'"
          " WHERE leased_by = 'instance-a'");
  rows = lease_outbox(db, {"instance-b", 10, 2000});
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  BOOST_TEST(rows[0].attempts == 2);
}

BOOST_AUTO_TEST_CASE(only_the_holder_renews_a_lease_and_only_on_undelivered_rows) {
  store_order(db, order("9"), {"instance-a", 1000});
  auto until = [&](const char* id) {
    return db.exec("SELECT leased_until > now() + interval '50 s' FROM audit_outbox WHERE event_id = $1",
                   {id}).value(0, 0);
  };
  // Another instance renews nothing; the holder renews what it names.
  BOOST_TEST(renew_outbox_leases(db, {"instance-b", 0, 60000}, {"evt_a9", "evt_b9"}) == 0);
  BOOST_TEST(until("evt_a9") == "f");
  BOOST_TEST(renew_outbox_leases(db, {"instance-a", 0, 60000}, {"evt_a9"}) == 1);
  BOOST_TEST(until("evt_a9") == "t");
  BOOST_TEST(until("evt_b9") == "f");
  // A delivered row is not leased again.
  settle_outbox(db, {{"evt_b9", true, "kae_9", 1, {}, 0, {}}});
  BOOST_TEST(renew_outbox_leases(db, {"instance-a", 0, 60000}, {"evt_b9"}) == 0);
}

// An event the Kernel refused for what it carries is dead-lettered: never
// leased again, not pending (so no freshness alarm for it), counted apart,
// until an operator requeues it.
BOOST_AUTO_TEST_CASE(a_dead_lettered_event_is_not_leased_again_until_requeued) {
  store_order(db, order("5"));
  auto rows = lease_outbox(db, {"instance-a", 10, 2000});
  BOOST_REQUIRE_EQUAL(rows.size(), 2u);
  auto reason = std::string(1500, 'x');  // longer than the column's bound
  settle_outbox(db, {{"evt_a5", false, {}, 1, {}, 413, reason}, {"evt_b5", false, {}, 1, {}, 0, {}}},
                std::chrono::milliseconds{0});
  auto dead = db.exec("SELECT dead_lettered_at IS NOT NULL, dead_letter_status,"
                      " length(dead_letter_reason), leased_until IS NULL"
                      " FROM audit_outbox WHERE event_id = 'evt_a5'");
  BOOST_TEST(dead.value(0, 0) == "t");
  BOOST_TEST(dead.value(0, 1) == "413");
  BOOST_TEST(dead.value(0, 2) == "1000");
  BOOST_TEST(dead.value(0, 3) == "t");
  // The failed one is due again at once (no backoff here); the dead-lettered
  // one is not, even with its lease gone and its retry time past.
  rows = lease_outbox(db, {"instance-b", 10, 2000});
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].event_id == "evt_b5");
  settle_outbox(db, {{"evt_b5", false, {}, 2, {}, 0, {}}}, std::chrono::milliseconds{0});
  db.exec("UPDATE audit_outbox SET created_at = now() - interval '1 minute'");
  auto stats = outbox_statistics(db);
  BOOST_TEST(stats.pending == 1);
  BOOST_TEST(stats.pending_past_budget == 1);
  BOOST_TEST(stats.dead_lettered == 1);
  // Settling it again as failed (a late outcome from another instance)
  // does not bring it back.
  settle_outbox(db, {{"evt_a5", false, {}, 1, {}, 0, {}}}, std::chrono::milliseconds{0});
  rows = lease_outbox(db, {"instance-b", 10, 2000});
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].event_id == "evt_b5");
  settle_outbox(db, {{"evt_b5", true, "kae_b5", 3, {}, 0, {}}});
  stats = outbox_statistics(db);
  BOOST_TEST(stats.pending == 0);
  BOOST_TEST(stats.oldest_pending_ms == 0);
  BOOST_TEST(stats.dead_lettered == 1);

  // A requeue names what it clears: another event id clears nothing.
  BOOST_TEST(requeue_dead_letters(db, {"evt_b5", "evt_none"}) == 0);
  BOOST_TEST(lease_outbox(db, {"instance-b", 10, 2000}).empty());
  BOOST_TEST(requeue_dead_letters(db, {"evt_a5"}) == 1);
  stats = outbox_statistics(db);
  BOOST_TEST(stats.pending == 1);
  BOOST_TEST(stats.dead_lettered == 0);
  BOOST_TEST(db.exec("SELECT dead_letter_status IS NULL AND dead_letter_reason IS NULL"
                     " FROM audit_outbox WHERE event_id = 'evt_a5'").value(0, 0) == "t");
  rows = lease_outbox(db, {"instance-b", 10, 2000});
  BOOST_REQUIRE_EQUAL(rows.size(), 1u);
  BOOST_TEST(rows[0].event_id == "evt_a5");
  // Without names, every dead-lettered row is requeued.
  settle_outbox(db, {{"evt_a5", false, {}, 2, {}, 422, "again"}});
  BOOST_TEST(outbox_statistics(db).dead_lettered == 1);
  BOOST_TEST(requeue_dead_letters(db, {}) == 1);
  BOOST_TEST(requeue_dead_letters(db, {}) == 0);
}

// The lease keeps to the index of the rows it may take (undelivered, not
// dead-lettered) as the outbox fills with delivered and dead-lettered rows.
BOOST_AUTO_TEST_CASE(the_lease_reads_the_due_index) {
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload, delivered_at)"
          " SELECT 'evt_d' || g, 'order.completed', '{}', now() FROM generate_series(1, 20000) g");
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload, dead_lettered_at)"
          " SELECT 'evt_x' || g, 'order.completed', '{}', now() FROM generate_series(1, 2000) g");
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload)"
          " SELECT 'evt_p' || g, 'order.completed', '{}' FROM generate_series(1, 5) g");
  db.exec("ANALYZE audit_outbox");
  auto scans = [&](const char* what) {
    db.exec("SELECT pg_stat_force_next_flush()");
    db.exec("SELECT pg_stat_clear_snapshot()");
    return std::stoll(db.exec(std::string{"SELECT "} + what).value(0, 0));
  };
  auto seq = "seq_scan FROM pg_stat_user_tables WHERE relname = 'audit_outbox'";
  auto due = "idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'audit_outbox_due_idx'";
  auto seq_before = scans(seq);
  auto due_before = scans(due);
  auto rows = lease_outbox(db, {"instance-a", 10, 2000});
  BOOST_TEST(rows.size() == 5u);
  BOOST_TEST(scans(seq) == seq_before);
  BOOST_TEST(scans(due) > due_before);
}

BOOST_AUTO_TEST_CASE(a_failure_part_way_leaves_nothing) {
  auto o = order("2");
  o.events[1].event_id = o.events[0].event_id;  // the second insert fails
  BOOST_CHECK_THROW(store_order(db, o), db_error);
  BOOST_TEST(count("orders") == "0");
  BOOST_TEST(count("order_items") == "0");
  BOOST_TEST(count("audit_outbox") == "0");
  // The schema refuses a completed order without its ledger entry.
  auto no_entry = order("3");
  no_entry.finance_entry_id.clear();
  BOOST_CHECK_THROW(store_order(db, no_entry), db_error);
  BOOST_TEST(count("orders") == "0");
}

BOOST_AUTO_TEST_CASE(claims_follow_stripe_semantics) {
  idempotency_claim c{"cust-store", "key-1", "fp-1"};
  BOOST_TEST(claim_idempotency_key(db, c).state == claim_state::claimed);
  BOOST_TEST(claim_idempotency_key(db, c).state == claim_state::in_flight);
  BOOST_TEST(claim_idempotency_key(db, {"cust-store", "key-1", "fp-other"}).state == claim_state::mismatch);
  // Another customer's key space is separate.
  BOOST_TEST(claim_idempotency_key(db, {"cust-other", "key-1", "fp-9"}).state == claim_state::claimed);
  store_order(db, order("4", "key-1"));
  auto replay = claim_idempotency_key(db, c);
  BOOST_TEST(replay.state == claim_state::replay);
  BOOST_TEST(replay.replay == domain::checkout_outcome_kind::completed);
  BOOST_TEST(replay.body == order("4").result);
}

BOOST_AUTO_TEST_CASE(released_and_stale_unrecorded_claims_can_be_taken) {
  idempotency_claim c{"cust-store", "key-2", "fp-2"};
  BOOST_TEST(claim_idempotency_key(db, c).state == claim_state::claimed);
  release_idempotency_key(db, c.customer_id, c.key);
  BOOST_TEST(claim_idempotency_key(db, c).state == claim_state::claimed);
  // A claim with no recorded checkout (an earlier release's) whose process
  // died goes stale and is released; then it can be claimed again.
  db.exec("UPDATE idempotency_keys SET updated_at = now() - interval '2 minutes'");
  BOOST_TEST(claim_idempotency_key(db, c).state == claim_state::released);
  BOOST_TEST(claim_idempotency_key(db, c).state == claim_state::claimed);
  BOOST_TEST(claim_idempotency_key(db, c).state == claim_state::in_flight);
}

// SPEC §9: a key whose checkout is recorded stays held until that checkout
// is finished, however old: a retry gets 409, never a second charge.
BOOST_AUTO_TEST_CASE(a_recorded_checkout_keeps_its_key_until_it_is_finished) {
  auto o = order("21", "key-21");
  checkout_begin b{o.order_id, o.customer_id, "key-21", "fp", "ck_21", "{}"};
  BOOST_TEST(begin_checkouts(db, {b}).front().state == claim_state::claimed);
  db.exec("UPDATE idempotency_keys SET updated_at = now() - interval '1 day'");
  db.exec("UPDATE unfinished_checkouts SET created_at = now() - interval '1 day'");
  checkout_begin retry{"order_000000000000000000000099", o.customer_id, "key-21", "fp", "ck_21",
                       "{}"};
  BOOST_TEST(begin_checkouts(db, {retry}).front().state == claim_state::in_flight);
  BOOST_TEST(count("unfinished_checkouts") == "1");
  // Another body under the same key is still a mismatch.
  retry.fingerprint = "other";
  BOOST_TEST(begin_checkouts(db, {retry}).front().state == claim_state::mismatch);
  BOOST_TEST(store_order(db, o).stored_now);
  BOOST_TEST(count("unfinished_checkouts") == "0");
  auto replay = begin_checkouts(db, {b}).front();
  BOOST_TEST(replay.state == claim_state::replay);
  BOOST_TEST(replay.body == o.result);
}

// Migration 0018: a key recorded with its checkout names the order, and the
// order's row completes it; storing the order does not write the key again.
BOOST_AUTO_TEST_CASE(a_recorded_key_is_completed_by_its_order_without_being_rewritten) {
  auto o = order("25", "key-25");
  BOOST_REQUIRE(begin(o) == claim_state::claimed);
  auto version = [&] {
    return db.exec("SELECT xmin::text || ctid::text FROM idempotency_keys"
                   " WHERE idem_key = 'key-25'").value(0, 0);
  };
  auto recorded = version();
  BOOST_TEST(db.exec("SELECT state, order_id FROM idempotency_keys WHERE idem_key = 'key-25'")
               .value(0, 1) == o.order_id);
  // Before its order is stored, a retry finds the checkout in flight.
  BOOST_TEST(claim_idempotency_key(db, {o.customer_id, "key-25", "fp"}).state
             == claim_state::in_flight);
  BOOST_TEST(store_order(db, o).stored_now);
  BOOST_TEST(version() == recorded);
  BOOST_TEST(db.exec("SELECT state FROM idempotency_keys WHERE idem_key = 'key-25'").value(0, 0)
             == "recorded");
  // Then it replays the order, through either path a retry takes.
  auto replay = claim_idempotency_key(db, {o.customer_id, "key-25", "fp"});
  BOOST_TEST(replay.state == claim_state::replay);
  BOOST_TEST(replay.replay == domain::checkout_outcome_kind::completed);
  BOOST_TEST(replay.body == o.result);
  auto again = begin_checkouts(db, {{"order_000000000000000000000098", o.customer_id, "key-25",
                                     "fp", "ck_" + o.order_id, "{}"}})
                 .front();
  BOOST_TEST(again.state == claim_state::replay);
  BOOST_TEST(again.body == o.result);
  BOOST_TEST(claim_idempotency_key(db, {o.customer_id, "key-25", "other"}).state
             == claim_state::mismatch);
  // Old as it may get, a recorded key is never released as stale.
  db.exec("UPDATE idempotency_keys SET updated_at = now() - interval '1 day'");
  BOOST_TEST(claim_idempotency_key(db, {o.customer_id, "key-25", "fp"}).state
             == claim_state::replay);
}

// A failed checkout's key answers the refusal stored with it, and a key
// abandoned before any charge answers its refusal too.
BOOST_AUTO_TEST_CASE(a_recorded_key_keeps_a_body_of_its_own) {
  auto declined = order("26", "key-26");
  declined.status = domain::order_status::payment_failed;
  declined.failure_body = R"({"error":"payment_declined"})";
  auto abandoned = order("27", "key-27");
  BOOST_REQUIRE(begin(declined) == claim_state::claimed);
  BOOST_REQUIRE(begin(abandoned) == claim_state::claimed);
  BOOST_TEST(store_order(db, declined).stored_now);
  BOOST_TEST(abandon_checkout(db, abandoned.order_id, R"({"error":"out_of_stock"})"));
  BOOST_TEST(db.exec("SELECT string_agg(state || ':' || response_body, ',' ORDER BY idem_key)"
                     " FROM idempotency_keys").value(0, 0)
             == R"(completed:{"error":"payment_declined"},completed:{"error":"out_of_stock"})");
  auto replay = claim_idempotency_key(db, {declined.customer_id, "key-26", "fp"});
  BOOST_TEST(replay.replay == domain::checkout_outcome_kind::payment_failed);
  BOOST_TEST(replay.body == declined.failure_body);
  replay = claim_idempotency_key(db, {abandoned.customer_id, "key-27", "fp"});
  BOOST_TEST(replay.state == claim_state::replay);
  BOOST_TEST(replay.replay == domain::checkout_outcome_kind::refused);
  BOOST_TEST(replay.body == R"({"error":"out_of_stock"})");
}

// A recorded key holds only for the order it names: another order stored
// under it fails whole, as an unheld key did.
BOOST_AUTO_TEST_CASE(a_recorded_key_holds_only_for_its_own_order) {
  auto mine = order("28", "key-28");
  BOOST_REQUIRE(begin(mine) == claim_state::claimed);
  auto other = order("29", "key-28");
  try {
    store_orders(db, {order("30"), other});
    BOOST_FAIL("stored an order under a key recorded for another");
  } catch (const db_error& e) {
    BOOST_TEST(e.sqlstate() == "40001");
  }
  BOOST_TEST(count("orders") == "0");
  BOOST_TEST(count("audit_outbox") == "0");
  BOOST_TEST(store_order(db, mine).stored_now);
}

// The previous release runs beside migration 0018: it records checkouts and
// stores orders through the same two functions, and its statements that
// release keys touch only the `in_flight` ones it knows.
BOOST_AUTO_TEST_CASE(the_previous_release_leaves_recorded_keys_alone) {
  auto o = order("31", "key-31");
  BOOST_REQUIRE(begin(o) == claim_state::claimed);
  store_order(db, o);
  db.exec("UPDATE idempotency_keys SET created_at = now() - interval '100 days',"
          " updated_at = now() - interval '100 days'");
  // Its stale-claim release (a key with no unfinished record)...
  BOOST_TEST(db.exec("DELETE FROM idempotency_keys k"
                     " WHERE customer_id = $1 AND idem_key = $2 AND state = 'in_flight'"
                     " AND updated_at < now() - make_interval(secs => 60)"
                     " AND NOT EXISTS (SELECT 1 FROM unfinished_checkouts u"
                     "                  WHERE u.customer_id = k.customer_id"
                     "                    AND u.idem_key = k.idem_key)",
                     {o.customer_id, "key-31"}).affected() == 0);
  // ...and its release of a key it claimed.
  release_idempotency_key(db, o.customer_id, "key-31");
  BOOST_TEST(claim_idempotency_key(db, {o.customer_id, "key-31", "fp"}).state
             == claim_state::replay);
}

BOOST_AUTO_TEST_CASE(a_batch_records_each_checkout_and_each_key_once) {
  std::vector<checkout_begin> batch{
    {"order_000000000000000000000031", "cust-a", "", "fp", "order_000000000000000000000031", "{}"},
    {"order_000000000000000000000032", "cust-a", "k", "fp", "ck_a", "{}"},
    {"order_000000000000000000000033", "cust-a", "k", "fp", "ck_a", "{}"},
    {"order_000000000000000000000034", "cust-b", "k", "fp", "ck_b", "{}"}};
  auto results = begin_checkouts(db, batch);
  BOOST_REQUIRE_EQUAL(results.size(), 4u);
  BOOST_TEST(results[0].state == claim_state::claimed);
  BOOST_TEST(results[1].state == claim_state::claimed);
  // The same key twice in one batch: the second finds the first in flight.
  BOOST_TEST(results[2].state == claim_state::in_flight);
  BOOST_TEST(results[3].state == claim_state::claimed);
  BOOST_TEST(count("unfinished_checkouts") == "3");
}

// The second defect of the issue: a retry after a lost connection whose
// commit did land met the order's own duplicate key, was answered as an
// error and undone. Storing again now finds it stored and changes nothing.
BOOST_AUTO_TEST_CASE(storing_an_order_again_is_idempotent) {
  auto o = order("22", "key-22");
  BOOST_REQUIRE(begin(o) == claim_state::claimed);
  auto first = store_order(db, o);
  BOOST_TEST(first.stored_now);
  // The store answers the events it wrote, with their commit time.
  BOOST_REQUIRE_EQUAL(first.events.size(), 2u);
  BOOST_TEST(first.events[0].event_id == "evt_a22");
  BOOST_TEST(first.events[0].committed_at_ms > 0);
  auto again = store_order(db, o);
  BOOST_TEST(!again.stored_now);
  BOOST_TEST(again.events.empty());
  auto other = order("23");
  auto both = store_orders(db, {o, other});
  BOOST_REQUIRE_EQUAL(both.size(), 2u);
  BOOST_TEST(!both[0].stored_now);
  BOOST_TEST(both[1].stored_now);
  BOOST_TEST(count("orders") == "2");
  BOOST_TEST(count("order_items") == "2");
  BOOST_TEST(count("audit_outbox") == "4");
  // Recorded with its order, the key was not rewritten by either store.
  BOOST_TEST(db.exec("SELECT state, order_id FROM idempotency_keys WHERE idem_key = 'key-22'")
               .value(0, 1) == o.order_id);
  BOOST_TEST(db.exec("SELECT state FROM idempotency_keys WHERE idem_key = 'key-22'").value(0, 0)
             == "recorded");
}

BOOST_AUTO_TEST_CASE(an_undo_decision_and_a_completed_store_exclude_each_other) {
  auto o = order("24");
  begin_checkouts(db, {{o.order_id, o.customer_id, "", "fp", o.order_id, "{}"}});
  BOOST_TEST(decide_undo(db, o.order_id, "the ledger refused") == undo_decision::undo);
  // Decided: it can no longer complete...
  BOOST_CHECK_THROW(store_order(db, o), db_error);
  BOOST_TEST(count("orders") == "0");
  // ...only end as settlement_failed, which keeps the first reason.
  BOOST_TEST(decide_undo(db, o.order_id, "another reason") == undo_decision::undo);
  BOOST_TEST(db.exec("SELECT undo_reason FROM unfinished_checkouts").value(0, 0)
             == "the ledger refused");
  auto failed = o;
  failed.status = domain::order_status::settlement_failed;
  failed.finance_entry_id.clear();
  BOOST_TEST(store_order(db, failed).stored_now);
  BOOST_TEST(count("unfinished_checkouts") == "0");
  // A stored order is never undone.
  auto done = order("25");
  begin_checkouts(db, {{done.order_id, done.customer_id, "", "fp", done.order_id, "{}"}});
  store_order(db, done);
  BOOST_TEST(decide_undo(db, done.order_id, "late") == undo_decision::stored);
  BOOST_TEST(decide_undo(db, "order_000000000000000000000999", "never") == undo_decision::gone);
}

BOOST_AUTO_TEST_CASE(unfinished_checkouts_are_leased_once_they_are_overdue) {
  for (const char* n : {"41", "42"}) {
    auto o = order(n);
    begin_checkouts(db, {{o.order_id, o.customer_id, "", "fp", o.order_id, "{\"x\":1}"}});
  }
  BOOST_TEST(lease_unfinished(db, {"a", 10, 60000}, 60000).empty());
  db.exec("UPDATE unfinished_checkouts SET created_at = now() - interval '2 minutes'");
  auto leased = lease_unfinished(db, {"a", 1, 60000}, 60000);
  BOOST_REQUIRE_EQUAL(leased.size(), 1u);
  BOOST_TEST(leased[0].order_id == order("41").order_id);
  BOOST_TEST(leased[0].intent == "{\"x\":1}");
  BOOST_TEST(leased[0].attempts == 1);
  BOOST_TEST(leased[0].age_ms >= 120000);
  // Held by "a": another instance gets only the other one.
  auto other = lease_unfinished(db, {"b", 10, 60000}, 60000);
  BOOST_REQUIRE_EQUAL(other.size(), 1u);
  BOOST_TEST(other[0].order_id == order("42").order_id);
  auto st = unfinished_statistics(db);
  BOOST_TEST(st.count == 2);
  BOOST_TEST(st.oldest_ms >= 120000);
  BOOST_TEST(is_unfinished(db, order("41").order_id));
  // Abandoned: gone, and no longer unfinished.
  BOOST_TEST(abandon_checkout(db, order("41").order_id, "{}"));
  BOOST_TEST(!abandon_checkout(db, order("41").order_id, "{}"));
  BOOST_TEST(!is_unfinished(db, order("41").order_id));
}

BOOST_AUTO_TEST_CASE(storing_without_holding_the_key_fails_whole) {
  // The key was never claimed (or someone else completed it): no order.
  try {
    store_order(db, order("5", "never-claimed"));
    BOOST_FAIL("stored an order without its key");
  } catch (const db_error& e) {
    BOOST_TEST(e.sqlstate() == "40001");
    BOOST_TEST(std::string{e.what()} == "an idempotency key is no longer held by its checkout");
  }
  BOOST_TEST(count("orders") == "0");
  BOOST_TEST(count("audit_outbox") == "0");
}

BOOST_AUTO_TEST_CASE(a_batch_stores_every_order_whole) {
  std::vector<domain::order_record> batch;
  for (int i = 10; i < 15; ++i) {
    auto key = "batch-" + std::to_string(i);
    BOOST_REQUIRE(claim_idempotency_key(db, {"cust-store", key, "fp"}).state == claim_state::claimed);
    batch.push_back(order(std::to_string(i), key));
  }
  // A declined order has no ledger entry and no documents: NULLs in the arrays.
  batch[2].status = domain::order_status::payment_failed;
  batch[2].finance_entry_id.clear();
  batch[2].result = R"({"orderId":")" + batch[2].order_id + R"(","status":"payment_failed"})";
  batch[3].result = R"({"quote":"\"","braces":"{a,b}","null":"NULL"})";
  store_orders(db, batch);
  BOOST_TEST(count("orders") == "5");
  BOOST_TEST(count("order_items") == "5");
  BOOST_TEST(count("audit_outbox") == "10");
  BOOST_TEST(db.exec("SELECT count(*) FROM idempotency_keys WHERE state = 'completed'"
                     " AND order_id IS NOT NULL").value(0, 0) == "5");
  BOOST_TEST(load_order_part(db, batch[3].order_id, order_part::result)
             == domain::result_with_receipts(batch[3].result, domain::order_status::completed, {}));
  BOOST_TEST(load_order_part(db, batch[2].order_id, order_part::proof).empty());
  BOOST_TEST(db.exec("SELECT finance_entry_id IS NULL FROM orders WHERE order_id = $1",
                     {batch[2].order_id}).value(0, 0) == "t");
  // Replays of the batch's keys answer the stored responses.
  auto replay = claim_idempotency_key(db, {"cust-store", "batch-13", "fp"});
  BOOST_TEST(replay.state == claim_state::replay);
  BOOST_TEST(replay.body == batch[3].result);
}

BOOST_AUTO_TEST_CASE(a_batch_with_one_unheld_key_writes_nothing) {
  BOOST_REQUIRE(claim_idempotency_key(db, {"cust-store", "held", "fp"}).state == claim_state::claimed);
  std::vector<domain::order_record> batch{order("20", "held"), order("21", "never-claimed")};
  BOOST_CHECK_THROW(store_orders(db, batch), db_error);
  BOOST_TEST(count("orders") == "0");
  BOOST_TEST(count("audit_outbox") == "0");
  BOOST_TEST(db.exec("SELECT state FROM idempotency_keys WHERE idem_key = 'held'").value(0, 0)
             == "in_flight");
}

BOOST_AUTO_TEST_CASE(batched_claims_answer_each_claim_in_order) {
  BOOST_REQUIRE(claim_idempotency_key(db, {"cust-store", "old", "fp-old"}).state == claim_state::claimed);
  std::vector<idempotency_claim> claims{{"cust-store", "new-1", "fp"},
                                        {"cust-store", "old", "fp-old"},
                                        {"cust-store", "old", "fp-changed"},
                                        {"cust-store", "new-2", "fp"},
                                        {"cust-store", "new-1", "fp"}};
  auto results = claim_idempotency_keys(db, claims);
  BOOST_REQUIRE(results.size() == claims.size());
  BOOST_TEST(results[0].state == claim_state::claimed);
  BOOST_TEST(results[1].state == claim_state::in_flight);
  BOOST_TEST(results[2].state == claim_state::mismatch);
  BOOST_TEST(results[3].state == claim_state::claimed);
  // The same key twice in one batch: only the first holds it.
  BOOST_TEST(results[4].state == claim_state::in_flight);
  BOOST_TEST(count("idempotency_keys") == "3");
}

BOOST_AUTO_TEST_CASE(settled_receipts_are_kept_with_their_order_and_outlive_the_outbox) {
  auto o = order("7");
  store_order(db, o);
  // An event of no order, as the multisig actor writes them.
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload)"
          " VALUES ('evt_up', 'upgrade.proposed', '{}')");
  auto receipt = [](const domain::audit_event& e, const std::string& hash) {
    return domain::to_json({e.event_type, {"kae_" + e.event_id, e.event_id, hash, "", "c2ln", "k1", "t"}});
  };
  const auto& completed = o.events[0];
  const auto& generated = o.events[1];
  auto first = receipt(completed, std::string(64, 'a'));
  auto queued = db.exec("SELECT created_at FROM audit_outbox WHERE event_id = $1", {completed.event_id})
                  .value(0, 0);
  settle_outbox(db, {{completed.event_id, true, "kae_1", 1, first, 0, {}},
                     {generated.event_id, false, {}, 1, {}, 0, {}},
                     {"evt_up", true, "kae_up", 1,
                      receipt({"evt_up", "upgrade.proposed", "{}"}, std::string(64, 'c')), 0, {}}});
  BOOST_TEST(count("audit_receipts") == "2");
  auto row = db.exec("SELECT order_id, event_type, receipt FROM audit_receipts WHERE event_id = $1",
                     {completed.event_id});
  BOOST_TEST(row.value(0, 0) == o.order_id);
  BOOST_TEST(row.value(0, 1) == "order.completed");
  BOOST_TEST(row.value(0, 2) == first);
  BOOST_TEST(db.exec("SELECT order_id IS NULL, event_type FROM audit_receipts WHERE event_id = 'evt_up'")
               .value(0, 1) == "upgrade.proposed");
  // A delivered event leaves the outbox in the statement that keeps its
  // receipt, which notes when it was queued; the one not delivered stays.
  BOOST_TEST(count("audit_outbox") == "1");
  BOOST_TEST(db.exec("SELECT event_id FROM audit_outbox").value(0, 0) == generated.event_id);
  BOOST_TEST(db.exec("SELECT queued_at FROM audit_receipts WHERE event_id = $1", {completed.event_id})
               .value(0, 0) == queued);

  auto shown = [&] {
    rapidjson::Document doc;
    BOOST_REQUIRE(!json::parse_strict(load_order_part(db, o.order_id, order_part::result), doc));
    return json::canonical(doc["audit"]);
  };
  BOOST_TEST(shown() == R"({"receipts":[)" + first + R"(],"status":"pending"})");

  // A repeat (a lease that ran out, the event sent again) changes nothing:
  // the first receipt stays.
  settle_outbox(db, {{completed.event_id, true, "kae_1", 2, receipt(completed, std::string(64, 'b')), 0, {}}});
  BOOST_TEST(count("audit_receipts") == "2");
  BOOST_TEST(shown() == R"({"receipts":[)" + first + R"(],"status":"pending"})");
  // An event queued again after its receipt was kept (an operator's
  // re-queue, a restored backup of the outbox) is settled too: it leaves
  // the outbox, the settle does not fail on the receipt already there, and
  // the first receipt stays.
  db.exec("INSERT INTO audit_outbox (event_id, event_type, order_id, payload)"
          " VALUES ($1, 'order.completed', $2, '{}')",
          {completed.event_id, o.order_id});
  settle_outbox(db, {{completed.event_id, true, "kae_1", 3, receipt(completed, std::string(64, 'e')), 0, {}}});
  BOOST_TEST(count("audit_outbox") == "1");
  BOOST_TEST(count("audit_receipts") == "2");
  BOOST_TEST(shown() == R"({"receipts":[)" + first + R"(],"status":"pending"})");

  auto second = receipt(generated, std::string(64, 'd'));
  settle_outbox(db, {{generated.event_id, true, "kae_2", 2, second, 0, {}}});
  BOOST_TEST(shown() == R"({"receipts":[)" + first + "," + second + R"(],"status":"delivered"})");

  // The outbox is a queue, empty once all is delivered; the receipts stay.
  BOOST_TEST(count("audit_outbox") == "0");
  BOOST_TEST(shown() == R"({"receipts":[)" + first + "," + second + R"(],"status":"delivered"})");
}

// Migration 0026: a receipt the service can keep in columns is kept so, in
// about half the row, and read back through receipt_document() byte for
// byte; the previous release's call keeps it whole.
BOOST_AUTO_TEST_CASE(receipts_are_kept_in_columns_in_half_the_row_and_read_back_exactly) {
  auto o = order("8");
  store_order(db, o);
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload)"
          " VALUES ('evt_whole', 'upgrade.proposed', '{}')");
  const std::string seed(32, '\x07');
  std::string prev;
  auto receipt = [&](const domain::audit_event& e) {
    auto hash = crypto::sha256_hex(e.payload + prev);
    auto signature = crypto::base64_encode(crypto::ed25519_sign(seed, *crypto::hex_decode(hash)));
    domain::audit_receipt r{e.event_type, {"kae_" + hash.substr(0, 24), e.event_id, hash, prev,
                                           signature, "kernel-mock", "2026-12-08T00:52:50.940Z"}};
    prev = hash;
    return r;
  };
  auto in_columns = [](const domain::audit_receipt& r) {
    domain::forwarding_outcome out{r.ack.event_id, true, r.ack.kernel_id, 1, {}, 0, {}};
    auto columns = domain::receipt_in_columns(r);
    BOOST_REQUIRE(columns);
    out.in_columns = true;
    out.columns = *columns;
    return out;
  };
  // The first with no previous hash, as the first event of the Kernel's log.
  auto completed = receipt(o.events[0]);
  auto generated = receipt(o.events[1]);
  auto whole = receipt({"evt_whole", "upgrade.proposed", "{}"});
  BOOST_TEST(completed.ack.prev_hash.empty());
  settle_outbox(db, {in_columns(completed), in_columns(generated),
                     {"evt_whole", true, whole.ack.kernel_id, 1, domain::to_json(whole), 0, {}}});
  BOOST_TEST(count("audit_outbox") == "0");

  auto kept = [&](const std::string& event_id) {
    auto row = db.exec("SELECT receipt IS NULL, receipt_document(r), pg_column_size(r.*)"
                       " FROM audit_receipts r WHERE event_id = $1",
                       {event_id});
    BOOST_REQUIRE(row.rows() == 1);
    return std::make_tuple(row.value(0, 0) == "t", row.value(0, 1), std::stoi(row.value(0, 2)));
  };
  auto [whole_as_text, whole_document, whole_size] = kept("evt_whole");
  BOOST_TEST(!whole_as_text);
  BOOST_TEST(whole_document == domain::to_json(whole));
  for (const auto* r : {&completed, &generated}) {
    BOOST_TEST_CONTEXT(r->ack.event_id) {
      auto [in_columns_only, document, size] = kept(r->ack.event_id);
      BOOST_TEST(in_columns_only);
      BOOST_TEST(document == domain::to_json(*r));
      // As text a receipt took about 500 bytes of its row (about 560 with
      // the service's longer ids); in columns about 270, 310 with a
      // previous hash.
      BOOST_TEST(size + 180 <= whole_size);
      BOOST_TEST(size <= 320);
    }
  }
  // The order shows them as the service made them, and checks as such.
  rapidjson::Document doc;
  BOOST_REQUIRE(!json::parse_strict(load_order_part(db, o.order_id, order_part::result), doc));
  BOOST_TEST(json::canonical(doc["audit"])
             == R"({"receipts":[)" + domain::to_json(completed) + "," + domain::to_json(generated)
                  + R"(],"status":"delivered"})");

  // Many signatures and hashes, each read back as the service writes them:
  // PostgreSQL's hex and base64 against the service's.
  std::vector<domain::forwarding_outcome> many;
  std::vector<std::string> expected;
  for (int i = 0; i < 64; ++i) {
    domain::audit_event e{"evt_many_" + std::to_string(i), "upgrade.proposed",
                          "{\"i\":" + std::to_string(i) + "}"};
    db.exec("INSERT INTO audit_outbox (event_id, event_type, payload) VALUES ($1, $2, $3)",
            {e.event_id, e.event_type, e.payload});
    auto r = receipt(e);
    many.push_back(in_columns(r));
    expected.push_back(domain::to_json(r));
  }
  settle_outbox(db, many);
  auto read = db.exec("SELECT receipt_document(r) FROM audit_receipts r"
                      " WHERE event_id LIKE 'evt_many_%' ORDER BY received_at, event_id");
  BOOST_REQUIRE(read.rows() == 64);
  std::vector<std::string> documents;
  for (int i = 0; i < read.rows(); ++i)
    documents.push_back(read.value(i, 0));
  std::sort(documents.begin(), documents.end());
  std::sort(expected.begin(), expected.end());
  BOOST_TEST(documents == expected, boost::test_tools::per_element());

  // The previous release's call keeps every receipt whole.
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload)"
          " VALUES ('evt_previous', 'upgrade.proposed', '{}')");
  auto previous = domain::to_json(receipt({"evt_previous", "upgrade.proposed", "{}"}));
  db.exec("SELECT settle_delivered(ARRAY['evt_previous'], ARRAY[$1])", {previous});
  auto kept_whole = db.exec("SELECT receipt, receipt_document(r), hash IS NULL"
                            " FROM audit_receipts r WHERE event_id = 'evt_previous'");
  BOOST_REQUIRE(kept_whole.rows() == 1);
  BOOST_TEST(kept_whole.value(0, 0) == previous);
  BOOST_TEST(kept_whole.value(0, 1) == previous);
  BOOST_TEST(kept_whole.value(0, 2) == "t");
}

BOOST_AUTO_TEST_CASE(catalog_loads_sorted) {
  auto items = load_catalog(db);
  BOOST_REQUIRE(items.size() == 4u);
  BOOST_TEST(items[0].sku == "artifact-compliance");
  BOOST_TEST(items[3].unit_amount == 2500);
}

// Migration 0021: a batch of records and a batch of stores in one
// statement, so in one transaction. The stores go first: a record whose key
// a store of the same call completes finds it taken, and is answered from
// the stored order.
BOOST_AUTO_TEST_CASE(records_and_stores_are_written_by_one_statement) {
  auto a = order("40", "key-40");
  BOOST_REQUIRE(begin(a) == claim_state::claimed);
  auto b = order("41", "key-41");
  std::vector<checkout_begin> begins{
    {b.order_id, b.customer_id, "key-41", "fp", "ck_41", "{}"},
    // A second checkout with a's key, sent while a is being stored.
    {order("42").order_id, a.customer_id, "key-40", "fp", "ck_42", "{}"},
    {order("43").order_id, "cust-other", "", "fp", "ck_43", "{}"}};
  auto out = begin_and_store(db, begins, {a}, {"instance-1", 2000});
  BOOST_REQUIRE_EQUAL(out.stored.size(), 1u);
  BOOST_TEST(out.stored[0].stored_now);
  BOOST_REQUIRE_EQUAL(out.stored[0].events.size(), 2u);
  BOOST_TEST(out.stored[0].events[0].attempts == 1);
  BOOST_TEST(out.begun.size() == 2u);
  // One transaction wrote the order and the new records.
  auto xmin = [&](const std::string& table, const std::string& id) {
    return db.exec("SELECT xmin::text FROM " + table + " WHERE order_id = $1", {id}).value(0, 0);
  };
  BOOST_TEST(xmin("orders", a.order_id) == xmin("unfinished_checkouts", b.order_id));
  BOOST_TEST(xmin("orders", a.order_id) == xmin("unfinished_checkouts", order("43").order_id));
  BOOST_TEST(db.exec("SELECT leased_by FROM audit_outbox WHERE order_id = $1 LIMIT 1",
                     {a.order_id}).value(0, 0) == "instance-1");
  auto claims = finish_begins(db, begins, out.begun);
  BOOST_REQUIRE_EQUAL(claims.size(), 3u);
  BOOST_TEST(claims[0].state == claim_state::claimed);
  BOOST_TEST(claims[1].state == claim_state::replay);
  BOOST_TEST(claims[2].state == claim_state::claimed);
  // a's record is finished by its order; b's and the keyless one wait.
  BOOST_TEST(count("unfinished_checkouts") == "2");
  BOOST_TEST(count("orders") == "1");
  // The same call again (the keyed records): the order is stored already,
  // and the keys are held by their own checkouts.
  auto again = begin_and_store(db, {begins[0], begins[1]}, {a});
  BOOST_TEST(!again.stored[0].stored_now);
  BOOST_TEST(again.begun.empty());
  BOOST_TEST(count("orders") == "1");
}

BOOST_AUTO_TEST_CASE(records_and_stores_written_together_fail_together) {
  auto a = order("44", "key-44");
  BOOST_REQUIRE(begin(a) == claim_state::claimed);
  auto stray = order("45", "never-claimed");
  auto b = order("46", "key-46");
  std::vector<checkout_begin> begins{{b.order_id, b.customer_id, "key-46", "fp", "ck_46", "{}"}};
  // stray's key is held by no checkout, so its store, and the whole
  // statement, is refused: nothing of it is written.
  BOOST_CHECK_THROW(begin_and_store(db, begins, {a, stray}), db_error);
  BOOST_TEST(count("orders") == "0");
  BOOST_TEST(count("unfinished_checkouts") == "1");
  BOOST_TEST(db.exec("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'key-46'")
               .value(0, 0) == "0");
  // Each kind alone is written as its own call.
  auto alone = begin_and_store(db, begins, {});
  BOOST_TEST(alone.begun.size() == 1u);
  BOOST_TEST(alone.stored.empty());
  auto stored = begin_and_store(db, {}, {a});
  BOOST_TEST(stored.begun.empty());
  BOOST_TEST(stored.stored.at(0).stored_now);
}

BOOST_AUTO_TEST_SUITE_END()
