#include <boost/test/unit_test.hpp>

#include <cryptopp/base64.h>
#include <cryptopp/filters.h>
#include <cryptopp/integer.h>
#include <cryptopp/rsa.h>

#include "core/json.hpp"
#include "domain/checkout.hpp"

using namespace ap;
using namespace ap::domain;

namespace {

std::variant<checkout_request, input_error> check(const std::string& body) {
  rapidjson::Document doc;
  auto err = json::parse_strict(body, doc);
  BOOST_REQUIRE_MESSAGE(!err, body);
  return parse_checkout(doc);
}

// The field a body is refused for, or "" when it is accepted.
std::string refused_field(const std::string& body) {
  auto r = check(body);
  if (auto* e = std::get_if<input_error>(&r))
    return e->field.empty() ? "<body>" : e->field;
  return "";
}

std::string with_items(const std::string& items) {
  return R"({"customerId":"cust-1","email":"a@example.com","currency":"usd","items":)" + items
         + "}";
}

const std::string valid = with_items(R"([{"sku":"creator-basic","quantity":2}])");

catalog test_catalog() {
  catalog c;
  c["creator-basic"] = {"creator-basic", "Creator Basic", 1200, "usd", "u1", std::string(64, 'a')};
  c["creator-pro"] = {"creator-pro", "Creator Pro", 2500, "usd", "u2", std::string(64, 'b')};
  c["euro-thing"] = {"euro-thing", "Euro", 100, "eur", "u3", std::string(64, 'c')};
  return c;
}

/// A SubjectPublicKeyInfo PEM for a chosen modulus and exponent. Validation
/// looks only at their sizes, so a modulus nobody can factor is not needed,
/// and no slow key generation either: n = 2^(bits-1) + 1 has exactly `bits`
/// bits and is odd.
std::string rsa_public_pem(unsigned bits, const CryptoPP::Integer& e) {
  CryptoPP::RSAFunction key;
  key.Initialize(CryptoPP::Integer::Power2(bits - 1) + CryptoPP::Integer::One(), e);
  std::string der;
  CryptoPP::StringSink sink(der);
  key.DEREncode(sink);
  std::string body;
  CryptoPP::StringSource(der, true,
                         new CryptoPP::Base64Encoder(new CryptoPP::StringSink(body), true, 64));
  return "-----BEGIN PUBLIC KEY-----\n" + body + "-----END PUBLIC KEY-----\n";
}

std::string with_buyer_key(const std::string& pem) {
  std::string escaped;
  for (char c : pem)
    escaped += c == '\n' ? std::string{"\\n"} : std::string(1, c);
  return valid.substr(0, valid.size() - 1) + R"(,"buyerPublicKey":")" + escaped + "\"}";
}

// The message a buyer key is refused with, or "" when it is accepted.
std::string key_refusal(unsigned bits, const CryptoPP::Integer& e) {
  auto r = check(with_buyer_key(rsa_public_pem(bits, e)));
  auto* err = std::get_if<input_error>(&r);
  if (!err)
    return "";
  BOOST_TEST(err->field == "buyerPublicKey");
  return err->message.empty() ? "<no message>" : err->message;
}

const CryptoPP::Integer f4{65537};

} // namespace

BOOST_AUTO_TEST_SUITE(checkout_validation)

// Wrapping to the buyer's key costs time cubic in the modulus and linear in
// the exponent's size, on the checkout actor: both are bounded here, where a
// request can still be refused cheaply.
BOOST_AUTO_TEST_CASE(buyer_keys_are_bounded_in_modulus_and_exponent) {
  BOOST_TEST(key_refusal(2048, f4).empty());
  BOOST_TEST(key_refusal(4096, f4).empty());
  BOOST_TEST(key_refusal(8192, f4).empty());
  BOOST_TEST(key_refusal(2048, CryptoPP::Integer{3}).empty());
  BOOST_TEST(key_refusal(2048, CryptoPP::Integer::Power2(32) - CryptoPP::Integer::One()).empty());

  for (unsigned bits : {1024u, 2047u, 8193u, 8200u, 16384u}) {
    auto message = key_refusal(bits, f4);
    BOOST_TEST(message.find("2048") != std::string::npos, bits << ": " << message);
    BOOST_TEST(message.find("8192") != std::string::npos, bits << ": " << message);
  }

  const CryptoPP::Integer exponents[] = {
      CryptoPP::Integer::One(), CryptoPP::Integer{65536},
      CryptoPP::Integer::Power2(32) + CryptoPP::Integer::One(),
      CryptoPP::Integer::Power2(1000) + CryptoPP::Integer::One()};
  for (const auto& e : exponents) {
    auto message = key_refusal(2048, e);
    BOOST_TEST(message.find("exponent") != std::string::npos, e << ": " << message);
  }
}

BOOST_AUTO_TEST_CASE(a_valid_request_passes_with_defaults) {
  auto r = check(valid);
  BOOST_REQUIRE(std::holds_alternative<checkout_request>(r));
  const auto& req = std::get<checkout_request>(r);
  BOOST_TEST(req.customer_id == "cust-1");
  BOOST_TEST(req.payment_method == "pm_card_visa");
  BOOST_TEST(req.items.size() == 1u);
  BOOST_TEST(req.items[0].quantity == 2);
  BOOST_TEST(req.fingerprint.size() == 64u);
}

