// Audit forwarding with the real kernel-mock process: an outage under steady
// checkouts loses nothing, duplicates nothing, and events written while the
// Kernel is up land within the 3 s budget.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <ctime>
#include <mutex>
#include <signal.h>
#include <thread>

#include "persistence/connection.hpp"
#include "test/e2e/fault_support.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

struct placed_order {
  std::string order_id;
  std::chrono::system_clock::time_point acknowledged;
};

// RFC 3339 (…Z, optional fraction) to a time point.
std::chrono::system_clock::time_point parse_time(const std::string& text) {
  std::tm tm{};
  strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  auto t = std::chrono::system_clock::from_time_t(timegm(&tm));
  auto dot = text.find('.');
  if (dot != std::string::npos)
    t += std::chrono::milliseconds(std::stoi(text.substr(dot + 1, 3)));
  return t;
}

http_reply kernel_search(std::uint16_t port, const std::string& order_id) {
  return http_call(port, "POST", "/kernel/audit/search", {{"Content-Type", "application/json"}},
                   R"({"criteria":{"orderId":")" + order_id + R"("},"limit":10})");
}

} // namespace

BOOST_AUTO_TEST_SUITE(audit_forwarding_end_to_end)

BOOST_AUTO_TEST_CASE(a_ten_second_kernel_outage_under_steady_checkouts) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_audit"), {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};

  std::vector<placed_order> orders;
  std::mutex orders_mutex;
  std::atomic<bool> running{true};
  std::atomic<int> failures{0};
  std::atomic<int> retried{0};
  std::thread load([&] {
    for (int i = 0; running; ++i) {
      // Each checkout carries an Idempotency-Key, as a careful client's
      // does: a request that timed out on a starved machine is asked again
      // and answered from the stored result, never as a second order.
      auto body = R"({"customerId":"steady-)" + std::to_string(i)
                  + R"(","email":"s@example.com","currency":"usd","items":[{"sku":"artifact-license","quantity":1}]})";
      std::vector<std::pair<std::string, std::string>> headers{
        {"Content-Type", "application/json"}, {"Idempotency-Key", "steady-" + std::to_string(i)}};
      auto r = http_call(svc.port(), "POST", "/api/checkout", headers, body);
      for (int attempt = 0; r.status != 201 && attempt < 3; ++attempt) {
        ++retried;
        BOOST_TEST_MESSAGE("checkout " << i << " answered " << r.status << " " << r.body);
        std::this_thread::sleep_for(1s);
        r = http_call(svc.port(), "POST", "/api/checkout", headers, body);
      }
      auto now = std::chrono::system_clock::now();
      if (r.status != 201) {
        ++failures;
      } else {
        auto doc = parse_json(r.body);
        std::lock_guard<std::mutex> guard{orders_mutex};
        orders.push_back({doc["orderId"].GetString(), now});
      }
      std::this_thread::sleep_for(50ms);
    }
  });

  std::this_thread::sleep_for(2s);
  auto outage_start = std::chrono::system_clock::now();
  kernel.stop();
  std::this_thread::sleep_for(10s);
  kernel.start();
  auto outage_end = std::chrono::system_clock::now();
  std::this_thread::sleep_for(3s);
  running = false;
  load.join();

  // Checkouts never waited for the Kernel: they went on being acknowledged
  // throughout the outage.
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST_MESSAGE("checkouts asked again after a timeout: " << retried.load());
  std::size_t during_outage = 0;
  for (const auto& o : orders)
    during_outage += o.acknowledged > outage_start + 1s && o.acknowledged < outage_end ? 1 : 0;
  BOOST_TEST(during_outage >= 20u, during_outage << " checkouts acknowledged during the outage");
  BOOST_REQUIRE(orders.size() > 30u);

  // The outbox drains.
  persistence::connection db{svc.db_url()};
  std::string pending = "?";
  for (int i = 0; i < 100; ++i) {
    pending = db.exec("SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL").value(0, 0);
    if (pending == "0")
      break;
    std::this_thread::sleep_for(100ms);
  }
  BOOST_REQUIRE_MESSAGE(pending == "0", pending << " events still pending");

  std::size_t on_time_checked = 0;
  for (const auto& o : orders) {
    auto found = parse_json(kernel_search(kernel.port(), o.order_id).body);
    const auto& results = found["results"];
    int completed = 0;
    int generated = 0;
    std::chrono::system_clock::time_point landed{};
    for (const auto& e : results.GetArray()) {
      std::string type = e["eventType"].GetString();
      if (type == "order.completed") {
        ++completed;
        landed = parse_time(e["ts"].GetString());
      }
      generated += type == "delivery.generated" ? 1 : 0;
    }
    BOOST_TEST(completed == 1, o.order_id << " has " << completed << " order.completed events");
    BOOST_TEST(generated == 1, o.order_id << " has " << generated << " delivery.generated events");
    // Orders acknowledged while the Kernel was up (with a margin around the
    // outage for events in flight) landed within the budget of their 201.
    bool kernel_was_up = o.acknowledged + 500ms < outage_start || o.acknowledged > outage_end;
    if (kernel_was_up && completed == 1) {
      ++on_time_checked;
      BOOST_TEST((landed - o.acknowledged < 3s), o.order_id << " landed "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(landed - o.acknowledged).count()
                   << " ms after its 201");
    }
  }
  BOOST_TEST(on_time_checked >= 5u);

  auto verify = parse_json(http_call(kernel.port(), "GET", "/kernel/audit/verify").body);
  BOOST_TEST(verify["valid"].GetBool());
  BOOST_TEST(verify["length"].GetUint64() == 2 * orders.size());

  // The outage shows in the metrics: breaches counted, and every event's lag
  // observed once, when its receipt checked out. Each series is rendered from
  // start-up, so only their values say anything.
  BOOST_TEST(metric(svc.port(), "ap_audit_freshness_breaches_total") > 0.0);
  BOOST_TEST(metric(svc.port(), "ap_audit_lag_seconds_count") == 2.0 * orders.size());
  BOOST_TEST(metric(svc.port(), "ap_audit_events_forwarded_total") == 2.0 * orders.size());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(shutdown_flush)

