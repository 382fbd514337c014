#include <boost/test/unit_test.hpp>

#include <atomic>
#include <thread>

#include "core/json.hpp"
#include "domain/order.hpp"
#include "domain/receipt.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/order_store.hpp"
#include "persistence/outbox_store.hpp"
#include "persistence/retention_store.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/print.hpp"

using namespace ap;
using namespace ap::persistence;

namespace {

constexpr std::int64_t hours = 3600;
constexpr std::int64_t key_retention = 72 * hours;
constexpr std::int64_t outbox_retention = 168 * hours;

struct retention_fixture {
  std::string url = test::fresh_database("ap_retention");
  connection db{url};
  retention_fixture() { migrate(db); }

  std::string count(const std::string& table, const std::string& where = "true") {
    return db.exec("SELECT count(*) FROM " + table + " WHERE " + where).value(0, 0);
  }

  // A key created and last updated `age_h` hours ago.
  void key(const std::string& name, const std::string& state, int age_h) {
    db.exec("INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state,"
            " response_body, created_at, updated_at)"
            " VALUES ('cust-ret', $1, 'fp', $2, CASE WHEN $2 = 'completed' THEN '{}' END,"
            "         now() - make_interval(hours => $3::integer),"
            "         now() - make_interval(hours => $3::integer))",
            {name, state, std::to_string(age_h)});
  }

  bool has_key(const std::string& name) {
    return count("idempotency_keys", "idem_key = '" + name + "'") == "1";
  }

  // An outbox row created 1000 hours ago; delivered and/or dead-lettered
  // `delivered_h` / `dead_h` hours ago (negative: not).
  void event(const std::string& id, int delivered_h, int dead_h = -1) {
    db.exec("INSERT INTO audit_outbox (event_id, event_type, payload, created_at, delivered_at,"
            " dead_lettered_at)"
            " VALUES ($1, 'order.completed', '{}', now() - interval '1000 hours',"
            "         CASE WHEN $2::integer >= 0 THEN now() - make_interval(hours => $2::integer) END,"
            "         CASE WHEN $3::integer >= 0 THEN now() - make_interval(hours => $3::integer) END)",
            {id, std::to_string(delivered_h), std::to_string(dead_h)});
  }

  bool has_event(const std::string& id) {
    return count("audit_outbox", "event_id = '" + id + "'") == "1";
  }

