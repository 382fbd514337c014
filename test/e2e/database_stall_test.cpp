// A database that stops answering, under steady checkouts against a real
// processor (payments-mock) and Kernel (kernel-mock): commits stalled by a
// synchronous standby that does not exist, the orders table locked past
// lock_timeout, and calls cancelled mid-statement by the service's own
// call deadline. Each drill checks that the open probes answer within a
// second, that clients get 503/504 naming their order and never wait past
// REQUEST_TIMEOUT_MS, that checkouts succeed again within 10 s of the
// release without a restart, that every checkout left in doubt ends final
// (a retry with its key replays it), and SPEC §9's invariants against the
// processor's own records.
#include <boost/test/unit_test.hpp>

#include <functional>
#include <map>
#include <thread>

#include "persistence/connection.hpp"
#include "test/e2e/fault_support.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/process.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr auto request_timeout = 2000ms;
/// What "within a second" allows a probe, measured by the client.
constexpr auto probe_bound = 1000ms;
/// Scheduling slack on top of REQUEST_TIMEOUT_MS for an answer measured by
/// the client (two cores, sanitizers).
constexpr auto answer_slack = 500ms;

struct timed_reply {
  http_reply reply;
  std::chrono::milliseconds took{0};
};

timed_reply timed_get(std::uint16_t port, const std::string& path) {
  auto started = clock_type::now();
  timed_reply out;
  out.reply = http_call(port, "GET", path);
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - started);
  return out;
}

std::string superuser_url(const std::string& url) {
  return "postgresql://postgres" + url.substr(url.find('@'));
}

/// One drill: what stalls the database, what releases it, and what the
/// probes must say meanwhile.
struct drill {
  std::string name;
  std::function<void()> stall;
  std::function<void()> release;
  /// The database stops committing: /readyz must say 503 and /health must
  /// name the database. (Behind a lock on one table it still commits, and
  /// the probes only have to answer in time.)
  bool commits_stalled = false;
  /// The service's own call deadline must have cancelled calls.
  bool expect_cancels = false;
  std::chrono::seconds hold{6};
};

void run_drill(const service_process& svc, const payments_process& processor,
               const kernel_process& kernel, const drill& d) {
  const auto port = svc.port();
  mixed_load load{port, d.name};
  BOOST_REQUIRE(load.keyless.wait_for_more(20, 30s));
  auto cancels_before = metric(port, "ap_db_calls_past_deadline_total");

  d.stall();
  auto stalled_at = clock_type::now();
  std::this_thread::sleep_for(1500ms);
  int probes = 0;
  while (clock_type::now() < stalled_at + d.hold) {
    auto ready = timed_get(port, "/readyz");
    auto health = timed_get(port, "/health");
    ++probes;
    BOOST_TEST(ready.reply.complete);
    BOOST_TEST(health.reply.complete);
    BOOST_TEST(ready.took.count() < probe_bound.count(),
               "/readyz took " << ready.took.count() << " ms");
    BOOST_TEST(health.took.count() < probe_bound.count(),
               "/health took " << health.took.count() << " ms");
    BOOST_TEST(health.reply.status == 200);
    if (d.commits_stalled) {
      BOOST_TEST(ready.reply.status == 503, ready.reply.status << " " << ready.reply.body);
      auto doc = parse_json(health.reply.body);
      BOOST_TEST(std::string{doc["status"].GetString()} == "degraded");
      BOOST_TEST(std::string{doc["database"].GetString()} != "ok");
      bool names_database = false;
      if (doc.HasMember("reasons"))
        for (const auto& r : doc["reasons"].GetArray())
          names_database |= std::string{r.GetString()}.find("database") != std::string::npos;
      BOOST_TEST(names_database, health.reply.body);
    }
    std::this_thread::sleep_for(400ms);
  }
  BOOST_TEST(probes >= 3);
  if (d.expect_cancels)
    BOOST_TEST(metric(port, "ap_db_calls_past_deadline_total") > cancels_before);

  d.release();
  auto released_at = clock_type::now();
  // Recovery without a restart: a checkout acknowledged and /readyz 200.
  bool checkout_back = false, ready_back = false;
  while (clock_type::now() < released_at + 10s && !(checkout_back && ready_back)) {
    if (!checkout_back)
      for (const auto& o : load.keyless.outcomes())
        checkout_back |= o.status == 201 && o.at > released_at;
    if (!ready_back)
      ready_back = http_call(port, "GET", "/readyz").status == 200;
    std::this_thread::sleep_for(100ms);
  }
  auto recovered_in = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now()
                                                                             - released_at);
  BOOST_TEST(checkout_back, "no checkout succeeded within 10 s of the release");
  BOOST_TEST(ready_back, "/readyz was not 200 within 10 s of the release");
  BOOST_TEST_MESSAGE(d.name << ": recovered " << recovered_in.count() << " ms after the release");
  BOOST_REQUIRE(load.keyless.wait_for_more(10, 30s));
  auto outcomes = load.stop();

  // While it lasted: answers within REQUEST_TIMEOUT_MS, and those that were
  // not final name their order.
  std::size_t in_doubt = 0;
  for (const auto& o : outcomes) {
    BOOST_TEST(o.status != 0, "a checkout got no answer");
    BOOST_TEST(o.latency.count() <= (request_timeout + answer_slack).count(),
               o.status << " after " << o.latency.count() << " ms");
    if (o.status >= 500)
      ++in_doubt;
  }
  BOOST_TEST(in_doubt > 0u, "no checkout was held up by the stall");
  auto followed = follow_doubts(port, processor.port(), outcomes);
  auto settled = settle_keyed_doubts(port, outcomes);
  BOOST_TEST_MESSAGE(d.name << ": " << in_doubt << " answers in doubt, " << followed.completed
                            << " of their orders completed, " << followed.never_recorded
                            << " never recorded; " << settled << " keys settled by a retry");
  persistence::connection db{svc.db_url()};
  BOOST_TEST(wait_until_finished(db, 30s) == "0");
  check_invariants(svc.db_url(), kernel.port(), outcomes);
  check_processor_invariants(svc.db_url(), processor.port());
  BOOST_TEST(read_processor_records(processor.port()).refunds.empty());
  // The log says so once, and once again when it is over.
  if (d.commits_stalled) {
    std::size_t down = 0, up = 0;
    // The recovery is logged once no call has failed for database_settle.
    std::string log;
    for (int i = 0; i < 100; ++i) {
      log = read_file(svc.log());
      if (log.find("an upstream is reachable again") != std::string::npos)
        break;
      std::this_thread::sleep_for(100ms);
    }
    for (std::size_t at = 0, end; at < log.size(); at = end + 1) {
      end = log.find('\n', at);
      if (end == std::string::npos)
        end = log.size();
      auto line = log.substr(at, end - at);
      if (line.find("\"upstream\":\"database\"") == std::string::npos)
        continue;
      if (line.find("an upstream is unreachable") != std::string::npos)
        ++down;
      else if (line.find("an upstream is reachable again") != std::string::npos)
        ++up;
      else
        continue;
      BOOST_TEST_MESSAGE(line);
    }
    BOOST_TEST(down == 1u);
    BOOST_TEST(up == 1u);
  }
}

