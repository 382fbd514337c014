// The Stripe connector against payments-mock, a separate process speaking
// the processor's REST API (SPEC §9): declines and refusals end to end, and
// under steady checkouts (with and without keys; keyed clients retry as a
// careful client does) the processor losing a tenth of its replies after
// charging, answering slower than the request deadline, failing outright,
// the service killed with SIGKILL, the orders table locked for 11 s and the
// service's database connections terminated. Each ends with SPEC §9's
// invariants checked against the processor's own records, read through its
// list APIs, and with nothing left unfinished.
#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <thread>

#include "persistence/connection.hpp"
#include "test/e2e/fault_support.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

void set_faults(const payments_process& processor, const std::string& json) {
  BOOST_REQUIRE(http_call(processor.port(), "POST", "/mock/faults",
                          {{"Content-Type", "application/json"}}, json)
                  .status == 200);
}

http_reply checkout(std::uint16_t port, const std::string& customer, const std::string& method,
                    const std::string& key = {}) {
  header_list headers{{"Content-Type", "application/json"}};
  if (!key.empty())
    headers.push_back({"Idempotency-Key", key});
  return http_call(port, "POST", "/api/checkout", headers,
                   R"({"customerId":")" + customer
                     + R"(","email":"p@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}],"paymentMethod":")"
                     + method + "\"}");
}

} // namespace

BOOST_AUTO_TEST_SUITE(payment_faults)

BOOST_AUTO_TEST_CASE(declines_and_refusals_reach_the_client_through_the_processors_api) {
  payments_process processor;
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_stripe_basic"), stripe_env(processor, kernel)};
  auto ok = checkout(svc.port(), "cus_ok", "pm_card_visa", "k-ok");
  BOOST_REQUIRE(ok.status == 201);
  auto doc = parse_json(ok.body);
  std::string payment_id = doc["payment"]["paymentId"].GetString();
  BOOST_TEST(payment_id.rfind("pi_", 0) == 0u);
  BOOST_TEST(std::string{doc["payment"]["processor"].GetString()} == "stripe");
  // The processor's record of it names the order and the amount.
  auto pi = parse_json(http_call(processor.port(), "GET", "/v1/payment_intents/" + payment_id,
                                 {{"Authorization", std::string{"Bearer "} + payments_process::secret_key}})
                         .body);
  BOOST_TEST(std::string{pi["status"].GetString()} == "succeeded");
  BOOST_TEST(std::string{pi["metadata"]["order_id"].GetString()} == doc["orderId"].GetString());
  BOOST_TEST(pi["amount"].GetInt64() == doc["total"].GetInt64());
  // Declines carry the processor's decline code; the order is kept as payment_failed.
  auto declined = checkout(svc.port(), "cus_dec", "pm_card_chargeDeclined");
  BOOST_TEST(declined.status == 402);
  BOOST_TEST(declined.body.find("generic_decline") != std::string::npos, declined.body);
  auto funds = checkout(svc.port(), "cus_funds", "pm_card_chargeDeclinedInsufficientFunds");
  BOOST_TEST(funds.status == 402);
  BOOST_TEST(funds.body.find("insufficient_funds") != std::string::npos, funds.body);
  // The same key replays the stored answer; the processor charged once.
  auto replay = checkout(svc.port(), "cus_ok", "pm_card_visa", "k-ok");
  BOOST_TEST(replay.status == 201);
  BOOST_TEST(replay.body == ok.body);
  auto records = read_processor_records(processor.port());
  BOOST_TEST(records.intents.size() == 3u);
  BOOST_TEST(check_processor_invariants(svc.db_url(), processor.port()) == 1u);
  BOOST_TEST(metric(svc.port(), "ap_payment_charges_total{outcome=\"captured\"}") == 1.0);
  BOOST_TEST(metric(svc.port(), "ap_payment_charges_total{outcome=\"declined\"}") == 2.0);
}