BOOST_AUTO_TEST_CASE(quantity_must_be_an_integer_from_1_to_1000) {
  for (auto q : {"0", "-1", "1001", "1.5", "2.0", "1e2", "\"5\"", "null", "true", "[1]",
                 "99999999999999999999", "-9223372036854775808"})
    BOOST_TEST(refused_field(with_items(std::string{R"([{"sku":"creator-basic","quantity":)"} + q
                                        + "}]"))
                 == "items[0].quantity",
               "quantity " << q);
  BOOST_TEST(refused_field(with_items(R"([{"sku":"creator-basic","quantity":1000}])")).empty());
  BOOST_TEST(refused_field(with_items(R"([{"sku":"creator-basic","quantity":1}])")).empty());
  BOOST_TEST(refused_field(with_items(R"([{"sku":"creator-basic"}])")) == "items[0].quantity");
}

BOOST_AUTO_TEST_CASE(skus_are_checked_for_shape_and_duplicates) {
  for (auto sku : {"\"__proto__\"", "\"\"", "\"Creator-Basic\"", "\"../x\"",
                   "\"a b\"", "1", "null", "{}"}) {
    auto field = refused_field(with_items(std::string{R"([{"sku":)"} + sku + R"(,"quantity":1}])"));
    BOOST_TEST((field == "items[0].sku"), "sku " << sku << " gave " << field);
  }
  BOOST_TEST(refused_field(with_items(R"([{"sku":"creator-basic","quantity":1},)"
                                      R"({"sku":"creator-basic","quantity":2}])"))
             == "items[1].sku");
  BOOST_TEST(refused_field(with_items(R"([{"quantity":1}])")) == "items[0].sku");
  BOOST_TEST(refused_field(with_items(R"([{"sku":"creator-basic","quantity":1,"price":1}])"))
             == "items[0].price");
}

