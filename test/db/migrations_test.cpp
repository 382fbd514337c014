#include <boost/test/unit_test.hpp>

#include <string>
#include <thread>
#include <vector>

#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "test/support/pg_cluster.hpp"

using namespace ap;
using namespace ap::persistence;

BOOST_AUTO_TEST_SUITE(migrations)

BOOST_AUTO_TEST_CASE(embedded_set_is_versioned_without_gaps) {
  const auto& all = all_migrations();
  BOOST_REQUIRE(!all.empty());
  for (std::size_t i = 0; i < all.size(); ++i) {
    BOOST_TEST(all[i].version == static_cast<int>(i) + 1);
    BOOST_TEST(all[i].checksum.size() == 64u);
  }
  BOOST_TEST(latest_version() == static_cast<int>(all.size()));
}

BOOST_AUTO_TEST_CASE(migrate_applies_everything_once_and_is_idempotent) {
  connection db{test::fresh_database("ap_migrate_once")};
  BOOST_TEST(current_version(db) == 0);
  auto first = migrate(db);
  BOOST_TEST(first.from == 0);
  BOOST_TEST(first.to == latest_version());
  BOOST_TEST(first.applied.size() == all_migrations().size());
  BOOST_TEST(first.applied.front() == "0001_catalog");
  BOOST_TEST(current_version(db) == latest_version());

  auto schema_before = db.exec(
    "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name)"
    " FROM information_schema.columns WHERE table_schema = 'public'");
  auto second = migrate(db);
  BOOST_TEST(second.applied.empty());
  BOOST_TEST(second.from == latest_version());
  auto schema_after = db.exec(
    "SELECT string_agg(table_name || '.' || column_name, ',' ORDER BY table_name, column_name)"
    " FROM information_schema.columns WHERE table_schema = 'public'");
  BOOST_TEST(schema_before.value(0, 0) == schema_after.value(0, 0));
  BOOST_TEST(db.exec("SELECT count(*) FROM schema_migrations").value(0, 0)
             == std::to_string(latest_version()));
}

BOOST_AUTO_TEST_CASE(catalog_is_seeded_per_spec) {
  connection db{test::fresh_database("ap_migrate_catalog")};
  migrate(db);
  auto rows = db.exec("SELECT sku, unit_amount, currency, length(artifact_sha256)"
                      " FROM catalog_items ORDER BY sku");
  BOOST_REQUIRE(rows.rows() == 4);
  BOOST_TEST(rows.value(0, 0) == "artifact-compliance");
  BOOST_TEST(rows.value(0, 1) == "450");
  BOOST_TEST(rows.value(1, 0) == "artifact-license");
  BOOST_TEST(rows.value(1, 1) == "800");
  BOOST_TEST(rows.value(2, 0) == "creator-basic");
  BOOST_TEST(rows.value(2, 1) == "1200");
  BOOST_TEST(rows.value(3, 0) == "creator-pro");
  BOOST_TEST(rows.value(3, 1) == "2500");
  for (int i = 0; i < 4; ++i) {
    BOOST_TEST(rows.value(i, 2) == "usd");
    BOOST_TEST(rows.value(i, 3) == "64");
  }
}

BOOST_AUTO_TEST_CASE(an_edited_migration_is_detected) {
  connection db{test::fresh_database("ap_migrate_edited")};
  migrate(db);
  db.exec("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = 1");
  // Every SQL failure is a std::runtime_error too: only the refusal that
  // names the edited migration, raised by the check rather than by the
  // server, is the one meant.
  std::string refusal;
  try {
    migrate(db);
  } catch (const db_error& e) {
    BOOST_FAIL("a database error instead of the checksum refusal: " << e.what());
  } catch (const std::runtime_error& e) {
    refusal = e.what();
  }
  BOOST_TEST(refusal.find("migration 1 (") == 0u, refusal);
  BOOST_TEST(refusal.find("differs from the one applied to this database") != std::string::npos,
             refusal);
  // Once the record agrees again, the same database migrates: the refusal
  // changed nothing.
  db.exec("UPDATE schema_migrations SET checksum = $1 WHERE version = 1",
          {all_migrations().front().checksum});
  BOOST_TEST(migrate(db).applied.empty());
}

