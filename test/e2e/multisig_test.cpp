// Multisig upgrades through HTTP, with the real kernel-mock enforcing the
// same rules.
#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <future>
#include <optional>
#include <thread>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/multisig.hpp"
#include "persistence/connection.hpp"
#include "test/support/approvers.hpp"
#include "test/support/files.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

const std::string admin_token = "admin-token-for-the-multisig-tests-0123456789";
const std::string proof_secret_v2 = "second-proof-secret-for-rotation-0123456789";

struct stack {
  kernel_process kernel;
  service_process svc;
  stack(std::vector<std::string> kernel_args, const std::string& db)
    : kernel(std::move(kernel_args)),
      svc(fresh_database(db), {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                               {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token},
                               {"ARTIFACT_PUBLISHER_APPROVERS", standard_registry()},
                               {"ARTIFACT_PUBLISHER_PROOF_SECRETS", R"({"v2":")" + proof_secret_v2 + "\"}"}}) {}
};

stack& main_stack() {
  static stack s{{"--approvers", standard_registry()}, "ap_e2e_multisig"};
  return s;
}

http_reply call(const std::string& method, const std::string& target, const std::string& body = {},
                bool admin = true, stack& s = main_stack()) {
  header_list h;
  if (!body.empty())
    h.emplace_back("Content-Type", "application/json");
  if (admin)
    h.emplace_back("Authorization", "Bearer " + admin_token);
  return http_call(s.svc.port(), method, target, h, body);
}

http_reply propose(const upgrade& u, stack& s = main_stack()) {
  return call("POST", "/api/multisig/upgrades", u.body(), true, s);
}
http_reply approve(const upgrade& u, const std::string& who, std::string sig = {},
                   stack& s = main_stack()) {
  return call("POST", "/api/multisig/upgrades/" + u.id + "/approvals",
              u.approval(who, sig.empty() ? u.signature(who) : sig), false, s);
}
http_reply apply(const upgrade& u, stack& s = main_stack()) {
  return call("POST", "/api/multisig/upgrades/" + u.id + "/apply", {}, true, s);
}

std::string code_of(const http_reply& r) {
  auto doc = parse_json(r.body);
  return doc.HasMember("error") ? doc["error"].GetString() : "";
}

std::string sql(const std::string& q, const persistence::params& p = {}, stack& s = main_stack()) {
  persistence::connection db{s.svc.db_url()};
  auto rows = db.exec(q, p);
  return rows.rows() ? rows.value(0, 0) : "";
}

