// Checkout through real sockets, the real binary and a real PostgreSQL.
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <future>
#include <unistd.h>
#include <set>

#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/time.hpp"
#include "domain/delivery.hpp"
#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

// One service for the whole suite: starting it costs a migration.
service_process& svc() {
  static kernel_process kernel;
  static service_process instance{fresh_database("ap_e2e_checkout"),
                                  {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  return instance;
}

std::string body_for(const std::string& customer, const std::string& items,
                     const std::string& extra = {}) {
  return R"({"customerId":")" + customer + R"(","email":"buyer@example.com","currency":"usd","items":)"
         + items + extra + "}";
}

http_reply post_checkout(const std::string& body, header_list headers = {}) {
  headers.emplace_back("Content-Type", "application/json");
  return http_call(svc().port(), "POST", "/api/checkout", headers, body);
}

std::string str(const rapidjson::Value& v, const char* name) {
  BOOST_REQUIRE_MESSAGE(v.HasMember(name) && v[name].IsString(), "missing string " << name);
  return v[name].GetString();
}

std::string sql_value(const std::string& query, const persistence::params& p = {}) {
  persistence::connection db{svc().db_url()};
  auto rows = db.exec(query, p);
  return rows.rows() ? rows.value(0, 0) : "";
}

bool matches(const std::string& text, const std::string& prefix, std::size_t hex) {
  if (text.size() != prefix.size() + hex || text.compare(0, prefix.size(), prefix) != 0)
    return false;
  return text.find_first_not_of("0123456789abcdef", prefix.size()) == std::string::npos;
}

const std::string one_basic = R"([{"sku":"creator-basic","quantity":2}])";

} // namespace

BOOST_AUTO_TEST_SUITE(checkout_end_to_end)

BOOST_AUTO_TEST_CASE(a_checkout_completes_with_every_part) {
  auto r = post_checkout(body_for("cust-complete", R"([{"sku":"creator-pro","quantity":1},)"
                                                   R"({"sku":"creator-basic","quantity":2}])"));
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  auto doc = parse_json(r.body);
  auto order_id = str(doc, "orderId");
  BOOST_TEST(matches(order_id, "order_", 24));
  BOOST_TEST(str(doc, "status") == "completed");
  BOOST_TEST(doc["total"].GetInt64() == 2500 + 2 * 1200);
  BOOST_TEST(str(doc, "currency") == "usd");
  const auto& pay = doc["payment"];
  BOOST_TEST(str(pay, "status") == "captured");
  BOOST_TEST(matches(str(pay, "paymentId"), "pay_", 24));
  BOOST_TEST(pay["amount"].GetInt64() == 4900);
  const auto& fin = doc["finance"];
  BOOST_TEST(matches(str(fin, "entryId"), "fin_", 24));
  BOOST_TEST(fin["credit"].GetInt64() == 4900);
  BOOST_TEST(fin["debit"].GetInt64() == 4900);
  // The ids that key an index begin with the order's second (record_id_hex),
  // the second createdAt names.
  auto second = order_id.substr(6, 8);
  BOOST_TEST(second == record_id_hex(parse_rfc3339_ms(str(doc, "createdAt"))).substr(0, 8));
  BOOST_TEST(str(pay, "paymentId").substr(4, 8) == second);
  BOOST_TEST(str(fin, "entryId").substr(4, 8) == second);
  BOOST_TEST(str(doc["audit"], "eventId").substr(4, 8) == second);
  const auto& proof = doc["proof"];
  BOOST_TEST(str(proof, "algorithm") == "hmac-sha256");
  BOOST_TEST(str(proof, "kid") == "v1");
  BOOST_TEST(str(proof, "proofId") == "proof_" + str(proof, "payloadHash").substr(0, 24));
  BOOST_TEST(str(proof["payload"], "orderId") == order_id);
  BOOST_TEST(str(proof["payload"]["items"][0], "sku") == "creator-basic");  // sorted
  const auto& license = doc["license"];
  BOOST_TEST(matches(str(license, "licenseId"), "lic_", 24));
  BOOST_TEST(str(license, "issuedTo") == "cust-complete");
  const auto& delivery = doc["delivery"];
  BOOST_TEST(matches(str(delivery, "deliveryId"), "dlv_", 24));
  BOOST_TEST(str(delivery, "keyMode") == "license");
  BOOST_TEST(str(delivery, "aad") == order_id + "|" + str(license, "licenseId"));
  BOOST_TEST(str(doc["audit"], "status") == "pending");

  // The license key opens the delivery, whose plaintext names the artifacts.
  auto key = crypto::base64_decode(str(license, "licenseKey"));
  BOOST_REQUIRE(key);
  auto plain = domain::open_delivery(*key, str(delivery, "nonce"), str(delivery, "cipherText"),
                                     str(delivery, "aad"));
  auto artifacts = parse_json(plain);
  BOOST_TEST(str(artifacts, "orderId") == order_id);
  BOOST_TEST(artifacts["artifacts"].Size() == 2u);
  BOOST_TEST(str(artifacts["artifacts"][0], "sha256").size() == 64u);

  // Everything is in PostgreSQL: the order, its items, its two audit events.
  BOOST_TEST(sql_value("SELECT status FROM orders WHERE order_id = $1", {order_id}) == "completed");
  BOOST_TEST(sql_value("SELECT count(*) FROM order_items WHERE order_id = $1", {order_id}) == "2");
  BOOST_TEST(sql_value(std::string("SELECT string_agg(event_type, ',' ORDER BY event_type) FROM ")
                         + audit_events_sql + " e WHERE order_id = $1",
                       {order_id})
             == "delivery.generated,order.completed");
}

BOOST_AUTO_TEST_CASE(orders_read_back_the_same_after_a_restart) {
  auto r = post_checkout(body_for("cust-readback", one_basic));
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  auto doc = parse_json(r.body);
  auto id = str(doc, "orderId");
  auto get = [&](const std::string& suffix) {
    return http_call(svc().port(), "GET", "/api/checkout/" + id + suffix);
  };
  // The order reads as the checkout answered, but for its audit, which
  // shows the receipts of its events as they come in (SPEC §11).
  auto same_but_audit = [&](const std::string& body) {
    auto read = parse_json(body);
    if (str(read["audit"], "eventId") != str(doc["audit"], "eventId"))
      return false;
    auto posted = parse_json(r.body);
    read.RemoveMember("audit");
    posted.RemoveMember("audit");
    return json::canonical(read) == json::canonical(posted);
  };
  BOOST_TEST(same_but_audit(get("").body));
  auto license = get("/license");
  BOOST_TEST(license.status == 200);
  BOOST_TEST(license.body == json::canonical(doc["license"]));
  BOOST_TEST(get("/delivery").body == json::canonical(doc["delivery"]));
  BOOST_TEST(get("/proof").body == json::canonical(doc["proof"]));

  svc().restart();
  BOOST_TEST(same_but_audit(get("").body));
  BOOST_TEST(get("/proof").body == json::canonical(doc["proof"]));
}

BOOST_AUTO_TEST_CASE(unknown_orders_are_404) {
  auto missing = http_call(svc().port(), "GET", "/api/checkout/order_000000000000000000000000");
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(missing.body.find("\"error\":\"not_found\"") != std::string::npos);
  BOOST_TEST(http_call(svc().port(), "GET", "/api/checkout/nonsense").status == 404);
  BOOST_TEST(http_call(svc().port(), "GET", "/api/checkout/order_000000000000000000000000/proof")
               .status
             == 404);
}

BOOST_AUTO_TEST_CASE(a_declined_card_keeps_the_order_as_payment_failed) {
  auto r = post_checkout(body_for("cust-declined", one_basic,
                                  R"(,"paymentMethod":"pm_card_chargeDeclined")"));
  BOOST_REQUIRE_MESSAGE(r.status == 402, r.body);
  auto doc = parse_json(r.body);
  BOOST_TEST(str(doc, "error") == "payment_declined");
  auto id = str(doc, "orderId");
  auto view = parse_json(http_call(svc().port(), "GET", "/api/checkout/" + id).body);
  BOOST_TEST(str(view, "status") == "payment_failed");
  BOOST_TEST(str(view["payment"], "status") == "declined");
  BOOST_TEST(http_call(svc().port(), "GET", "/api/checkout/" + id + "/license").status == 404);
  BOOST_TEST(sql_value(std::string("SELECT string_agg(event_type, ',') FROM ") + audit_events_sql
                         + " e WHERE order_id = $1",
                       {id})
             == "order.payment_failed");
  BOOST_TEST(sql_value("SELECT finance_entry_id IS NULL FROM orders WHERE order_id = $1", {id})
             == "t");
}

BOOST_AUTO_TEST_CASE(invalid_input_is_400_with_the_field_and_writes_nothing) {
  auto before = sql_value("SELECT count(*) FROM orders");
  struct probe {
    std::string items;
    std::string field;
  };
  for (const auto& p : {probe{R"([{"sku":"creator-basic","quantity":-1}])", "items[0].quantity"},
                        probe{R"([{"sku":"creator-basic","quantity":0}])", "items[0].quantity"},
                        probe{R"([{"sku":"creator-basic","quantity":1.5}])", "items[0].quantity"},
                        probe{R"([{"sku":"creator-basic","quantity":"3"}])", "items[0].quantity"},
                        probe{R"([{"sku":"no-such-thing","quantity":1}])", "items[0].sku"},
                        probe{R"([{"sku":"__proto__","quantity":1}])", "items[0].sku"},
                        probe{"[]", "items"}}) {
    auto r = post_checkout(body_for("cust-invalid", p.items));
    BOOST_TEST(r.status == 400, p.items << " -> " << r.body);
    BOOST_TEST(r.body.find("\"field\":\"" + p.field + "\"") != std::string::npos, r.body);
  }
  BOOST_TEST(sql_value("SELECT count(*) FROM orders") == before);
}

BOOST_AUTO_TEST_CASE(idempotency_key_replays_byte_for_byte_and_refuses_other_bodies) {
  header_list key{{"Idempotency-Key", "replay-key-1"}};
  auto body = body_for("cust-idem", one_basic);
  auto first = post_checkout(body, key);
  BOOST_REQUIRE_MESSAGE(first.status == 201, first.body);
  auto again = post_checkout(body, key);
  BOOST_TEST(again.status == 201);
  BOOST_TEST(again.body == first.body);
  // Formatting does not matter; content does.
  auto spaced = post_checkout("  " + body + "\n", key);
  BOOST_TEST(spaced.status == 201);
  BOOST_TEST(spaced.body == first.body);
  auto other = post_checkout(body_for("cust-idem", R"([{"sku":"creator-basic","quantity":3}])"),
                             key);
  BOOST_TEST(other.status == 422);
  BOOST_TEST(other.body.find("\"field\":\"Idempotency-Key\"") != std::string::npos);
  // Keys are scoped by customer: another customer may use the same key.
  auto stranger = post_checkout(body_for("cust-idem-2", one_basic), key);
  BOOST_TEST(stranger.status == 201);
  BOOST_TEST(stranger.body != first.body);
  // Without a key, every POST is a new order.
  auto a = parse_json(post_checkout(body).body);
  auto b = parse_json(post_checkout(body).body);
  BOOST_TEST(str(a, "orderId") != str(b, "orderId"));
  // A declined payment is replayed too.
  header_list decline_key{{"Idempotency-Key", "declined-key"}};
  auto declined_body = body_for("cust-idem", one_basic, R"(,"paymentMethod":"pm_card_chargeDeclined")");
  auto d1 = post_checkout(declined_body, decline_key);
  auto d2 = post_checkout(declined_body, decline_key);
  BOOST_TEST(d1.status == 402);
  BOOST_TEST(d2.status == 402);
  BOOST_TEST(d1.body == d2.body);
  BOOST_TEST(post_checkout(body, {{"Idempotency-Key", std::string(300, 'k')}}).status == 400);
}

BOOST_AUTO_TEST_CASE(fifty_concurrent_identical_requests_make_one_order) {
  header_list key{{"Idempotency-Key", "concurrent-key"}};
  auto body = body_for("cust-concurrent", one_basic);
  std::vector<std::future<http_reply>> calls;
  for (int i = 0; i < 50; ++i)
    calls.push_back(std::async(std::launch::async, [&] { return post_checkout(body, key); }));
  std::set<std::string> bodies_201;
  int created = 0;
  int in_flight = 0;
  for (auto& c : calls) {
    auto r = c.get();
    if (r.status == 201) {
      ++created;
      bodies_201.insert(r.body);
    } else if (r.status == 409) {
      ++in_flight;
    } else {
      BOOST_ERROR("unexpected " << r.status << " " << r.body);
    }
  }
  BOOST_TEST(created >= 1);
  BOOST_TEST(created + in_flight == 50);
  BOOST_TEST(bodies_201.size() == 1u);  // every 201 is the same answer
  BOOST_TEST(sql_value("SELECT count(*) FROM orders WHERE customer_id = 'cust-concurrent'") == "1");
  BOOST_TEST(sql_value("SELECT count(DISTINCT payment_id) FROM orders"
                       " WHERE customer_id = 'cust-concurrent'")
             == "1");
  BOOST_TEST(sql_value("SELECT count(DISTINCT finance_entry_id) FROM orders"
                       " WHERE customer_id = 'cust-concurrent'")
             == "1");
  BOOST_TEST(sql_value(std::string("SELECT count(*) FROM ") + audit_events_sql
                       + " e JOIN orders r USING (order_id) WHERE r.customer_id = 'cust-concurrent'")
             == "2");
  // After the first completed, a retry replays it.
  auto later = post_checkout(body, key);
  BOOST_TEST(later.status == 201);
  BOOST_TEST(bodies_201.count(later.body) == 1u);
}

BOOST_AUTO_TEST_CASE(proofs_verify_and_any_change_is_caught) {
  auto r = post_checkout(body_for("cust-proof", one_basic));
  BOOST_REQUIRE(r.status == 201);
  auto doc = parse_json(r.body);
  auto proof = json::canonical(doc["proof"]);
  auto payload = json::canonical(doc["proof"]["payload"]);
  auto verify = [&](const std::string& p, const std::string& pl) {
    return http_call(svc().port(), "POST", "/api/proof/verify",
                     {{"Content-Type", "application/json"}},
                     R"({"proof":)" + p + R"(,"payload":)" + pl + "}");
  };
  auto ok = verify(proof, payload);
  BOOST_TEST(ok.status == 200);
  BOOST_TEST(ok.body == R"({"valid":true})");

  auto replace = [](std::string text, const std::string& from, const std::string& to) {
    auto at = text.find(from);
    BOOST_REQUIRE_MESSAGE(at != std::string::npos, from);
    return text.replace(at, from.size(), to);
  };
  auto total = std::to_string(doc["total"].GetInt64());
  auto changed_payload = replace(payload, "\"total\":" + total, "\"total\":1");
  BOOST_TEST(verify(proof, changed_payload).body.find("\"valid\":false") != std::string::npos);
  // Every field of the signed payload is covered, in the proof and outside it.
  const auto& p = doc["proof"]["payload"];
  for (const char* field : {"orderId", "paymentId", "financeEntry", "customerId", "currency"}) {
    auto from = std::string{"\""} + field + "\":\"" + p[field].GetString() + "\"";
    auto to = std::string{"\""} + field + "\":\"x" + p[field].GetString() + "\"";
    auto one = verify(replace(proof, from, to), replace(payload, from, to));
    BOOST_TEST(one.body.find("\"valid\":false") != std::string::npos, field << ": " << one.body);
  }
  auto more = replace(payload, "\"quantity\":2", "\"quantity\":3");
  BOOST_TEST(verify(replace(proof, "\"quantity\":2", "\"quantity\":3"), more).body.find("payload_hash_mismatch")
             != std::string::npos);
  auto changed_both = replace(proof, "\"total\":" + total, "\"total\":1");
  auto both = verify(changed_both, changed_payload).body;
  BOOST_TEST(both.find("payload_hash_mismatch") != std::string::npos, both);
  auto wrong_kid = verify(replace(proof, "\"kid\":\"v1\",\"payload\"", "\"kid\":\"v9\",\"payload\""),
                          payload);
  BOOST_TEST(wrong_kid.body.find("unknown_kid") != std::string::npos, wrong_kid.body);
  auto sig = str(doc["proof"], "signature");
  auto forged_sig = std::string(sig.size(), sig[0] == 'a' ? 'b' : 'a');
  auto forged = verify(replace(proof, sig, forged_sig), payload);
  BOOST_TEST(forged.body.find("bad_signature") != std::string::npos, forged.body);
  auto ed = str(doc["proof"]["ed25519"], "signature");
  auto forged_ed = verify(replace(proof, ed, crypto::base64_encode(std::string(64, '\x01'))), payload);
  BOOST_TEST(forged_ed.body.find("bad_ed25519_signature") != std::string::npos, forged_ed.body);
  auto missing = http_call(svc().port(), "POST", "/api/proof/verify",
                           {{"Content-Type", "application/json"}}, R"({"proof":{}})");
  BOOST_TEST(missing.status == 400);
}

BOOST_AUTO_TEST_CASE(published_keys_verify_proofs_offline) {
  auto r = post_checkout(body_for("cust-offline", one_basic));
  BOOST_REQUIRE(r.status == 201);
  auto doc = parse_json(r.body);
  auto keys = parse_json(http_call(svc().port(), "GET", "/api/proof/keys").body);
  BOOST_REQUIRE(keys["keys"].IsArray());
  BOOST_REQUIRE(keys["keys"].Size() == 1u);
  const auto& k = keys["keys"][0];
  BOOST_TEST(str(k, "kid") == "v1");
  BOOST_TEST(str(k, "algorithm") == "ed25519");
  BOOST_TEST(k["active"].GetBool());
  auto public_key = crypto::base64_decode(str(k, "publicKey"));
  BOOST_REQUIRE(public_key);
  BOOST_TEST(public_key->size() == 32u);
  auto digest = crypto::sha256(json::canonical(doc["proof"]["payload"]));
  auto sig = crypto::base64_decode(str(doc["proof"]["ed25519"], "signature"));
  BOOST_REQUIRE(sig);
  BOOST_TEST(crypto::ed25519_verify(*public_key, digest, *sig));
  BOOST_TEST(!crypto::ed25519_verify(*public_key, crypto::sha256("other"), *sig));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(offline_tools)

namespace {

std::string write_temp(const std::string& name, const std::string& content) {
  auto path = "/tmp/ap-e2e-" + std::to_string(::getpid()) + "-" + name;
  std::ofstream{path} << content;
  return path;
}


} // namespace

BOOST_AUTO_TEST_CASE(verify_proof_and_decrypt_delivery_work_offline) {
  auto r = post_checkout(body_for("cust-cli", one_basic));
  BOOST_REQUIRE(r.status == 201);
  auto order = write_temp("order.json", r.body);
  auto keys = write_temp("keys.json", http_call(svc().port(), "GET", "/api/proof/keys").body);
  auto [ok_rc, ok_out] = run_cli({"verify-proof", order, "--keys", keys});
  BOOST_TEST(ok_rc == 0, ok_out);
  BOOST_TEST(ok_out.find("\"valid\":true") != std::string::npos, ok_out);
  auto doc = parse_json(r.body);
  auto proof_only = write_temp("proof.json", json::canonical(doc["proof"]));
  auto key_b64 = std::string{parse_json(read_file(keys))["keys"][0]["publicKey"].GetString()};
  BOOST_TEST(run_cli({"verify-proof", proof_only, "--public-key", key_b64}).first == 0);

  auto tampered_text = r.body;
  auto at = tampered_text.find("\"customerId\":\"cust-cli\"");
  BOOST_REQUIRE(at != std::string::npos);
  tampered_text.replace(at, 23, "\"customerId\":\"cust-xyz\"");
  auto tampered = write_temp("tampered.json", tampered_text);
  auto [bad_rc, bad_out] = run_cli({"verify-proof", tampered, "--keys", keys});
  BOOST_TEST(bad_rc == 1);
  BOOST_TEST(bad_out.find("\"valid\":false") != std::string::npos, bad_out);

  auto [dec_rc, dec_out] = run_cli({"decrypt-delivery", order});
  BOOST_TEST(dec_rc == 0, dec_out);
  BOOST_TEST(dec_out.find("\"orderId\":\"" + str(doc, "orderId") + "\"") != std::string::npos);
  auto wrong_key = crypto::base64_encode(std::string(32, '\x07'));
  BOOST_TEST(run_cli({"decrypt-delivery", order, "--license-key", wrong_key}).first == 1);
  BOOST_TEST(run_cli({"decrypt-delivery"}).first == 2);
  for (const auto& f : {order, keys, proof_only, tampered})
    std::remove(f.c_str());
}

BOOST_AUTO_TEST_CASE(buyer_key_mode_round_trip) {
  // The buyer's RSA key pair comes from the openssl command line.
  auto priv = "/tmp/ap-e2e-" + std::to_string(::getpid()) + "-buyer.pem";
  auto pub = priv + ".pub";
  BOOST_REQUIRE(shell("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out " + priv
                      + " 2>/dev/null && openssl pkey -in " + priv + " -pubout -out " + pub)
                == 0);
  std::string pem = read_file(pub);
  std::string escaped;
  for (char c : pem)
    escaped += c == '\n' ? std::string{"\\n"} : std::string(1, c);
  auto r = post_checkout(body_for("cust-buyer", one_basic, R"(,"buyerPublicKey":")" + escaped + "\""));
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  auto doc = parse_json(r.body);
  BOOST_TEST(str(doc["delivery"], "keyMode") == "buyer");
  BOOST_TEST(!doc["delivery"]["wrappedKey"].IsNull());
  BOOST_TEST(!doc["license"].HasMember("licenseKey"));
  auto order = write_temp("buyer-order.json", r.body);
  auto [rc, out] = run_cli({"decrypt-delivery", order, "--private-key", priv});
  BOOST_TEST(rc == 0, out);
  BOOST_TEST(out.find("\"licenseId\":\"" + str(doc["license"], "licenseId") + "\"") != std::string::npos,
             out);
  // A 1024-bit key is refused at checkout.
  auto weak = priv + ".weak";
  BOOST_REQUIRE(shell("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 2>/dev/null"
                      " | openssl pkey -pubout -out " + weak) == 0);
  std::string weak_escaped;
  for (char c : read_file(weak))
    weak_escaped += c == '\n' ? std::string{"\\n"} : std::string(1, c);
  auto refused = post_checkout(
    body_for("cust-buyer", one_basic, R"(,"buyerPublicKey":")" + weak_escaped + "\""));
  BOOST_TEST(refused.status == 400);
  BOOST_TEST(refused.body.find("\"field\":\"buyerPublicKey\"") != std::string::npos);
  for (const auto& f : {priv, pub, weak, order})
    std::remove(f.c_str());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(sandbox)

namespace {

http_reply run(const std::string& body) {
  return http_call(svc().port(), "POST", "/api/sandbox/run", {{"Content-Type", "application/json"}},
                   body);
}

std::string counts() {
  return sql_value(std::string("SELECT (SELECT count(*) FROM orders) || '/' || (SELECT count(*) FROM ")
                   + audit_events_sql + " e) || '/' || (SELECT count(*) FROM idempotency_keys)");
}

const std::string program = R"({"instructions":[
  {"op":"checkout","payload":{"customerId":"sb","email":"sb@example.com","currency":"usd",
                              "items":[{"sku":"creator-pro","quantity":2}]}},
  {"op":"proof","payload":{"payload":{"orderId":"order_x","total":5}}},
  {"op":"license","payload":{"customerId":"sb","skus":["creator-pro"]}}]})";

} // namespace

