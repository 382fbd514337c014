// The payments-mock process through its Stripe-shaped HTTP API: real process,
// real sockets, form-encoded requests as the connector sends them.
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "test/support/service.hpp"

using namespace ap::test;
using namespace std::chrono_literals;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;
using form = std::vector<std::pair<std::string, std::string>>;

std::string encode(const form& fields) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const auto& [key, value] : fields) {
    if (!out.empty())
      out += '&';
    for (const auto* part : {&key, &value}) {
      for (unsigned char c : *part) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
          out += static_cast<char>(c);
        } else {
          out += '%';
          out += hex[c >> 4];
          out += hex[c & 0xF];
        }
      }
      if (part == &key)
        out += '=';
    }
  }
  return out;
}

header_list stripe_headers(const std::string& idempotency_key = {},
                           const std::string& key = payments_process::secret_key) {
  header_list h{{"Authorization", "Bearer " + key},
                {"Content-Type", "application/x-www-form-urlencoded"},
                {"Stripe-Version", "2024-06-20"}};
  if (!idempotency_key.empty())
    h.emplace_back("Idempotency-Key", idempotency_key);
  return h;
}

http_reply post(std::uint16_t port, const std::string& path, const form& fields,
                const std::string& idempotency_key = {}) {
  return http_call(port, "POST", path, stripe_headers(idempotency_key), encode(fields));
}

http_reply get(std::uint16_t port, const std::string& target) {
  return http_call(port, "GET", target, stripe_headers());
}

form charge(const std::string& payment_method, std::int64_t amount = 1250, const std::string& order = "o-1") {
  return {{"amount", std::to_string(amount)},
          {"currency", "usd"},
          {"payment_method", payment_method},
          {"confirm", "true"},
          {"payment_method_types[]", "card"},
          {"metadata[order_id]", order}};
}

http_reply set_faults(std::uint16_t port, const std::string& body) {
  return http_call(port, "POST", "/mock/faults", {{"Content-Type", "application/json"}}, body);
}

std::string str(const rapidjson::Value& v, const char* name) {
  BOOST_REQUIRE_MESSAGE(v.IsObject() && v.HasMember(name), "member " << name);
  return v[name].IsString() ? v[name].GetString() : "<not a string>";
}

// The intent's id after a successful or declined charge.
std::string intent_id(const http_reply& r) {
  auto doc = parse_json(r.body);
  if (r.status == 402)
    return str(doc["error"]["payment_intent"], "id");
  return str(doc, "id");
}

// Milliseconds since `t0`, as a number Boost.Test can print.
long long ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

long long unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::size_t listed_intents(std::uint16_t port) {
  return read_processor_records(port).intents.size();
}

} // namespace

BOOST_AUTO_TEST_SUITE(payments_mock_process)

BOOST_AUTO_TEST_CASE(create_and_confirm_succeeds_with_the_payment_intent_shape) {
  payments_process p;
  auto fields = charge("pm_card_visa", 1999, "order 7/ä");
  fields[1].second = "EUR";
  fields.emplace_back("metadata[customer_id]", "c+1");
  auto before = unix_now();
  auto r = post(p.port(), "/v1/payment_intents", fields);
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.header("request-id").rfind("req_", 0) == 0u);
  BOOST_TEST(r.header("stripe-version") == "2024-06-20");
  auto pi = parse_json(r.body);
  auto id = str(pi, "id");
  BOOST_TEST(id.rfind("pi_", 0) == 0u);
  BOOST_TEST(id.size() == 27u);
  BOOST_TEST(str(pi, "object") == "payment_intent");
  BOOST_TEST(pi["amount"].GetInt64() == 1999);
  BOOST_TEST(pi["amount_received"].GetInt64() == 1999);
  BOOST_TEST(str(pi, "currency") == "eur");
  BOOST_TEST(str(pi, "status") == "succeeded");
  BOOST_TEST(str(pi, "payment_method") == "pm_card_visa");
  BOOST_TEST(str(pi, "latest_charge").rfind("ch_", 0) == 0u);
  BOOST_TEST(pi["last_payment_error"].IsNull());
  BOOST_TEST(pi["canceled_at"].IsNull());
  BOOST_TEST(pi["livemode"].IsFalse());
  BOOST_TEST(str(pi, "capture_method") == "automatic");
  BOOST_TEST(str(pi, "confirmation_method") == "automatic");
  BOOST_REQUIRE(pi["payment_method_types"].IsArray());
  BOOST_TEST(pi["payment_method_types"].Size() == 1u);
  BOOST_TEST(std::string{pi["payment_method_types"][0].GetString()} == "card");
  BOOST_TEST(str(pi["metadata"], "order_id") == "order 7/ä");
  BOOST_TEST(str(pi["metadata"], "customer_id") == "c+1");
  BOOST_TEST(!pi.HasMember("amount_refunded"));
  BOOST_TEST(pi["created"].GetInt64() >= before - 1);
  BOOST_TEST(pi["created"].GetInt64() <= unix_now() + 1);

  // Other test cards of the succeeding kind.
  BOOST_TEST(post(p.port(), "/v1/payment_intents", charge("pm_card_mastercard")).status == 200);
  BOOST_TEST(post(p.port(), "/v1/payment_intents", charge("pm_card_visa_debit")).status == 200);

  // Without confirm the intent waits for confirmation, and confirming charges it.
  auto waiting = post(p.port(), "/v1/payment_intents",
                      {{"amount", "500"}, {"currency", "usd"}, {"payment_method", "pm_card_visa"}});
  BOOST_TEST(waiting.status == 200);
  BOOST_TEST(str(parse_json(waiting.body), "status") == "requires_confirmation");
  auto confirmed = post(p.port(), "/v1/payment_intents/" + intent_id(waiting) + "/confirm", {});
  BOOST_TEST(confirmed.status == 200);
  BOOST_TEST(str(parse_json(confirmed.body), "status") == "succeeded");
  BOOST_TEST(listed_intents(p.port()) == 4u);
}