// The types of the audit events about upgrade `id` (of type `type`, if
// given) in the Kernel's log, sorted and joined by commas, once the outbox
// has sent all it holds: a delivered event leaves the outbox, and its
// payload is then the Kernel's alone.
std::string audited(const std::string& id, const std::string& type = {}, stack& s = main_stack()) {
  for (int i = 0; i < 100 && sql("SELECT count(*) FROM audit_outbox WHERE dead_lettered_at IS NULL",
                                 {}, s) != "0"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto found = parse_json(
    http_call(s.kernel.port(), "POST", "/kernel/audit/search", {{"Content-Type", "application/json"}},
              R"({"criteria":{"upgradeId":")" + id + R"("})"
                + (type.empty() ? "" : R"(,"eventType":")" + type + R"(")") + R"(,"limit":100})")
      .body);
  std::vector<std::string> types;
  for (const auto& e : found["results"].GetArray())
    types.emplace_back(e["eventType"].GetString());
  std::sort(types.begin(), types.end());
  std::string out;
  for (const auto& t : types)
    out += (out.empty() ? "" : ",") + t;
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(multisig_over_http)

BOOST_AUTO_TEST_CASE(two_of_two_applies_through_the_kernel) {
  upgrade u{"1.1.0"};
  auto proposed = propose(u);
  BOOST_REQUIRE_MESSAGE(proposed.status == 201, proposed.body);
  auto doc = parse_json(proposed.body);
  BOOST_TEST(std::string{doc["upgradeId"].GetString()} == u.id);
  BOOST_TEST(std::string{doc["payloadHash"].GetString()} == u.hash);
  BOOST_TEST(doc["threshold"].GetInt() == 2);
  BOOST_TEST(propose(u).status == 409);  // the id exists
  BOOST_TEST(approve(u, "alice").status == 201);
  auto early = apply(u);
  BOOST_TEST(early.status == 409);
  BOOST_TEST(code_of(early) == "insufficient_quorum");
  // bob signs with the command-line tool, as an operator would.
  auto log = "/tmp/ap-e2e-sign-" + std::to_string(::getpid());
  process signer{std::string{AP_BIN_DIR} + "/artifact-publisher",
                 {"sign-approval", "--upgrade-id", u.id, "--payload-hash", u.hash, "--approver", "bob",
                  "--private-key", crypto::base64_encode(seed_of("bob"))},
                 {}, log};
  BOOST_REQUIRE(signer.wait(std::chrono::seconds(10)) == 0);
  auto sig = read_file(log);
  std::remove(log.c_str());
  sig.erase(sig.find_last_not_of("\n") + 1);
  BOOST_TEST(approve(u, "bob", sig).status == 201);
  auto applied = apply(u);
  BOOST_REQUIRE_MESSAGE(applied.status == 200, applied.body);
  auto a = parse_json(applied.body);
  BOOST_TEST(std::string{a["status"].GetString()} == "applied");
  BOOST_TEST(a.HasMember("appliedAt"));
  BOOST_TEST(apply(u).status == 409);
  auto got = parse_json(call("GET", "/api/multisig/upgrades/" + u.id).body);
  BOOST_TEST(std::string{got["status"].GetString()} == "applied");
  // The Kernel's record carries the same upgradeId and is applied.
  auto kernel = parse_json(http_call(main_stack().kernel.port(), "GET", "/kernel/upgrade/" + u.id).body);
  BOOST_TEST(std::string{kernel["upgrade"]["status"].GetString()} == "applied");
  BOOST_TEST(std::string{kernel["upgrade"]["appliedAt"].GetString()} == a["appliedAt"].GetString());
  BOOST_TEST(audited(u.id)
             == "upgrade.applied,upgrade.approved,upgrade.approved,upgrade.proposed,upgrade.rejected,"
                "upgrade.rejected");  // the early apply and the second apply were refused
}

// The Kernel took each step and the reply was lost (a connection reset
// after the step): the service reads the Kernel's record, records the step
// as taken and answers as if the reply had come, instead of a failure that
// every retry would then meet as a 409.
BOOST_AUTO_TEST_CASE(steps_whose_kernel_reply_is_lost_are_read_back_from_the_kernel) {
  upgrade u{"1.1.5"};
  auto kernel_port = main_stack().kernel.port();
  auto lose_next_reply = [&] {
    BOOST_REQUIRE(http_call(kernel_port, "POST", "/mock/faults", {{"Content-Type", "application/json"}},
                            R"({"upgradeResets":1})").status == 200);
  };
  // The fault was spent: the Kernel did reset the step's connection.
  auto reset_happened = [&] {
    return parse_json(http_call(kernel_port, "GET", "/mock/faults").body)["upgradeResets"].GetInt() == 0;
  };
  lose_next_reply();
  auto proposed = propose(u);
  BOOST_TEST(reset_happened());
  BOOST_TEST(proposed.status == 201, proposed.body);
  lose_next_reply();
  auto approved = approve(u, "alice");
  BOOST_TEST(reset_happened());
  BOOST_TEST(approved.status == 201, approved.body);
  BOOST_TEST(approve(u, "bob").status == 201);
  lose_next_reply();
  auto applied = apply(u);
  BOOST_TEST(reset_happened());
  BOOST_REQUIRE_MESSAGE(applied.status == 200, applied.body);
  // The local record follows the Kernel's, appliedAt included.
  auto kernel = parse_json(http_call(kernel_port, "GET", "/kernel/upgrade/" + u.id).body);
  BOOST_TEST(std::string{kernel["upgrade"]["status"].GetString()} == "applied");
  BOOST_TEST(std::string{parse_json(applied.body)["appliedAt"].GetString()}
             == kernel["upgrade"]["appliedAt"].GetString());
  auto got = parse_json(call("GET", "/api/multisig/upgrades/" + u.id).body);
  BOOST_TEST(std::string{got["status"].GetString()} == "applied");
  BOOST_TEST(got["approvals"].Size() == 2u);
  // Each step was recorded, and audited, once.
  BOOST_TEST(audited(u.id) == "upgrade.applied,upgrade.approved,upgrade.approved,upgrade.proposed");
}

// The Kernel is ahead of the local record (the step's local write was lost,
// or the Kernel was called directly): the Kernel answers 409, and its record
// shows the step taken, so the service records it and goes on.
BOOST_AUTO_TEST_CASE(a_kernel_ahead_of_the_local_record_is_followed) {
  upgrade u{"1.1.6"};
  auto kernel_port = main_stack().kernel.port();
  BOOST_REQUIRE(propose(u).status == 201);
  auto direct = http_call(kernel_port, "POST", "/kernel/upgrade/" + u.id + "/approve",
                          {{"Content-Type", "application/json"}},
                          R"({"approverId":"alice","signature":")" + u.signature("alice") + "\"}");
  BOOST_REQUIRE_MESSAGE(direct.status == 201, direct.body);
  auto approved = approve(u, "alice");
  BOOST_TEST(approved.status == 201, approved.body);
  BOOST_TEST(sql("SELECT count(*) FROM upgrade_approvals WHERE upgrade_id = $1", {u.id}) == "1");
  // What the Kernel does not hold is still refused as the Kernel refused it:
  // bob's approval there is not in the Kernel, and an apply before it is not
  // taken.
  auto early = apply(u);
  BOOST_TEST(early.status == 409);
  BOOST_TEST(approve(u, "bob").status == 201);
  BOOST_TEST(apply(u).status == 200);
}

BOOST_AUTO_TEST_CASE(two_of_three_applies) {
  upgrade u{"1.2.0", {"carol", "alice", "bob"}};
  BOOST_REQUIRE(propose(u).status == 201);
  BOOST_TEST(approve(u, "carol").status == 201);
  BOOST_TEST(approve(u, "alice").status == 201);
  BOOST_TEST(apply(u).status == 200);
}

BOOST_AUTO_TEST_CASE(each_approval_rule_is_enforced) {
  upgrade u{"1.3.0"};
  upgrade other{"1.3.1"};
  BOOST_REQUIRE(propose(u).status == 201);
  BOOST_REQUIRE(propose(other).status == 201);
  auto out_of_order = approve(u, "bob");
  BOOST_TEST(out_of_order.status == 409);
  BOOST_TEST(code_of(out_of_order) == "out_of_order");
  BOOST_TEST(approve(u, "mallory").status == 403);                               // unregistered
  BOOST_TEST(approve(u, "alice", other.signature("alice")).status == 403);       // replay
  BOOST_TEST(approve(u, "alice", u.signature("alice", std::string(64, '0'))).status == 403);  // tampered
  BOOST_TEST(approve(u, "alice", u.signature("bob")).status == 403);             // someone else's key
  BOOST_TEST(approve(u, "alice", "!!").status == 403);
  BOOST_TEST(approve(u, "alice").status == 201);
  auto twice = approve(u, "alice");
  BOOST_TEST(twice.status == 409);
  BOOST_TEST(code_of(twice) == "duplicate_approval");
  BOOST_TEST(call("POST", "/api/multisig/upgrades/upg_000000000000000000000000/approvals",
                  u.approval("alice", u.signature("alice")), false).status == 404);
  // Refusals of an existing upgrade by registered approvers are audited
  // (out of order, the replay, the tampered, the foreign key, the garbage,
  // the duplicate); the unregistered one is not.
  BOOST_TEST(audited(u.id, "upgrade.rejected")
             == "upgrade.rejected,upgrade.rejected,upgrade.rejected,upgrade.rejected,upgrade.rejected,"
                "upgrade.rejected");
  // Nothing refused was recorded.
  BOOST_TEST(sql("SELECT count(*) FROM upgrade_approvals WHERE upgrade_id = $1", {u.id}) == "1");
}

// Anyone can send an approval: what it carries is bounded, and only the
// refusals of registered approvers become (permanent) audit events.
BOOST_AUTO_TEST_CASE(approvals_are_bounded_and_only_registered_approvers_refusals_are_audited) {
  upgrade u{"1.3.5"};
  BOOST_REQUIRE(propose(u).status == 201);
  auto rejected = [&] {
    auto types = audited(u.id, "upgrade.rejected");
    return std::to_string(types.empty() ? 0 : std::count(types.begin(), types.end(), ',') + 1);
  };
  auto huge = approve(u, std::string(65400, 'm'), u.signature("alice"));
  BOOST_TEST(huge.status == 400);
  BOOST_TEST(code_of(huge) == "invalid_input");
  BOOST_TEST(std::string{parse_json(huge.body)["field"].GetString()} == "approver");
  BOOST_TEST(approve(u, std::string(65, 'm')).status == 400);
  auto long_signature = approve(u, "alice", std::string(129, 'A'));
  BOOST_TEST(long_signature.status == 400);
  BOOST_TEST(std::string{parse_json(long_signature.body)["field"].GetString()} == "signature");
  // The one-shot route bounds each approval the same way.
  auto oneshot = call("POST", "/api/multisig/upgrade",
                      u.body().substr(0, u.body().size() - 1) + R"(,"approvals":[)"
                        + u.approval(std::string(65, 'm'), u.signature("alice")) + "]}");
  BOOST_TEST(oneshot.status == 400, oneshot.body);
  BOOST_TEST(std::string{parse_json(oneshot.body)["field"].GetString()} == "approvals[0].approver");
  // An unregistered approver is refused, and not audited.
  BOOST_TEST(approve(u, "mallory").status == 403);
  BOOST_TEST(approve(u, std::string(64, 'm')).status == 403);
  BOOST_TEST(rejected() == "0");
  // A registered approver's refusal still is.
  BOOST_TEST(approve(u, "alice", u.signature("bob")).status == 403);
  BOOST_TEST(rejected() == "1");
}

BOOST_AUTO_TEST_CASE(expired_upgrades_are_410) {
  upgrade u{"1.4.0"};
  BOOST_REQUIRE(propose(u).status == 201);
  BOOST_TEST(approve(u, "alice").status == 201);
  // Time passes: the proposal is 24 h old.
  sql("UPDATE upgrades SET expires_at_ms = created_at_ms WHERE upgrade_id = $1 RETURNING 1", {u.id});
  BOOST_TEST(approve(u, "bob").status == 410);
  BOOST_TEST(apply(u).status == 410);
}

BOOST_AUTO_TEST_CASE(two_concurrent_applies_one_wins) {
  upgrade u{"1.5.0"};
  BOOST_REQUIRE(propose(u).status == 201);
  BOOST_REQUIRE(approve(u, "alice").status == 201);
  BOOST_REQUIRE(approve(u, "bob").status == 201);
  auto a = std::async(std::launch::async, [&] { return apply(u); });
  auto b = std::async(std::launch::async, [&] { return apply(u); });
  auto ra = a.get();
  auto rb = b.get();
  BOOST_TEST((ra.status == 200) != (rb.status == 200), ra.status << " " << rb.status);
  BOOST_TEST((ra.status == 409 || rb.status == 409));
  BOOST_TEST(audited(u.id, "upgrade.applied") == "upgrade.applied");
}

BOOST_AUTO_TEST_CASE(rollbacks_and_bad_proposals_are_refused) {
  auto rollback = propose(upgrade{"1.0.9"});
  BOOST_TEST(rollback.status == 409);
  BOOST_TEST(code_of(rollback) == "version_not_greater");
  BOOST_TEST(propose(upgrade{"2.0.0", {"alice"}}).status == 400);
  BOOST_TEST(propose(upgrade{"2.0.0", {"alice", "mallory"}}).status == 400);
  BOOST_TEST(propose(upgrade{"2.0", {"alice", "bob"}}).status == 400);
  BOOST_TEST(call("POST", "/api/multisig/upgrades", upgrade{"2.0.0"}.body(), false).status == 401);
  header_list wrong{{"Content-Type", "application/json"}, {"Authorization", "Bearer nope"}};
  BOOST_TEST(http_call(main_stack().svc.port(), "POST", "/api/multisig/upgrades", wrong,
                       upgrade{"2.0.0"}.body()).status == 403);
}

BOOST_AUTO_TEST_CASE(the_one_shot_route_applies_only_with_enough_signatures) {
  upgrade u{"1.6.0"};
  auto body = u.body();
  body.pop_back();
  auto pending = call("POST", "/api/multisig/upgrade",
                      body + R"(,"approvals":[)" + u.approval("alice", u.signature("alice")) + "]}");
  BOOST_TEST(pending.status == 202, pending.body);
  BOOST_TEST(std::string{parse_json(pending.body)["status"].GetString()} == "pending");
  auto forged = call("POST", "/api/multisig/upgrade",
                     body + R"(,"approvals":[)" + u.approval("alice", u.signature("alice")) + ","
                       + u.approval("bob", u.signature("carol")) + "]}");
  BOOST_TEST(forged.status == 403, forged.body);
  auto done = call("POST", "/api/multisig/upgrade",
                   body + R"(,"approvals":[)" + u.approval("alice", u.signature("alice")) + ","
                     + u.approval("bob", u.signature("bob")) + "]}");
  BOOST_TEST(done.status == 200, done.body);
  auto doc = parse_json(done.body);
  BOOST_TEST(std::string{doc["upgradeId"].GetString()} == u.id);
  BOOST_TEST(doc["approvals"].Size() == 2u);
  BOOST_TEST(doc.HasMember("appliedAt"));
}

BOOST_AUTO_TEST_CASE(secret_rotation_switches_the_active_proof_key) {
  auto order = [] {
    return http_call(main_stack().svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                     R"({"customerId":"rot","email":"r@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
  };
  auto before = parse_json(order().body);
  BOOST_TEST(std::string{before["proof"]["kid"].GetString()} == "v1");
  auto keys = parse_json(call("GET", "/api/proof/keys").body);
  std::string v2_key;
  for (const auto& k : keys["keys"].GetArray())
    if (std::string{k["kid"].GetString()} == "v2")
      v2_key = k["publicKey"].GetString();
  BOOST_REQUIRE(!v2_key.empty());
  upgrade wrong{"v2", {"alice", "bob"}, "secret-rotation", std::string(64, '1')};
  BOOST_TEST(propose(wrong).status == 400);  // binaryHash must name the key
  upgrade u{"v2", {"alice", "bob"}, "secret-rotation", crypto::sha256_hex(*crypto::base64_decode(v2_key))};
  BOOST_REQUIRE(propose(u).status == 201);
  approve(u, "alice");
  approve(u, "bob");
  BOOST_REQUIRE(apply(u).status == 200);
  auto after = parse_json(order().body);
  BOOST_TEST(std::string{after["proof"]["kid"].GetString()} == "v2");
  auto active = parse_json(call("GET", "/api/proof/keys").body);
  for (const auto& k : active["keys"].GetArray())
    BOOST_TEST(k["active"].GetBool() == (std::string{k["kid"].GetString()} == "v2"));
  // A proof under the previous kid still verifies.
  auto verify = call("POST", "/api/proof/verify",
                     R"({"proof":)" + json::canonical(before["proof"]) + R"(,"payload":)"
                       + json::canonical(before["proof"]["payload"]) + "}");
  BOOST_TEST(verify.body == R"({"valid":true})");
  BOOST_TEST(sql(std::string("SELECT count(*) FROM ") + audit_events_sql
                 + " e WHERE event_type = 'proof_key.activated'") == "1");
  // The rotation outlives a restart.
  main_stack().svc.restart();
  BOOST_TEST(std::string{parse_json(order().body)["proof"]["kid"].GetString()} == "v2");
}

// Two instances share one database. A rotation is checked against every
// live instance's keys when proposed, and once applied through one
// instance the other signs with the new key within 5 s, without a restart.
BOOST_AUTO_TEST_CASE(a_rotation_applied_on_one_instance_reaches_the_other_within_5_s) {
  kernel_process kernel{{"--approvers", standard_registry()}};
  auto db = fresh_database("ap_e2e_rotation_two");
  auto env = [&](const std::string& v2_secret) {
    std::map<std::string, std::string> e{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                                         {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token},
                                         {"ARTIFACT_PUBLISHER_APPROVERS", standard_registry()}};
    if (!v2_secret.empty())
      e["ARTIFACT_PUBLISHER_PROOF_SECRETS"] = R"({"v2":")" + v2_secret + "\"}";
    return e;
  };
  service_process a{db, env(proof_secret_v2)};
  std::optional<service_process> b{std::in_place, db, env("another-second-secret-0123456789abcdef")};
  std::optional<service_process> c{std::in_place, db, env("")};
  auto header = [](bool admin) {
    header_list h{{"Content-Type", "application/json"}};
    if (admin)
      h.emplace_back("Authorization", "Bearer " + admin_token);
    return h;
  };
  auto kid_of_checkout = [&](std::uint16_t port) {
    auto r = http_call(port, "POST", "/api/checkout", header(false),
                       R"({"customerId":"two","email":"t@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    return std::string{parse_json(r.body)["proof"]["kid"].GetString()};
  };
  auto reported = [&](const std::string& count) {
    persistence::connection conn{db};
    for (int i = 0; i < 50; ++i) {
      if (conn.exec("SELECT count(*) FROM proof_key_sets").value(0, 0) == count)
        return true;
      ::usleep(100 * 1000);
    }
    return false;
  };
  BOOST_REQUIRE(reported("3"));
  std::string v2_key;
  // The document outlives the loop (a range over a temporary's member would not).
  auto a_keys = parse_json(http_call(a.port(), "GET", "/api/proof/keys").body);
  for (const auto& k : a_keys["keys"].GetArray())
    if (std::string{k["kid"].GetString()} == "v2")
      v2_key = k["publicKey"].GetString();
  BOOST_REQUIRE(!v2_key.empty());
  upgrade u{"v2", {"alice", "bob"}, "secret-rotation", crypto::sha256_hex(*crypto::base64_decode(v2_key))};

  // B has another secret under v2, C none: A refuses, naming both.
  auto refused = http_call(a.port(), "POST", "/api/multisig/upgrades", header(true), u.body());
  BOOST_TEST(refused.status == 400, refused.body);
  BOOST_TEST(code_of(refused) == "invalid_input");
  BOOST_TEST(refused.body.find("has another key for kid 'v2'") != std::string::npos, refused.body);
  BOOST_TEST(refused.body.find("has no proof secret for kid 'v2'") != std::string::npos, refused.body);

  // Stopped instances withdraw their key sets; B comes back with the right one.
  c.reset();
  b.reset();
  BOOST_REQUIRE(reported("1"));
  b.emplace(db, env(proof_secret_v2));
  BOOST_REQUIRE(reported("2"));
  BOOST_TEST(kid_of_checkout(b->port()) == "v1");

  BOOST_REQUIRE(http_call(a.port(), "POST", "/api/multisig/upgrades", header(true), u.body()).status == 201);
  for (const char* who : {"alice", "bob"})
    BOOST_REQUIRE(http_call(a.port(), "POST", "/api/multisig/upgrades/" + u.id + "/approvals",
                            header(false), u.approval(who, u.signature(who)))
                    .status == 201);
  BOOST_REQUIRE(http_call(a.port(), "POST", "/api/multisig/upgrades/" + u.id + "/apply", header(true), "")
                  .status == 200);
  auto applied = std::chrono::steady_clock::now();
  BOOST_TEST(kid_of_checkout(a.port()) == "v2");  // at once where it was applied
  std::string kid_b;
  while (std::chrono::steady_clock::now() - applied < std::chrono::seconds(5)) {
    kid_b = kid_of_checkout(b->port());
    if (kid_b == "v2")
      break;
    ::usleep(200 * 1000);
  }
  BOOST_TEST(kid_b == "v2");
  auto b_keys = parse_json(http_call(b->port(), "GET", "/api/proof/keys").body);
  for (const auto& k : b_keys["keys"].GetArray())
    BOOST_TEST(k["active"].GetBool() == (std::string{k["kid"].GetString()} == "v2"));
  // The proof actor is an actor like the others, metered.
  BOOST_TEST(http_call(b->port(), "GET", "/metrics").body.find(R"(ap_actor_messages_total{actor="proof"})")
             != std::string::npos);
}

// A restart without the secret of the kid a rotation activated must not
// quietly sign with the older key again (the proofs of the newer one would
// no longer verify): production refuses to start, naming the kid and the
// variable to set; development starts, says so in its log and /health.
BOOST_AUTO_TEST_CASE(a_restart_without_the_rotated_secret_is_refused_in_production_degraded_elsewhere) {
  kernel_process kernel{{"--approvers", standard_registry()}};
  auto db = fresh_database("ap_e2e_rotation_guard");
  std::map<std::string, std::string> env{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                                         {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token},
                                         {"ARTIFACT_PUBLISHER_APPROVERS", standard_registry()}};
  auto with_v2 = env;
  with_v2["ARTIFACT_PUBLISHER_PROOF_SECRETS"] = R"({"v2":")" + proof_secret_v2 + "\"}";
  header_list admin{{"Content-Type", "application/json"}, {"Authorization", "Bearer " + admin_token}};
  std::string checkout = R"({"customerId":"guard","email":"g@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})";
  {
    service_process svc{db, with_v2};
    std::string v2_key;
    auto keys = parse_json(http_call(svc.port(), "GET", "/api/proof/keys").body);
    for (const auto& k : keys["keys"].GetArray())
      if (std::string{k["kid"].GetString()} == "v2")
        v2_key = k["publicKey"].GetString();
    BOOST_REQUIRE(!v2_key.empty());
    upgrade u{"v2", {"alice", "bob"}, "secret-rotation", crypto::sha256_hex(*crypto::base64_decode(v2_key))};
    BOOST_REQUIRE(http_call(svc.port(), "POST", "/api/multisig/upgrades", admin, u.body()).status == 201);
    for (const char* who : {"alice", "bob"})
      BOOST_REQUIRE(http_call(svc.port(), "POST", "/api/multisig/upgrades/" + u.id + "/approvals",
                              {{"Content-Type", "application/json"}}, u.approval(who, u.signature(who)))
                      .status == 201);
    BOOST_REQUIRE(http_call(svc.port(), "POST", "/api/multisig/upgrades/" + u.id + "/apply", admin, "")
                    .status == 200);
    auto sold = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}}, checkout);
    BOOST_REQUIRE_MESSAGE(sold.status == 201, sold.body);
    BOOST_REQUIRE(std::string{parse_json(sold.body)["proof"]["kid"].GetString()} == "v2");
  }

  // Production, v2's secret gone: no start.
  auto production = production_env(env, db);
  auto [code, out] = run_cli({"serve"}, production);
  BOOST_TEST(code == 2, out);
  BOOST_TEST(out.find("refusing to start") != std::string::npos, out);
  BOOST_TEST(out.find("v2 (the active kid of the last applied secret-rotation, and stored proofs may carry it)")
               != std::string::npos, out);
  BOOST_TEST(out.find("ARTIFACT_PUBLISHER_PROOF_SECRETS") != std::string::npos, out);
  // With it, production starts.
  production["ARTIFACT_PUBLISHER_PROOF_SECRETS"] = with_v2["ARTIFACT_PUBLISHER_PROOF_SECRETS"];
  {
    service_process svc{db, production};
    BOOST_TEST(!parse_json(http_call(svc.port(), "GET", "/health").body).HasMember("reasons"));
  }

  // Development, v2's secret gone: it starts, and says it is degraded and why.
  service_process dev{db, env};
  auto health = http_call(dev.port(), "GET", "/health");
  BOOST_TEST(health.status == 200);
  auto doc = parse_json(health.body);
  BOOST_TEST(doc["status"].GetString() == std::string{"degraded"}, health.body);
  BOOST_TEST(doc["kernelHealthy"].GetBool(), health.body);
  BOOST_TEST(doc["database"].GetString() == std::string{"ok"}, health.body);
  BOOST_REQUIRE_MESSAGE(doc.HasMember("reasons") && doc["reasons"].IsArray() && doc["reasons"].Size() == 1,
                        health.body);
  std::string reason = doc["reasons"][0].GetString();
  BOOST_TEST(reason.find("v2 (the active kid") != std::string::npos, reason);
  BOOST_TEST(reason.find("ARTIFACT_PUBLISHER_PROOF_SECRETS") != std::string::npos, reason);
  BOOST_TEST(read_file(dev.log()).find(R"("msg":"starting degraded")") != std::string::npos);
}