BOOST_AUTO_TEST_CASE(runs_are_deterministic_and_write_nothing) {
  auto before = counts();
  auto first = run(program);
  BOOST_REQUIRE_MESSAGE(first.status == 200, first.body);
  auto second = run(program);
  BOOST_TEST(second.body == first.body);
  BOOST_TEST(counts() == before);
  auto doc = parse_json(first.body);
  BOOST_TEST(doc["exitCode"].GetInt() == 0);
  const auto& t = doc["transcript"];
  BOOST_REQUIRE(t.Size() == 3u);
  BOOST_TEST(t[0]["result"]["total"].GetInt64() == 5000);
  BOOST_TEST(str(t[0]["result"], "proofFingerprint").size() == 64u);
  BOOST_TEST(str(t[1]["result"], "kid") == "sandbox");
  BOOST_TEST(str(t[2]["result"], "issuedTo") == "sb");
  BOOST_TEST(str(t[0], "timestamp") != str(t[1], "timestamp"));
  BOOST_TEST(str(t[0], "digest").size() == 64u);

  // A sandbox proof never verifies as a real one.
  auto fake = R"({"proof":)" + json::canonical(t[1]["result"]) + R"(,"payload":{"orderId":"order_x","total":5}})";
  auto verdict = http_call(svc().port(), "POST", "/api/proof/verify",
                           {{"Content-Type", "application/json"}}, fake);
  BOOST_TEST(verdict.body.find("\"valid\":false") != std::string::npos, verdict.body);
  // It does verify inside the sandbox.
  auto inside = run(R"({"instructions":[{"op":"proof","payload":)" + fake + "}]}");
  BOOST_TEST(inside.body.find("\"valid\":true") != std::string::npos, inside.body);
}

BOOST_AUTO_TEST_CASE(bad_programs_are_refused) {
  BOOST_TEST(run(R"({"instructions":[]})").status == 400);
  BOOST_TEST(run(R"({})").status == 400);
  auto unknown = run(R"({"instructions":[{"op":"refund","payload":{}}]})");
  BOOST_TEST(unknown.status == 400);
  BOOST_TEST(unknown.body.find("\"field\":\"instructions[0].op\"") != std::string::npos);
  // A failing op is reported in the transcript, not as an HTTP error.
  auto failing = run(R"({"instructions":[{"op":"checkout","payload":{"customerId":"sb"}}]})");
  BOOST_TEST(failing.status == 200);
  BOOST_TEST(parse_json(failing.body)["exitCode"].GetInt() == 1);
}

BOOST_AUTO_TEST_SUITE_END()