BOOST_AUTO_TEST_CASE(concurrent_migrations_apply_each_version_once) {
  auto url = test::fresh_database("ap_migrate_concurrent");
  std::vector<std::size_t> applied(4);
  std::vector<std::thread> threads;
  std::vector<std::string> failures(4);
  for (std::size_t i = 0; i < applied.size(); ++i)
    threads.emplace_back([&, i] {
      try {
        connection db{url};
        applied[i] = migrate(db).applied.size();
      } catch (const std::exception& e) {
        failures[i] = e.what();
      }
    });
  for (auto& t : threads)
    t.join();
  std::size_t total = 0;
  for (std::size_t i = 0; i < applied.size(); ++i) {
    BOOST_TEST(failures[i].empty(), failures[i]);
    total += applied[i];
  }
  BOOST_TEST(total == all_migrations().size());
}

BOOST_AUTO_TEST_CASE(statement_errors_carry_sqlstate) {
  connection db{test::fresh_database("ap_migrate_errors")};
  try {
    db.exec("SELECT * FROM no_such_table");
    BOOST_FAIL("expected an error");
  } catch (const db_error& e) {
    BOOST_TEST(e.sqlstate() == "42P01");
    BOOST_TEST(!e.connection_lost());
  }
  // The connection stays usable after a failed statement.
  BOOST_TEST(db.exec("SELECT 1").value(0, 0) == "1");
}

// Batches travel as array literals: every byte of every element survives
// the round trip, quotes and backslashes included, and so do absent ones.
BOOST_AUTO_TEST_CASE(array_literals_round_trip_every_element) {
  connection db{test::fresh_database("ap_migrate_arrays")};
  std::vector<std::string> items{"plain", "a\"b", "c\\d", "", "x,y", "NULL", "{}", "\\\"\\",
                                 std::string(3000, 'r') + "\"end"};
  auto back = db.exec("SELECT $1::text[]", {to_pg_array(items)}).value(0, 0);
  BOOST_TEST(from_pg_array(back) == items, back.substr(0, 200));
  auto lengths = db.exec("SELECT string_agg(length(x)::text, ',') FROM unnest($1::text[]) x",
                         {to_pg_array(items)});
  BOOST_TEST(lengths.value(0, 0) == "5,3,3,0,3,4,2,3,3004");
  std::vector<std::optional<std::string>> some{std::string{"k\"1"}, std::nullopt};
  BOOST_TEST(db.exec("SELECT ($1::text[])[1] || '|' || (($1::text[])[2] IS NULL)::text",
                     {to_pg_array(some)}).value(0, 0) == "k\"1|true");
}