// Without any rotation: proofs signed under a PROOF_KID that a later start
// no longer has are caught the same way.
BOOST_AUTO_TEST_CASE(a_start_without_the_kid_of_stored_proofs_is_degraded_and_names_it) {
  kernel_process kernel{{"--approvers", standard_registry()}};
  auto db = fresh_database("ap_e2e_signing_kid_guard");
  std::map<std::string, std::string> env{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}};
  {
    auto k7 = env;
    k7["ARTIFACT_PUBLISHER_PROOF_KID"] = "k7";
    service_process svc{db, k7};
    auto sold = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                          R"({"customerId":"k7","email":"k@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
    BOOST_REQUIRE_MESSAGE(sold.status == 201, sold.body);
    BOOST_REQUIRE(std::string{parse_json(sold.body)["proof"]["kid"].GetString()} == "k7");
    BOOST_TEST(parse_json(http_call(svc.port(), "GET", "/health").body)["status"].GetString()
               == std::string{"ok"});
  }
  service_process svc{db, env};
  auto doc = parse_json(http_call(svc.port(), "GET", "/health").body);
  BOOST_TEST(doc["status"].GetString() == std::string{"degraded"});
  BOOST_REQUIRE(doc.HasMember("reasons"));
  std::string reason = doc["reasons"][0].GetString();
  BOOST_TEST(reason.find("k7 (stored proofs may carry it)") != std::string::npos, reason);
  BOOST_TEST(reason.find("v1") == std::string::npos, reason);
}

