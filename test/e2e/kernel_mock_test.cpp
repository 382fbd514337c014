// The kernel-mock process through its HTTP API.
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/multisig.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;
const header_list json_type{{"Content-Type", "application/json"}};

std::string seed_of(char c) {
  return std::string(32, c);
}

/// The registry of `ids`, each with the key of the seed its first letter makes.
std::string registry_json(const std::vector<std::string>& ids = {"alice", "bob"}) {
  std::string out = "[";
  for (const auto& id : ids)
    out += std::string{out.size() > 1 ? "," : ""} + R"({"id":")" + id + R"(","publicKey":")"
           + crypto::base64_encode(crypto::ed25519_public_key(seed_of(id[0]))) + R"("})";
  return out + "]";
}

http_reply post(std::uint16_t port, const std::string& target, const std::string& body) {
  return http_call(port, "POST", target, json_type, body);
}

std::string audit_body(const std::string& event_id, const std::string& order_id) {
  return R"({"eventType":"order.completed","payload":{"orderId":")" + order_id
         + R"(","total":1},"metadata":{"eventId":")" + event_id + R"(","source":"test"}})";
}

/// A proposal of alice and bob, and the steps of the multisig flow against
/// one kernel-mock, with approvals signed by the approvers' keys.
struct upgrade_flow {
  kernel_process& k;
  domain::upgrade_proposal p;
  std::string hash;
  std::string id;

  upgrade_flow(kernel_process& mock, const std::string& version) : k(mock) {
    p.version = version;
    p.binary_hash = std::string(64, 'c');
    p.approvers = {"alice", "bob"};
    hash = domain::upgrade_payload_hash(p);
    id = domain::upgrade_id_for(hash);
  }
  http_reply propose() const {
    return post(k.port(), "/kernel/upgrade",
                R"({"version":")" + p.version + R"(","binaryHash":")" + p.binary_hash
                  + R"(","approvers":["alice","bob"]})");
  }
  http_reply approve(char seed, const std::string& who) const {
    auto sig = crypto::base64_encode(crypto::ed25519_sign(seed_of(seed), domain::approval_message(id, hash, who)));
    return post(k.port(), "/kernel/upgrade/" + id + "/approve",
                R"({"approverId":")" + who + R"(","signature":")" + sig + R"("})");
  }
  http_reply apply() const {
    return http_call(k.port(), "POST", "/kernel/upgrade/" + id + "/apply", {{"X-Applied-By", "ops"}});
  }
  http_reply read() const { return http_call(k.port(), "GET", "/kernel/upgrade/" + id); }
};

