// A corpus of malformed and adversarial requests against every route: each
// gets a 4xx JSON error, never a 5xx or a dropped connection, and the service
// stays up.
#include <boost/test/unit_test.hpp>

#include <cryptopp/base64.h>
#include <cryptopp/filters.h>
#include <cryptopp/integer.h>
#include <cryptopp/rsa.h>

#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

const std::string admin_token = "hostile-admin-token-0123456789abcdefghij";

std::vector<std::string> hostile_bodies() {
  std::vector<std::string> out = {
    "",
    "{",
    "}",
    "[",
    "null",
    "42",
    "\"string\"",
    "[]",
    "{}",
    "{\"a\":}",
    "{\"a\" 1}",
    "{'a':1}",
    "{\"a\":1,\"a\":2}",
    "{\"items\":[{\"sku\":\"x\",\"sku\":\"y\"}]}",
    "\xEF\xBB\xBF{}",
    std::string{"{\"a\":\"\0\"}", 9},
    std::string{"{}\0", 3},
    "{\"a\":\"\xC3\x28\"}",
    "{\"a\":\"\xFF\xFE\"}",
    "{\"a\":\"\xED\xA0\x80\"}",
    "{\"a\":1e999999}",
    "{\"a\":-1e999999}",
    "{\"a\":123456789012345678901234567890}",
    "{\"a\":NaN}",
    "{\"a\":Infinity}",
    "{\"a\":0x10}",
    "{\"a\":01}",
    "{\"a\":\"\\ud800\"}",
    "{\"a\":\"\\udc00\"}",
    "{\"a\":\"x\\u0000y\"}",
    "{\"a\\u0000b\":1}",
    "{\"approvers\":[\"alice\\u0000x\",\"bob\"],\"version\":\"1.0.0\",\"binaryHash\":\"00\"}",
    "{\"customerId\":\"c\\udc01\",\"email\":\"a@example.com\",\"currency\":\"usd\",\"items\":[]}",
    "{\"a\":\"\\u00\"}",
    "{\"a\":\"\\x41\"}",
    "{} {}",
    "{\"__proto__\":{\"admin\":true}}",
    "{\"constructor\":{\"prototype\":{}}}",
  };
  out.push_back(std::string(40, '[') + std::string(40, ']'));
  out.push_back(std::string(20000, '[') + std::string(20000, ']'));
  out.push_back(std::string(60000, '{'));
  out.push_back("{\"a\":\"" + std::string(60000, 'x') + "\"}");
  out.push_back("{\"a\":[" + [] {
    std::string s;
    for (int i = 0; i < 8000; ++i)
      s += (i ? ",1" : "1");
    return s;
  }() + "]}");
  // Wrong types in every field of every route (values that would be valid
  // in a field are left out for it).
  for (const auto& v : {"null", "true", "1", "-1", "1.5", "\"\"", "[]", "{}", "\"x\""}) {
    std::string value = v;
    bool plain_string = value == "\"x\"";
    if (!plain_string)
      out.push_back(R"({"customerId":)" + value + R"(,"email":"a@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
    out.push_back(R"({"customerId":"c","email":)" + value + R"(,"currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
    out.push_back(R"({"customerId":"c","email":"a@example.com","currency":)" + value + R"(,"items":[{"sku":"creator-basic","quantity":1}]})");
    out.push_back(R"({"customerId":"c","email":"a@example.com","currency":"usd","items":)" + value + "}");
    out.push_back(R"({"customerId":"c","email":"a@example.com","currency":"usd","items":[)" + value + "]}");
    out.push_back(R"({"customerId":"c","email":"a@example.com","currency":"usd","items":[{"sku":)" + value + R"(,"quantity":1}]})");
    if (value != "1")
      out.push_back(R"({"customerId":"c","email":"a@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":)" + value + "}]}");
    if (value != "{}") {
      out.push_back(R"({"proof":)" + value + R"(,"payload":{}})");
      out.push_back(R"({"proof":{},"payload":)" + value + "}");
    }
    out.push_back(R"({"instructions":)" + value + "}");
    out.push_back(R"({"instructions":[{"op":)" + value + R"(,"payload":{}}]})");
    out.push_back(R"({"version":)" + value + R"(,"binaryHash":"00","approvers":["a","b"]})");
    out.push_back(R"({"version":"1.0.0","binaryHash":"00","approvers":)" + value + "}");
    out.push_back(R"({"approver":)" + value + R"(,"signature":"AA=="})");
    out.push_back(R"({"approver":"alice","signature":)" + value + "}");
  }
  return out;
}

/// A buyer key with a 16,384-bit modulus and a 4,097-bit exponent, as a JSON
/// string: well formed, and a second or more of work to wrap to. The modulus
/// need not be a product of primes, which spares generating one.
std::string oversized_buyer_key_json() {
  CryptoPP::RSAFunction key;
  key.Initialize(CryptoPP::Integer::Power2(16383) + CryptoPP::Integer::One(),
                 CryptoPP::Integer::Power2(4096) + CryptoPP::Integer::One());
  std::string der;
  CryptoPP::StringSink sink(der);
  key.DEREncode(sink);
  std::string body;
  CryptoPP::StringSource(der, true,
                         new CryptoPP::Base64Encoder(new CryptoPP::StringSink(body), true, 64));
  std::string pem = "-----BEGIN PUBLIC KEY-----\\n";
  for (char c : body)
    pem += c == '\n' ? std::string{"\\n"} : std::string(1, c);
  return "\"" + pem + "-----END PUBLIC KEY-----\\n\"";
}

} // namespace

BOOST_AUTO_TEST_SUITE(hostile_input)

// Refused while the request is parsed, before the checkout actor could spend
// its time on the key: nothing is written, and a good checkout sent next is
// served as usual.
BOOST_AUTO_TEST_CASE(an_oversized_buyer_key_is_refused_before_checkout) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_hostile_rsa"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()}}};
  const std::string order =
      R"({"customerId":"c","email":"a@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}])";
  auto refused = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                           order + R"(,"buyerPublicKey":)" + oversized_buyer_key_json() + "}");
  BOOST_TEST(refused.status == 400, refused.status << " " << refused.body.substr(0, 300));
  BOOST_TEST(refused.body.find("invalid_input") != std::string::npos, refused.body);
  BOOST_TEST(refused.body.find("buyerPublicKey") != std::string::npos, refused.body);
  persistence::connection db{svc.db_url()};
  BOOST_TEST(db.exec("SELECT count(*) FROM orders").value(0, 0) == "0");
  auto fine = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                        order + "}");
  BOOST_TEST(fine.status == 201, fine.status << " " << fine.body.substr(0, 300));
}