BOOST_AUTO_TEST_CASE(a_processor_refusing_the_key_is_a_definite_refusal_without_an_order) {
  payments_process processor;
  kernel_process kernel;
  auto env = stripe_env(processor, kernel);
  env["ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY"] = "sk_test_not_the_processors_key";
  service_process svc{fresh_database("ap_e2e_stripe_refused"), env};
  auto refused = checkout(svc.port(), "cus_r", "pm_card_visa", "k-r");
  BOOST_TEST(refused.status == 502);
  auto doc = parse_json(refused.body);
  BOOST_TEST(std::string{doc["error"].GetString()} == "payment_refused");
  BOOST_TEST(std::string{doc["message"].GetString()}.find("401") != std::string::npos, refused.body);
  // The secret never appears in an answer or in the log.
  BOOST_TEST(refused.body.find("sk_test_not") == std::string::npos);
  BOOST_TEST(read_file(svc.log()).find("sk_test_not_the_processors_key") == std::string::npos);
  // Nothing was charged, no order exists, the key answers the same refusal.
  BOOST_TEST(read_processor_records(processor.port()).intents.empty());
  persistence::connection db{svc.db_url()};
  BOOST_TEST(count(db, "SELECT count(*) FROM orders") == "0");
  BOOST_TEST(count(db, "SELECT count(*) FROM unfinished_checkouts") == "0");
  auto again = checkout(svc.port(), "cus_r", "pm_card_visa", "k-r");
  BOOST_TEST(again.status == 502);
  BOOST_TEST(again.body == refused.body);
}

// A processor answering 500 to everything leaves each charge in doubt: the
// connector tries three times under one key, the client hears 502 naming the
// order, GET says processing; once the processor recovers the reconciler
// charges under the same key, once.
BOOST_AUTO_TEST_CASE(a_failing_processor_leaves_checkouts_in_doubt_until_it_recovers) {
  payments_process processor{{"--error-rate", "1"}};
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_stripe_failing"),
                      stripe_env(processor, kernel, "3000", "4000")};
  auto doubt = checkout(svc.port(), "cus_f", "pm_card_visa");
  BOOST_TEST(doubt.status == 502);
  auto doc = parse_json(doubt.body);
  BOOST_TEST(std::string{doc["error"].GetString()} == "upstream_unavailable");
  BOOST_REQUIRE(doc.HasMember("orderId"));
  std::string order_id = doc["orderId"].GetString();
  BOOST_TEST(http_call(svc.port(), "GET", "/api/checkout/" + order_id).status == 202);
  BOOST_TEST(metric(svc.port(), "ap_payment_retries_total") == 2.0);
  set_faults(processor, R"({"errorRate":0})");
  auto got = final_state(svc.port(), order_id);
  BOOST_REQUIRE_MESSAGE(got.status == 200, got.status << " " << got.body);
  BOOST_TEST(std::string{parse_json(got.body)["status"].GetString()} == "completed");
  BOOST_TEST(read_processor_records(processor.port()).intents.size() == 1u);
  BOOST_TEST(check_processor_invariants(svc.db_url(), processor.port()) == 1u);
}

BOOST_AUTO_TEST_CASE(a_processor_losing_a_tenth_of_its_replies_after_charging_charges_once) {
  payments_process processor{{"--lost-reply-rate", "0.1"}};
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_stripe_lost"), stripe_env(processor, kernel)};
  mixed_load load{svc.port(), "lost"};
  BOOST_REQUIRE(load.keyless.wait_for_more(80, 60s));
  BOOST_REQUIRE(load.keyed.wait_for_more(20, 60s));
  auto outcomes = load.stop();
  auto retries = metric(svc.port(), "ap_payment_retries_total");
  BOOST_TEST(retries > 0, "no reply was lost");
  BOOST_TEST_MESSAGE(retries << " charges sent again under their key");
  set_faults(processor, R"({"lostReplyRate":0})");  // so that its records can be read
  follow_doubts(svc.port(), processor.port(), outcomes);
  check_invariants(svc.db_url(), kernel.port(), outcomes);
  BOOST_TEST(check_processor_invariants(svc.db_url(), processor.port()) > 0u);
  BOOST_TEST(read_processor_records(processor.port()).refunds.empty());
}

