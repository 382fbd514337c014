// Audit receipts end to end (SPEC §11): the kernel-mock's receipts are
// checked, stored and shown on the order within the budget, and verify
// under the keys it publishes; a Kernel (or whatever answers in its place)
// whose answers are not valid receipts leaves the order pending; and a buyer
// checks the receipts offline with `verify-proof --kernel-keys`, each
// tampering named.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>
#include <unistd.h>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/order.hpp"
#include "domain/receipt.hpp"
#include "kernel/mock/audit_log.hpp"
#include "persistence/connection.hpp"
#include "test/support/local_server.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

const std::string checkout_body =
  R"({"customerId":"cust-receipts","email":"r@example.com","currency":"usd",)"
  R"("items":[{"sku":"creator-basic","quantity":1}]})";

http_reply checkout(std::uint16_t port, const std::string& key = {}) {
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
  if (!key.empty())
    headers.emplace_back("Idempotency-Key", key);
  return http_call(port, "POST", "/api/checkout", headers, checkout_body);
}

std::string str(const rapidjson::Value& v, const char* name) {
  BOOST_REQUIRE_MESSAGE(v.IsObject() && v.HasMember(name) && v[name].IsString(),
                        "missing string " << name);
  return v[name].GetString();
}

// The order as GET answers it.
rapidjson::Document read_order(std::uint16_t port, const std::string& order_id) {
  auto r = http_call(port, "GET", "/api/checkout/" + order_id);
  BOOST_REQUIRE_MESSAGE(r.status == 200, r.status << " " << r.body);
  return parse_json(r.body);
}

// Reads the order until its audit reads delivered or `within` has passed
// since `since`; answers the last read.
rapidjson::Document read_until_delivered(std::uint16_t port, const std::string& order_id,
                                         std::chrono::steady_clock::time_point since,
                                         std::chrono::milliseconds within) {
  for (;;) {
    auto doc = read_order(port, order_id);
    if (str(doc["audit"], "status") == "delivered"
        || std::chrono::steady_clock::now() - since > within)
      return doc;
    std::this_thread::sleep_for(25ms);
  }
}

// A series of /metrics (its value; 0 when absent).
double metric(std::uint16_t port, const std::string& series) {
  auto text = http_call(port, "GET", "/metrics").body;
  auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? 0.0 : std::stod(text.substr(at + series.size() + 2));
}

std::string sql_value(const std::string& db_url, const std::string& query,
                      const persistence::params& p = {}) {
  persistence::connection db{db_url};
  auto rows = db.exec(query, p);
  return rows.rows() ? rows.value(0, 0) : "";
}

std::string write_temp(const std::string& name, const std::string& content) {
  auto path = "/tmp/ap-e2e-receipts-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream{path} << content;
  return path;
}


// One Kernel and one service for the suites that need a delivered order.
struct stack {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_receipts"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
};

stack& shared_stack() {
  static stack s;
  return s;
}

// A Kernel stand-in on 127.0.0.1: what it answers to POST /kernel/audit is
// up to the test; it publishes `keys` at GET /kernel/keys.
struct kernel_stand_in : local_server {
  std::mutex mutex;
  std::string keys;
  std::function<http::response(const rapidjson::Value& body)> answer;
  std::atomic<int> audits{0};