// Batches of text travel as binary arrays: the server reads each element
// as sent, whatever bytes it holds, keeps absent ones absent, and takes an
// empty array; a statement may mix them with text parameters.
BOOST_AUTO_TEST_CASE(binary_text_arrays_arrive_as_sent) {
  connection db{test::fresh_database("ap_migrate_binary_arrays")};
  std::vector<std::string> items{"plain", "a\"b", "c\\d", "", "x,y", "NULL", "{}", "\\\"\\",
                                 "caf\xc3\xa9 \xe2\x82\xac", std::string(70000, 'r') + "\"end"};
  auto same = db.exec("SELECT $1::text[] = $2::text[], cardinality($1::text[])",
                      {text_array(items), to_pg_array(items)});
  BOOST_TEST(same.value(0, 0) == "t");
  BOOST_TEST(same.value(0, 1) == "10");
  auto each = db.exec("SELECT x FROM unnest($1::text[]) WITH ORDINALITY AS t(x, n) ORDER BY n",
                      {text_array(items)});
  BOOST_REQUIRE(each.rows() == static_cast<int>(items.size()));
  for (int i = 0; i < each.rows(); ++i)
    BOOST_TEST(each.value(i, 0) == items[static_cast<std::size_t>(i)]);
  std::vector<std::optional<std::string>> some{std::string{"k\"1"}, std::nullopt,
                                               std::string{}};
  BOOST_TEST(db.exec("SELECT ($1::text[])[1] || '|' || (($1::text[])[2] IS NULL)::text"
                     " || '|' || (($1::text[])[3] = '')::text || '|' || $2",
                     {text_array(some), "text"}).value(0, 0) == "k\"1|true|true|text");
  // The caller's strings by pointer: the same array, a null pointer NULL.
  std::vector<const std::string*> held;
  for (const auto& item : items)
    held.push_back(&item);
  BOOST_TEST(db.exec("SELECT $1::text[] = $2::text[]", {text_array(held), text_array(items)})
               .value(0, 0) == "t");
  std::string quoted{"k\"1"}, empty;
  BOOST_TEST(db.exec("SELECT ($1::text[])[1] || '|' || (($1::text[])[2] IS NULL)::text"
                     " || '|' || (($1::text[])[3] = '')::text",
                     {text_array(std::vector<const std::string*>{&quoted, nullptr, &empty})})
               .value(0, 0) == "k\"1|true|true");
  BOOST_TEST(db.exec("SELECT cardinality($1::text[]), $1::text[] = '{}'",
                     {text_array(std::vector<std::string>{})}).value(0, 0) == "0");
  // Invalid UTF-8 is refused as in a literal, and the session goes on.
  BOOST_CHECK_THROW(db.exec("SELECT $1::text[]", {text_array(std::vector<std::string>{"\xff"})}),
                    db_error);
  BOOST_TEST(db.exec("SELECT 1").value(0, 0) == "1");
}

BOOST_AUTO_TEST_CASE(audit_receipts_are_keyed_by_event_and_found_by_order) {
  connection db{test::fresh_database("ap_migrate_receipts")};
  migrate(db);
  BOOST_TEST(db.exec("SELECT a.attname FROM pg_index i"
                     " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
                     " WHERE i.indrelid = 'audit_receipts'::regclass AND i.indisprimary")
               .value(0, 0) == "event_id");
  BOOST_TEST(db.exec("SELECT indexdef FROM pg_indexes WHERE indexname = 'audit_receipts_order_idx'")
               .value(0, 0).find("(order_id)") != std::string::npos);
  // Nothing ties a receipt to its outbox row, which may be purged.
  BOOST_TEST(db.exec("SELECT count(*) FROM pg_constraint WHERE conrelid = 'audit_receipts'::regclass"
                     " AND confrelid = 'audit_outbox'::regclass").value(0, 0) == "0");
}

