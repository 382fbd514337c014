// The real binaries, started as processes, against a real PostgreSQL.
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include "test/support/http_client.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/process.hpp"
#include "test/support/service.hpp"

using namespace ap::test;
using namespace std::chrono_literals;

namespace {

const std::string bin_dir = AP_BIN_DIR;

std::string log_path(const std::string& name) {
  return "/tmp/ap-e2e-" + name + "-" + std::to_string(::getpid()) + ".log";
}

// Runs `artifact-publisher migrate`; returns its exit code and output.
std::pair<int, std::string> run_migrate(const std::string& url) {
  auto log = log_path("migrate");
  process p{bin_dir + "/artifact-publisher", {"migrate"}, {{"ARTIFACT_PUBLISHER_DB_URL", url}}, log};
  int rc = p.wait(60s);
  auto out = read_file(log);
  std::remove(log.c_str());
  return {rc, out};
}

struct service {
  std::uint16_t port = free_port();
  std::string log = log_path("service");
  std::unique_ptr<process> proc;

  kernel_process kernel;

  explicit service(const std::string& db_url, std::map<std::string, std::string> extra = {}) {
    extra["ARTIFACT_PUBLISHER_DB_URL"] = db_url;
    extra["ARTIFACT_PUBLISHER_KERNEL_URL"] = kernel.url();
    extra["ARTIFACT_PUBLISHER_PORT"] = std::to_string(port);
    proc = std::make_unique<process>(bin_dir + "/artifact-publisher", std::vector<std::string>{"serve"},
                                     extra, log);
  }
  ~service() { std::remove(log.c_str()); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(service_process)

BOOST_AUTO_TEST_CASE(readyz_follows_postgresql_down_and_back) {
  pg_cluster cluster;
  auto [rc1, out1] = run_migrate(cluster.url());
  BOOST_TEST(rc1 == 0, out1);
  BOOST_TEST(out1.find("\"applied\":[\"0001_catalog\"") != std::string::npos, out1);
  auto [rc2, out2] = run_migrate(cluster.url());
  BOOST_TEST(rc2 == 0);
  BOOST_TEST(out2.find("\"applied\":[]") != std::string::npos, out2);

  service svc{cluster.url()};
  BOOST_REQUIRE_MESSAGE(wait_for_status(svc.port, "/readyz", 200, 15s), read_file(svc.log));
  auto health = http_call(svc.port, "GET", "/health");
  BOOST_TEST(health.status == 200);
  BOOST_TEST(health.body.find("\"service\":\"artifact-publisher\"") != std::string::npos);
  BOOST_TEST(health.body.find("\"status\":\"ok\"") != std::string::npos, health.body);
  BOOST_TEST(health.body.find("\"kernelHealthy\":true") != std::string::npos);
  BOOST_TEST(health.body.find("\"port\":" + std::to_string(svc.port)) != std::string::npos);

  cluster.stop();
  BOOST_TEST(wait_for_status(svc.port, "/readyz", 503, 15s));
  auto down = http_call(svc.port, "GET", "/readyz");
  BOOST_TEST(down.body.find("\"error\":\"not_ready\"") != std::string::npos);
  auto degraded = http_call(svc.port, "GET", "/health");
  BOOST_TEST(degraded.status == 200);
  BOOST_TEST(degraded.body.find("\"status\":\"degraded\"") != std::string::npos);
  BOOST_TEST(degraded.body.find("\"database\":\"unreachable\"") != std::string::npos);

  cluster.start();
  BOOST_TEST(wait_for_status(svc.port, "/readyz", 200, 20s));
  // A Kernel outage degrades health but not readiness.
  svc.kernel.stop();
  auto no_kernel = http_call(svc.port, "GET", "/health");
  BOOST_TEST(no_kernel.body.find("\"kernelHealthy\":false") != std::string::npos, no_kernel.body);
  BOOST_TEST(no_kernel.body.find("\"status\":\"degraded\"") != std::string::npos);
  BOOST_TEST(http_call(svc.port, "GET", "/readyz").status == 200);
  BOOST_TEST(svc.proc->running());  // recovered without a restart

  svc.proc->signal(SIGTERM);
  BOOST_TEST(svc.proc->wait(15s) == 0);
}

BOOST_AUTO_TEST_CASE(readyz_is_503_until_migrated) {
  auto url = fresh_database("ap_e2e_unmigrated");
  service svc{url};
  BOOST_REQUIRE_MESSAGE(wait_for_status(svc.port, "/readyz", 503, 15s), read_file(svc.log));
  auto r = http_call(svc.port, "GET", "/readyz");
  BOOST_TEST(r.body.find("migrations are pending") != std::string::npos);
  auto [rc, out] = run_migrate(url);
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(wait_for_status(svc.port, "/readyz", 200, 10s));
}

BOOST_AUTO_TEST_CASE(error_model_through_the_real_binary) {
  auto url = fresh_database("ap_e2e_errors");
  run_migrate(url);
  service svc{url};
  BOOST_REQUIRE_MESSAGE(wait_for_status(svc.port, "/readyz", 200, 15s), read_file(svc.log));
  auto missing = http_call(svc.port, "GET", "/api/nothing-here");
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(missing.header("content-type") == "application/json");
  BOOST_TEST(missing.body.find("\"error\":\"not_found\"") != std::string::npos);
  BOOST_TEST(!missing.header("x-request-id").empty());
  auto wrong = http_call(svc.port, "POST", "/health", {}, "{}");
  BOOST_TEST(wrong.status == 405);
  auto big = http_call(svc.port, "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                       std::string(100 * 1024, ' '));
  BOOST_TEST(big.status == 413);
  BOOST_TEST(big.body.find("\"error\":\"payload_too_large\"") != std::string::npos);
  auto metrics = http_call(svc.port, "GET", "/metrics");
  BOOST_TEST(metrics.status == 200);
  BOOST_TEST(metrics.header("content-type").rfind("text/plain; version=0.0.4", 0) == 0u);
  BOOST_TEST(metrics.body.find("ap_http_requests_total{route=\"/readyz\",method=\"GET\",status=\"200\"}")
             != std::string::npos);
  BOOST_TEST(metrics.body.find("ap_http_request_duration_seconds_bucket") != std::string::npos);
  BOOST_TEST(metrics.body.find("ap_actor_restarts_total{actor=\"database\"} 0") != std::string::npos);
  svc.proc->signal(SIGTERM);
  BOOST_TEST(svc.proc->wait(15s) == 0);
}

BOOST_AUTO_TEST_CASE(production_refuses_weak_secrets_and_names_them) {
  auto log = log_path("prod");
  process p{bin_dir + "/artifact-publisher",
            {"serve"},
            {{"ARTIFACT_PUBLISHER_ENV", "production"},
             {"ARTIFACT_PUBLISHER_PROOF_SECRET", "short-secret"},
             {"ARTIFACT_PUBLISHER_DELIVERY_KEY", ""},
             {"REPOWRITER_DELIVERY_KEY", ""},
             {"ARTIFACT_PUBLISHER_PORT", std::to_string(free_port())}},
            log};
  BOOST_TEST(p.wait(10s) == 2);
  auto out = read_file(log);
  std::remove(log.c_str());
  BOOST_TEST(out.find("ARTIFACT_PUBLISHER_PROOF_SECRET") != std::string::npos, out);
  BOOST_TEST(out.find("ARTIFACT_PUBLISHER_DELIVERY_KEY") != std::string::npos, out);
  BOOST_TEST(out.find("short-secret") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(cli_help_version_and_unknown_commands) {
  auto log = log_path("cli");
  process help{bin_dir + "/artifact-publisher", {"--help"}, {}, log};
  BOOST_TEST(help.wait(5s) == 0);
  process version{bin_dir + "/artifact-publisher", {"--version"}, {}, log};
  BOOST_TEST(version.wait(5s) == 0);
  process unknown{bin_dir + "/artifact-publisher", {"frobnicate"}, {}, log};
  BOOST_TEST(unknown.wait(5s) == 2);
  process mock_help{bin_dir + "/kernel-mock", {"--help"}, {}, log};
  BOOST_TEST(mock_help.wait(5s) == 0);
  auto out = read_file(log);
  std::remove(log.c_str());
  BOOST_TEST(out.find("usage: artifact-publisher") != std::string::npos);
  BOOST_TEST(out.find("artifact-publisher 0.") != std::string::npos);
  BOOST_TEST(out.find("unknown command 'frobnicate'") != std::string::npos);
  BOOST_TEST(out.find("usage: kernel-mock") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(kernel_mock_answers_health) {
  auto port = free_port();
  auto log = log_path("kernel");
  process mock{bin_dir + "/kernel-mock", {"--port", std::to_string(port)}, {}, log};
  BOOST_TEST(wait_for_status(port, "/health", 200, 10s));
  mock.signal(SIGTERM);
  BOOST_TEST(mock.wait(10s) == 0);
  std::remove(log.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