  // Purges batches until one comes back short; answers the rows purged.
  std::int64_t purge_all(retention_table table, std::int64_t older_than_s, std::int32_t limit = 1000) {
    std::int64_t total = 0;
    for (;;) {
      auto out = purge_batch(db, {table, older_than_s, limit});
      BOOST_REQUIRE(!out.locked_out);
      total += out.purged;
      if (out.purged < limit)
        return total;
    }
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(retention, retention_fixture)

BOOST_AUTO_TEST_CASE(completed_keys_past_retention_go_and_every_other_key_stays) {
  key("old", "completed", 100);
  key("young", "completed", 10);
  key("old-in-flight", "in_flight", 100);
  key("old-unfinished", "completed", 100);
  // Created long ago, completed recently (a checkout in doubt for days).
  key("late", "completed", 100);
  db.exec("UPDATE idempotency_keys SET updated_at = now() - interval '10 hours'"
          " WHERE idem_key = 'late'");
  db.exec("INSERT INTO unfinished_checkouts (order_id, customer_id, idem_key, payment_key, intent)"
          " VALUES ('order_" + std::string(24, '1') + "', 'cust-ret', 'old-unfinished', 'pk', '{}')");

  BOOST_TEST(purge_all(retention_table::idempotency_keys, key_retention) == 1);
  BOOST_TEST(!has_key("old"));
  BOOST_TEST(has_key("young"));
  BOOST_TEST(has_key("old-in-flight"));
  BOOST_TEST(has_key("old-unfinished"));
  BOOST_TEST(has_key("late"));
  // The outbox is another table, purged on its own.
  BOOST_TEST(count("unfinished_checkouts") == "1");
  // Oldest of the completed keys kept: 100 hours (the two that must stay).
  auto oldest = oldest_kept_seconds(db, retention_table::idempotency_keys);
  BOOST_TEST(oldest >= 100 * hours - 5);
  BOOST_TEST(oldest <= 100 * hours + 60);
}

// Migration 0018: a key recorded with its checkout is completed by its
// order's row, so it goes once that order is stored and it is past retention.
BOOST_AUTO_TEST_CASE(recorded_keys_go_once_their_order_is_stored) {
  auto recorded = [&](const std::string& name, char digit, int age_h) {
    key(name, "in_flight", age_h);
    db.exec("UPDATE idempotency_keys SET state = 'recorded', order_id = $2 WHERE idem_key = $1",
            {name, "order_" + std::string(24, digit)});
  };
  recorded("stored-old", '2', 100);
  recorded("stored-young", '3', 10);
  recorded("unstored-old", '4', 100);
  for (char digit : {'2', '3'})
    db.exec("INSERT INTO orders (order_id, customer_id, email, status, currency, total,"
            " payment_id, finance_entry_id, result, created_at)"
            " VALUES ($1, 'cust-ret', 'a@example.com', 'completed', 'usd', 1200, $2, $3, '{}',"
            "         now())",
            {"order_" + std::string(24, digit), std::string("pay_") + digit,
             std::string("fin_") + digit});

  BOOST_TEST(purge_all(retention_table::idempotency_keys, key_retention) == 1);
  BOOST_TEST(!has_key("stored-old"));
  BOOST_TEST(has_key("stored-young"));
  BOOST_TEST(has_key("unstored-old"));
  auto oldest = oldest_kept_seconds(db, retention_table::idempotency_keys);
  BOOST_TEST(oldest >= 100 * hours - 5);
  BOOST_TEST(oldest <= 100 * hours + 60);
}

BOOST_AUTO_TEST_CASE(delivered_rows_past_retention_go_and_pending_or_dead_lettered_ones_stay) {
  event("evt_old", 200);
  event("evt_young", 10);
  event("evt_pending", -1);
  event("evt_dead", -1, 200);
  event("evt_delivered_and_dead", 200, 200);

  BOOST_TEST(oldest_kept_seconds(db, retention_table::audit_outbox) >= 200 * hours - 5);
  BOOST_TEST(purge_all(retention_table::audit_outbox, outbox_retention) == 1);
  BOOST_TEST(!has_event("evt_old"));
  BOOST_TEST(has_event("evt_young"));
  BOOST_TEST(has_event("evt_pending"));
  BOOST_TEST(has_event("evt_dead"));
  BOOST_TEST(has_event("evt_delivered_and_dead"));
  // Idempotency keys are not touched by an outbox purge, nor the reverse.
  key("old", "completed", 100);
  BOOST_TEST(purge_all(retention_table::audit_outbox, outbox_retention) == 0);
  BOOST_TEST(has_key("old"));
  auto oldest = oldest_kept_seconds(db, retention_table::audit_outbox);
  BOOST_TEST(oldest >= 200 * hours - 5); // the delivered and dead-lettered one
  db.exec("DELETE FROM audit_outbox WHERE event_id = 'evt_delivered_and_dead'");
  BOOST_TEST(oldest_kept_seconds(db, retention_table::audit_outbox) <= 10 * hours + 60);
  db.exec("DELETE FROM audit_outbox WHERE delivered_at IS NOT NULL");
  BOOST_TEST(oldest_kept_seconds(db, retention_table::audit_outbox) == 0);
}

BOOST_AUTO_TEST_CASE(orders_their_items_and_receipts_outlive_their_key_and_outbox_rows) {
  domain::order_record o;
  o.order_id = "order_" + std::string(24, '7');
  o.customer_id = "cust-ret";
  o.email = "a@example.com";
  o.status = domain::order_status::completed;
  o.currency = "usd";
  o.total = 1200;
  o.payment_id = "pay_7";
  o.finance_entry_id = "fin_7";
  o.items = {{"creator-basic", 1, 1200, 1200}};
  o.created_at = "2026-01-01T00:00:00Z";
  o.result = R"({"delivery":{"cipherText":"AA=="},"license":{"licenseId":"lic_7"},"orderId":")"
             + o.order_id + R"(","proof":{"kid":"v1"}})";
  o.events = {{"evt_a7", "order.completed", "{}"}, {"evt_b7", "delivery.generated", "{}"}};
  o.idempotency_key = "key-7";
  BOOST_REQUIRE(begin_checkouts(db, {{o.order_id, "cust-ret", "key-7", "fp", "pk_7", "{}"}})
                  .at(0).state == claim_state::claimed);
  store_order(db, o, {});
  auto receipt = [](const domain::audit_event& e) {
    return domain::to_json(
      {e.event_type, {"kae_" + e.event_id, e.event_id, std::string(64, 'a'), "", "c2ln", "k1", "t"}});
  };
  settle_outbox(db, {{"evt_a7", true, "kae_a", 1, receipt(o.events[0]), 0, {}},
                     {"evt_b7", true, "kae_b", 1, receipt(o.events[1]), 0, {}}});
  auto shown = load_order_part(db, o.order_id, order_part::result);
  BOOST_TEST(shown.find(R"("status":"delivered")") != std::string::npos);
  // Delivered events leave the outbox as they are settled (migration
  // 0016): there is nothing left in it for the retention job.
  BOOST_TEST(count("audit_outbox") == "0");

