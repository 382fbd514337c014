// Every secret set rotates under multisig change control (SPEC §12): two
// service processes on one PostgreSQL, the real kernel-mock and
// payments-mock, each set rotated over HTTP through one instance and
// followed by the other.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <chrono>
#include <functional>
#include <optional>

#include "core/json.hpp"
#include "domain/delivery.hpp"
#include "domain/secret_commitment.hpp"
#include "persistence/connection.hpp"
#include "test/support/approvers.hpp"
#include "test/support/files.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;
using clock_type = std::chrono::steady_clock;

const std::string admin_token = "admin-token-for-the-rotation-tests-0123456789";
const std::string delivery_d1 = "rotation-delivery-master-key-d1-0123456789abcdef";
const std::string delivery_d2 = "rotation-delivery-master-key-d2-0123456789abcdef";
const std::string stripe_s2 = "sk_test_rotation_second_key_0123456789abcdef";
const std::string token_t1 = "rotation-kernel-token-t1-0123456789abcdef";
const std::string token_t2 = "rotation-kernel-token-t2-0123456789abcdef";

std::string object(const std::map<std::string, std::string>& m) {
  std::string out = "{";
  for (const auto& [k, v] : m) {
    if (out.size() > 1)
      out += ',';
    json::append_quoted(out, k);
    out += ':';
    json::append_quoted(out, v);
  }
  return out + "}";
}

std::string str(const rapidjson::Value& v, const char* name) {
  BOOST_REQUIRE_MESSAGE(v.IsObject() && v.HasMember(name) && v[name].IsString(),
                        "missing string " << name);
  return v[name].GetString();
}

header_list admin_headers() {
  return {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + admin_token}};
}

http_reply checkout(std::uint16_t port, const std::string& customer) {
  return http_call(port, "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                   R"({"customerId":")" + customer
                     + R"(","email":"buyer@example.com","currency":"usd",)"
                       R"("items":[{"sku":"creator-basic","quantity":1}]})");
}

rapidjson::Document sold(std::uint16_t port, const std::string& customer) {
  auto r = checkout(port, customer);
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.status << " " << r.body);
  return parse_json(r.body);
}

// The delivery opens with the per-order key derived from `master`.
bool opens_with(const rapidjson::Value& order, const std::string& master) {
  const auto& delivery = order["delivery"];
  auto key = domain::delivery_key(master, str(order, "orderId"));
  try {
    auto plain = domain::open_delivery(key, str(delivery, "nonce"), str(delivery, "cipherText"),
                                       str(delivery, "aad"));
    return str(parse_json(plain), "orderId") == str(order, "orderId");
  } catch (const std::exception&) {
    return false;
  }
}

// Polls `done` every 100 ms until it holds or `within` has passed.
bool within(std::chrono::milliseconds limit, const std::function<bool()>& done) {
  auto until = clock_type::now() + limit;
  do {
    if (done())
      return true;
    ::usleep(100 * 1000);
  } while (clock_type::now() < until);
  return done();
}

// Proposes, approves (alice, bob) and applies a rotation through `port`.
void rotate(std::uint16_t port, const upgrade& u) {
  auto proposed = http_call(port, "POST", "/api/multisig/upgrades", admin_headers(), u.body());
  BOOST_REQUIRE_MESSAGE(proposed.status == 201, proposed.body);
  for (const char* who : {"alice", "bob"}) {
    auto approved = http_call(port, "POST", "/api/multisig/upgrades/" + u.id + "/approvals",
                              {{"Content-Type", "application/json"}},
                              u.approval(who, u.signature(who)));
    BOOST_REQUIRE_MESSAGE(approved.status == 201, approved.body);
  }
  auto applied =
    http_call(port, "POST", "/api/multisig/upgrades/" + u.id + "/apply", admin_headers(), "");
  BOOST_REQUIRE_MESSAGE(applied.status == 200, applied.body);
}

upgrade rotation(domain::secret_set set, const std::string& kid, const std::string& secret) {
  return upgrade{std::string{domain::to_string(set)} + ":" + kid, {"alice", "bob"},
                 "secret-rotation", domain::secret_commitment(set, kid, secret)};
}

} // namespace

BOOST_AUTO_TEST_SUITE(secret_rotation)