// Every text key of an index on the tables a checkout writes compares as
// bytes (migration 0023), whatever the database's collation, and the rows
// are found by them as before.
BOOST_AUTO_TEST_CASE(the_keys_a_checkout_writes_compare_as_bytes) {
  connection db{test::fresh_database("ap_migrate_collation")};
  migrate(db);
  auto keys = db.exec(
    "SELECT c.relname || '.' || a.attname || ':' || coalesce(l.collname, '?')"
    "  FROM pg_index i"
    "  JOIN pg_class c ON c.oid = i.indrelid"
    "  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    "  LEFT JOIN pg_collation l ON l.oid = a.attcollation"
    " WHERE c.relname IN ('orders', 'idempotency_keys', 'unfinished_checkouts', 'audit_outbox',"
    "                     'audit_receipts')"
    "   AND a.atttypid = 'text'::regtype"
    " ORDER BY 1");
  std::vector<std::string> found;
  for (int r = 0; r < keys.rows(); ++r)
    found.push_back(keys.value(r, 0));
  BOOST_TEST(found
               == (std::vector<std::string>{
                 "audit_outbox.event_id:C", "audit_receipts.event_id:C",
                 "audit_receipts.order_id:C", "idempotency_keys.customer_id:C",
                 "idempotency_keys.idem_key:C", "orders.finance_entry_id:C",
                 "orders.order_id:C", "orders.payment_id:C", "unfinished_checkouts.order_id:C"}),
             boost::test_tools::per_element());
  // The view of an order's items reads through the order's key as before.
  db.exec("INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id,"
          " finance_entry_id, result, items, created_at)"
          " VALUES ('order_00000000000000000000000a', 'c', 'e@example.com', 'completed', 'usd',"
          " 800, 'pay_a', 'fin_a', '{}',"
          " '[{\"amount\":800,\"quantity\":1,\"sku\":\"creator-basic\",\"unitAmount\":800}]',"
          " now())");
  BOOST_TEST(db.exec("SELECT sku FROM order_items WHERE order_id = 'order_00000000000000000000000a'")
               .value(0, 0) == "creator-basic");
}

BOOST_AUTO_TEST_CASE(transactions_roll_back_on_error) {
  connection db{test::fresh_database("ap_migrate_tx")};
  db.exec("CREATE TABLE t (x int PRIMARY KEY)");
  BOOST_CHECK_THROW(db.transaction([&] {
    db.exec("INSERT INTO t VALUES (1)");
    db.exec("INSERT INTO t VALUES (1)");
  }),
                    db_error);
  BOOST_TEST(db.exec("SELECT count(*) FROM t").value(0, 0) == "0");
}

// Migration 0015 starts the record of signing kids from the proofs already
// stored, so that the first start after it knows them too.
BOOST_AUTO_TEST_CASE(the_signing_kids_start_from_the_stored_proofs) {
  connection db{test::fresh_database("ap_migrate_signing_kids")};
  migrate(db);
  // The database as it was before 0015, with orders signed under two kids.
  db.exec("DROP TABLE proof_signing_kids");
  db.exec("DELETE FROM schema_migrations WHERE version = 15");
  auto order = [&](const std::string& n, const std::string& status, const std::string& result) {
    db.exec("INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id,"
            " finance_entry_id, result, created_at)"
            " VALUES ('order_' || repeat($1, 24), 'c', 'c@example.com', $2, 'usd', 100,"
            " 'pay_' || $1, CASE WHEN $2 = 'completed' THEN 'fin_' || $1 END, $3, now())",
            {n, status, result});
  };
  order("1", "completed", R"({"orderId":"x","proof":{"kid":"v1","signature":"s"}})");
  order("2", "completed", R"({"orderId":"y","proof":{"kid":"v2","signature":"s"}})");
  order("3", "completed", R"({"orderId":"z","proof":{"kid":"v2","signature":"s"}})");
  order("4", "payment_failed", R"({"error":"payment_declined"})");
  auto report = migrate(db);
  BOOST_TEST(report.applied.size() == 1u);
  auto rows = db.exec("SELECT kid FROM proof_signing_kids ORDER BY kid");
  BOOST_REQUIRE(rows.rows() == 2);
  BOOST_TEST(rows.value(0, 0) == "v1");
  BOOST_TEST(rows.value(1, 0) == "v2");
}

