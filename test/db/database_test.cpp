#include <functional>
#include <thread>
#include <tuple>

#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>

#include "actors/database.hpp"
#include "test/support/print.hpp"
#include "actors/node.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/order_store.hpp"
#include "test/support/pg_cluster.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

// The database actor runs detached workers on threads of their own, so
// these tests use a real scheduler and wait on replies with a timeout.
struct live_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  live_system() {
    configure_actor_system(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  persistence::db_status ping(const database_actor& db) {
    caf::scoped_actor self{*sys};
    persistence::db_status out;
    self->request(db, 10s, atoms::ping_atom::value)
      .receive([&](persistence::db_status& st) { out = std::move(st); },
               [&](caf::error& err) { BOOST_FAIL("ping failed: " << caf::to_string(err)); });
    return out;
  }
};

database_config db_config(const std::string& url, std::size_t workers) {
  database_config cfg;
  cfg.url = url;
  cfg.workers = workers;
  return cfg;
}

// A database facade with `workers` workers on a fresh, migrated database,
// ready before the test begins and stopped after it.
struct ready_facade {
  std::string url;
  persistence::connection c;
  live_system live;
  database_actor db;
  ready_facade(const char* name, std::size_t workers) : url(test::fresh_database(name)), c(url) {
    persistence::migrate(c);
    db = live.sys->spawn(database, db_config(url, workers));
    BOOST_REQUIRE(live.ping(db).ready());
  }
  ~ready_facade() { caf::anon_send_exit(db, caf::exit_reason::user_shutdown); }
};

// The id of test checkout `i`: a well-formed order id.
std::string order_id_of(int i) {
  auto digits = std::to_string(i);
  return "order_" + std::string(24 - digits.size(), '0') + digits;
}

// The record of test checkout `i`, keyed "key-<i>" for customer "cust-<i>".
persistence::checkout_begin begin_of(int i) {
  auto id = order_id_of(i);
  auto digits = std::to_string(i);
  return {id, "cust-" + digits, "key-" + digits, "fp", id, "{}"};
}

// The order of test checkout `i`, completing its key.
domain::order_record order_of(int i) {
  domain::order_record o;
  auto digits = std::to_string(i);
  o.order_id = order_id_of(i);
  o.customer_id = "cust-" + digits;
  o.email = "a@example.com";
  o.status = domain::order_status::completed;
  o.currency = "usd";
  o.total = 1200;
  o.payment_id = "pay_" + digits;
  o.finance_entry_id = "fin_" + digits;
  o.items = {{"creator-basic", 1, 1200, 1200}};
  o.created_at = "2026-01-01T00:00:00Z";
  o.result = "{}";
  o.events = {{"evt_" + digits, "order.completed", "{}"}};
  o.idempotency_key = "key-" + digits;
  return o;
}

} // namespace

BOOST_AUTO_TEST_SUITE(database_actor_tests)

