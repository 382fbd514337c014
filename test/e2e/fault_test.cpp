// Faults under steady checkouts, with the real processes: the service
// killed with SIGKILL and restarted, PostgreSQL restarted, and a Kernel that
// answers slowly or resets connections. After each, the same invariants are
// checked: every acknowledged (201) order is in PostgreSQL with its outbox
// events; every event reached the Kernel exactly once; no order exists
// without its payment and its ledger entry.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/json.hpp"
#include "domain/checkout.hpp"
#include "domain/order.hpp"
#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/e2e/fault_support.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

BOOST_AUTO_TEST_SUITE(faults)

BOOST_AUTO_TEST_CASE(the_service_killed_mid_checkouts_loses_nothing_acknowledged) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_fault_kill"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS", "2000"},
                       {"ARTIFACT_PUBLISHER_RECONCILE_AFTER_MS", "3000"}}};
  steady_load load{svc.port(), "kill"};
  BOOST_REQUIRE(load.wait_for_more(40, 30s));
  svc.kill();  // SIGKILL: requests in flight die with it
  std::this_thread::sleep_for(500ms);
  svc.start();
  BOOST_REQUIRE(load.wait_for_more(40, 30s));
  load.stop();
  auto outcomes = load.outcomes();
  // Only connection failures while it was down; nothing else went wrong.
  for (const auto& o : outcomes)
    BOOST_TEST((o.status == 201 || o.status == 0), o.status << " " << o.error);
  check_invariants(svc.db_url(), kernel.port(), outcomes);
}

BOOST_AUTO_TEST_CASE(postgresql_restarted_under_load_503_then_recovery) {
  pg_cluster cluster;
  kernel_process kernel;
  service_process svc{cluster.url(), {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                                      {"ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS", "2000"},
                                      {"ARTIFACT_PUBLISHER_RECONCILE_AFTER_MS", "3000"}}};
  steady_load load{svc.port(), "pg"};
  BOOST_REQUIRE(load.wait_for_more(40, 30s));
  auto down_at = std::chrono::steady_clock::now();
  cluster.stop();
  std::this_thread::sleep_for(2s);
  auto up_at = std::chrono::steady_clock::now();
  cluster.start();
  // The same service process recovers on its own.
  BOOST_REQUIRE_MESSAGE(load.wait_for_more(40, 30s), "no checkout succeeded after the restart");
  load.stop();
  auto outcomes = load.outcomes();
  std::size_t unavailable = 0;
  for (const auto& o : outcomes) {
    if (o.status == 201)
      continue;
    // While the database was away: 503 with a JSON error, never a 500.
    BOOST_TEST(o.status == 503, o.status << " " << o.error);
    BOOST_TEST((o.error == "database_unavailable" || o.error == "upstream_unavailable"), o.error);
    if (o.at > down_at && o.at < up_at + 1s)
      ++unavailable;
  }
  BOOST_TEST(unavailable > 0u, "no checkout was answered 503 while PostgreSQL was down");
  auto readiness = http_call(svc.port(), "GET", "/readyz");
  BOOST_TEST(readiness.status == 200);
  check_invariants(svc.db_url(), kernel.port(), outcomes);
}

BOOST_AUTO_TEST_CASE(a_slow_or_resetting_kernel_delays_events_not_checkouts) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_fault_kernel"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  auto set_faults = [&](const std::string& json) {
    BOOST_REQUIRE(http_call(kernel.port(), "POST", "/mock/faults",
                            {{"Content-Type", "application/json"}}, json)
                    .status == 200);
  };
  steady_load load{svc.port(), "kernel", 2};
  // Every Kernel answer takes 2 s.
  set_faults(R"({"latencyMs":2000})");
  BOOST_REQUIRE(load.wait_for_more(60, 30s));
  auto slow = latencies_of_201(load.outcomes());
  // Checkouts went on being acknowledged while their events were still on
  // the way to the Kernel: the answer did not wait for it.
  {
    persistence::connection db{svc.db_url()};
    auto in_flight = count(db, "SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL");
    BOOST_TEST(in_flight != "0", "every event was in the Kernel as soon as its checkout was answered");
  }
  // Then half of the Kernel's answers are connection resets, after the
  // event was appended: the forwarder must resend, the Kernel keep one.
  set_faults(R"({"latencyMs":0,"resetRate":0.5})");
  // Long enough for the sends still waiting on slow answers to finish and
  // for new ones to meet the resets.
  auto resets_from = std::chrono::steady_clock::now();
  BOOST_REQUIRE(load.wait_for_more(60, 30s));
  std::this_thread::sleep_until(resets_from + 4s);
  set_faults(R"({"resetRate":0})");
  load.stop();
  // The resets happened, and each was a failed delivery to be retried.
  auto metrics = http_call(svc.port(), "GET", "/metrics").body;
  auto at = metrics.find("\nap_audit_forward_failures_total ");
  BOOST_REQUIRE(at != std::string::npos);
  auto failures = std::stod(metrics.substr(at + std::string{"\nap_audit_forward_failures_total "}.size()));
  BOOST_TEST(failures > 0, "no delivery failed while the Kernel reset connections");
  BOOST_TEST_MESSAGE(failures << " deliveries failed and were retried");
  // Every checkout was answered, and answered 201, through both faults; how
  // fast is the benchmarks' business, which a shared test machine cannot judge.
  auto outcomes = load.outcomes();
  BOOST_TEST(outcomes.size() >= 120u);
  for (const auto& o : outcomes)
    BOOST_TEST(o.status == 201, o.status << " " << o.error);
  auto all = latencies_of_201(outcomes);
  BOOST_REQUIRE(!slow.empty());
  auto p99 = [](const std::vector<std::chrono::milliseconds>& v) { return v[v.size() * 99 / 100]; };
  BOOST_TEST_MESSAGE("checkout p99 with a 2 s Kernel " << p99(slow).count() << " ms, overall "
                                                      << p99(all).count() << " ms");
  // None lost: each 201 is a completed order whose events are in the Kernel once.
  check_invariants(svc.db_url(), kernel.port(), outcomes);
}