  db.exec("UPDATE idempotency_keys SET created_at = now() - interval '100 hours',"
          " updated_at = now() - interval '100 hours'");
  BOOST_TEST(purge_all(retention_table::idempotency_keys, key_retention) == 1);
  BOOST_TEST(purge_all(retention_table::audit_outbox, outbox_retention) == 0);
  BOOST_TEST(count("idempotency_keys") == "0");
  BOOST_TEST(count("orders") == "1");
  BOOST_TEST(count("order_items") == "1");
  BOOST_TEST(count("audit_receipts") == "2");
  // The order reads as it did, its events delivered with their receipts.
  BOOST_TEST(load_order_part(db, o.order_id, order_part::result) == shown);
}

BOOST_AUTO_TEST_CASE(a_batch_takes_at_most_its_limit) {
  db.exec("INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state, response_body,"
          " created_at, updated_at)"
          " SELECT 'cust-ret', 'k' || i, 'fp', 'completed', '{}',"
          "        now() - interval '100 hours' + i * interval '1 second',"
          "        now() - interval '100 hours' + i * interval '1 second'"
          " FROM generate_series(1, 25) i");
  std::vector<std::int32_t> batches;
  for (int i = 0; i < 4; ++i)
    batches.push_back(purge_batch(db, {retention_table::idempotency_keys, key_retention, 10}).purged);
  BOOST_TEST(batches == (std::vector<std::int32_t>{10, 10, 5, 0}), boost::test_tools::per_element());
  BOOST_TEST(count("idempotency_keys") == "0");
}

BOOST_AUTO_TEST_CASE(the_oldest_go_first) {
  key("older", "completed", 100);
  key("old", "completed", 90);
  BOOST_TEST(purge_batch(db, {retention_table::idempotency_keys, key_retention, 1}).purged == 1);
  BOOST_TEST(!has_key("older"));
  BOOST_TEST(has_key("old"));
}

BOOST_AUTO_TEST_CASE(an_instance_holding_the_retention_lock_purges_alone) {
  key("old", "completed", 100);
  connection other{url};
  other.exec("BEGIN");
  BOOST_REQUIRE(other.exec("SELECT pg_try_advisory_xact_lock($1::bigint)",
                           {std::to_string(retention_lock_key)})
                  .value(0, 0) == "t");
  auto out = purge_batch(db, {retention_table::idempotency_keys, key_retention, 10});
  BOOST_TEST(out.locked_out);
  BOOST_TEST(out.purged == 0);
  BOOST_TEST(has_key("old"));
  other.exec("COMMIT");
  out = purge_batch(db, {retention_table::idempotency_keys, key_retention, 10});
  BOOST_TEST(!out.locked_out);
  BOOST_TEST(out.purged == 1);
}

BOOST_AUTO_TEST_CASE(a_batch_is_bounded_by_the_sessions_statement_timeout) {
  // The janitor's session has the service's limits: a statement ends at
  // its statement_timeout, a server error, well inside the call's deadline
  // (which cancels from the client and counts the database as not
  // answering).
  key("old", "completed", 100);
  connection holder{url};
  holder.exec("BEGIN");
  holder.exec("LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE");
  session_limits limits;
  limits.statement_timeout = std::chrono::milliseconds{300};
  limits.call_deadline = std::chrono::milliseconds{3000};
  limits.cancel_grace = std::chrono::milliseconds{500};
  connection janitor{url, limits};
  auto start = std::chrono::steady_clock::now();
  std::string sqlstate;
  bool past_deadline = false;
  try {
    purge_batch(janitor, {retention_table::idempotency_keys, key_retention, 10});
  } catch (const db_error& e) {
    sqlstate = e.sqlstate();
    past_deadline = e.past_deadline();
  }
  auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  BOOST_TEST(sqlstate == "57014");  // query_canceled, by the statement_timeout
  BOOST_TEST(!past_deadline);
  BOOST_TEST(janitor.calls_past_deadline() == 0u);
  BOOST_TEST(took < 2.0);
  holder.exec("ROLLBACK");
  BOOST_TEST(has_key("old"));
  BOOST_TEST(purge_batch(janitor, {retention_table::idempotency_keys, key_retention, 10}).purged == 1);
}

