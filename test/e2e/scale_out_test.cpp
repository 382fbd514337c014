// Two service instances on one PostgreSQL and one Kernel.
#include <boost/test/unit_test.hpp>

#include <future>
#include <set>
#include <thread>
#include <signal.h>

#include "persistence/connection.hpp"
#include "test/e2e/fault_support.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

std::string checkout_body(const std::string& customer) {
  return R"({"customerId":")" + customer
         + R"(","email":"x@example.com","currency":"usd","items":[{"sku":"creator-pro","quantity":1}]})";
}

int kernel_count(std::uint16_t port, const std::string& order_id) {
  auto r = http_call(port, "POST", "/kernel/audit/search", {{"Content-Type", "application/json"}},
                     R"({"criteria":{"orderId":")" + order_id + R"("},"eventType":"order.completed"})");
  if (r.status != 200)
    return -1;
  return static_cast<int>(parse_json(r.body)["results"].Size());
}

} // namespace

BOOST_AUTO_TEST_SUITE(scale_out)

BOOST_AUTO_TEST_CASE(two_instances_share_idempotency_and_the_outbox) {
  kernel_process kernel;
  auto db = fresh_database("ap_e2e_scale_out");
  std::map<std::string, std::string> env{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}};
  service_process a{db, env};
  service_process b{db, env};

  // The same Idempotency-Key sent to both at once: one order.
  std::vector<std::future<http_reply>> calls;
  for (int i = 0; i < 20; ++i)
    calls.push_back(std::async(std::launch::async, [&, i] {
      return http_call(i % 2 ? a.port() : b.port(), "POST", "/api/checkout",
                       {{"Content-Type", "application/json"}, {"Idempotency-Key", "shared-key"}},
                       checkout_body("cust-shared"));
    }));
  std::set<std::string> bodies;
  for (auto& c : calls) {
    auto r = c.get();
    BOOST_TEST((r.status == 201 || r.status == 409), r.status << " " << r.body);
    if (r.status == 201)
      bodies.insert(r.body);
  }
  BOOST_TEST(bodies.size() == 1u);
  persistence::connection pg{db};
  BOOST_TEST(pg.exec("SELECT count(*) FROM orders WHERE customer_id = 'cust-shared'").value(0, 0) == "1");

  // Checkouts on both instances; both forwarders run: every event once.
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    auto r = http_call(i % 2 ? a.port() : b.port(), "POST", "/api/checkout",
                       {{"Content-Type", "application/json"}}, checkout_body("cust-" + std::to_string(i)));
    BOOST_REQUIRE(r.status == 201);
    ids.push_back(parse_json(r.body)["orderId"].GetString());
  }
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (pg.exec("SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL").value(0, 0) != "0"
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  for (const auto& id : ids)
    BOOST_TEST(kernel_count(kernel.port(), id) == 1, id);
  // Delivered events leave the outbox for their receipts, one each.
  BOOST_TEST(pg.exec("SELECT count(*) FROM audit_outbox").value(0, 0) == "0");
  auto events = std::stoul(pg.exec("SELECT count(*) FROM audit_receipts").value(0, 0));
  auto verify = parse_json(http_call(kernel.port(), "GET", "/kernel/audit/verify").body);
  BOOST_TEST(verify["valid"].GetBool());
  BOOST_TEST(verify["length"].GetUint64() == events);
  // Both instances did part of the forwarding.
  BOOST_TEST(metric(a.port(), "ap_audit_events_forwarded_total") > 0);
  BOOST_TEST(metric(b.port(), "ap_audit_events_forwarded_total") > 0);
}

BOOST_AUTO_TEST_CASE(the_survivor_drains_a_killed_instance_within_the_budget) {
  kernel_process kernel;
  auto db = fresh_database("ap_e2e_scale_kill");
  std::map<std::string, std::string> env{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}};
  service_process a{db, env};
  service_process b{db, env};
  // The Kernel is slow, so A holds leased events when it dies.
  BOOST_REQUIRE(http_call(kernel.port(), "POST", "/mock/faults", {{"Content-Type", "application/json"}},
                          R"({"latencyMs":1500})").status == 200);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    auto r = http_call(a.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                       checkout_body("victim-" + std::to_string(i)));
    BOOST_REQUIRE(r.status == 201);
    ids.push_back(parse_json(r.body)["orderId"].GetString());
  }
  a.proc().signal(SIGKILL);
  auto killed = std::chrono::steady_clock::now();
  BOOST_REQUIRE(http_call(kernel.port(), "POST", "/mock/faults", {{"Content-Type", "application/json"}},
                          R"({"latencyMs":0})").status == 200);
  persistence::connection pg{db};
  std::string pending;
  while (std::chrono::steady_clock::now() - killed < 10s) {
    pending = pg.exec("SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL").value(0, 0);
    if (pending == "0")
      break;
    std::this_thread::sleep_for(50ms);
  }
  auto drained_after = std::chrono::steady_clock::now() - killed;
  BOOST_REQUIRE_MESSAGE(pending == "0", pending << " events still pending");
  BOOST_TEST((drained_after < 3s), std::chrono::duration_cast<std::chrono::milliseconds>(drained_after).count()
                                     << " ms to drain");
  for (const auto& id : ids)
    BOOST_TEST(kernel_count(kernel.port(), id) == 1, id);
}

BOOST_AUTO_TEST_SUITE_END()