BOOST_AUTO_TEST_CASE(every_route_answers_malformed_bodies_with_a_4xx_json_error) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_hostile"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token}}};
  const std::vector<std::string> routes = {
    "/api/checkout", "/api/proof/verify", "/api/sandbox/run", "/api/multisig/upgrades",
    "/api/multisig/upgrade", "/api/multisig/upgrades/upg_000000000000000000000000/approvals"};
  std::size_t sent = 0;
  for (const auto& route : routes) {
    for (const auto& body : hostile_bodies()) {
      auto r = http_call(svc.port(), "POST", route,
                         {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + admin_token}},
                         body);
      ++sent;
      bool ok = r.complete && r.status >= 400 && r.status < 500
                && r.header("content-type") == "application/json"
                && r.body.find("\"error\":") != std::string::npos;
      BOOST_TEST(ok, route << " with " << body.substr(0, 80) << " -> " << r.status << " " << r.body.substr(0, 160));
    }
  }
  // Wrong methods, unknown routes, odd targets and headers.
  for (const auto& target : {"/api/checkout/%00", "/api/checkout/..%2f..%2fetc", "/%ff%fe", "/api//checkout",
                             "/api/checkout?x=1&x=2", "/api/proof/keys/extra"}) {
    auto r = http_call(svc.port(), "GET", target);
    ++sent;
    BOOST_TEST((r.complete && r.status >= 400 && r.status < 500), target << " -> " << r.status);
  }
  auto wrong_type = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "text/xml"}}, "<a/>");
  BOOST_TEST(wrong_type.status == 415);
  auto bad_key = http_call(svc.port(), "POST", "/api/checkout",
                           {{"Content-Type", "application/json"}, {"Idempotency-Key", std::string(300, 'k')}},
                           R"({"customerId":"c","email":"a@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
  BOOST_TEST(bad_key.status == 400);
  BOOST_TEST_MESSAGE(sent << " hostile requests");
  // Still up, and still correct.
  BOOST_TEST(svc.proc().running());
  BOOST_TEST(http_call(svc.port(), "GET", "/readyz").status == 200);
  auto fine = http_call(svc.port(), "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                        R"({"customerId":"c","email":"a@example.com","currency":"usd","items":[{"sku":"creator-basic","quantity":1}]})");
  BOOST_TEST(fine.status == 201);
  // No half-written records: the only order, and the only audit events, are
  // the good one's; and nothing was logged as an error.
  persistence::connection db{svc.db_url()};
  BOOST_TEST(db.exec("SELECT count(*) FROM orders").value(0, 0) == "1");
  BOOST_TEST(db.exec(std::string("SELECT count(*) FROM ") + audit_events_sql + " e").value(0, 0) == "2");
  BOOST_TEST(db.exec("SELECT count(*) FROM upgrades").value(0, 0) == "0");
  BOOST_TEST(read_file(svc.log()).find("\"level\":\"error\"") == std::string::npos, read_file(svc.log()));
}

BOOST_AUTO_TEST_SUITE_END()