  kernel_stand_in() {
    routes.add("POST", "/kernel/audit", http::access::open, http::body_kind::json,
               [this](http::request& req, http::reply_fn reply) {
                 ++audits;
                 std::lock_guard<std::mutex> guard{mutex};
                 reply(answer(*req.json));
               });
    routes.add("GET", "/kernel/keys", http::access::open, http::body_kind::none,
               [this](http::request&, http::reply_fn reply) {
                 std::lock_guard<std::mutex> guard{mutex};
                 reply(http::json_response(200, keys));
               });
    routes.add("GET", "/health", http::access::open, http::body_kind::none,
               [](http::request&, http::reply_fn reply) { reply(http::json_response(200, "{}")); });
    start();
  }
  ~kernel_stand_in() { stop(); }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  void publish(const std::string& signer_id, const std::string& public_key) {
    std::lock_guard<std::mutex> guard{mutex};
    keys = R"({"signers":[{"algorithm":"ed25519","publicKey":")" + crypto::base64_encode(public_key)
           + R"(","signerId":")" + signer_id + "\"}]}";
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(audit_receipts_end_to_end)

BOOST_AUTO_TEST_CASE(a_delivered_order_shows_receipts_that_verify_under_the_kernel_keys) {
  auto& s = shared_stack();
  auto posted = checkout(s.svc.port(), "receipts-1");
  auto answered = std::chrono::steady_clock::now();
  BOOST_REQUIRE_MESSAGE(posted.status == 201, posted.body);
  auto first = parse_json(posted.body);
  auto order_id = str(first, "orderId");

  auto doc = read_until_delivered(s.svc.port(), order_id, answered, 3000ms);
  BOOST_REQUIRE_MESSAGE(str(doc["audit"], "status") == "delivered",
                        "not delivered within the 3 s budget: " << json::canonical(doc["audit"]));
  const auto& audit = doc["audit"];
  BOOST_TEST(str(audit, "eventId") == str(first["audit"], "eventId"));
  BOOST_REQUIRE(audit["receipts"].IsArray());
  BOOST_REQUIRE(audit["receipts"].Size() == 2u);

  auto keys = domain::parse_kernel_keys(http_call(s.kernel.port(), "GET", "/kernel/keys").body);
  BOOST_REQUIRE(keys);
  auto by_signer = domain::keys_by_signer(*keys);
  std::vector<std::string> types;
  for (const auto& r : audit["receipts"].GetArray()) {
    auto receipt = domain::receipt_from_json(r);
    BOOST_REQUIRE(receipt);
    types.push_back(receipt->event_type);
    auto payload = domain::event_payload_from_result(doc, receipt->event_type);
    BOOST_REQUIRE(payload);
    BOOST_TEST(domain::to_string(domain::check_receipt(receipt->ack, receipt->ack.event_id, *payload,
                                                       by_signer))
               == "ok");
    // Checked again by hand: the hash over the payload and the previous
    // hash's bytes, the signature over the hash's bytes.
    std::string input = *payload;
    if (!receipt->ack.prev_hash.empty())
      input += *crypto::hex_decode(receipt->ack.prev_hash);
    BOOST_TEST(crypto::sha256_hex(input) == receipt->ack.hash);
    BOOST_TEST(crypto::ed25519_verify(by_signer.at(receipt->ack.signer_id).public_key(),
                                      *crypto::hex_decode(receipt->ack.hash),
                                      *crypto::base64_decode(receipt->ack.signature)));
    // The Kernel's own record of the event says the same.
    auto stored = parse_json(
      http_call(s.kernel.port(), "GET", "/kernel/audit/" + receipt->ack.kernel_id).body);
    BOOST_TEST(str(stored, "hash") == receipt->ack.hash);
    BOOST_TEST(str(stored, "signature") == receipt->ack.signature);
    BOOST_TEST(str(stored["metadata"], "eventId") == receipt->ack.event_id);
  }
  BOOST_TEST(types == (std::vector<std::string>{"order.completed", "delivery.generated"}),
             boost::test_tools::per_element());
  BOOST_TEST(sql_value(s.svc.db_url(), "SELECT count(*) FROM audit_receipts WHERE order_id = $1",
                       {order_id})
             == "2");
  // Both kept in the columns of their rows, their hashes and signature as
  // bytes (migration 0026), and shown above as receipt_document() rebuilt
  // them.
  BOOST_TEST(sql_value(s.svc.db_url(),
                       "SELECT count(*) FROM audit_receipts WHERE order_id = $1 AND receipt IS NULL"
                       " AND octet_length(hash) = 32 AND octet_length(signature) = 64",
                       {order_id})
             == "2");

  // Only the audit member differs from the stored result, and the POST's
  // replay keeps its body byte for byte.
  auto shown = parse_json(json::canonical(doc));
  shown.RemoveMember("audit");
  first.RemoveMember("audit");
  BOOST_TEST(json::canonical(shown) == json::canonical(first));
  auto replay = checkout(s.svc.port(), "receipts-1");
  BOOST_TEST(replay.status == 201);
  BOOST_TEST(replay.body == posted.body);
}

BOOST_AUTO_TEST_CASE(verify_proof_checks_the_receipts_of_a_delivered_result) {
  auto& s = shared_stack();
  auto posted = checkout(s.svc.port());
  auto answered = std::chrono::steady_clock::now();
  BOOST_REQUIRE_MESSAGE(posted.status == 201, posted.body);
  auto order_id = str(parse_json(posted.body), "orderId");
  auto doc = read_until_delivered(s.svc.port(), order_id, answered, 3000ms);
  BOOST_REQUIRE(str(doc["audit"], "status") == "delivered");
  auto delivered_text = http_call(s.svc.port(), "GET", "/api/checkout/" + order_id).body;

  auto result = write_temp("delivered.json", delivered_text);
  auto keys = write_temp("keys.json", http_call(s.svc.port(), "GET", "/api/proof/keys").body);
  auto kernel_keys =
    write_temp("kernel-keys.json", http_call(s.kernel.port(), "GET", "/kernel/keys").body);

  auto [ok_rc, ok_out] = run_cli({"verify-proof", result, "--keys", keys, "--kernel-keys", kernel_keys});
  BOOST_TEST(ok_rc == 0, ok_out);
  BOOST_TEST(ok_out.find(R"("valid":true})") != std::string::npos, ok_out);
  BOOST_TEST(ok_out.find(R"("eventType":"delivery.generated","valid":true)") != std::string::npos,
             ok_out);

  const auto& receipts = doc["audit"]["receipts"];
  auto completed_id = str(receipts[0], "eventId");
  auto generated_id = str(receipts[1], "eventId");
  auto replaced = [&](const std::string& from, const std::string& to) {
    auto text = delivered_text;
    auto at = text.find(from);
    BOOST_REQUIRE(at != std::string::npos);
    return text.replace(at, from.size(), to);
  };
  auto expect_failure = [&](const std::string& name, const std::string& text,
                            const std::string& kernel_keys_file, const std::string& check,
                            const std::string& event_id) {
    auto file = write_temp(name, text);
    auto [rc, out] = run_cli({"verify-proof", file, "--keys", keys, "--kernel-keys", kernel_keys_file});
    BOOST_TEST(rc == 1, name << ": " << out);
    BOOST_TEST(out.find(R"("reason":")" + check + "\"") != std::string::npos, name << ": " << out);
    BOOST_TEST(out.find(event_id + " fails: " + check) != std::string::npos, name << ": " << out);
    std::remove(file.c_str());
  };