BOOST_AUTO_TEST_CASE(invalid_parameters_are_refused_naming_the_param) {
  payments_process p;
  auto refused = [&](const form& fields, const std::string& param) {
    auto r = post(p.port(), "/v1/payment_intents", fields);
    BOOST_TEST(r.status == 400, encode(fields) << " → " << r.status);
    auto doc = parse_json(r.body);
    BOOST_TEST(str(doc["error"], "type") == "invalid_request_error");
    BOOST_TEST(str(doc["error"], "param") == param, encode(fields) << " → " << r.body);
  };
  refused({{"currency", "usd"}, {"payment_method", "pm_card_visa"}, {"confirm", "true"}}, "amount");
  refused({{"amount", "12x"}, {"currency", "usd"}}, "amount");
  refused({{"amount", "0"}, {"currency", "usd"}}, "amount");
  refused({{"amount", "-5"}, {"currency", "usd"}}, "amount");
  refused({{"amount", "100"}}, "currency");
  refused({{"amount", "100"}, {"currency", "dollars"}}, "currency");
  refused({{"amount", "100"}, {"currency", "usd"}, {"confirm", "maybe"}}, "confirm");
  refused({{"amount", "100"}, {"currency", "usd"}, {"confirm", "true"}}, "payment_method");
  refused({{"amount", "100"}, {"currency", "usd"}, {"payment_method_types[]", "sepa_debit"}},
          "payment_method_types");
  refused({{"amount", "100"}, {"currency", "usd"}, {"colour", "red"}}, "colour");
  auto unknown = parse_json(post(p.port(), "/v1/payment_intents",
                                 {{"amount", "100"}, {"currency", "usd"}, {"colour", "red"}}).body);
  BOOST_TEST(str(unknown["error"], "code") == "parameter_unknown");
  // A body that is not form-encoded.
  auto json_body = http_call(p.port(), "POST", "/v1/payment_intents",
                             {{"Authorization", std::string{"Bearer "} + payments_process::secret_key},
                              {"Content-Type", "application/json"}},
                             R"({"amount":100,"currency":"usd"})");
  BOOST_TEST(json_body.status == 400);
  auto broken =
    http_call(p.port(), "POST", "/v1/payment_intents", stripe_headers(), "amount=%zz&currency=usd");
  BOOST_TEST(broken.status == 400);
  BOOST_TEST(listed_intents(p.port()) == 0u);
}

BOOST_AUTO_TEST_CASE(declined_test_cards_answer_402_and_keep_the_intent) {
  payments_process p;
  struct card {
    const char* pm;
    const char* decline_code;
    const char* message;
  };
  for (auto c : {card{"pm_card_chargeDeclined", "generic_decline", "Your card was declined."},
                 card{"pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds",
                      "Your card has insufficient funds."}}) {
    BOOST_TEST_CONTEXT(c.pm) {
      auto r = post(p.port(), "/v1/payment_intents", charge(c.pm, 4200));
      BOOST_TEST(r.status == 402);
      auto doc = parse_json(r.body);
      const auto& e = doc["error"];
      BOOST_TEST(str(e, "type") == "card_error");
      BOOST_TEST(str(e, "code") == "card_declined");
      BOOST_TEST(str(e, "decline_code") == c.decline_code);
      BOOST_TEST(str(e, "message") == c.message);
      BOOST_TEST(str(e, "charge").rfind("ch_", 0) == 0u);
      const auto& pi = e["payment_intent"];
      BOOST_TEST(str(pi, "object") == "payment_intent");
      BOOST_TEST(str(pi, "status") == "requires_payment_method");
      BOOST_TEST(pi["amount_received"].GetInt64() == 0);
      BOOST_TEST(str(pi["last_payment_error"], "decline_code") == c.decline_code);
      BOOST_TEST(str(pi["last_payment_error"], "type") == "card_error");
      BOOST_TEST(str(pi["metadata"], "order_id") == "o-1");
      // The intent exists at the processor, as it would at Stripe.
      auto stored = get(p.port(), "/v1/payment_intents/" + str(pi, "id"));
      BOOST_TEST(stored.status == 200);
      BOOST_TEST(str(parse_json(stored.body), "status") == "requires_payment_method");
    }
  }
  BOOST_TEST(listed_intents(p.port()) == 2u);

  // A declined intent can be confirmed again with another card.
  auto declined = intent_id(post(p.port(), "/v1/payment_intents", charge("pm_card_chargeDeclined", 600)));
  auto confirm_path = "/v1/payment_intents/" + declined + "/confirm";
  auto retried = post(p.port(), confirm_path, {{"payment_method", "pm_card_visa"}});
  BOOST_TEST(retried.status == 200);
  auto paid = parse_json(retried.body);
  BOOST_TEST(str(paid, "status") == "succeeded");
  BOOST_TEST(paid["amount_received"].GetInt64() == 600);
  BOOST_TEST(paid["last_payment_error"].IsNull());
  BOOST_TEST(str(paid, "payment_method") == "pm_card_visa");
  auto twice = post(p.port(), confirm_path, {{"payment_method", "pm_card_visa"}});
  BOOST_TEST(twice.status == 400);
  BOOST_TEST(str(parse_json(twice.body)["error"], "code") == "payment_intent_unexpected_state");
}