BOOST_AUTO_TEST_CASE(readiness_follows_migrations) {
  live_system live;
  auto url = test::fresh_database("ap_database_ready");
  auto db = live.sys->spawn(database, db_config(url, 2));
  auto before = live.ping(db);
  BOOST_TEST(before.reachable);
  BOOST_TEST(!before.ready());
  BOOST_TEST(before.schema_version == 0);
  BOOST_TEST(before.detail.find("migrate") != std::string::npos);
  persistence::connection c{url};
  persistence::migrate(c);
  // Every worker sees the new schema (requests go round-robin).
  for (int i = 0; i < 4; ++i) {
    auto after = live.ping(db);
    BOOST_TEST(after.ready());
    BOOST_TEST(after.schema_version == persistence::latest_version());
  }
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(unreachable_server_is_reported_not_thrown) {
  live_system live;
  auto db = live.sys->spawn(
    database, db_config("postgresql://artifact_publisher@127.0.0.1:1/none", 1));
  auto st = live.ping(db);
  BOOST_TEST(!st.reachable);
  BOOST_TEST(!st.ready());
  BOOST_TEST(st.detail.find("cannot connect") != std::string::npos);
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(connections_heal_after_a_server_restart) {
  test::pg_cluster cluster;
  persistence::connection c{cluster.url()};
  persistence::migrate(c);
  live_system live;
  auto db = live.sys->spawn(database, db_config(cluster.url(), 1));
  BOOST_TEST(live.ping(db).ready());
  BOOST_TEST(c.exec("SELECT 1").value(0, 0) == "1");

  cluster.stop();
  BOOST_CHECK_THROW(c.exec("SELECT 1"), persistence::db_error);
  auto down = live.ping(db);
  BOOST_TEST(!down.reachable);

  cluster.start();
  // The same connection object and the same actor recover on their own.
  BOOST_TEST(c.exec("SELECT 1").value(0, 0) == "1");
  BOOST_TEST(live.ping(db).ready());
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(concurrent_claims_and_stores_are_batched_and_fail_alone) {
  auto url = test::fresh_database("ap_database_batches");
  persistence::connection c{url};
  persistence::migrate(c);
  live_system live;
  metrics::registry registry;
  auto cfg = db_config(url, 2);
  cfg.registry = &registry;
  cfg.max_batch = 8;
  auto db = live.sys->spawn(database, cfg);
  constexpr int n = 40;
  auto order = order_of;
  caf::scoped_actor self{*live.sys};
  // Every request is sent before any reply is read, so they queue up
  // behind the one batch in flight.
  for (int i = 0; i < n; ++i)
    self->send(db, atoms::begin_atom::value, begin_of(i));
  int claimed = 0;
  for (int i = 0; i < n; ++i)
    self->receive([&](persistence::claim_result& r) { claimed += r.state == persistence::claim_state::claimed; },
                  caf::after(10s) >> [] { BOOST_FAIL("no claim reply"); });
  BOOST_TEST(claimed == n);
  // Each is recorded as unfinished until its order is stored.
  BOOST_TEST(c.exec("SELECT count(*) FROM unfinished_checkouts").value(0, 0) == std::to_string(n));
  for (int i = 0; i < n; ++i) {
    auto o = order(i);
    if (i == 17)
      o.idempotency_key = "never-claimed";  // cannot be completed: only this one fails
    self->send(db, atoms::store_atom::value, std::move(o));
  }
  int stored = 0;
  int failed = 0;
  for (int i = 0; i < n; ++i)
    self->receive([&](persistence::stored_order& out) { stored += out.stored_now; },
                  [&](caf::error&) { ++failed; },
                  caf::after(10s) >> [] { BOOST_FAIL("no store reply"); });
  BOOST_TEST(stored == n - 1);
  BOOST_TEST(failed == 1);
  BOOST_TEST(c.exec("SELECT count(*) FROM orders").value(0, 0) == std::to_string(n - 1));
  BOOST_TEST(c.exec("SELECT count(*) FROM orders WHERE order_id = $1", {order(17).order_id})
               .value(0, 0) == "0");
  // Only the one not stored stays unfinished.
  BOOST_TEST(c.exec("SELECT order_id FROM unfinished_checkouts").value(0, 0) == order(17).order_id);
  auto batches = [&](const char* kind) {
    return registry.get_counter("ap_db_batches_total", "", {{"kind", kind}}).value();
  };
  auto batched = [&](const char* kind) {
    return registry.get_counter("ap_db_batched_requests_total", "", {{"kind", kind}}).value();
  };
  BOOST_TEST(batched("begin") == static_cast<std::uint64_t>(n));
  BOOST_TEST(batched("store") == static_cast<std::uint64_t>(n));
  // At most 8 per batch, and fewer batches than requests.
  BOOST_TEST(batches("begin") >= static_cast<std::uint64_t>(n / 8));
  BOOST_TEST(batches("begin") < static_cast<std::uint64_t>(n));
  BOOST_TEST(batches("store") < static_cast<std::uint64_t>(n));
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

// By default one call carrying checkouts is at the workers at a time: what
// arrives while it commits waits, and goes in the next call together. Here
// the first record waits on a lock, and the nineteen sent behind it go as
// one batch once it is released (with two in flight, the second would have
// gone alone: three batches).
BOOST_AUTO_TEST_CASE(records_sent_while_a_batch_commits_go_together_in_the_next) {
  auto url = test::fresh_database("ap_database_one_in_flight");
  persistence::connection c{url};
  persistence::migrate(c);
  live_system live;
  metrics::registry registry;
  auto cfg = db_config(url, 4);
  cfg.registry = &registry;
  auto db = live.sys->spawn(database, cfg);
  BOOST_REQUIRE(live.ping(db).ready());
  persistence::connection locker{url};
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE unfinished_checkouts IN SHARE MODE");
  caf::scoped_actor self{*live.sys};
  constexpr int n = 20;
  for (int i = 0; i < n; ++i)
    self->send(db, atoms::begin_atom::value, begin_of(i));
  std::this_thread::sleep_for(300ms);
  locker.exec("COMMIT");
  int claimed = 0;
  for (int i = 0; i < n; ++i)
    self->receive(
      [&](persistence::claim_result& r) { claimed += r.state == persistence::claim_state::claimed; },
      caf::after(10s) >> [] { BOOST_FAIL("no claim reply"); });
  BOOST_TEST(claimed == n);
  auto begins = [&](const char* name) {
    return registry.get_counter(name, "", {{"kind", "begin"}}).value();
  };
  BOOST_TEST(begins("ap_db_batches_total") == 2u);
  BOOST_TEST(begins("ap_db_batched_requests_total") == static_cast<std::uint64_t>(n));
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

// Milliseconds since `t`.
long ms_since(std::chrono::steady_clock::time_point t) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - t).count());
}

// A facade with two workers and metrics on a fresh, migrated database,
// configured by `configure`, and a scoped actor to talk to it.
struct metered_facade {
  std::string url;
  persistence::connection c;
  live_system live;
  metrics::registry registry;
  database_actor db;
  caf::scoped_actor self{*live.sys};

  metered_facade(const char* name, const std::function<void(database_config&)>& configure)
    : url(test::fresh_database(name)), c(url) {
    persistence::migrate(c);
    auto cfg = db_config(url, 2);
    cfg.registry = &registry;
    configure(cfg);
    db = live.sys->spawn(database, cfg);
    BOOST_REQUIRE(live.ping(db).ready());
  }
  ~metered_facade() { caf::anon_send_exit(db, caf::exit_reason::user_shutdown); }

  // How many of the next `count` record answers are claims.
  int claims(int count) {
    int claimed = 0;
    for (int i = 0; i < count; ++i)
      self->receive(
        [&](persistence::claim_result& r) { claimed += r.state == persistence::claim_state::claimed; },
        [&](caf::error& e) { BOOST_ERROR("record: " << caf::to_string(e)); },
        caf::after(10s) >> [] { BOOST_FAIL("no claim reply"); });
    return claimed;
  }

  std::uint64_t counter(const char* name, const char* kind = nullptr) {
    if (!kind)
      return registry.get_counter(name, "").value();
    return registry.get_counter(name, "", {{"kind", kind}}).value();
  }

  // The transaction that wrote checkout `i`'s row of `table`.
  std::string xmin(const std::string& table, int i) {
    return c.exec("SELECT xmin::text FROM " + table + " WHERE order_id = $1", {order_id_of(i)})
      .value(0, 0);
  }
};

// A facade that waits `wait` for the stores of the records it answered, and
// a way to have a call answer one record while others wait behind it.
struct store_wait_fixture : metered_facade {
  store_wait_fixture(const char* name, std::chrono::microseconds wait)
    : metered_facade(name, [wait](database_config& cfg) { cfg.store_wait = wait; }) {}

  // Records checkout `first` in a call held up by a lock and checkouts
  // `first + 1` to `first + behind` behind it, then releases the lock and
  // waits for the first one's claim.
  void record_with_others_behind(int first, int behind) {
    persistence::connection locker{url};
    locker.exec("BEGIN");
    locker.exec("LOCK TABLE unfinished_checkouts IN SHARE MODE");
    self->send(db, atoms::begin_atom::value, begin_of(first));
    std::this_thread::sleep_for(200ms);
    for (int i = 1; i <= behind; ++i)
      self->send(db, atoms::begin_atom::value, begin_of(first + i));
    std::this_thread::sleep_for(100ms);
    locker.exec("COMMIT");
    BOOST_REQUIRE_EQUAL(claims(1), 1);
  }
};

// The records waiting behind a call that answered a record wait for that
// checkout's store, and both go in the next call, one transaction, rather
// than the records now and the store a call later.
BOOST_AUTO_TEST_CASE(records_behind_a_call_wait_for_its_checkouts_stores) {
  store_wait_fixture f{"ap_database_store_wait", 5s};
  f.record_with_others_behind(0, 5);
  auto sent = std::chrono::steady_clock::now();
  f.self->send(f.db, atoms::store_atom::value, order_of(0));
  int claimed = 0, stored = 0;
  for (int i = 0; i < 6; ++i)
    f.self->receive(
      [&](persistence::claim_result& r) { claimed += r.state == persistence::claim_state::claimed; },
      [&](persistence::stored_order& out) { stored += out.stored_now; },
      [&](caf::error& e) { BOOST_ERROR("call: " << caf::to_string(e)); },
      caf::after(10s) >> [] { BOOST_FAIL("no reply"); });
  BOOST_TEST(claimed == 5);
  BOOST_TEST(stored == 1);
  // Released by the store, not by the end of the 5 s wait.
  BOOST_TEST(ms_since(sent) < 4000);
  BOOST_TEST(f.counter("ap_db_batches_total", "begin") == 2u);
  BOOST_TEST(f.counter("ap_db_batches_total", "store") == 1u);
  BOOST_TEST(f.counter("ap_db_batches_together_total") == 1u);
  BOOST_TEST(f.xmin("orders", 0) == f.xmin("unfinished_checkouts", 1));
  BOOST_TEST(f.xmin("orders", 0) == f.xmin("unfinished_checkouts", 5));
}

// A store that does not come (a payment made over the network, a refused
// one) holds the records behind for the wait and no longer; and the calls
// after such a wait do not wait at all for a while.
BOOST_AUTO_TEST_CASE(a_wait_for_stores_that_do_not_come_ends_and_is_not_repeated) {
  store_wait_fixture f{"ap_database_store_wait_ends", 300ms};
  f.record_with_others_behind(0, 3);
  auto answered = std::chrono::steady_clock::now();
  BOOST_TEST(f.claims(3) == 3);
  auto waited = ms_since(answered);
  BOOST_TEST(waited >= 250);
  BOOST_TEST(waited < 5000);
  f.record_with_others_behind(10, 3);
  answered = std::chrono::steady_clock::now();
  BOOST_TEST(f.claims(3) == 3);
  BOOST_TEST(ms_since(answered) < 250);
  BOOST_TEST(f.counter("ap_db_batches_total", "begin") == 4u);
  BOOST_TEST(f.counter("ap_db_batches_together_total") == 0u);
}

// With one call carrying checkouts at a time, every call goes to the same
// worker, the first that carries none, rather than to each in turn: one
// PostgreSQL backend makes them all and stays warm (docs/performance.md).
// Statements are prepared on a session's first use, so only the backend that
// recorded checkouts shows `begin_checkouts` as its last statement.
BOOST_AUTO_TEST_CASE(calls_one_at_a_time_go_to_the_same_worker) {
  ready_facade f{"ap_database_same_worker", 4};
  caf::scoped_actor self{*f.live.sys};
  constexpr int n = 8;
  int claimed = 0;
  for (int i = 0; i < n; ++i)
    self->request(f.db, 10s, atoms::begin_atom::value, begin_of(i))
      .receive(
        [&](persistence::claim_result& r) { claimed += r.state == persistence::claim_state::claimed; },
        [&](caf::error& e) { BOOST_ERROR("record: " << caf::to_string(e)); });
  BOOST_TEST(claimed == n);
  auto backends = f.c.exec("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                           "AND pid <> pg_backend_pid() AND query LIKE '%begin_checkouts(%'")
                    .value(0, 0);
  BOOST_TEST(backends == "1");
}

// Records and stores waiting at once go to a worker in one call, written in
// one transaction (migration 0021). Here a lone record waits on a lock, and
// the stores and records sent behind it go together once it is released.
struct together_fixture : metered_facade {
  static constexpr int n = 20;

  explicit together_fixture(const char* name) : metered_facade(name, [](database_config&) {}) {
    // Checkouts 0 to n - 1 are recorded first, to be stored below.
    for (int i = 0; i < n; ++i)
      self->send(db, atoms::begin_atom::value, begin_of(i));
    BOOST_REQUIRE_EQUAL(claims(n), n);
  }


  // Sends n stores (order i, changed by `change`) and n records of new
  // checkouts behind a record held up by a lock, then releases it; answers
  // the records claimed, the orders stored and the stores that failed.
  std::tuple<int, int, int> store_and_record_behind_a_lock(
    const std::function<void(domain::order_record&)>& change) {
    persistence::connection locker{url};
    locker.exec("BEGIN");
    locker.exec("LOCK TABLE unfinished_checkouts IN SHARE MODE");
    self->send(db, atoms::begin_atom::value, begin_of(2 * n));
    std::this_thread::sleep_for(200ms);
    for (int i = 0; i < n; ++i) {
      auto o = order_of(i);
      change(o);
      self->send(db, atoms::store_atom::value, std::move(o));
      self->send(db, atoms::begin_atom::value, begin_of(n + i));
    }
    std::this_thread::sleep_for(200ms);
    locker.exec("COMMIT");
    int claimed = 0, stored = 0, failed = 0;
    for (int i = 0; i < 2 * n + 1; ++i)
      self->receive(
        [&](persistence::claim_result& r) { claimed += r.state == persistence::claim_state::claimed; },
        [&](persistence::stored_order& out) { stored += out.stored_now; },
        [&](caf::error&) { ++failed; },
        caf::after(10s) >> [] { BOOST_FAIL("no reply"); });
    return {claimed, stored, failed};
  }

};

BOOST_AUTO_TEST_CASE(records_and_stores_waiting_at_once_commit_together) {
  together_fixture f{"ap_database_together"};
  auto [claimed, stored, failed] = f.store_and_record_behind_a_lock([](auto&) {});
  BOOST_TEST(claimed == f.n + 1);
  BOOST_TEST(stored == f.n);
  BOOST_TEST(failed == 0);
  // The lone record, then one call with the n stores and the n records.
  BOOST_TEST(f.counter("ap_db_batches_together_total") == 1u);
  BOOST_TEST(f.counter("ap_db_batches_total", "store") == 1u);
  BOOST_TEST(f.xmin("orders", 0) == f.xmin("orders", f.n - 1));
  BOOST_TEST(f.xmin("orders", 0) == f.xmin("unfinished_checkouts", f.n));
  BOOST_TEST(f.xmin("orders", 0) == f.xmin("unfinished_checkouts", 2 * f.n - 1));
  BOOST_TEST(f.c.exec("SELECT count(*) FROM unfinished_checkouts").value(0, 0)
             == std::to_string(f.n + 1));
}

// A store that cannot be written refuses the call written together; then
// each batch is written on its own, so the records and the other stores
// are not refused with it.
BOOST_AUTO_TEST_CASE(a_store_refused_in_a_call_together_refuses_only_itself) {
  together_fixture f{"ap_database_together_refused"};
  auto [claimed, stored, failed] = f.store_and_record_behind_a_lock([](domain::order_record& o) {
    if (o.order_id == order_id_of(7))
      o.idempotency_key = "never-claimed";
  });
  BOOST_TEST(claimed == f.n + 1);
  BOOST_TEST(stored == f.n - 1);
  BOOST_TEST(failed == 1);
  BOOST_TEST(f.counter("ap_db_batches_together_total") == 1u);
  BOOST_TEST(f.c.exec("SELECT count(*) FROM orders WHERE order_id = $1", {order_id_of(7)})
               .value(0, 0) == "0");
  // Only checkout 7 of the stored ones is still unfinished, and every new one.
  BOOST_TEST(f.c.exec("SELECT count(*) FROM unfinished_checkouts").value(0, 0)
             == std::to_string(f.n + 2));
}

// The periodic scans (the reconciler's statistics and lease, the outbox
// statistics) run on a worker of their own: a scan that takes long — here
// held behind a lock on unfinished_checkouts — never holds up the requests
// behind it, even with a single request worker.
BOOST_AUTO_TEST_CASE(a_slow_periodic_scan_holds_up_no_request) {
  ready_facade f{"ap_database_background", 1};
  auto& db = f.db;
  persistence::connection locker{f.url};
  locker.exec("BEGIN");
  locker.exec("LOCK TABLE unfinished_checkouts IN ACCESS EXCLUSIVE MODE");
  caf::scoped_actor self{*f.live.sys};
  self->send(db, atoms::unfinished_atom::value);
  self->send(db, atoms::overdue_atom::value, persistence::lease_terms{"test", 10, 60000},
             std::int32_t{1000});
  // Sent after the scans, answered while they wait.
  auto started = std::chrono::steady_clock::now();
  bool answered = false;
  self->request(db, 3s, atoms::catalog_atom::value)
    .receive([&](std::vector<domain::catalog_item>& items) { answered = !items.empty(); },
             [&](caf::error& err) { BOOST_ERROR("catalog: " << caf::to_string(err)); });
  BOOST_TEST(answered);
  BOOST_TEST((std::chrono::steady_clock::now() - started < 2s));
  // The scans finish once the lock goes.
  locker.exec("COMMIT");
  int scans = 0;
  for (int i = 0; i < 2; ++i)
    self->receive([&](persistence::unfinished_stats& st) { scans += st.count == 0; },
                  [&](std::vector<persistence::unfinished_checkout>& rows) { scans += rows.empty(); },
                  [&](caf::error& err) { BOOST_ERROR("scan: " << caf::to_string(err)); },
                  caf::after(10s) >> [] { BOOST_ERROR("no scan reply"); });
  BOOST_TEST(scans == 2);
}

BOOST_AUTO_TEST_SUITE_END()