  // A hash that is not that of the payload.
  auto hash = str(receipts[0], "hash");
  auto other_hash = std::string(64, hash[0] == 'a' ? 'b' : 'a');
  expect_failure("tampered-hash.json", replaced(hash, other_hash), kernel_keys, "hash_mismatch",
                 completed_id);
  // A signature that is not the Kernel's (a valid one, of another hash).
  auto signature = str(receipts[1], "signature");
  expect_failure("tampered-signature.json", replaced(signature, str(receipts[0], "signature")),
                 kernel_keys, "bad_signature", generated_id);
  // The keys of another Kernel (another signing seed, the same signer id).
  kernel_process other{{"--signing-seed", std::string(64, '8')}};
  auto other_keys =
    write_temp("other-kernel-keys.json", http_call(other.port(), "GET", "/kernel/keys").body);
  expect_failure("other-kernel.json", delivered_text, other_keys, "bad_signature", completed_id);
  // A payload member the Kernel did not hash: the delivery names another license.
  auto delivery_id = str(doc["delivery"], "deliveryId");
  expect_failure("tampered-delivery.json",
                 replaced("\"deliveryId\":\"" + delivery_id + "\"", "\"deliveryId\":\"dlv_x\""),
                 kernel_keys, "hash_mismatch", generated_id);