BOOST_AUTO_TEST_CASE(an_unknown_payment_method_is_refused_and_creates_nothing) {
  payments_process p;
  auto r = post(p.port(), "/v1/payment_intents", charge("pm_card_nonsense"));
  BOOST_TEST(r.status == 400);
  auto doc = parse_json(r.body);
  BOOST_TEST(str(doc["error"], "type") == "invalid_request_error");
  BOOST_TEST(str(doc["error"], "code") == "resource_missing");
  BOOST_TEST(str(doc["error"], "param") == "payment_method");
  BOOST_TEST(str(doc["error"], "message") == "No such PaymentMethod: 'pm_card_nonsense'");
  BOOST_TEST(listed_intents(p.port()) == 0u);
}

BOOST_AUTO_TEST_CASE(every_v1_request_needs_the_secret_key) {
  payments_process p;
  auto none = http_call(p.port(), "GET", "/v1/payment_intents");
  BOOST_TEST(none.status == 401);
  BOOST_TEST(str(parse_json(none.body)["error"], "type") == "invalid_request_error");
  const std::string wrong = "sk_test_not_the_configured_key_1234";
  auto bad = http_call(p.port(), "POST", "/v1/payment_intents", stripe_headers({}, wrong),
                       encode(charge("pm_card_visa")));
  BOOST_TEST(bad.status == 401);
  auto message = str(parse_json(bad.body)["error"], "message");
  BOOST_TEST(message.rfind("Invalid API Key provided: ", 0) == 0u);
  BOOST_TEST(message.find(wrong) == std::string::npos);  // never echoed whole
  BOOST_TEST(message.find("1234") != std::string::npos);
  auto other_scheme = http_call(p.port(), "GET", "/v1/payment_intents",
                                {{"Authorization", std::string{"Token "} + payments_process::secret_key}});
  BOOST_TEST(other_scheme.status == 401);
  BOOST_TEST(get(p.port(), "/v1/payment_intents").status == 200);
  BOOST_TEST(listed_intents(p.port()) == 0u);  // the refused POST created nothing

  // Without --secret-key any sk_test_ key is accepted, and nothing else.
  auto port = free_port();
  auto log = "/tmp/ap-payments-open-" + std::to_string(port) + ".log";
  process any{std::string{AP_BIN_DIR} + "/payments-mock", {"--port", std::to_string(port)}, {}, log};
  BOOST_REQUIRE(wait_for_status(port, "/health", 200, 10s));
  auto h = [](const std::string& key) { return header_list{{"Authorization", "Bearer " + key}}; };
  BOOST_TEST(http_call(port, "GET", "/v1/payment_intents", h("sk_test_whatever")).status == 200);
  BOOST_TEST(http_call(port, "GET", "/v1/payment_intents", h("sk_live_whatever")).status == 401);
  BOOST_TEST(http_call(port, "GET", "/v1/payment_intents", h("pk_test_whatever")).status == 401);
  any.signal(SIGKILL);
  any.wait(5s);
  std::remove(log.c_str());
}