// Another session holds `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE` for
// 6 s while the service runs with `limits` on its database calls.
void orders_locked_drill(const std::string& name, const std::map<std::string, std::string>& limits,
                         bool expect_cancels) {
  payments_process processor;
  kernel_process kernel;
  auto env = stripe_env(processor, kernel);
  for (const auto& [variable, value] : limits)
    env[variable] = value;
  service_process svc{fresh_database("ap_e2e_stall_" + name), env};
  std::thread locker;
  drill d;
  d.name = name;
  d.expect_cancels = expect_cancels;
  d.stall = [&] {
    locker = std::thread{[url = svc.db_url()] { lock_orders_for(url, 6s); }};
  };
  d.release = [&] { locker.join(); };
  d.hold = 5s;
  run_drill(svc, processor, kernel, d);
}

} // namespace

BOOST_AUTO_TEST_SUITE(database_stalls)

// A server whose commits wait for a synchronous standby that never comes,
// as a promoted standby that kept synchronous_standby_names does; released
// by resetting the setting.
BOOST_AUTO_TEST_CASE(commits_stalled_by_a_missing_synchronous_standby) {
  pg_cluster cluster;
  payments_process processor;
  kernel_process kernel;
  service_process svc{cluster.url(), stripe_env(processor, kernel)};
  persistence::connection admin{superuser_url(cluster.url())};
  drill d;
  d.name = "syncrep";
  d.commits_stalled = true;
  d.expect_cancels = true;
  d.stall = [&] {
    admin.exec("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
    admin.exec("SELECT pg_reload_conf()");
  };
  d.release = [&] {
    admin.exec("ALTER SYSTEM RESET synchronous_standby_names");
    admin.exec("SELECT pg_reload_conf()");
  };
  run_drill(svc, processor, kernel, d);
}

// Another session holds the orders table: each store gives up at
// lock_timeout (1 s, under its 1.5 s call deadline) with 55P03.
BOOST_AUTO_TEST_CASE(orders_locked_past_lock_timeout) {
  orders_locked_drill("lock", {{"ARTIFACT_PUBLISHER_DB_CALL_DEADLINE_MS", "1500"},
                               {"ARTIFACT_PUBLISHER_DB_LOCK_TIMEOUT_MS", "1000"}},
                      false);
}

// No server-side limit at all: only the service's call deadline ends the
// statements waiting on the lock, cancelling them mid-statement
// (PQcancel); the cancelled transactions roll back and their checkouts are
// answered in doubt.
BOOST_AUTO_TEST_CASE(calls_cancelled_mid_statement_by_the_call_deadline) {
  orders_locked_drill("cancel", {{"ARTIFACT_PUBLISHER_DB_CALL_DEADLINE_MS", "800"},
                                 {"ARTIFACT_PUBLISHER_DB_LOCK_TIMEOUT_MS", "0"},
                                 {"ARTIFACT_PUBLISHER_DB_STATEMENT_TIMEOUT_MS", "0"}},
                      true);
}

BOOST_AUTO_TEST_SUITE_END()
