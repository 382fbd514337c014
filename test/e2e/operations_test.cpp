// Operations: the metrics pass Prometheus's own checker, and no configured
// secret ever shows in a log line or a response.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "core/crypto.hpp"
#include "domain/multisig.hpp"
#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

const std::string proof_secret = "op-proof-secret-0123456789abcdefghijklmnop";
const std::string proof_secret_v2 = "op-proof-secret-v2-0123456789abcdefghijklmn";
const std::string delivery_key = "op-delivery-key-0123456789abcdefghijklmnopq";
const std::string api_token = "op-api-token-0123456789abcdefghijklmnopqrst";
const std::string admin_token = "op-admin-token-0123456789abcdefghijklmnopqr";
const std::string db_password = "artifact_publisher";  // the test cluster's, in DB_URL

std::string seed_of(char c) {
  return std::string(32, c);
}

} // namespace

BOOST_AUTO_TEST_SUITE(operations)

BOOST_AUTO_TEST_CASE(metrics_pass_promtool_and_secrets_never_leak) {
  auto registry = R"([{"id":"alice","publicKey":")" + crypto::base64_encode(crypto::ed25519_public_key(seed_of('a')))
                  + R"("},{"id":"bob","publicKey":")" + crypto::base64_encode(crypto::ed25519_public_key(seed_of('b')))
                  + R"("}])";
  kernel_process kernel{{"--approvers", registry}};
  service_process svc{fresh_database("ap_e2e_operations"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_PROOF_SECRET", proof_secret},
                       {"ARTIFACT_PUBLISHER_PROOF_SECRETS", R"({"v2":")" + proof_secret_v2 + "\"}"},
                       {"ARTIFACT_PUBLISHER_DELIVERY_KEY", delivery_key},
                       {"ARTIFACT_PUBLISHER_API_TOKEN", api_token},
                       {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token},
                       {"ARTIFACT_PUBLISHER_APPROVERS", registry},
                       {"ARTIFACT_PUBLISHER_LOG_LEVEL", "debug"}}};
  std::vector<http_reply> replies;
  auto call = [&](const std::string& method, const std::string& target, const std::string& body,
                  const std::string& token) {
    std::vector<std::pair<std::string, std::string>> h{{"Content-Type", "application/json"}};
    if (!token.empty())
      h.emplace_back("Authorization", "Bearer " + token);
    replies.push_back(http_call(svc.port(), method, target, h, body));
    return replies.back();
  };

  // A full checkout and its reads, the tools around it, and mistakes.
  auto order = call("POST", "/api/checkout",
                    R"({"customerId":"ops","email":"o@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})",
                    api_token);
  BOOST_REQUIRE_MESSAGE(order.status == 201, order.body);
  auto id = std::string{parse_json(order.body)["orderId"].GetString()};
  for (auto part : {"", "/license", "/delivery", "/proof"})
    BOOST_TEST(call("GET", "/api/checkout/" + id + part, "", api_token).status == 200);
  auto doc = parse_json(order.body);
  call("POST", "/api/proof/verify", R"({"proof":{"kid":"v1"},"payload":{}})", api_token);
  call("GET", "/api/proof/keys", "", api_token);
  call("POST", "/api/sandbox/run", R"({"instructions":[{"op":"license","payload":{"customerId":"c","skus":["creator-basic"]}}]})", api_token);
  BOOST_TEST(call("GET", "/api/checkout/" + id, "", "").status == 401);
  BOOST_TEST(call("GET", "/api/checkout/" + id, "", "wrong-token").status == 403);
  call("POST", "/api/checkout", "{broken", api_token);

  // A full multisig run.
  domain::upgrade_proposal p;
  p.version = "1.0.1";
  p.binary_hash = std::string(64, 'f');
  p.approvers = {"alice", "bob"};
  auto hash = domain::upgrade_payload_hash(p);
  auto upg = domain::upgrade_id_for(hash);
  BOOST_TEST(call("POST", "/api/multisig/upgrades",
                  R"({"version":"1.0.1","binaryHash":")" + p.binary_hash + R"(","approvers":["alice","bob"]})",
                  admin_token).status == 201);
  for (auto [who, seed] : {std::pair{"alice", 'a'}, std::pair{"bob", 'b'}}) {
    auto sig = crypto::base64_encode(crypto::ed25519_sign(seed_of(seed), domain::approval_message(upg, hash, who)));
    BOOST_TEST(call("POST", "/api/multisig/upgrades/" + upg + "/approvals",
                    std::string{R"({"approver":")"} + who + R"(","signature":")" + sig + "\"}", "").status == 201);
  }
  BOOST_TEST(call("POST", "/api/multisig/upgrades/" + upg + "/apply", "", admin_token).status == 200);
  call("GET", "/health", "", "");

  // Wait for the outbox to drain so the forwarder's log lines are in too: a
  // fixed pause was too short on a busy machine and idle on a quiet one.
  {
    persistence::connection db{svc.db_url()};
    auto pending = [&] {
      return db.exec("SELECT count(*) FROM audit_outbox WHERE delivered_at IS NULL").value(0, 0);
    };
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (pending() != "0" && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    BOOST_REQUIRE_MESSAGE(pending() == "0", pending() << " audit events still pending");
  }
  auto metrics = call("GET", "/metrics", "", "");
  BOOST_REQUIRE(metrics.status == 200);

  // Prometheus's own checker accepts the exposition.
  auto scrape = "/tmp/ap-e2e-metrics-" + std::to_string(::getpid()) + ".txt";
  auto verdict = scrape + ".promtool";
  { std::ofstream{scrape} << metrics.body; }
  int rc = shell("promtool check metrics < " + scrape + " > " + verdict + " 2>&1");
  auto complaints = read_file(verdict);
  BOOST_TEST(rc == 0, complaints);
  BOOST_TEST(complaints.empty(), complaints);
  std::remove(scrape.c_str());
  std::remove(verdict.c_str());
  for (auto family : {"ap_http_requests_total", "ap_http_request_duration_seconds_bucket",
                      "ap_checkouts_total", "ap_audit_lag_seconds_bucket", "ap_audit_outbox_pending",
                      "ap_audit_outbox_oldest_pending_seconds", "ap_audit_freshness_breaches_total",
                      "ap_actor_mailbox_size{actor=\"checkout\"}", "ap_actor_messages_total{actor=\"multisig\"}",
                      "ap_actor_processing_seconds_bucket{actor=\"database-worker\"",
                      "ap_actor_restarts_total", "ap_db_pool_busy", "ap_db_pool_size",
                      "ap_kernel_calls_total{call=\"audit\",outcome=\"ok\"}"})
    BOOST_TEST(metrics.body.find(family) != std::string::npos, family);

  // No secret anywhere: not in a response, not in a log line.
  auto log = read_file(svc.log());
  BOOST_REQUIRE(!log.empty());
  for (const auto& secret : {proof_secret, proof_secret_v2, delivery_key, api_token, admin_token,
                             std::string{":" + db_password + "@"}}) {
    BOOST_TEST(log.find(secret) == std::string::npos, "a log line holds " << secret);
    for (const auto& r : replies) {
      BOOST_TEST(r.body.find(secret) == std::string::npos, "a response holds " << secret);
      for (const auto& [name, value] : r.headers)
        BOOST_TEST(value.find(secret) == std::string::npos, "a header holds " << secret);
    }
  }
  // Every log line is one JSON object.
  std::istringstream lines{log};
  std::string line;
  std::size_t count = 0;
  while (std::getline(lines, line)) {
    rapidjson::Document d;
    d.Parse(line.c_str(), line.size());
    BOOST_TEST((!d.HasParseError() && d.IsObject() && d.HasMember("ts") && d.HasMember("level")
                && d.HasMember("msg")),
               line);
    ++count;
  }
  BOOST_TEST(count > 5u);
}

BOOST_AUTO_TEST_SUITE_END()