// A rotation as Stripe sees it: both keys work while the instances switch,
// then the old one is revoked and refused like any unknown key.
BOOST_AUTO_TEST_CASE(every_given_key_is_accepted_until_the_set_is_replaced) {
  const std::string second = "sk_test_artifact_publisher_e2e_second";
  payments_process p{{"--secret-key", second}};
  auto h = [](const std::string& key) { return header_list{{"Authorization", "Bearer " + key}}; };
  auto status_with = [&](const std::string& key) {
    return http_call(p.port(), "GET", "/v1/payment_intents", h(key)).status;
  };
  BOOST_TEST(status_with(payments_process::secret_key) == 200);
  BOOST_TEST(status_with(second) == 200);
  BOOST_TEST(status_with("sk_test_any_other_key_5678") == 401);
  auto shown = http_call(p.port(), "GET", "/mock/keys");
  BOOST_TEST(shown.status == 200);
  BOOST_TEST(shown.body.find(second) == std::string::npos);  // counted, never shown
  auto count = parse_json(shown.body);
  BOOST_TEST(count["accepted"].GetInt() == 2);
  BOOST_TEST(!count["anyTestKey"].GetBool());

  // Revoke the first key.
  auto replaced = http_call(p.port(), "POST", "/mock/keys", {{"Content-Type", "application/json"}},
                            R"({"accept":[")" + second + R"("]})");
  BOOST_TEST(replaced.status == 200);
  BOOST_TEST(parse_json(replaced.body)["accepted"].GetInt() == 1);
  auto revoked = http_call(p.port(), "GET", "/v1/payment_intents", h(payments_process::secret_key));
  BOOST_TEST(revoked.status == 401);
  BOOST_TEST(str(parse_json(revoked.body)["error"], "type") == "invalid_request_error");
  BOOST_TEST(str(parse_json(revoked.body)["error"], "message").rfind("Invalid API Key provided: ", 0) == 0u);
  BOOST_TEST(status_with(second) == 200);

  // A request that names no key changes nothing.
  for (std::string body : {R"({"accept":[]})", R"({"accept":[""]})", R"({"accept":"sk_test_x"})",
                           R"({"keys":["sk_test_x"]})", "[]"}) {
    auto bad = http_call(p.port(), "POST", "/mock/keys", {{"Content-Type", "application/json"}}, body);
    BOOST_TEST(bad.status == 400, body);
  }
  BOOST_TEST(status_with(second) == 200);
  BOOST_TEST(parse_json(http_call(p.port(), "GET", "/mock/keys").body)["accepted"].GetInt() == 1);
}

BOOST_AUTO_TEST_CASE(retrieve_answers_the_intent_or_resource_missing) {
  payments_process p;
  auto created = post(p.port(), "/v1/payment_intents", charge("pm_card_visa"));
  auto id = intent_id(created);
  auto found = get(p.port(), "/v1/payment_intents/" + id);
  BOOST_TEST(found.status == 200);
  BOOST_TEST(found.body == created.body);
  auto missing = get(p.port(), "/v1/payment_intents/pi_doesnotexist");
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(missing.header("request-id").rfind("req_", 0) == 0u);
  auto e = parse_json(missing.body);
  BOOST_TEST(str(e["error"], "type") == "invalid_request_error");
  BOOST_TEST(str(e["error"], "code") == "resource_missing");
  BOOST_TEST(str(e["error"], "param") == "intent");
  BOOST_TEST(str(e["error"], "message") == "No such payment_intent: 'pi_doesnotexist'");
}

BOOST_AUTO_TEST_CASE(cancel_follows_the_intent_state) {
  payments_process p;
  auto paid = intent_id(post(p.port(), "/v1/payment_intents", charge("pm_card_visa")));
  auto refused = post(p.port(), "/v1/payment_intents/" + paid + "/cancel", {});
  BOOST_TEST(refused.status == 400);
  BOOST_TEST(str(parse_json(refused.body)["error"], "code") == "payment_intent_unexpected_state");
  BOOST_TEST(str(parse_json(get(p.port(), "/v1/payment_intents/" + paid).body), "status") == "succeeded");

  auto declined = intent_id(post(p.port(), "/v1/payment_intents", charge("pm_card_chargeDeclined")));
  auto canceled = post(p.port(), "/v1/payment_intents/" + declined + "/cancel",
                       {{"cancellation_reason", "abandoned"}});
  BOOST_TEST(canceled.status == 200);
  auto doc = parse_json(canceled.body);
  BOOST_TEST(str(doc, "status") == "canceled");
  BOOST_TEST(doc["canceled_at"].IsInt64());
  BOOST_TEST(str(doc, "cancellation_reason") == "abandoned");
  BOOST_TEST(str(parse_json(get(p.port(), "/v1/payment_intents/" + declined).body), "status") == "canceled");
  auto twice = post(p.port(), "/v1/payment_intents/" + declined + "/cancel", {});
  BOOST_TEST(twice.status == 400);
  BOOST_TEST(str(parse_json(twice.body)["error"], "code") == "payment_intent_unexpected_state");
  BOOST_TEST(post(p.port(), "/v1/payment_intents/pi_nope/cancel", {}).status == 404);
}