BOOST_AUTO_TEST_CASE(the_kernel_refuses_what_the_service_would_let_through) {
  // This Kernel knows bob under another key and wants three approvals.
  stack strict{{"--approvers", registry({{"alice", public_key_of("alice")}, {"bob", public_key_of("zed")},
                                         {"carol", public_key_of("carol")}}),
                "--threshold", "3"},
               "ap_e2e_multisig_strict"};
  upgrade u{"1.1.0", {"alice", "carol", "bob"}};
  BOOST_REQUIRE(propose(u, strict).status == 201);
  BOOST_TEST(approve(u, "alice", {}, strict).status == 201);
  BOOST_TEST(approve(u, "carol", {}, strict).status == 201);
  auto applied = apply(u, strict);
  BOOST_TEST(applied.status == 409, applied.body);
  BOOST_TEST(code_of(applied) == "kernel_refused");
  auto bob = approve(u, "bob", {}, strict);
  BOOST_TEST(bob.status == 403, bob.body);
  BOOST_TEST(code_of(bob) == "kernel_refused");
  BOOST_TEST(sql("SELECT status FROM upgrades WHERE upgrade_id = $1", {u.id}, strict) == "pending");
  BOOST_TEST(sql("SELECT count(*) FROM upgrade_approvals WHERE upgrade_id = $1", {u.id}, strict) == "2");
}