BOOST_AUTO_TEST_CASE(sigterm_flushes_the_outbox_before_exiting) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_flush"), {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  // A slow Kernel keeps the event in flight when SIGTERM arrives.
  BOOST_REQUIRE(http_call(kernel.port(), "POST", "/mock/faults", {{"Content-Type", "application/json"}},
                          R"({"latencyMs":1000})").status == 200);
  auto r = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                     R"({"customerId":"flush","email":"f@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
  BOOST_REQUIRE(r.status == 201);
  auto order_id = std::string{parse_json(r.body)["orderId"].GetString()};
  svc.proc().signal(SIGTERM);
  BOOST_TEST(svc.proc().wait(10s) == 0);
  persistence::connection db{svc.db_url()};
  BOOST_TEST(db.exec("SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL").value(0, 0) == "0");
  BOOST_TEST(kernel_search(kernel.port(), order_id).body.find("order.completed") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(dead_letters_end_to_end)

// A Kernel that refuses every delivery.generated event with 413: each is
// submitted once and dead-lettered (counted, shown by the gauge, logged
// without its payload), the order.completed events beside it and a 500
// storm after it are retried and delivered as before, and once the cause is
// gone the operator's requeue gets the refused event into the Kernel.
BOOST_AUTO_TEST_CASE(a_refused_event_is_dead_lettered_once_and_requeued_by_the_operator) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_dead_letters"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  auto set_faults = [&](const std::string& body) {
    BOOST_REQUIRE(http_call(kernel.port(), "POST", "/mock/faults",
                            {{"Content-Type", "application/json"}}, body).status == 200);
  };
  auto refused = [&] {
    return parse_json(http_call(kernel.port(), "GET", "/mock/faults").body)["refused"].GetInt64();
  };
  auto checkout = [&](const std::string& customer) {
    auto r = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                       R"({"customerId":")" + customer + R"(","email":"d@example.com","currency":"usd",)"
                       R"("items":[{"sku":"creator-basic","quantity":1}]})");
    BOOST_REQUIRE(r.status == 201);
    return std::string{parse_json(r.body)["orderId"].GetString()};
  };
  auto in_kernel = [&](const std::string& order_id, const char* type) {
    return kernel_search(kernel.port(), order_id).body.find(type) != std::string::npos;
  };
  persistence::connection db{svc.db_url()};

  set_faults(R"({"refuseEventType":"delivery.generated"})");
  auto first = checkout("dead-letter-1");
  // A few seconds: a retried event would have been sent a dozen times.
  std::this_thread::sleep_for(4s);
  BOOST_TEST(refused() == 1);
  BOOST_TEST(in_kernel(first, "order.completed"));
  BOOST_TEST(!in_kernel(first, "delivery.generated"));
  auto dead = db.exec("SELECT event_type, dead_letter_status, dead_letter_reason, payload FROM audit_outbox"
                      " WHERE dead_lettered_at IS NOT NULL");
  BOOST_REQUIRE(dead.rows() == 1);
  BOOST_TEST(dead.value(0, 0) == "delivery.generated");
  BOOST_TEST(dead.value(0, 1) == "413");
  BOOST_TEST(dead.value(0, 2).find("too large") != std::string::npos);
  BOOST_TEST(metric(svc.port(), "ap_audit_dead_letters_total") == 1.0);
  BOOST_TEST(metric(svc.port(), "ap_audit_outbox_dead_lettered") == 1.0);
  BOOST_TEST(metric(svc.port(), "ap_audit_outbox_pending") == 0.0);
  // One error line names the event and the Kernel's answer, not the payload.
  auto log = read_file(svc.log());
  auto line_at = log.find("it is dead-lettered");
  BOOST_REQUIRE(line_at != std::string::npos);
  auto line = log.substr(log.rfind('\n', line_at) + 1);
  line = line.substr(0, line.find('\n'));
  BOOST_TEST(line.find(first) != std::string::npos, line);  // the orderId
  BOOST_TEST(line.find("delivery.generated") != std::string::npos, line);
  BOOST_TEST(line.find("413") != std::string::npos, line);
  BOOST_TEST(line.find(dead.value(0, 3)) == std::string::npos, line);
  BOOST_TEST(log.find("it is dead-lettered", line_at + 1) == std::string::npos);

  // A Kernel answering 500 to everything: the events wait and are retried,
  // none is dead-lettered.
  set_faults(R"({"refuseEventType":"","errorRate":1})");
  auto second = checkout("dead-letter-2");
  std::this_thread::sleep_for(2s);
  BOOST_TEST(!in_kernel(second, "order.completed"));
  set_faults(R"({"errorRate":0})");
  for (int i = 0; i < 50 && !(in_kernel(second, "order.completed") && in_kernel(second, "delivery.generated")); ++i)
    std::this_thread::sleep_for(100ms);
  BOOST_TEST(in_kernel(second, "order.completed"));
  BOOST_TEST(in_kernel(second, "delivery.generated"));
  BOOST_TEST(metric(svc.port(), "ap_audit_dead_letters_total") == 1.0);
  BOOST_TEST(!in_kernel(first, "delivery.generated"));

  // The cause fixed, the operator requeues it: the Kernel gets it once more.
  auto env = std::map<std::string, std::string>{{"ARTIFACT_PUBLISHER_DB_URL", svc.db_url()}};
  BOOST_TEST(run_cli({"requeue-dead-letters", "--event-id"}, env).first == 2);
  auto [rc, out] = run_cli({"requeue-dead-letters"}, env);
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out.find(R"({"requeued":1})") != std::string::npos, out);
  for (int i = 0; i < 50 && !in_kernel(first, "delivery.generated"); ++i)
    std::this_thread::sleep_for(100ms);
  BOOST_TEST(in_kernel(first, "delivery.generated"));
  BOOST_TEST(refused() == 1);
  std::this_thread::sleep_for(1500ms);  // a refresh of the gauges
  BOOST_TEST(metric(svc.port(), "ap_audit_outbox_dead_lettered") == 0.0);
  BOOST_TEST(db.exec("SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL").value(0, 0) == "0");
  BOOST_TEST(run_cli({"requeue-dead-letters"}, env).second.find(R"({"requeued":0})") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