BOOST_AUTO_TEST_CASE(refunds_are_bounded_by_the_amount_received) {
  payments_process p;
  auto whole = post(p.port(), "/v1/payment_intents", charge("pm_card_visa", 1000));
  auto pi1 = intent_id(whole);
  auto r1 = post(p.port(), "/v1/refunds", {{"payment_intent", pi1}, {"reason", "requested_by_customer"}});
  BOOST_TEST(r1.status == 200);
  auto refund = parse_json(r1.body);
  BOOST_TEST(str(refund, "id").rfind("re_", 0) == 0u);
  BOOST_TEST(str(refund, "object") == "refund");
  BOOST_TEST(refund["amount"].GetInt64() == 1000);
  BOOST_TEST(str(refund, "currency") == "usd");
  BOOST_TEST(str(refund, "payment_intent") == pi1);
  BOOST_TEST(str(refund, "charge") == str(parse_json(whole.body), "latest_charge"));
  BOOST_TEST(str(refund, "status") == "succeeded");
  BOOST_TEST(str(refund, "reason") == "requested_by_customer");
  auto again = post(p.port(), "/v1/refunds", {{"payment_intent", pi1}});
  BOOST_TEST(again.status == 400);
  BOOST_TEST(str(parse_json(again.body)["error"], "code") == "charge_already_refunded");

  // Partial refunds up to what is left.
  auto pi2 = intent_id(post(p.port(), "/v1/payment_intents", charge("pm_card_visa", 1000)));
  BOOST_TEST(post(p.port(), "/v1/refunds", {{"payment_intent", pi2}, {"amount", "300"}}).status == 200);
  auto too_much = post(p.port(), "/v1/refunds", {{"payment_intent", pi2}, {"amount", "800"}});
  BOOST_TEST(too_much.status == 400);
  BOOST_TEST(str(parse_json(too_much.body)["error"], "code") == "amount_too_large");
  auto rest = post(p.port(), "/v1/refunds", {{"payment_intent", pi2}});
  BOOST_TEST(rest.status == 200);
  BOOST_TEST(parse_json(rest.body)["amount"].GetInt64() == 700);

  auto declined = intent_id(post(p.port(), "/v1/payment_intents", charge("pm_card_chargeDeclined")));
  auto not_paid = post(p.port(), "/v1/refunds", {{"payment_intent", declined}});
  BOOST_TEST(not_paid.status == 400);
  BOOST_TEST(str(parse_json(not_paid.body)["error"], "code") == "payment_intent_unexpected_state");
  auto unknown = post(p.port(), "/v1/refunds", {{"payment_intent", "pi_unknown"}});
  BOOST_TEST(unknown.status == 404);
  BOOST_TEST(str(parse_json(unknown.body)["error"], "param") == "payment_intent");
  BOOST_TEST(post(p.port(), "/v1/refunds", {}).status == 400);

  // Lists, filtered by intent or not.
  auto of = [&](const std::string& pi) {
    return parse_json(get(p.port(), "/v1/refunds?payment_intent=" + pi).body);
  };
  auto one = of(pi1);
  BOOST_TEST(one["data"].Size() == 1u);
  BOOST_TEST(str(one, "url") == "/v1/refunds");
  BOOST_TEST(str(one["data"][0], "payment_intent") == pi1);
  auto two = of(pi2);
  BOOST_TEST(two["data"].Size() == 2u);
  BOOST_TEST(two["data"][0]["amount"].GetInt64() == 700);  // newest first
  BOOST_TEST(of(declined)["data"].Size() == 0u);
  auto records = read_processor_records(p.port());
  BOOST_TEST(records.refunds.size() == 3u);
  auto refunded = records.refunded();
  BOOST_TEST(refunded[pi1] == 1000);
  BOOST_TEST(refunded[pi2] == 1000);
  BOOST_TEST(refunded.count(declined) == 0u);
  auto by_id = get(p.port(), "/v1/refunds/" + str(refund, "id"));
  BOOST_TEST(by_id.status == 200);
  BOOST_TEST(by_id.body == r1.body);
}