std::vector<std::string> lines_of(const std::string& file) {
  std::vector<std::string> out;
  std::istringstream in{read_file(file)};
  for (std::string line; std::getline(in, line);)
    out.push_back(line);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(kernel_mock_process)

BOOST_AUTO_TEST_CASE(audit_log_is_chained_signed_idempotent_and_searchable) {
  kernel_process k;
  auto first = post(k.port(), "/kernel/audit", audit_body("e1", "o1"));
  BOOST_TEST(first.status == 202);
  auto again = post(k.port(), "/kernel/audit", audit_body("e1", "o1"));
  BOOST_TEST(again.body == first.body);  // stored once, answered again
  auto second = parse_json(post(k.port(), "/kernel/audit", audit_body("e2", "o2")).body);
  auto one = parse_json(first.body);
  BOOST_TEST(std::string{one["prevHash"].GetString()}.empty());
  BOOST_TEST(std::string{second["prevHash"].GetString()} == one["hash"].GetString());
  // hash = SHA-256(canonical payload ‖ prev hash bytes), signed with the published key.
  auto prev = *crypto::hex_decode(one["hash"].GetString());
  BOOST_TEST(std::string{second["hash"].GetString()}
             == crypto::sha256_hex(json::canonical(second["payload"]) + prev));
  auto keys = parse_json(http_call(k.port(), "GET", "/kernel/keys").body);
  auto pub = crypto::base64_decode(keys["signers"][0]["publicKey"].GetString());
  BOOST_REQUIRE(pub);
  BOOST_TEST(crypto::ed25519_verify(*pub, *crypto::hex_decode(second["hash"].GetString()),
                                    *crypto::base64_decode(second["signature"].GetString())));
  auto found = parse_json(post(k.port(), "/kernel/audit/search", R"({"criteria":{"orderId":"o2"}})").body);
  BOOST_TEST(found["results"].Size() == 1u);
  auto by_id = http_call(k.port(), "GET", std::string{"/kernel/audit/"} + second["id"].GetString());
  BOOST_TEST(by_id.status == 200);
  auto verify = parse_json(http_call(k.port(), "GET", "/kernel/audit/verify").body);
  BOOST_TEST(verify["valid"].GetBool());
  BOOST_TEST(verify["length"].GetInt() == 2);
  BOOST_TEST(post(k.port(), "/kernel/audit", R"({"eventType":"x","payload":[],"metadata":{"eventId":"e"}})").status
             == 400);
  // The log survives a restart with its state file.
  k.stop();
  k.start();
  auto after = parse_json(http_call(k.port(), "GET", "/kernel/audit/verify").body);
  BOOST_TEST(after["length"].GetInt() == 2);
  BOOST_TEST(std::string{after["head"].GetString()} == second["hash"].GetString());
}

BOOST_AUTO_TEST_CASE(faults_can_be_set_at_run_time_and_by_flags) {
  kernel_process k;
  BOOST_TEST(post(k.port(), "/mock/faults", R"({"outage":true})").status == 200);
  BOOST_TEST(post(k.port(), "/kernel/audit", audit_body("f1", "o")).status == 503);
  BOOST_TEST(http_call(k.port(), "GET", "/health").status == 503);
  BOOST_TEST(post(k.port(), "/mock/faults", R"({"outage":false,"errorRate":1})").status == 200);
  BOOST_TEST(post(k.port(), "/kernel/audit", audit_body("f2", "o")).status == 500);
  BOOST_TEST(post(k.port(), "/mock/faults", R"({"errorRate":0,"latencyMs":300,"jitterMs":0})").status == 200);
  auto start = std::chrono::steady_clock::now();
  BOOST_TEST(post(k.port(), "/kernel/audit", audit_body("f3", "o")).status == 202);
  BOOST_TEST((std::chrono::steady_clock::now() - start >= 300ms));
  BOOST_TEST(post(k.port(), "/mock/faults", R"({"latencyMs":-1})").status == 400);
  // Neither failed call was appended.
  BOOST_TEST(parse_json(http_call(k.port(), "GET", "/kernel/audit/verify").body)["length"].GetInt() == 1);

  kernel_process down{{"--outage"}};
  BOOST_TEST(post(down.port(), "/kernel/audit", audit_body("f4", "o")).status == 503);
}

BOOST_AUTO_TEST_CASE(upgrades_follow_the_multisig_rules) {
  kernel_process k{{"--approvers", registry_json()}};
  domain::upgrade_proposal p;
  p.version = "1.2.0";
  p.binary_hash = std::string(64, 'c');
  p.approvers = {"alice", "bob"};
  auto hash = domain::upgrade_payload_hash(p);
  auto id = domain::upgrade_id_for(hash);
  auto sign = [&](char seed, const std::string& who, const std::string& h = {}) {
    return crypto::base64_encode(
      crypto::ed25519_sign(seed_of(seed), domain::approval_message(id, h.empty() ? hash : h, who)));
  };
  auto approve = [&](const std::string& who, const std::string& sig) {
    return post(k.port(), "/kernel/upgrade/" + id + "/approve",
                R"({"approverId":")" + who + R"(","signature":")" + sig + R"("})");
  };
  auto apply = [&] { return http_call(k.port(), "POST", "/kernel/upgrade/" + id + "/apply", {{"X-Applied-By", "ops"}}); };

  std::string body = R"({"upgradeId":")" + id + R"(","version":"1.2.0","binaryHash":")"
                     + std::string(64, 'c') + R"(","approvers":["alice","bob"]})";
  BOOST_TEST(post(k.port(), "/kernel/upgrade", body).status == 201);
  BOOST_TEST(post(k.port(), "/kernel/upgrade", body).status == 409);
  BOOST_TEST(post(k.port(), "/kernel/upgrade", R"({"version":"1.2.0","binaryHash":")" + std::string(64, 'c')
                                                 + R"(","approvers":["alice","eve"]})").status
             == 400);
  BOOST_TEST(approve("bob", sign('b', "bob")).status == 409);                    // out of order
  BOOST_TEST(approve("alice", sign('b', "alice")).status == 403);                // wrong key
  BOOST_TEST(approve("alice", sign('a', "alice", std::string(64, '0'))).status == 403);  // other payload
  BOOST_TEST(approve("eve", sign('e', "eve")).status == 403);                    // unregistered
  BOOST_TEST(apply().status == 409);                                              // no quorum
  BOOST_TEST(approve("alice", sign('a', "alice")).status == 201);
  BOOST_TEST(approve("alice", sign('a', "alice")).status == 409);                // twice
  BOOST_TEST(apply().status == 409);
  BOOST_TEST(approve("bob", sign('b', "bob")).status == 201);
  auto applied = apply();
  BOOST_TEST(applied.status == 200, applied.body);
  auto doc = parse_json(applied.body);
  BOOST_TEST(std::string{doc["upgrade"]["status"].GetString()} == "applied");
  BOOST_TEST(std::string{doc["upgrade"]["appliedBy"].GetString()} == "ops");
  BOOST_TEST(doc["quorum"]["required"].GetInt() == 2);
  BOOST_TEST(apply().status == 409);
  auto got = parse_json(http_call(k.port(), "GET", "/kernel/upgrade/" + id).body);
  BOOST_TEST(std::string{got["upgrade"]["status"].GetString()} == "applied");
  BOOST_TEST(http_call(k.port(), "GET", "/kernel/upgrade/upg_nothing").status == 404);
  // A rollback is refused.
  BOOST_TEST(post(k.port(), "/kernel/upgrade", R"({"version":"1.1.0","binaryHash":")" + std::string(64, 'd')
                                                 + R"(","approvers":["alice","bob"]})").status
             == 409);
}