BOOST_AUTO_TEST_CASE(each_set_rotates_through_one_instance_and_the_other_follows_within_5_s) {
  kernel_process kernel{{"--approvers", standard_registry(), "--require-token", token_t1}};
  payments_process processor{{"--secret-key", stripe_s2}};
  auto db = fresh_database("ap_e2e_secret_rotation");
  std::map<std::string, std::string> env{
    {"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
    {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token},
    {"ARTIFACT_PUBLISHER_APPROVERS", standard_registry()},
    {"ARTIFACT_PUBLISHER_DELIVERY_KEYS", object({{"d1", delivery_d1}, {"d2", delivery_d2}})},
    {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d1"},
    {"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
    {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", processor.url()},
    {"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS",
     object({{"s1", payments_process::secret_key}, {"s2", stripe_s2}})},
    {"ARTIFACT_PUBLISHER_STRIPE_KID", "s1"},
    {"ARTIFACT_PUBLISHER_KERNEL_TOKENS", object({{"t1", token_t1}, {"t2", token_t2}})},
    {"ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID", "t1"}};
  service_process a{db, env};
  service_process b{db, env};
  // Both instances have reported their versions.
  BOOST_REQUIRE(within(std::chrono::seconds(5), [&] {
    persistence::connection pg{db};
    return pg.exec("SELECT count(*) FROM proof_key_sets").value(0, 0) == "2";
  }));

  auto before = sold(b.port(), "rot-before");
  BOOST_TEST(str(before["delivery"], "keyId") == "d1");
  BOOST_TEST(opens_with(before, delivery_d1));

  // Refused at propose: a commitment to another value, a kid configured
  // nowhere, a set that does not exist.
  auto wrong = rotation(domain::secret_set::delivery, "d2", delivery_d1);
  auto refused = http_call(a.port(), "POST", "/api/multisig/upgrades", admin_headers(), wrong.body());
  BOOST_TEST(refused.status == 400, refused.body);
  BOOST_TEST(refused.body.find("binaryHash must be the commitment to delivery kid 'd2'")
               != std::string::npos, refused.body);
  auto unknown = rotation(domain::secret_set::delivery, "d9", delivery_d2);
  refused = http_call(a.port(), "POST", "/api/multisig/upgrades", admin_headers(), unknown.body());
  BOOST_TEST(refused.status == 400, refused.body);
  BOOST_TEST(refused.body.find("no delivery secret is configured for kid 'd9'") != std::string::npos,
             refused.body);
  upgrade no_set{"vault:k2", {"alice", "bob"}, "secret-rotation", std::string(64, 'a')};
  refused = http_call(a.port(), "POST", "/api/multisig/upgrades", admin_headers(), no_set.body());
  BOOST_TEST(refused.status == 400, refused.body);
  BOOST_TEST(refused.body.find("<set>:<kid>") != std::string::npos, refused.body);

  // Delivery: applied through A, B seals with d2 within 5 s; what d1 sealed
  // still opens.
  rotate(a.port(), rotation(domain::secret_set::delivery, "d2", delivery_d2));
  auto applied = clock_type::now();
  BOOST_TEST(str(sold(a.port(), "rot-a-d2")["delivery"], "keyId") == "d2");
  std::optional<rapidjson::Document> after;
  BOOST_TEST(within(std::chrono::seconds(5), [&] {
    after.emplace(sold(b.port(), "rot-b-d2"));
    return str((*after)["delivery"], "keyId") == "d2";
  }));
  BOOST_TEST((clock_type::now() - applied < std::chrono::seconds(5)));
  BOOST_TEST(opens_with(*after, delivery_d2));
  auto old = parse_json(http_call(b.port(), "GET", "/api/checkout/" + str(before, "orderId")).body);
  BOOST_TEST(str(old["delivery"], "keyId") == "d1");
  BOOST_TEST(opens_with(old, delivery_d1));

  // Stripe: after the rotation the processor stops accepting s1, as when
  // a rolled key expires; both instances keep charging, with s2.
  rotate(a.port(), rotation(domain::secret_set::stripe, "s2", stripe_s2));
  ::usleep(1500 * 1000);  // more than the instances' 1 s poll
  auto revoked = http_call(processor.port(), "POST", "/mock/keys",
                           {{"Content-Type", "application/json"}},
                           R"({"accept":[")" + stripe_s2 + R"("]})");
  BOOST_REQUIRE_MESSAGE(revoked.status == 200, revoked.body);
  BOOST_TEST(checkout(a.port(), "rot-a-s2").status == 201);
  auto charged_b = checkout(b.port(), "rot-b-s2");
  BOOST_TEST(charged_b.status == 201, charged_b.body);

  // Kernel token: after the rotation the Kernel accepts only t2; the
  // events of new checkouts on both instances still reach its log.
  rotate(a.port(), rotation(domain::secret_set::kernel_token, "t2", token_t2));
  ::usleep(1500 * 1000);
  auto switched = http_call(kernel.port(), "POST", "/mock/faults", {{"Content-Type", "application/json"}},
                            R"({"requireToken":")" + token_t2 + R"("})");
  BOOST_REQUIRE_MESSAGE(switched.status == 200, switched.body);
  for (auto* svc : {&a, &b}) {
    auto order_id = str(sold(svc->port(), "rot-t2"), "orderId");
    BOOST_TEST(within(std::chrono::seconds(10), [&] {
      auto doc = parse_json(http_call(svc->port(), "GET", "/api/checkout/" + order_id).body);
      return str(doc["audit"], "status") == "delivered";
    }), "the events of " << order_id << " reached the Kernel with t2");
  }

  // The Kernel's log records each rotation by commitment, never a value;
  // neither instance logged one. The kernel-token event may have met the
  // Kernel still asking for t1 (A sends t2 from the apply on) and wait for
  // its retry.
  persistence::connection pg{db};
  BOOST_TEST(within(std::chrono::seconds(30), [&] {
    return pg.exec("SELECT count(*) FROM audit_receipts WHERE event_type = 'secret.rotated'")
             .value(0, 0) == "3";
  }));
  auto kernel_log = read_file(kernel.state_file());
  for (const char* set : {"\"set\":\"delivery\"", "\"set\":\"stripe\"", "\"set\":\"kernel-token\""})
    BOOST_TEST(kernel_log.find(set) != std::string::npos, set);
  BOOST_TEST(kernel_log.find("secret.rotated") != std::string::npos);
  for (const auto& secret : {delivery_d2, stripe_s2, token_t2}) {
    BOOST_TEST(kernel_log.find(secret) == std::string::npos);
    BOOST_TEST(a.log().find(secret) == std::string::npos);
    BOOST_TEST(b.log().find(secret) == std::string::npos);
  }
  // Delivered, the events have left the outbox; their payloads are the
  // Kernel's, which holds each once.
  BOOST_TEST(pg.exec("SELECT count(*) FROM audit_outbox").value(0, 0) == "0");
  auto found = parse_json(http_call(kernel.port(), "POST", "/kernel/audit/search",
                                    {{"Content-Type", "application/json"},
                                     {"Authorization", "Bearer " + token_t2}},
                                    R"({"criteria":{"set":"delivery"},"eventType":"secret.rotated"})")
                            .body);
  BOOST_REQUIRE(found.HasMember("results") && found["results"].Size() == 1u);
  const auto& event = found["results"][0]["payload"];
  BOOST_TEST(str(event, "kid") == "d2");
  BOOST_TEST(str(event, "commitment")
             == domain::secret_commitment(domain::secret_set::delivery, "d2", delivery_d2));
  BOOST_TEST(str(event, "upgradeId").rfind("upg_", 0) == 0u);

  // A restart keeps the active versions, whatever the configured kids say.
  b.restart();
  BOOST_TEST(str(sold(b.port(), "rot-restarted")["delivery"], "keyId") == "d2");
}

// At start, an active version this instance has no secret for: production
// refuses, naming the set, kid and variable; development starts degraded.
BOOST_AUTO_TEST_CASE(a_start_without_the_active_version_is_refused_in_production) {
  kernel_process kernel{{"--approvers", standard_registry()}};
  auto db = fresh_database("ap_e2e_secret_rotation_guard");
  std::map<std::string, std::string> env{
    {"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
    {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token},
    {"ARTIFACT_PUBLISHER_APPROVERS", standard_registry()},
    {"ARTIFACT_PUBLISHER_DELIVERY_KEYS", object({{"d1", delivery_d1}, {"d2", delivery_d2}})}};
  {
    service_process svc{db, env};
    rotate(svc.port(), rotation(domain::secret_set::delivery, "d2", delivery_d2));
  }
  auto production = production_env(env, db);
  production["ARTIFACT_PUBLISHER_DELIVERY_KEYS"] = object({{"d1", delivery_d1}});
  auto [code, out] = run_cli({"serve"}, production);
  BOOST_TEST(code == 2, out);
  BOOST_TEST(out.find("delivery kid d2 (the active version of the last applied secret-rotation) is "
                      "not configured: add it to ARTIFACT_PUBLISHER_DELIVERY_KEYS")
               != std::string::npos, out);
  BOOST_TEST(out.find(delivery_d1) == std::string::npos);

  auto development = env;
  development["ARTIFACT_PUBLISHER_DELIVERY_KEYS"] = object({{"d1", delivery_d1}});
  service_process dev{db, development};
  auto health = parse_json(http_call(dev.port(), "GET", "/health").body);
  BOOST_TEST(str(health, "status") == "degraded");
  BOOST_REQUIRE(health.HasMember("reasons") && health["reasons"].IsArray());
  BOOST_TEST(std::string{health["reasons"][0].GetString()}.find("delivery kid d2") != std::string::npos);
  // It keeps sealing with the version it has, and says which.
  BOOST_TEST(str(sold(dev.port(), "rot-degraded")["delivery"], "keyId") == "d1");
}

BOOST_AUTO_TEST_SUITE_END()