BOOST_AUTO_TEST_CASE(an_idempotency_key_replays_the_first_answer) {
  payments_process p;
  auto first = post(p.port(), "/v1/payment_intents", charge("pm_card_visa", 777, "o-idem"), "key-1");
  BOOST_TEST(first.status == 200);
  BOOST_TEST(first.header("idempotent-replayed").empty());
  // The same parameters in another order are the same request.
  auto fields = charge("pm_card_visa", 777, "o-idem");
  std::reverse(fields.begin(), fields.end());
  auto second = post(p.port(), "/v1/payment_intents", fields, "key-1");
  BOOST_TEST(second.status == 200);
  BOOST_TEST(second.body == first.body);
  BOOST_TEST(second.header("idempotent-replayed") == "true");
  BOOST_TEST(second.header("original-request") == first.header("request-id"));
  BOOST_TEST(listed_intents(p.port()) == 1u);

  auto other = post(p.port(), "/v1/payment_intents", charge("pm_card_visa", 778, "o-idem"), "key-1");
  BOOST_TEST(other.status == 400);
  auto e = parse_json(other.body);
  BOOST_TEST(str(e["error"], "type") == "idempotency_error");
  BOOST_TEST(str(e["error"], "message").find("'key-1'") != std::string::npos);
  auto other_endpoint = post(p.port(), "/v1/refunds", {{"payment_intent", intent_id(first)}}, "key-1");
  BOOST_TEST(other_endpoint.status == 400);
  BOOST_TEST(str(parse_json(other_endpoint.body)["error"], "type") == "idempotency_error");
  BOOST_TEST(read_processor_records(p.port()).refunds.size() == 0u);

  // A decline is saved too: the retry gets the same 402 and no second intent.
  auto declined = post(p.port(), "/v1/payment_intents", charge("pm_card_chargeDeclined"), "key-2");
  auto declined_again = post(p.port(), "/v1/payment_intents", charge("pm_card_chargeDeclined"), "key-2");
  BOOST_TEST(declined.status == 402);
  BOOST_TEST(declined_again.status == 402);
  BOOST_TEST(declined_again.body == declined.body);
  BOOST_TEST(declined_again.header("idempotent-replayed") == "true");
  BOOST_TEST(listed_intents(p.port()) == 2u);

  // A refund under a key refunds once.
  auto refund = post(p.port(), "/v1/refunds", {{"payment_intent", intent_id(first)}}, "refund-1");
  auto refund_again = post(p.port(), "/v1/refunds", {{"payment_intent", intent_id(first)}}, "refund-1");
  BOOST_TEST(refund.status == 200);
  BOOST_TEST(refund_again.body == refund.body);
  BOOST_TEST(read_processor_records(p.port()).refunds.size() == 1u);

  // A request refused for its parameters saves nothing under its key.
  auto invalid = post(p.port(), "/v1/payment_intents", {{"amount", "5"}}, "key-3");
  BOOST_TEST(invalid.status == 400);
  auto valid = post(p.port(), "/v1/payment_intents", charge("pm_card_visa"), "key-3");
  BOOST_TEST(valid.status == 200);
  BOOST_TEST(valid.header("idempotent-replayed").empty());

  auto long_key = post(p.port(), "/v1/payment_intents", charge("pm_card_visa"), std::string(256, 'k'));
  BOOST_TEST(long_key.status == 400);
  auto longest_key = post(p.port(), "/v1/payment_intents", charge("pm_card_visa"), std::string(255, 'k'));
  BOOST_TEST(longest_key.status == 200);
  BOOST_TEST(listed_intents(p.port()) == 4u);
}

BOOST_AUTO_TEST_CASE(lists_page_newest_first_with_starting_after) {
  payments_process p;
  std::vector<std::string> created;
  {
    // One keep-alive connection: 205 requests without 205 handshakes.
    connection c{p.port()};
    for (int i = 0; i < 205; ++i) {
      c.send(make_request("POST", "/v1/payment_intents", stripe_headers(),
                          encode(charge("pm_card_visa", 100 + i, "o-" + std::to_string(i)))));
      auto r = c.read_reply();
      BOOST_REQUIRE(r.status == 200);
      created.push_back(intent_id(r));
    }
  }
  auto page = [&](const std::string& query) {
    return parse_json(get(p.port(), "/v1/payment_intents" + query).body);
  };
  auto first = page("?limit=100");
  BOOST_TEST(str(first, "object") == "list");
  BOOST_TEST(str(first, "url") == "/v1/payment_intents");
  BOOST_TEST(first["data"].Size() == 100u);
  BOOST_TEST(first["has_more"].GetBool());
  BOOST_TEST(str(first["data"][0], "id") == created.back());
  auto second = page("?limit=100&starting_after=" + str(first["data"][99], "id"));
  BOOST_TEST(second["data"].Size() == 100u);
  BOOST_TEST(second["has_more"].GetBool());
  auto third = page("?limit=100&starting_after=" + str(second["data"][99], "id"));
  BOOST_TEST(third["data"].Size() == 5u);
  BOOST_TEST(!third["has_more"].GetBool());
  BOOST_TEST(str(third["data"][4], "id") == created.front());
  std::vector<std::string> seen;
  for (const auto* doc : {&first, &second, &third})
    for (const auto& item : (*doc)["data"].GetArray())
      seen.push_back(item["id"].GetString());
  std::vector<std::string> newest_first(created.rbegin(), created.rend());
  BOOST_TEST(seen == newest_first, boost::test_tools::per_element());

  BOOST_TEST(page("")["data"].Size() == 10u);  // the default limit
  auto before = page("?limit=3&ending_before=" + created[100]);
  BOOST_REQUIRE(before["data"].Size() == 3u);
  BOOST_TEST(str(before["data"][0], "id") == created[103]);
  BOOST_TEST(str(before["data"][2], "id") == created[101]);
  BOOST_TEST(before["has_more"].GetBool());

  for (const char* bad : {"?limit=0", "?limit=101", "?limit=ten"}) {
    auto r = get(p.port(), std::string{"/v1/payment_intents"} + bad);
    BOOST_TEST(r.status == 400, bad);
    BOOST_TEST(str(parse_json(r.body)["error"], "param") == "limit");
  }
  auto unknown = get(p.port(), "/v1/payment_intents?starting_after=pi_unknown");
  BOOST_TEST(unknown.status == 400);
  BOOST_TEST(str(parse_json(unknown.body)["error"], "code") == "resource_missing");

  auto records = read_processor_records(p.port());
  BOOST_TEST(records.intents.size() == 205u);
  BOOST_TEST(records.intents.front().order_id == "o-204");
  BOOST_TEST(records.intents.back().amount == 100);
}