  // The POST's answer (audit pending, no receipts yet): refused, and said why.
  auto pending = write_temp("pending.json", posted.body);
  auto [pending_rc, pending_out] =
    run_cli({"verify-proof", pending, "--keys", keys, "--kernel-keys", kernel_keys});
  BOOST_TEST(pending_rc == 1, pending_out);
  BOOST_TEST(pending_out.find("audit is still pending") != std::string::npos, pending_out);
  BOOST_TEST(pending_out.find(R"("reason":"audit_pending")") != std::string::npos, pending_out);
  // Without --kernel-keys, its proof verifies as before.
  BOOST_TEST(run_cli({"verify-proof", pending, "--keys", keys}).first == 0);
  // A bare proof has no receipts to check.
  auto proof_only = write_temp("proof.json", json::canonical(doc["proof"]));
  auto [bare_rc, bare_out] = run_cli({"verify-proof", proof_only, "--keys", keys, "--kernel-keys", kernel_keys});
  BOOST_TEST(bare_rc == 1, bare_out);
  BOOST_TEST(bare_out.find("no audit receipts to check") != std::string::npos, bare_out);
  for (const auto& f : {result, keys, kernel_keys, other_keys, pending, proof_only})
    std::remove(f.c_str());
}

BOOST_AUTO_TEST_CASE(an_answer_with_only_an_id_leaves_the_order_pending) {
  kernel_stand_in kernel;
  kernel.publish("kernel-x", crypto::ed25519_signer{std::string(32, '\x01')}.public_key());
  kernel.answer = [](const rapidjson::Value&) { return http::json_response(202, R"({"id":"x"})"); };
  service_process svc{fresh_database("ap_e2e_receipts_id"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  auto posted = checkout(svc.port());
  BOOST_REQUIRE_MESSAGE(posted.status == 201, posted.body);
  auto order_id = str(parse_json(posted.body), "orderId");
  // Well past the budget, and past a retry of each event.
  std::this_thread::sleep_for(2s);
  BOOST_TEST(kernel.audits.load() >= 4);
  auto doc = read_order(svc.port(), order_id);
  BOOST_TEST(str(doc["audit"], "status") == "pending");
  BOOST_TEST(doc["audit"]["receipts"].Size() == 0u);
  BOOST_TEST(sql_value(svc.db_url(),
                       "SELECT count(*) FROM audit_outbox WHERE order_id = $1 AND delivered_at IS NULL",
                       {order_id})
             == "2");
  BOOST_TEST(sql_value(svc.db_url(), "SELECT count(*) FROM audit_receipts") == "0");
  BOOST_TEST(metric(svc.port(), R"(ap_audit_receipt_rejections_total{reason="malformed"})") >= 4);
  BOOST_TEST(metric(svc.port(), "ap_audit_events_forwarded_total") == 0);
}

BOOST_AUTO_TEST_CASE(receipts_signed_by_a_key_the_kernel_does_not_publish_leave_the_order_pending) {
  // A Kernel that signs with one key and publishes another under the same
  // signer id; its receipts are otherwise right (the mock Kernel's log).
  kernel::audit_log log{std::string(32, '\x02'), "kernel-mock"};
  kernel_stand_in kernel;
  kernel.publish("kernel-mock", crypto::ed25519_signer{std::string(32, '\x03')}.public_key());
  kernel.answer = [&log](const rapidjson::Value& body) {
    auto appended = log.append(body["eventType"].GetString(), body["payload"],
                               body["metadata"]["eventId"].GetString(), "artifact-publisher",
                               "2026-01-01T00:00:00Z");
    return http::json_response(202, kernel::to_json(*appended.event));
  };
  service_process svc{fresh_database("ap_e2e_receipts_key"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  auto posted = checkout(svc.port());
  BOOST_REQUIRE_MESSAGE(posted.status == 201, posted.body);
  auto order_id = str(parse_json(posted.body), "orderId");
  std::this_thread::sleep_for(2s);
  auto doc = read_order(svc.port(), order_id);
  BOOST_TEST(str(doc["audit"], "status") == "pending");
  BOOST_TEST(doc["audit"]["receipts"].Size() == 0u);
  BOOST_TEST(metric(svc.port(), R"(ap_audit_receipt_rejections_total{reason="bad_signature"})") >= 2);
  BOOST_TEST(metric(svc.port(), "ap_audit_events_forwarded_total") == 0);

  // Once it publishes the key it signs with, the same receipts pass.
  kernel.publish("kernel-mock", log.public_key());
  auto since = std::chrono::steady_clock::now();
  doc = read_until_delivered(svc.port(), order_id, since, 5000ms);
  BOOST_TEST(str(doc["audit"], "status") == "delivered");
  BOOST_TEST(doc["audit"]["receipts"].Size() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()