BOOST_AUTO_TEST_SUITE_END()

// An approver's key pair goes outside the working tree unless asked, readable
// by its owner only, and signs approvals from where it was written.
BOOST_AUTO_TEST_SUITE(approver_keys)

namespace {

mode_t mode_of(const std::string& path) {
  struct stat st{};
  return ::stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : mode_t{0xffff};
}

std::string first_line(const std::string& text) {
  return text.substr(0, text.find('\n'));
}

} // namespace

BOOST_AUTO_TEST_CASE(keygen_writes_into_the_data_directory_and_says_where) {
  auto dir = temp_dir("keygen");
  auto cwd = std::filesystem::current_path().string();
  BOOST_REQUIRE(!std::filesystem::exists(cwd + "/alice.key"));
  auto [rc, out] = run_cli({"keygen", "--out", "alice"}, {{"XDG_DATA_HOME", dir + "/data"}, {"HOME", dir + "/home"}});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  auto keys = dir + "/data/artifact-publisher/keys";
  BOOST_TEST(out.find("wrote " + keys + "/alice.key (private, mode 600) and " + keys + "/alice.pub")
             != std::string::npos, out);
  BOOST_TEST(!std::filesystem::exists(cwd + "/alice.key"));
  BOOST_TEST(mode_of(keys) == 0700);
  BOOST_TEST(mode_of(dir + "/data/artifact-publisher") == 0700);
  BOOST_TEST(mode_of(keys + "/alice.key") == 0600);
  auto public_key = first_line(read_file(keys + "/alice.pub"));
  BOOST_TEST(public_key.size() == 44u);
  BOOST_TEST(first_line(out) == public_key);  // stdout: the public key alone
  // The pair holds together: what alice signs verifies under alice.pub.
  auto hash = std::string(64, 'a');
  auto [sign_rc, signature] = run_cli({"sign-approval", "--upgrade-id", "upg_1", "--payload-hash", hash,
                                       "--approver", "alice", "--private-key", "@" + keys + "/alice.key"});
  BOOST_REQUIRE_MESSAGE(sign_rc == 0, signature);
  auto raw_signature = crypto::base64_decode(first_line(signature));
  auto raw_key = crypto::base64_decode(public_key);
  BOOST_REQUIRE(raw_signature && raw_key);
  BOOST_TEST(crypto::ed25519_verify(*raw_key, domain::approval_message("upg_1", hash, "alice"), *raw_signature));
  // A key is never overwritten.
  auto again = run_cli({"keygen", "--out", "alice"}, {{"XDG_DATA_HOME", dir + "/data"}});
  BOOST_TEST(again.first == 1);
  BOOST_TEST(again.second.find("does it exist already?") != std::string::npos, again.second);
  BOOST_TEST(first_line(read_file(keys + "/alice.pub")) == public_key);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(keygen_falls_back_to_home_and_keeps_an_explicit_path) {
  auto dir = temp_dir("keygen");
  auto [rc, out] = run_cli({"keygen", "--out", "bob"}, {{"XDG_DATA_HOME", ""}, {"HOME", dir + "/home"}});
  BOOST_REQUIRE_MESSAGE(rc == 0, out);
  auto keys = dir + "/home/.local/share/artifact-publisher/keys";
  BOOST_TEST(mode_of(keys + "/bob.key") == 0600, out);
  BOOST_TEST(out.find("wrote " + keys + "/bob.key") != std::string::npos, out);
  // A path with a slash is taken as it is.
  auto [path_rc, path_out] = run_cli({"keygen", "--out", dir + "/carol"}, {{"HOME", dir + "/home"}});
  BOOST_REQUIRE_MESSAGE(path_rc == 0, path_out);
  BOOST_TEST(mode_of(dir + "/carol.key") == 0600);
  BOOST_TEST(std::filesystem::exists(dir + "/carol.pub"));
  BOOST_TEST(!std::filesystem::exists(keys + "/carol.key"));
  // Nowhere to put it: a clear refusal, not a file in the working directory.
  auto [none_rc, none_out] = run_cli({"keygen", "--out", "dave"}, {{"XDG_DATA_HOME", ""}, {"HOME", ""}});
  BOOST_TEST(none_rc == 1);
  BOOST_TEST(none_out.find("set HOME or XDG_DATA_HOME") != std::string::npos, none_out);
  BOOST_TEST(!std::filesystem::exists(std::filesystem::current_path() / "dave.key"));
  BOOST_TEST(run_cli({"keygen", "--out", ""}).first == 2);
  std::filesystem::remove_all(dir);
}

BOOST_AUTO_TEST_SUITE_END()
