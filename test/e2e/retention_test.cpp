// Retention end to end: with a short sweep interval, the janitor of a real
// service purges completed Idempotency-Keys and delivered outbox rows past
// retention, and nothing else. A key inside its window still replays; an
// order whose key and outbox rows are gone still reads delivered with its
// receipts; and checkouts go on while a large backlog is purged.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <cstdio>
#include <thread>
#include <unistd.h>

#include "core/json.hpp"
#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/process.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

std::string checkout_body(const std::string& customer) {
  return R"({"customerId":")" + customer + R"(","email":"r@example.com","currency":"usd",)"
         R"("items":[{"sku":"creator-basic","quantity":1}]})";
}

http_reply checkout(std::uint16_t port, const std::string& customer, const std::string& key) {
  return http_call(port, "POST", "/api/checkout",
                   {{"Content-Type", "application/json"}, {"Idempotency-Key", key}},
                   checkout_body(customer));
}

std::string str(const rapidjson::Value& v, const char* name) {
  BOOST_REQUIRE_MESSAGE(v.IsObject() && v.HasMember(name) && v[name].IsString(),
                        "missing string " << name);
  return v[name].GetString();
}

// A series of /metrics (its value; -1 when absent).
double metric(std::uint16_t port, const std::string& series) {
  auto text = http_call(port, "GET", "/metrics").body;
  auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1.0 : std::stod(text.substr(at + series.size() + 2));
}

// Short sweeps and the shortest retention periods the service accepts, under
// any setting `more` gives.
std::map<std::string, std::string> retention_env(const kernel_process& kernel,
                                                 std::map<std::string, std::string> more) {
  more.insert({{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
               {"ARTIFACT_PUBLISHER_RETENTION_SWEEP_INTERVAL_MS", "200"},
               {"ARTIFACT_PUBLISHER_IDEMPOTENCY_RETENTION_HOURS", "24"},
               {"ARTIFACT_PUBLISHER_OUTBOX_RETENTION_HOURS", "1"}});
  return more;
}

struct retention_stack {
  kernel_process kernel;
  service_process svc;
  persistence::connection db{svc.db_url()};

  explicit retention_stack(std::map<std::string, std::string> more = {})
      : svc{fresh_database("ap_e2e_retention"), retention_env(kernel, std::move(more))} {}

  std::string value(const std::string& sql, const persistence::params& p = {}) {
    auto rows = db.exec(sql, p);
    return rows.rows() ? rows.value(0, 0) : "";
  }

  // Polls `sql` until it answers `want` or `within` passes; answers the last.
  std::string wait_for(const std::string& sql, const std::string& want,
                       std::chrono::milliseconds within, const persistence::params& p = {}) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      auto got = value(sql, p);
      if (got == want || std::chrono::steady_clock::now() > deadline)
        return got;
      std::this_thread::sleep_for(50ms);
    }
  }

  // The order's `audit` member once it reads delivered (within 10 s).
  std::string delivered_audit(const std::string& order_id) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
      auto r = http_call(svc.port(), "GET", "/api/checkout/" + order_id);
      BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
      auto doc = parse_json(r.body);
      if (str(doc["audit"], "status") == "delivered")
        return json::canonical(doc["audit"]);
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "not delivered in time: " << r.body);
      std::this_thread::sleep_for(25ms);
    }
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(retention)

