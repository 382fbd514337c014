// What the service's log says about an upstream outage, with the real
// processes: a PostgreSQL stopped under a burst of checkouts and a Kernel
// down when the service starts. The log names the upstream and the reason
// once when it goes, once when it is back, and stays small however many
// requests fail meanwhile.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <sstream>
#include <thread>

#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

/// The lines holding every one of `parts`.
std::vector<std::string> lines_with(const std::string& log,
                                    std::initializer_list<std::string> parts) {
  std::vector<std::string> out;
  for (auto& line : lines_of(log)) {
    bool all = true;
    for (const auto& p : parts)
      all = all && line.find(p) != std::string::npos;
    if (all)
      out.push_back(line);
  }
  return out;
}

/// Waits until the log of `svc` has a line holding every one of `parts`.
bool log_shows(const service_process& svc, std::initializer_list<std::string> parts,
               std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  do {
    if (!lines_with(read_file(svc.log()), parts).empty())
      return true;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

http_reply checkout(std::uint16_t port, const std::string& customer) {
  return http_call(port, "POST", "/api/checkout",
                   {{"Content-Type", "application/json"}, {"Idempotency-Key", customer}},
                   R"({"customerId":")" + customer
                     + R"(","email":"l@example.com","currency":"usd","items":[{"sku":"artifact-license","quantity":1}]})");
}

const std::string unreachable_warning = R"("level":"warn","msg":"an upstream is unreachable")";
const std::string recovery_info = R"("level":"info","msg":"an upstream is reachable again")";

} // namespace

BOOST_AUTO_TEST_SUITE(log_signals)

BOOST_AUTO_TEST_CASE(postgresql_unreachable_under_a_burst_logs_once_and_stays_small) {
  pg_cluster cluster;
  kernel_process kernel;
  service_process svc{cluster.url(), {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                                      {"ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS", "2000"}}};
  BOOST_REQUIRE_EQUAL(checkout(svc.port(), "before").status, 201);

  cluster.stop();
  // A bounded burst: every checkout fails while the database is away.
  constexpr int clients = 4;
  constexpr int per_client = 150;
  std::atomic<int> failed{0};
  std::vector<std::thread> burst;
  for (int c = 0; c < clients; ++c)
    burst.emplace_back([&, c] {
      for (int i = 0; i < per_client; ++i) {
        auto r = checkout(svc.port(), "burst-" + std::to_string(c) + "-" + std::to_string(i));
        if (r.status != 201)
          ++failed;
      }
    });
  for (auto& t : burst)
    t.join();
  BOOST_TEST(failed.load() == clients * per_client);
  // Past the interval, one more failure brings the summary of those held back.
  std::this_thread::sleep_for(11s);
  BOOST_TEST(checkout(svc.port(), "after-the-interval").status != 201);

  cluster.start();
  BOOST_REQUIRE(wait_for_status(svc.port(), "/readyz", 200, 30s));
  BOOST_TEST(checkout(svc.port(), "after").status == 201);
  BOOST_TEST(log_shows(svc, {recovery_info, R"("upstream":"database")"}, 10s));

  auto log = read_file(svc.log());
  auto lines = lines_of(log);
  BOOST_TEST_MESSAGE(lines.size() << " log lines for " << failed.load() << " failed checkouts");
  // A line or two per failed request before; now a few per kind of failure.
  BOOST_TEST(lines.size() <= 80u, lines.size() << " lines");
  // What was held back is counted, not lost.
  BOOST_TEST(!lines_with(log, {"more like this in the last", R"("like":"database request failed")"})
                .empty());
  auto down = lines_with(log, {unreachable_warning, R"("upstream":"database")"});
  BOOST_REQUIRE_EQUAL(down.size(), 1u);
  // The reason is libpq's: the server shutting down, refusing, or gone mid-call.
  BOOST_TEST((down[0].find("\"reason\":\"") != std::string::npos
              && down[0].find("\"reason\":\"\"") == std::string::npos),
             down[0]);
  auto up = lines_with(log, {recovery_info, R"("upstream":"database")"});
  BOOST_REQUIRE_EQUAL(up.size(), 1u);
  BOOST_TEST(log.find(down[0]) < log.find(up[0]));
}

BOOST_AUTO_TEST_CASE(a_kernel_down_at_start_is_one_warning_and_its_recovery_one_info_line) {
  kernel_process kernel;
  kernel.stop();
  service_process svc{fresh_database("ap_e2e_log_kernel"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  // Checkouts go on; their audit events wait for the Kernel, tried again and
  // again.
  for (int i = 0; i < 20; ++i)
    BOOST_REQUIRE_EQUAL(checkout(svc.port(), "k-" + std::to_string(i)).status, 201);
  BOOST_REQUIRE(log_shows(svc, {unreachable_warning, R"("upstream":"kernel")"}, 15s));
  std::this_thread::sleep_for(3s);  // more failed attempts meanwhile
  kernel.start();
  BOOST_REQUIRE(log_shows(svc, {recovery_info, R"("upstream":"kernel")"}, 30s));

  auto log = read_file(svc.log());
  auto down = lines_with(log, {unreachable_warning, R"("upstream":"kernel")"});
  BOOST_REQUIRE_EQUAL(down.size(), 1u);
  BOOST_TEST(down[0].find(R"("reason":"connect: )") != std::string::npos, down[0]);
  auto up = lines_with(log, {recovery_info, R"("upstream":"kernel")"});
  BOOST_REQUIRE_EQUAL(up.size(), 1u);
  BOOST_TEST(log.find(down[0]) < log.find(up[0]));
  BOOST_TEST(lines_of(log).size() <= 30u, log);
}

BOOST_AUTO_TEST_SUITE_END()