BOOST_AUTO_TEST_CASE(a_processor_slower_than_the_deadline_rolls_forward) {
  payments_process processor;
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_stripe_slow"),
                      stripe_env(processor, kernel, "1000", "4000")};
  mixed_load load{svc.port(), "slow"};
  BOOST_REQUIRE(load.keyless.wait_for_more(20, 30s));
  // Each charge now takes 1.5 s: past the 1 s deadline, within the
  // connector's attempt.
  set_faults(processor, R"({"latencyMs":1500})");
  std::this_thread::sleep_for(6s);
  set_faults(processor, R"({"latencyMs":0})");
  BOOST_REQUIRE(load.keyless.wait_for_more(20, 30s));
  BOOST_REQUIRE(load.keyed.wait_for_more(10, 30s));
  auto outcomes = load.stop();
  std::size_t timeouts = 0;
  for (const auto& o : outcomes)
    if (o.status == 504)
      ++timeouts;
  BOOST_TEST(timeouts > 0u, "no checkout outlived its deadline");
  auto followed = follow_doubts(svc.port(), processor.port(), outcomes);
  BOOST_TEST(followed.completed >= 1u);
  BOOST_TEST_MESSAGE(timeouts << " answered 504; " << followed.completed << " named orders completed later, "
                              << followed.never_recorded << " never recorded");
  // The late charges became orders: nothing was undone.
  BOOST_TEST(metric(svc.port(), "ap_payment_refunds_total") == 0.0);
  check_invariants(svc.db_url(), kernel.port(), outcomes);
  check_processor_invariants(svc.db_url(), processor.port());
  BOOST_TEST(read_processor_records(processor.port()).refunds.empty());
}

BOOST_AUTO_TEST_CASE(the_service_killed_with_a_real_processor_charges_each_sale_once) {
  payments_process processor;
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_stripe_kill"), stripe_env(processor, kernel)};
  mixed_load load{svc.port(), "kill"};
  BOOST_REQUIRE(load.keyless.wait_for_more(30, 30s));
  svc.kill();
  std::this_thread::sleep_for(500ms);
  svc.start();
  BOOST_REQUIRE(load.keyless.wait_for_more(30, 30s));
  BOOST_REQUIRE(load.keyed.wait_for_more(10, 30s));
  auto outcomes = load.stop();
  follow_doubts(svc.port(), processor.port(), outcomes);
  check_invariants(svc.db_url(), kernel.port(), outcomes);
  check_processor_invariants(svc.db_url(), processor.port());
  BOOST_TEST(read_processor_records(processor.port()).refunds.empty());
}

BOOST_AUTO_TEST_CASE(orders_locked_for_11_s_with_a_real_processor_refund_nothing) {
  payments_process processor;
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_stripe_lock"), stripe_env(processor, kernel)};
  mixed_load load{svc.port(), "lock"};
  BOOST_REQUIRE(load.keyless.wait_for_more(20, 30s));
  lock_orders_for(svc.db_url(), 11s);
  BOOST_REQUIRE(load.keyless.wait_for_more(20, 30s));
  auto outcomes = load.stop();
  auto followed = follow_doubts(svc.port(), processor.port(), outcomes);
  BOOST_TEST(followed.completed + followed.never_recorded > 0u, "no checkout waited on the lock");
  BOOST_TEST_MESSAGE(followed.completed << " orders named in doubt completed later, "
                                        << followed.never_recorded << " never recorded");
  check_invariants(svc.db_url(), kernel.port(), outcomes);
  check_processor_invariants(svc.db_url(), processor.port());
  BOOST_TEST(read_processor_records(processor.port()).refunds.empty());
}

BOOST_AUTO_TEST_CASE(connections_terminated_with_a_real_processor_undo_nothing) {
  payments_process processor;
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_stripe_terminate"), stripe_env(processor, kernel)};
  mixed_load load{svc.port(), "term"};
  BOOST_REQUIRE(load.keyless.wait_for_more(20, 30s));
  persistence::connection admin{svc.db_url()};
  for (int round = 0; round < 3; ++round) {
    terminate_other_connections(admin);
    BOOST_REQUIRE(load.keyless.wait_for_more(15, 30s));
  }
  auto outcomes = load.stop();
  follow_doubts(svc.port(), processor.port(), outcomes);
  check_invariants(svc.db_url(), kernel.port(), outcomes);
  check_processor_invariants(svc.db_url(), processor.port());
  BOOST_TEST(read_processor_records(processor.port()).refunds.empty());
}

BOOST_AUTO_TEST_SUITE_END()