BOOST_AUTO_TEST_CASE(faults_are_set_at_run_time) {
  payments_process p;
  // An injected error answers before anything happens: nothing is saved
  // under the key either.
  BOOST_TEST(set_faults(p.port(), R"({"errorRate":1})").status == 200);
  auto failed = post(p.port(), "/v1/payment_intents", charge("pm_card_visa"), "fault-1");
  BOOST_TEST(failed.status == 500);
  BOOST_TEST(str(parse_json(failed.body)["error"], "type") == "api_error");
  BOOST_TEST(set_faults(p.port(), R"({"errorRate":0})").status == 200);
  BOOST_TEST(listed_intents(p.port()) == 0u);
  auto retried = post(p.port(), "/v1/payment_intents", charge("pm_card_visa"), "fault-1");
  BOOST_TEST(retried.status == 200);
  BOOST_TEST(retried.header("idempotent-replayed").empty());

  // A lost reply: the charge happened, the client saw the connection drop.
  BOOST_TEST(set_faults(p.port(), R"({"lostReplyRate":1})").status == 200);
  connection c{p.port()};
  BOOST_REQUIRE(c.send(make_request("POST", "/v1/payment_intents", stripe_headers("fault-2"),
                                    encode(charge("pm_card_visa", 4321, "o-lost")))));
  auto lost = c.read_reply(5s);
  BOOST_TEST(!lost.complete);
  BOOST_TEST(set_faults(p.port(), R"({"lostReplyRate":0})").status == 200);
  auto records = read_processor_records(p.port());
  BOOST_REQUIRE(records.intents.size() == 2u);
  BOOST_TEST(records.intents.front().order_id == "o-lost");
  BOOST_TEST(records.intents.front().status == "succeeded");
  auto recovered = post(p.port(), "/v1/payment_intents", charge("pm_card_visa", 4321, "o-lost"), "fault-2");
  BOOST_TEST(recovered.status == 200);
  BOOST_TEST(recovered.header("idempotent-replayed") == "true");
  BOOST_TEST(intent_id(recovered) == records.intents.front().id);
  BOOST_TEST(listed_intents(p.port()) == 2u);

  // Latency is added to every answer, and taken away again.
  BOOST_TEST(set_faults(p.port(), R"({"latencyMs":400})").status == 200);
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(get(p.port(), "/v1/payment_intents").status == 200);
  auto slow = ms_since(t0);
  BOOST_TEST(slow >= 380);
  BOOST_TEST(slow < 3000);
  BOOST_TEST(set_faults(p.port(), R"({"latencyMs":0})").status == 200);
  t0 = std::chrono::steady_clock::now();
  BOOST_TEST(get(p.port(), "/v1/payment_intents").status == 200);
  BOOST_TEST(ms_since(t0) < 300);

  // An outage answers 503 to the API; the mock itself stays reachable.
  BOOST_TEST(set_faults(p.port(), R"({"outage":true})").status == 200);
  auto down = post(p.port(), "/v1/payment_intents", charge("pm_card_visa"));
  BOOST_TEST(down.status == 503);
  BOOST_TEST(str(parse_json(down.body)["error"], "type") == "api_error");
  BOOST_TEST(http_call(p.port(), "GET", "/health").status == 200);
  BOOST_TEST(set_faults(p.port(), R"({"outage":false})").status == 200);
  BOOST_TEST(listed_intents(p.port()) == 2u);

  // Bad values are refused and change nothing.
  for (const char* bad : {R"({"errorRate":2})", R"({"lostReplyRate":-0.5})", R"({"latencyMs":-1})",
                          R"({"jitterMs":"5"})", R"({"outage":"yes"})", R"({"resetRate":1})",
                          R"({"latencyMs":10,"errorRate":7})", "[]"})
    BOOST_TEST(set_faults(p.port(), bad).status == 400, bad);
  auto shown = parse_json(http_call(p.port(), "GET", "/mock/faults").body);
  BOOST_TEST(shown["latencyMs"].GetInt64() == 0);
  BOOST_TEST(shown["errorRate"].GetDouble() == 0.0);
  BOOST_TEST(shown["lostReplyRate"].GetDouble() == 0.0);
  BOOST_TEST(shown["outage"].IsFalse());
  auto health_reply = http_call(p.port(), "GET", "/health");
  BOOST_TEST(health_reply.header("request-id").rfind("req_", 0) == 0u);
  auto health = parse_json(health_reply.body);
  BOOST_TEST(str(health, "service") == "payments-mock");
  BOOST_TEST(str(health, "status") == "ok");
}