BOOST_AUTO_TEST_CASE(items_hold_1_to_100_objects) {
  BOOST_TEST(refused_field(with_items("[]")) == "items");
  BOOST_TEST(refused_field(with_items("{}")) == "items");
  BOOST_TEST(refused_field(with_items("\"creator-basic\"")) == "items");
  BOOST_TEST(refused_field(with_items("[1]")) == "items[0]");
  std::string many = "[";
  for (int i = 0; i < 101; ++i)
    many += (i ? "," : "") + std::string{R"({"sku":"s)"} + std::to_string(i) + R"(","quantity":1})";
  many += "]";
  BOOST_TEST(refused_field(with_items(many)) == "items");
  BOOST_TEST(refused_field(R"({"customerId":"c","email":"a@example.com","currency":"usd"})")
             == "items");
}

BOOST_AUTO_TEST_CASE(customer_email_and_currency_rules) {
  auto body = [](std::string customer, std::string email, std::string currency) {
    return R"({"customerId":)" + customer + R"(,"email":)" + email + R"(,"currency":)" + currency
           + R"(,"items":[{"sku":"creator-basic","quantity":1}]})";
  };
  BOOST_TEST(refused_field(body("\"\"", "\"a@example.com\"", "\"usd\"")) == "customerId");
  BOOST_TEST(refused_field(body("\"" + std::string(129, 'c') + "\"", "\"a@example.com\"",
                                "\"usd\""))
             == "customerId");
  BOOST_TEST(refused_field(body("\"" + std::string(128, 'c') + "\"", "\"a@example.com\"",
                                "\"usd\""))
               .empty());
  BOOST_TEST(refused_field(body("\"bad id\"", "\"a@example.com\"", "\"usd\"")) == "customerId");
  BOOST_TEST(refused_field(body("42", "\"a@example.com\"", "\"usd\"")) == "customerId");
  BOOST_TEST(refused_field(body("\"c\"", "\"not-an-email\"", "\"usd\"")) == "email");
  BOOST_TEST(refused_field(body("\"c\"", "\"a@b\"", "\"usd\"")) == "email");
  BOOST_TEST(refused_field(body("\"c\"", "\"a@@example.com\"", "\"usd\"")) == "email");
  BOOST_TEST(refused_field(body("\"c\"", "\"a b@example.com\"", "\"usd\"")) == "email");
  BOOST_TEST(refused_field(body("\"c\"", "\"" + std::string(250, 'a') + "@example.com\"",
                                "\"usd\""))
             == "email");
  BOOST_TEST(refused_field(body("\"c\"", "\"a@example.com\"", "\"USD\"")) == "currency");
  BOOST_TEST(refused_field(body("\"c\"", "\"a@example.com\"", "\"us\"")) == "currency");
  BOOST_TEST(refused_field(body("\"c\"", "\"a@example.com\"", "null")) == "currency");
  BOOST_TEST(refused_field(body("\"c.d:e@f-g_h\"", "\"first.last+tag@mail.example.co\"",
                                "\"usd\""))
               .empty());
}

BOOST_AUTO_TEST_CASE(missing_unknown_and_wrongly_typed_fields) {
  BOOST_TEST(refused_field("[]") == "<body>");
  BOOST_TEST(refused_field("\"x\"") == "<body>");
  BOOST_TEST(refused_field(R"({"email":"a@example.com","currency":"usd","items":[]})")
             == "customerId");
  BOOST_TEST(refused_field(R"({"customerId":"c","currency":"usd","items":[]})") == "email");
  BOOST_TEST(refused_field(R"({"customerId":"c","email":"a@example.com","items":[]})")
             == "currency");
  BOOST_TEST(refused_field(valid.substr(0, valid.size() - 1) + R"(,"coupon":"FREE"})")
             == "coupon");
  BOOST_TEST(refused_field(valid.substr(0, valid.size() - 1) + R"(,"paymentMethod":"pm_x"})")
             == "paymentMethod");
  BOOST_TEST(refused_field(valid.substr(0, valid.size() - 1) + R"(,"paymentMethod":7})")
             == "paymentMethod");
  BOOST_TEST(
    refused_field(valid.substr(0, valid.size() - 1) + R"(,"buyerPublicKey":"not a key"})")
    == "buyerPublicKey");
  BOOST_TEST(refused_field(valid.substr(0, valid.size() - 1)
                           + R"(,"paymentMethod":null,"buyerPublicKey":null})")
               .empty());
}

BOOST_AUTO_TEST_CASE(fingerprint_ignores_formatting_but_not_content) {
  auto a = std::get<checkout_request>(check(valid)).fingerprint;
  auto b = std::get<checkout_request>(
             check(R"({ "items" : [ { "quantity" : 2, "sku" : "creator-basic" } ],
                        "currency" : "usd", "email" : "a@example.com", "customerId" : "cust-1" })"))
             .fingerprint;
  auto c = std::get<checkout_request>(check(with_items(R"([{"sku":"creator-basic","quantity":3}])")))
             .fingerprint;
  BOOST_TEST(a == b);
  BOOST_TEST(a != c);
}

BOOST_AUTO_TEST_CASE(pricing_uses_the_catalog) {
  auto req = std::get<checkout_request>(check(with_items(
    R"([{"sku":"creator-pro","quantity":3},{"sku":"creator-basic","quantity":2}])")));
  auto q = price(req, test_catalog());
  BOOST_REQUIRE(std::holds_alternative<quote>(q));
  const auto& priced = std::get<quote>(q);
  BOOST_TEST(priced.total == 3 * 2500 + 2 * 1200);
  BOOST_REQUIRE(priced.items.size() == 2u);
  BOOST_TEST(priced.items[0].sku == "creator-basic");  // sorted by SKU
  BOOST_TEST(priced.items[0].amount == 2400);
  BOOST_TEST(priced.items[1].amount == 7500);
}

BOOST_AUTO_TEST_CASE(pricing_refuses_unknown_skus_and_other_currencies) {
  auto unknown = std::get<checkout_request>(check(with_items(
    R"([{"sku":"creator-basic","quantity":1},{"sku":"no-such-sku","quantity":1}])")));
  auto r1 = price(unknown, test_catalog());
  BOOST_REQUIRE(std::holds_alternative<input_error>(r1));
  BOOST_TEST(std::get<input_error>(r1).field == "items[1].sku");
  // Prototype-looking names have the shape of a SKU but are not in the catalog.
  auto proto = std::get<checkout_request>(check(with_items(R"([{"sku":"constructor","quantity":1}])")));
  auto r3 = price(proto, test_catalog());
  BOOST_REQUIRE(std::holds_alternative<input_error>(r3));
  BOOST_TEST(std::get<input_error>(r3).field == "items[0].sku");
  auto euro = std::get<checkout_request>(check(with_items(R"([{"sku":"euro-thing","quantity":1}])")));
  auto r2 = price(euro, test_catalog());
  BOOST_REQUIRE(std::holds_alternative<input_error>(r2));
  BOOST_TEST(std::get<input_error>(r2).field == "currency");
}

// The public catalog: sorted by SKU whatever order it was read in, the
// price in minor units, the name escaped, the artifact not listed.
BOOST_AUTO_TEST_CASE(the_catalog_document_lists_each_sku_with_its_price_sorted_by_sku) {
  std::vector<catalog_item> items{
    {"creator-pro", "Creator \"Pro\"", 2500, "usd", "https://a.invalid/p", std::string(64, 'b')},
    {"artifact-compliance", "Artifact Compliance", 450, "usd", "https://a.invalid/c",
     std::string(64, 'a')}};
  BOOST_TEST(catalog_json(items)
             == R"({"items":[{"currency":"usd","name":"Artifact Compliance","sku":"artifact-compliance","unitAmount":450},)"
                R"({"currency":"usd","name":"Creator \"Pro\"","sku":"creator-pro","unitAmount":2500}]})");
  BOOST_TEST(catalog_json({}) == R"({"items":[]})");
}

BOOST_AUTO_TEST_SUITE_END()