// Migration 0017 moves the items into the order's row. The items stored
// before it stay readable through the order_items view, and the previous
// release's call of store_orders, which passes them as arrays of lines,
// stores them in the row, so that the two releases can run side by side.
BOOST_AUTO_TEST_CASE(items_stored_before_0017_and_by_the_previous_release_read_as_before) {
  connection db{test::fresh_database("ap_migrate_items_in_row")};
  migrate(db);
  // The database as it was before 0017, with one order and its two items.
  db.exec("DROP VIEW order_items");
  db.exec("ALTER TABLE order_items_before_0017 RENAME TO order_items");
  db.exec("DROP FUNCTION store_orders(text[], text[], text[], text[], text[], bigint[], text[],"
          " text[], text[], text[], timestamptz[], text[], text[], text[], text[], text[],"
          " text[], text[], text[], text, integer)");
  db.exec("ALTER TABLE orders DROP COLUMN items");
  db.exec("DELETE FROM schema_migrations WHERE version = 17");
  db.exec("INSERT INTO orders (order_id, customer_id, email, status, currency, total, payment_id,"
          " finance_entry_id, result, created_at)"
          " VALUES ('order_' || repeat('1', 24), 'c', 'c@example.com', 'completed', 'usd', 2800,"
          " 'pay_1', 'fin_1', '{}', now())");
  db.exec("INSERT INTO order_items VALUES ('order_' || repeat('1', 24), 'creator-basic', 1, 1200,"
          " 1200), ('order_' || repeat('1', 24), 'artifact-license', 2, 800, 1600)");
  BOOST_TEST(migrate(db).applied == std::vector<std::string>{"0017_items_in_the_order"});

  // The previous release stores an order (lines given out of SKU order)...
  auto stored_before = db.exec(
    "SELECT store_orders(ARRAY['order_' || repeat('2', 24)], ARRAY['c'], ARRAY['c@example.com'],"
    " ARRAY['completed'], ARRAY['usd'], ARRAY[2800::bigint], ARRAY['pay_2'], ARRAY['fin_2'],"
    " ARRAY['{}'], ARRAY[now()],"
    " ARRAY['order_' || repeat('2', 24), 'order_' || repeat('2', 24)],"
    " ARRAY['creator-basic', 'artifact-license'], ARRAY[1, 2], ARRAY[1200, 800]::bigint[],"
    " ARRAY[1200, 1600]::bigint[],"
    " ARRAY['evt_2'], ARRAY['order.completed'], ARRAY['order_' || repeat('2', 24)], ARRAY['{}'],"
    " '{}'::text[], '{}'::text[], '{}'::text[], '{}'::text[], NULL, 1000)");
  BOOST_TEST(stored_before.value(0, 0) == "{}");
  BOOST_TEST(db.exec("SELECT count(*) FROM audit_outbox").value(0, 0) == "1");
  // ...with its items in its row, as this release writes them.
  auto items = db.exec("SELECT items::jsonb = '[{\"amount\":1600,\"quantity\":2,"
                       "\"sku\":\"artifact-license\",\"unitAmount\":800},{\"amount\":1200,"
                       "\"quantity\":1,\"sku\":\"creator-basic\",\"unitAmount\":1200}]'"
                       " FROM orders WHERE order_id = 'order_' || repeat('2', 24)");
  BOOST_TEST(items.value(0, 0) == "t");
  // Both orders' items read as they did from the table.
  auto rows = db.exec("SELECT right(order_id, 1), sku, quantity, unit_amount, amount"
                      " FROM order_items ORDER BY order_id, sku");
  BOOST_REQUIRE_EQUAL(rows.rows(), 4);
  std::vector<std::string> seen;
  for (int r = 0; r < rows.rows(); ++r)
    seen.push_back(rows.value(r, 0) + " " + rows.value(r, 1) + " " + rows.value(r, 2) + " "
                   + rows.value(r, 3) + " " + rows.value(r, 4));
  BOOST_TEST(seen == (std::vector<std::string>{"1 artifact-license 2 800 1600",
                                               "1 creator-basic 1 1200 1200",
                                               "2 artifact-license 2 800 1600",
                                               "2 creator-basic 1 1200 1200"}),
             boost::test_tools::per_element());
  BOOST_TEST(db.exec("SELECT count(*) FROM order_items_before_0017").value(0, 0) == "2");
}

BOOST_AUTO_TEST_SUITE_END()
