#include <boost/test/unit_test.hpp>

#include "domain/order.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/order_store.hpp"
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
    o.status = "completed";
    o.currency = "usd";
    o.total = 1200;
    o.payment_id = "pay_" + n;
    o.finance_entry_id = "fin_" + n;
    o.items = {{"creator-basic", 1, 1200, 1200}};
    o.created_at = "2026-01-01T00:00:00Z";
    o.result = "{\"orderId\":\"" + o.order_id + "\"}";
    o.proof = "{}";
    o.license = "{}";
    o.delivery = "{}";
    o.events = {{"evt_a" + n, "order.completed", "{}"}, {"evt_b" + n, "delivery.generated", "{}"}};
    o.http_status = 201;
    o.response_body = o.result;
    o.idempotency_key = key;
    return o;
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(order_store, store_fixture)

BOOST_AUTO_TEST_CASE(an_order_is_stored_whole) {
  store_order(db, order("1"));
  BOOST_TEST(count("orders") == "1");
  BOOST_TEST(count("order_items") == "1");
  BOOST_TEST(count("audit_outbox") == "2");
  BOOST_TEST(load_order_part(db, order("1").order_id, order_part::result)
             == order("1").result);
  BOOST_TEST(load_order_part(db, "order_nope", order_part::result).empty());
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
  BOOST_TEST(claim_idempotency_key(db, c).state == "claimed");
  BOOST_TEST(claim_idempotency_key(db, c).state == "in_flight");
  BOOST_TEST(claim_idempotency_key(db, {"cust-store", "key-1", "fp-other"}).state == "mismatch");
  // Another customer's key space is separate.
  BOOST_TEST(claim_idempotency_key(db, {"cust-other", "key-1", "fp-9"}).state == "claimed");
  store_order(db, order("4", "key-1"));
  auto replay = claim_idempotency_key(db, c);
  BOOST_TEST(replay.state == "replay");
  BOOST_TEST(replay.status == 201);
  BOOST_TEST(replay.body == order("4").response_body);
}

BOOST_AUTO_TEST_CASE(released_and_stale_claims_can_be_taken) {
  idempotency_claim c{"cust-store", "key-2", "fp-2"};
  BOOST_TEST(claim_idempotency_key(db, c).state == "claimed");
  release_idempotency_key(db, c.customer_id, c.key);
  BOOST_TEST(claim_idempotency_key(db, c).state == "claimed");
  // A claim whose process died goes stale and is taken over.
  db.exec("UPDATE idempotency_keys SET updated_at = now() - interval '2 minutes'");
  BOOST_TEST(claim_idempotency_key(db, c).state == "claimed");
  BOOST_TEST(claim_idempotency_key(db, c).state == "in_flight");
}

BOOST_AUTO_TEST_CASE(storing_without_holding_the_key_fails_whole) {
  // The key was never claimed (or someone else completed it): no order.
  BOOST_CHECK_THROW(store_order(db, order("5", "never-claimed")), db_error);
  BOOST_TEST(count("orders") == "0");
  BOOST_TEST(count("audit_outbox") == "0");
}

BOOST_AUTO_TEST_CASE(catalog_loads_sorted) {
  auto items = load_catalog(db);
  BOOST_REQUIRE(items.size() == 4u);
  BOOST_TEST(items[0].sku == "artifact-compliance");
  BOOST_TEST(items[3].unit_amount == 2500);
}

BOOST_AUTO_TEST_SUITE_END()