BOOST_AUTO_TEST_CASE(upgrades_survive_a_restart_with_the_state_file) {
  kernel_process k{{"--approvers", registry_json()}};
  BOOST_TEST(post(k.port(), "/kernel/audit", audit_body("u1", "o1")).status == 202);
  upgrade_flow applied{k, "1.2.0"};
  BOOST_TEST(applied.propose().status == 201);
  BOOST_TEST(applied.approve('a', "alice").status == 201);
  BOOST_TEST(applied.approve('b', "bob").status == 201);
  BOOST_TEST(applied.apply().status == 200);
  // A second upgrade stays pending with one approval of two.
  upgrade_flow pending{k, "1.3.0"};
  BOOST_TEST(pending.propose().status == 201);
  BOOST_TEST(pending.approve('a', "alice").status == 201);
  auto applied_before = applied.read();
  auto pending_before = pending.read();
  BOOST_TEST(applied_before.status == 200);

  // SIGKILL: only what was flushed to the state file is there at the start.
  k.stop();
  k.start();

  // The same records, timestamps included: replay does not read the clock.
  auto applied_after = applied.read();
  BOOST_REQUIRE_MESSAGE(applied_after.status == 200, applied_after.body);
  BOOST_TEST(applied_after.body == applied_before.body);
  auto doc = parse_json(applied_after.body);
  BOOST_TEST(std::string{doc["upgrade"]["status"].GetString()} == "applied");
  BOOST_TEST(doc["upgrade"]["approvals"].Size() == 2u);
  BOOST_TEST(pending.read().body == pending_before.body);
  // The rules go on from where they were: applying twice, a rollback and a
  // repeated approval are refused; the pending upgrade takes its next step.
  auto again = applied.apply();
  BOOST_TEST(again.status == 409);
  BOOST_TEST(again.body.find("already_applied") != std::string::npos, again.body);
  upgrade_flow rollback{k, "1.1.0"};
  BOOST_TEST(rollback.propose().status == 409);
  BOOST_TEST(pending.approve('a', "alice").status == 409);
  BOOST_TEST(pending.approve('b', "bob").status == 201);
  BOOST_TEST(pending.apply().status == 200);
  // The audit log is kept beside them.
  auto verify = parse_json(http_call(k.port(), "GET", "/kernel/audit/verify").body);
  BOOST_TEST(verify["valid"].GetBool());
  BOOST_TEST(verify["length"].GetInt() == 1);
}

BOOST_AUTO_TEST_CASE(an_upgrade_step_that_does_not_replay_is_refused_at_start) {
  kernel_process k{{"--approvers", registry_json()}};
  upgrade_flow flow{k, "1.2.0"};
  BOOST_TEST(flow.propose().status == 201);
  BOOST_TEST(flow.approve('a', "alice").status == 201);
  k.stop();
  // Alice's approval, signed by bob's key instead: the Kernel would have refused it.
  auto lines = lines_of(k.state_file());
  BOOST_REQUIRE_EQUAL(lines.size(), 2u);
  auto forged = crypto::base64_encode(crypto::ed25519_sign(seed_of('b'), domain::approval_message(flow.id, flow.hash, "alice")));
  auto doc = parse_json(lines[1]);
  BOOST_REQUIRE(doc.HasMember("signature"));
  auto& sig = lines[1];
  auto at = sig.find(doc["signature"].GetString());
  BOOST_REQUIRE(at != std::string::npos);
  sig.replace(at, forged.size(), forged);
  {
    std::ofstream out{k.state_file(), std::ios::trunc};
    out << lines[0] << '\n' << lines[1] << '\n';
  }
  std::string log;
  try {
    k.start();
  } catch (const std::runtime_error& e) {
    log = e.what();
  }
  BOOST_TEST(log.find(k.state_file()) != std::string::npos, log);
  BOOST_TEST(log.find("\"line\":\"2\"") != std::string::npos, log);
}

BOOST_AUTO_TEST_CASE(a_state_written_under_another_threshold_is_refused_at_start) {
  auto registry = registry_json({"alice", "bob", "carol"});
  kernel_process k{{"--approvers", registry}};
  BOOST_TEST(post(k.port(), "/kernel/upgrade",
                  R"({"version":"1.2.0","binaryHash":")" + std::string(64, 'c')
                    + R"(","approvers":["alice","bob","carol"]})")
               .status
             == 201);
  k.stop();
  // The pending upgrade would come back needing three approvals where the
  // Kernel said two.
  auto log = "/tmp/ap-kernel-threshold-" + std::to_string(::getpid()) + ".log";
  process again{std::string{AP_BIN_DIR} + "/kernel-mock",
                {"--port", "0", "--state", k.state_file(), "--signing-seed", std::string(64, '7'),
                 "--approvers", registry, "--threshold", "3"},
                {}, log};
  BOOST_TEST(again.wait(10s) == 1);
  auto text = read_file(log);
  BOOST_TEST(text.find("proposed under threshold 2, replayed under 3") != std::string::npos, text);
  BOOST_TEST(text.find("\"line\":\"1\"") != std::string::npos, text);
  std::remove(log.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