BOOST_AUTO_TEST_CASE(faults_and_limits_are_set_by_flags) {
  payments_process failing{{"--error-rate", "1"}};
  BOOST_TEST(post(failing.port(), "/v1/payment_intents", charge("pm_card_visa")).status == 500);
  auto shown = parse_json(http_call(failing.port(), "GET", "/mock/faults").body);
  BOOST_TEST(shown["errorRate"].GetDouble() == 1.0);

  payments_process slow{{"--latency-ms", "300"}};
  auto t0 = std::chrono::steady_clock::now();
  BOOST_TEST(get(slow.port(), "/v1/payment_intents").status == 200);
  BOOST_TEST(ms_since(t0) >= 280);

  payments_process small{{"--max-objects", "2"}};
  BOOST_TEST(post(small.port(), "/v1/payment_intents", charge("pm_card_visa")).status == 200);
  BOOST_TEST(post(small.port(), "/v1/payment_intents", charge("pm_card_visa")).status == 200);
  auto full = post(small.port(), "/v1/payment_intents", charge("pm_card_visa"));
  BOOST_TEST(full.status == 503);
  BOOST_TEST(str(parse_json(full.body)["error"], "type") == "api_error");
  BOOST_TEST(listed_intents(small.port()) == 2u);
}

BOOST_AUTO_TEST_CASE(records_and_keys_survive_a_crash) {
  payments_process p;
  auto paid = post(p.port(), "/v1/payment_intents", charge("pm_card_visa", 900, "o-kept"), "kept-1");
  auto pi = intent_id(paid);
  auto refund = post(p.port(), "/v1/refunds", {{"payment_intent", pi}, {"amount", "400"}}, "kept-refund");
  BOOST_REQUIRE(refund.status == 200);
  auto declined = intent_id(post(p.port(), "/v1/payment_intents", charge("pm_card_chargeDeclined")));
  BOOST_REQUIRE(post(p.port(), "/v1/payment_intents/" + declined + "/cancel", {}).status == 200);
  auto before = read_processor_records(p.port());
  auto paid_view = get(p.port(), "/v1/payment_intents/" + pi).body;

  p.stop();
  BOOST_TEST(!http_call(p.port(), "GET", "/health").complete);
  p.start();

  auto after = read_processor_records(p.port());
  BOOST_REQUIRE(after.intents.size() == 2u);
  BOOST_TEST(after.intents[1].id == pi);
  BOOST_TEST(after.intents[1].status == "succeeded");
  BOOST_TEST(after.intents[1].order_id == "o-kept");
  BOOST_TEST(after.intents[0].id == declined);
  BOOST_TEST(after.intents[0].status == "canceled");
  BOOST_TEST(after.refunded() == before.refunded());
  BOOST_TEST(after.refunded()[pi] == 400);
  BOOST_TEST(get(p.port(), "/v1/payment_intents/" + pi).body == paid_view);
  // The keys replay their first answers after the restart.
  auto replay = post(p.port(), "/v1/payment_intents", charge("pm_card_visa", 900, "o-kept"), "kept-1");
  BOOST_TEST(replay.status == 200);
  BOOST_TEST(replay.header("idempotent-replayed") == "true");
  BOOST_TEST(replay.body == paid.body);
  auto refund_replay =
    post(p.port(), "/v1/refunds", {{"payment_intent", pi}, {"amount", "400"}}, "kept-refund");
  BOOST_TEST(refund_replay.body == refund.body);
  BOOST_TEST(refund_replay.header("idempotent-replayed") == "true");
  // The refunded amount still bounds new refunds.
  auto too_much = post(p.port(), "/v1/refunds", {{"payment_intent", pi}, {"amount", "501"}});
  BOOST_TEST(str(parse_json(too_much.body)["error"], "code") == "amount_too_large");
  BOOST_TEST(post(p.port(), "/v1/refunds", {{"payment_intent", pi}}).status == 200);
  BOOST_TEST(post(p.port(), "/v1/payment_intents", charge("pm_card_visa")).status == 200);
  p.stop();
  p.start();
  BOOST_TEST(listed_intents(p.port()) == 3u);
  BOOST_TEST(read_processor_records(p.port()).refunded()[pi] == 900);
}

BOOST_AUTO_TEST_CASE(a_malformed_state_file_stops_the_start) {
  auto state = "/tmp/ap-payments-bad-" + std::to_string(::getpid()) + ".state";
  auto log = state + ".log";
  {
    std::ofstream out{state};
    out << "{\"type\":\"intent\",\"id\":\"pi_x\"}\n";
  }
  process bad{std::string{AP_BIN_DIR} + "/payments-mock", {"--port", "0", "--state", state}, {}, log};
  BOOST_TEST(bad.wait(10s) == 1);
  BOOST_TEST(read_file(log).find("malformed") != std::string::npos);
  std::remove(state.c_str());
  std::remove(log.c_str());
}

BOOST_AUTO_TEST_SUITE_END()