// SPEC §9, the first defect it names: a store batch held behind a lock
// past the facade's 10 s used to be answered with an error, and its charge
// voided and its entry reversed, while the transaction went on to commit a
// completed order. Now every answer names its order and nothing is
// refunded. With lock_timeout (1 s here) no statement waits out the lock:
// a checkout whose record gave up was never charged and reads 404 (one
// captured charge per completed order, below); every other named order is
// finished completed.
BOOST_AUTO_TEST_CASE(orders_locked_for_11_s_roll_forward_and_nothing_is_refunded) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_fault_lock"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS", "2000"},
                       {"ARTIFACT_PUBLISHER_RECONCILE_AFTER_MS", "3000"}}};
  steady_load keyless{svc.port(), "lock-nokey", 2, false};
  steady_load keyed{svc.port(), "lock-key", 2, true};
  BOOST_REQUIRE(keyless.wait_for_more(20, 30s));
  lock_orders_for(svc.db_url(), 11s);
  BOOST_REQUIRE(keyless.wait_for_more(20, 30s));
  keyless.stop();
  keyed.stop();
  auto outcomes = keyless.outcomes();
  auto more = keyed.outcomes();
  outcomes.insert(outcomes.end(), more.begin(), more.end());
  persistence::connection db{svc.db_url()};
  BOOST_REQUIRE(wait_until_finished(db, 30s) == "0");
  std::size_t in_doubt = 0, never_recorded = 0;
  for (const auto& o : outcomes) {
    if (o.status == 201)
      continue;
    // Answered while the table was locked: a timeout or an unavailable
    // database, naming the order, which was then finished, or, if its
    // record gave up, never written (and, below, never charged).
    BOOST_TEST((o.status == 504 || o.status == 503), o.status << " " << o.error);
    BOOST_REQUIRE_MESSAGE(!o.order_id.empty(), o.status << " " << o.error << " names no order");
    ++in_doubt;
    auto got = http_call(svc.port(), "GET", "/api/checkout/" + o.order_id);
    if (got.status == 404) {
      // Answered before its record, which then gave up: the count of
      // captures below shows it was never charged.
      ++never_recorded;
      continue;
    }
    BOOST_TEST(got.status == 200, o.order_id << ": " << got.status);
    if (got.status == 200)
      BOOST_TEST(std::string{parse_json(got.body)["status"].GetString()} == "completed");
  }
  BOOST_TEST(in_doubt > 0u, "no checkout waited on the lock");
  BOOST_TEST_MESSAGE(in_doubt << " checkouts answered in doubt during the lock: "
                              << in_doubt - never_recorded << " finished, " << never_recorded
                              << " never recorded");
  // The processor's own counts: one capture per completed order, no refund.
  auto completed = std::stod(count(db, "SELECT count(*) FROM orders WHERE status = 'completed'"));
  BOOST_TEST(metric(svc.port(), "ap_payment_refunds_total") == 0.0);
  auto text = http_call(svc.port(), "GET", "/metrics").body;
  auto at = text.find("ap_payment_charges_total{outcome=\"captured\"} ");
  BOOST_REQUIRE(at != std::string::npos);
  auto captured = std::stod(text.substr(at + std::string{"ap_payment_charges_total{outcome=\"captured\"} "}.size()));
  BOOST_TEST(captured == completed, captured << " charges for " << completed << " orders");
  check_invariants(svc.db_url(), kernel.port(), outcomes);
}