BOOST_AUTO_TEST_CASE(the_service_vacuums_the_queue_tables_each_interval) {
  retention_stack s{{{"ARTIFACT_PUBLISHER_QUEUE_VACUUM_INTERVAL_MS", "200"}}};
  auto port = s.svc.port();
  auto r = checkout(port, "cust-vac", "vac-key");
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  // Vacuums by the service's own connection (autovacuum's are counted apart).
  auto vacuums = [&](const char* table) {
    return std::stoll(s.value("SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = $1",
                              {std::string{table}}));
  };
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((vacuums("unfinished_checkouts") < 2 || vacuums("audit_outbox") < 2)
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  BOOST_TEST(vacuums("unfinished_checkouts") >= 2);
  BOOST_TEST(vacuums("audit_outbox") >= 2);
  BOOST_TEST(metric(port, "ap_queue_vacuums_total{outcome=\"done\"}") >= 2.0);
  BOOST_TEST(metric(port, "ap_queue_vacuums_total{outcome=\"failed\"}") == 0.0);
}

BOOST_AUTO_TEST_CASE(a_key_inside_the_window_replays_and_one_past_it_goes_while_its_order_stays) {
  retention_stack s;
  auto port = s.svc.port();
  auto kept = checkout(port, "cust-ret", "kept-key");
  BOOST_REQUIRE_MESSAGE(kept.status == 201, kept.body);
  auto kept_id = str(parse_json(kept.body), "orderId");
  auto aged = checkout(port, "cust-ret", "aged-key");
  BOOST_REQUIRE_MESSAGE(aged.status == 201, aged.body);
  auto aged_id = str(parse_json(aged.body), "orderId");
  auto kept_audit = s.delivered_audit(kept_id);
  auto aged_audit = s.delivered_audit(aged_id);

  // Delivered, the events of both have left the outbox (migration 0016):
  // the retention job has none of them to purge.
  BOOST_TEST(s.value("SELECT count(*) FROM audit_outbox") == "0");
  // Past retention: the key created and completed 25 h ago.
  s.db.exec("UPDATE idempotency_keys SET created_at = now() - interval '25 hours',"
            " updated_at = now() - interval '25 hours' WHERE idem_key = 'aged-key'");
  BOOST_TEST(s.wait_for("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'aged-key'", "0",
                        10s) == "0");

  // Its order is the business record: it reads as before, delivered, with
  // the receipts of both its events.
  auto after = http_call(port, "GET", "/api/checkout/" + aged_id);
  BOOST_REQUIRE(after.status == 200);
  auto after_doc = parse_json(after.body);
  BOOST_TEST(json::canonical(after_doc["audit"]) == aged_audit);
  BOOST_TEST(after_doc["audit"]["receipts"].Size() == 2u);
  BOOST_TEST(s.value("SELECT count(*) FROM orders") == "2");
  BOOST_TEST(s.value("SELECT count(*) FROM audit_receipts WHERE order_id = $1", {aged_id}) == "2");

  // Inside the window: the key stays, and a replay answers the same order,
  // byte for byte.
  BOOST_TEST(s.value("SELECT count(*) FROM idempotency_keys WHERE idem_key = 'kept-key'") == "1");
  auto replay = checkout(port, "cust-ret", "kept-key");
  BOOST_TEST(replay.status == 201);
  BOOST_TEST(replay.body == kept.body);
  BOOST_TEST(s.delivered_audit(kept_id) == kept_audit);

  // The counters and the log line follow the sweep's last batch.
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(metric(port, R"(ap_retention_rows_purged_total{table="idempotency_keys"})") == 1.0);
  BOOST_TEST(metric(port, R"(ap_retention_rows_purged_total{table="audit_outbox"})") == 0.0);
  // The oldest kept are the young ones: seconds old, not hours.
  auto oldest_key = metric(port, R"(ap_retention_oldest_kept_seconds{table="idempotency_keys"})");
  BOOST_TEST(oldest_key >= 0.0);
  BOOST_TEST(oldest_key < 3600.0);
  BOOST_TEST(read_file(s.svc.log()).find("retention sweep purged rows") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(checkouts_go_on_while_a_backlog_is_purged) {
  retention_stack s;
  auto port = s.svc.port();
  // 200,000 of each, past retention, as a service that ran for days
  // without a janitor leaves them (delivered outbox rows: as a release from
  // before migration 0016 left them).
  s.db.exec("INSERT INTO idempotency_keys (customer_id, idem_key, fingerprint, state, response_body,"
            " created_at, updated_at)"
            " SELECT 'cust-backlog', 'k' || i, 'fp', 'completed', '{}',"
            "        now() - interval '30 hours', now() - interval '30 hours'"
            " FROM generate_series(1, 200000) i");
  s.db.exec("INSERT INTO audit_outbox (event_id, event_type, payload, created_at, delivered_at)"
            " SELECT 'evt_backlog_' || i, 'order.completed', '{}',"
            "        now() - interval '3 hours', now() - interval '2 hours'"
            " FROM generate_series(1, 200000) i");
  auto backlog = [&] {
    return std::stoll(s.value("SELECT count(*) FROM idempotency_keys WHERE customer_id = 'cust-backlog'"))
           + std::stoll(s.value("SELECT count(*) FROM audit_outbox WHERE event_id LIKE 'evt_backlog_%'"));
  };

  auto at_start = backlog();
  constexpr int threads = 4;
  constexpr int per_thread = 50;
  std::atomic<int> created{0};
  std::vector<std::thread> clients;
  auto started = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t)
    clients.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto r = checkout(port, "cust-during", "during-" + std::to_string(t) + "-" + std::to_string(i));
        if (r.status == 201)
          ++created;
        else
          BOOST_TEST_MESSAGE("checkout answered " << r.status << " " << r.body);
      }
    });
  for (auto& c : clients)
    c.join();
  auto took = std::chrono::steady_clock::now() - started;
  auto at_end = backlog();
  BOOST_TEST_MESSAGE("200 checkouts in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                     << " ms; backlog " << at_start << " -> " << at_end);
  BOOST_TEST(created.load() == threads * per_thread);
  // The purge was under way while they ran.
  BOOST_TEST(at_start > 0);
  BOOST_TEST(at_end < at_start);

  BOOST_TEST(s.wait_for("SELECT count(*) FROM idempotency_keys WHERE customer_id = 'cust-backlog'",
                        "0", 60s) == "0");
  BOOST_TEST(s.wait_for("SELECT count(*) FROM audit_outbox WHERE event_id LIKE 'evt_backlog_%'", "0",
                        60s) == "0");
  // What the checkouts wrote is inside its window, and stays.
  BOOST_TEST(s.value("SELECT count(*) FROM idempotency_keys WHERE customer_id = 'cust-during'")
             == std::to_string(threads * per_thread));
  BOOST_TEST(s.value("SELECT count(*) FROM orders") == std::to_string(threads * per_thread));
  BOOST_TEST(s.wait_for("SELECT count(*) FROM audit_receipts r JOIN orders o USING (order_id)"
                        " WHERE o.customer_id = 'cust-during'",
                        std::to_string(2 * threads * per_thread), 10s)
             == std::to_string(2 * threads * per_thread));
  BOOST_TEST(s.value("SELECT count(*) FROM audit_outbox") == "0");
  std::this_thread::sleep_for(500ms);
  BOOST_TEST(metric(port, R"(ap_retention_rows_purged_total{table="audit_outbox"})") == 200000.0);
  BOOST_TEST(metric(port, R"(ap_retention_rows_purged_total{table="idempotency_keys"})") == 200000.0);
}

BOOST_AUTO_TEST_CASE(a_key_retention_under_a_day_is_refused_at_start_by_name) {
  auto log = "/tmp/ap-e2e-retention-" + std::to_string(::getpid()) + ".log";
  process svc{std::string{AP_BIN_DIR} + "/artifact-publisher", {"serve"},
              {{"ARTIFACT_PUBLISHER_PORT", std::to_string(free_port())},
               {"ARTIFACT_PUBLISHER_IDEMPOTENCY_RETENTION_HOURS", "12"}},
              log};
  BOOST_TEST(svc.wait(10s) != 0);
  auto text = read_file(log);
  BOOST_TEST(text.find("ARTIFACT_PUBLISHER_IDEMPOTENCY_RETENTION_HOURS") != std::string::npos, text);
  std::remove(log.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