BOOST_AUTO_TEST_CASE(two_janitors_at_once_purge_each_row_once_without_errors) {
  db.exec("INSERT INTO audit_outbox (event_id, event_type, payload, delivered_at)"
          " SELECT 'evt_' || i, 'order.completed', '{}', now() - interval '200 hours'"
          " FROM generate_series(1, 3000) i");
  std::atomic<std::int64_t> purged{0};
  std::atomic<int> locked_out{0};
  std::atomic<int> failures{0};
  auto janitor = [&] {
    try {
      connection mine{url};
      // Until a batch this janitor ran came back empty.
      for (int rounds = 0; rounds < 10000; ++rounds) {
        auto out = purge_batch(mine, {retention_table::audit_outbox, outbox_retention, 50});
        purged += out.purged;
        if (out.locked_out)
          ++locked_out;
        else if (out.purged == 0)
          return;
      }
    } catch (const std::exception&) {
      ++failures;
    }
  };
  std::thread a{janitor};
  std::thread b{janitor};
  a.join();
  b.join();
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(purged.load() == 3000);
  BOOST_TEST(count("audit_outbox") == "0");
  BOOST_TEST_MESSAGE("batches locked out by the other janitor: " << locked_out.load());
}

BOOST_AUTO_TEST_CASE(the_purges_walk_an_index_from_the_oldest) {
  // A full scan of either table at full load reads hundreds of millions of
  // rows to find a batch; the purge must start from an index instead.
  db.exec("SET enable_seqscan = off");
  auto plan = [&](const std::string& sql) {
    std::string text;
    auto rows = db.exec("EXPLAIN " + sql);
    for (int i = 0; i < rows.rows(); ++i)
      text += rows.value(i, 0) + "\n";
    return text;
  };
  auto keys = plan("SELECT ctid FROM idempotency_keys WHERE created_at < now() AND state = 'completed'"
                   " ORDER BY created_at LIMIT 10");
  BOOST_TEST(keys.find("idempotency_keys_created_idx") != std::string::npos, keys);
  auto outbox = plan("SELECT ctid FROM audit_outbox WHERE delivered_at IS NOT NULL"
                     " AND delivered_at < now() AND dead_lettered_at IS NULL"
                     " ORDER BY delivered_at LIMIT 10");
  BOOST_TEST(outbox.find("audit_outbox_delivered_idx") != std::string::npos, outbox);
}

BOOST_AUTO_TEST_CASE(vacuumed_queue_tables_reuse_their_pages_and_unvacuumed_ones_grow) {
  // What a checkout leaves in the two queues, `rows` times over: a record
  // and two events inserted, then deleted (the order stored, the events
  // delivered). Rows of a realistic size, ids as the service makes them.
  // Autovacuum, which could come by in between, stays out of these tables.
  db.exec("ALTER TABLE unfinished_checkouts SET (autovacuum_enabled = false)");
  db.exec("ALTER TABLE audit_outbox SET (autovacuum_enabled = false)");
  int next = 0;
  auto churn = [&](int rows) {
    auto from = std::to_string(next), to = std::to_string(next + rows - 1);
    next += rows;
    db.exec("INSERT INTO unfinished_checkouts (order_id, customer_id, payment_key, intent)"
            " SELECT 'order_' || lpad(to_hex(g), 24, '0'), 'cust-vac', 'pay-' || g, repeat('i', 900)"
            "   FROM generate_series($1::integer, $2::integer) g",
            {from, to});
    db.exec("INSERT INTO audit_outbox (event_id, event_type, payload)"
            " SELECT 'evt_' || g || '_' || e, 'order.completed', repeat('p', 400)"
            "   FROM generate_series($1::integer, $2::integer) g, generate_series(1, 2) e",
            {from, to});
    db.exec("DELETE FROM unfinished_checkouts");
    db.exec("DELETE FROM audit_outbox");
  };
  auto pages = [&] {
    return std::stoll(db.exec("SELECT pg_relation_size('unfinished_checkouts')"
                              " + pg_relation_size('audit_outbox')").value(0, 0)) / 8192;
  };
  auto vacuums = [&] {
    return db.exec("SELECT vacuum_count FROM pg_stat_user_tables"
                   " WHERE relname = 'unfinished_checkouts'").value(0, 0);
  };
  churn(4000);
  auto first = pages();
  BOOST_TEST_REQUIRE(first > 500);
  BOOST_TEST(vacuums() == "0");
  vacuum_queues(db);
  BOOST_TEST(vacuums() == "1");
  // Vacuumed, the next as many rows go into the pages the first left.
  churn(4000);
  auto second = pages();
  BOOST_TEST(second <= first + first / 10, second << " pages after " << first);
  // Not vacuumed, they need pages as many again.
  churn(4000);
  auto third = pages();
  BOOST_TEST(third >= second + first * 8 / 10, third << " pages after " << second);
  BOOST_TEST(count("unfinished_checkouts") == "0");
  BOOST_TEST(count("audit_outbox") == "0");
}

BOOST_AUTO_TEST_SUITE_END()