BOOST_AUTO_TEST_CASE(the_services_connections_terminated_under_load_lose_and_undo_nothing) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_fault_terminate"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS", "2000"},
                       {"ARTIFACT_PUBLISHER_RECONCILE_AFTER_MS", "3000"}}};
  steady_load load{svc.port(), "term", 4};
  BOOST_REQUIRE(load.wait_for_more(40, 30s));
  persistence::connection admin{svc.db_url()};
  for (int round = 0; round < 3; ++round) {
    terminate_other_connections(admin);
    BOOST_REQUIRE(load.wait_for_more(20, 30s));
  }
  load.stop();
  BOOST_TEST(metric(svc.port(), "ap_payment_refunds_total") == 0.0);
  check_invariants(svc.db_url(), kernel.port(), load.outcomes());
}

// A checkout recorded by a process that died before it charged: GET says
// 202 processing, a retry with its key 409, until the reconciler of any
// instance finishes it; then the order and the replay.
BOOST_AUTO_TEST_CASE(a_checkout_left_by_a_dead_process_is_processing_until_reconciled) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_fault_reconcile"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS", "1000"},
                       {"ARTIFACT_PUBLISHER_RECONCILE_AFTER_MS", "4000"}}};
  const std::string body =
    R"({"customerId":"cus_dead","currency":"usd","email":"d@example.com","items":[{"quantity":1,"sku":"creator-pro"}]})";
  // What the dead process recorded: the request as parsed, and its ids.
  rapidjson::Document parsed;
  parsed.Parse(body.c_str());
  auto req = std::get<domain::checkout_request>(domain::parse_checkout(parsed));
  auto ids = domain::new_order_ids();
  ids.payment_key = domain::payment_key_for(req.customer_id, "dead-key");
  persistence::connection db{svc.db_url()};
  db.exec("INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state)"
          " VALUES ($1, 'dead-key', $2, 'in_flight')",
          {req.customer_id, req.fingerprint});
  db.exec("INSERT INTO unfinished_checkouts (order_id, customer_id, idem_key, payment_key, intent)"
          " VALUES ($1, $2, 'dead-key', $3, $4)",
          {ids.order_id, req.customer_id, ids.payment_key, domain::encode_intent(req, ids)});
  auto started = std::chrono::steady_clock::now();
  auto processing = http_call(svc.port(), "GET", "/api/checkout/" + ids.order_id);
  BOOST_TEST(processing.status == 202);
  BOOST_TEST(processing.body == R"({"orderId":")" + ids.order_id + R"(","status":"processing"})");
  auto retry = [&] {
    return http_call(svc.port(), "POST", "/api/checkout",
                     {{"Content-Type", "application/json"}, {"Idempotency-Key", "dead-key"}}, body);
  };
  BOOST_TEST(retry().status == 409);
  http_reply done;
  for (int i = 0; i < 150; ++i) {
    done = http_call(svc.port(), "GET", "/api/checkout/" + ids.order_id);
    if (done.status != 202)
      break;
    std::this_thread::sleep_for(100ms);
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  BOOST_REQUIRE(done.status == 200);
  // Not before RECONCILE_AFTER_MS, and well within a few seconds after it.
  BOOST_TEST(took.count() >= 3500);
  BOOST_TEST(took.count() < 12000);
  auto doc = parse_json(done.body);
  BOOST_TEST(std::string{doc["status"].GetString()} == "completed");
  BOOST_TEST(std::string{doc["orderId"].GetString()} == ids.order_id);
  // The key now replays the finished order as it was stored, byte for
  // byte; the order reads the same but for its audit, which shows the
  // receipts of its events as they come in.
  auto replay = retry();
  BOOST_TEST(replay.status == 201);
  BOOST_TEST(replay.body
             == db.exec("SELECT order_result(result, delivery_ciphertext, ciphertext_at)"
                        " FROM orders WHERE order_id = $1",
                        {ids.order_id})
                  .value(0, 0));
  auto replayed = parse_json(replay.body);
  BOOST_TEST(std::string{replayed["audit"]["eventId"].GetString()}
             == doc["audit"]["eventId"].GetString());
  replayed.RemoveMember("audit");
  doc.RemoveMember("audit");
  BOOST_TEST(json::canonical(replayed) == json::canonical(doc));
  auto text = http_call(svc.port(), "GET", "/metrics").body;
  BOOST_TEST(text.find("ap_checkouts_reconciled_total{outcome=\"completed\"} 1") != std::string::npos);
  // The gauge follows on the reconciler's next pass (every second here).
  for (int i = 0; i < 30 && text.find("\nap_checkouts_unfinished 0\n") == std::string::npos; ++i) {
    std::this_thread::sleep_for(100ms);
    text = http_call(svc.port(), "GET", "/metrics").body;
  }
  BOOST_TEST(text.find("\nap_checkouts_unfinished 0\n") != std::string::npos);
  BOOST_TEST(read_file(svc.log()).find("taking over an unfinished checkout") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
