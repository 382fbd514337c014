// The payment processor's wire protocol: what the Stripe connector sends and
// how it reads each kind of answer (SPEC §9).
#include <boost/test/unit_test.hpp>

#include "domain/stripe.hpp"

using namespace ap;
using namespace ap::domain;
using stripe::verdict;

namespace {

charge_request sample_charge() {
  charge_request req;
  req.order_id = "order_0123";
  req.customer_id = "cust 1&2";
  req.amount = 4900;
  req.currency = "USD";
  req.payment_method = "pm_card_visa";
  req.idempotency_key = "pay_key_1";
  return req;
}

const char* succeeded = R"({"id":"pi_3Abc","object":"payment_intent","amount":4900,
  "amount_received":4900,"currency":"usd","status":"succeeded","latest_charge":"ch_1"})";

} // namespace

BOOST_AUTO_TEST_SUITE(stripe_wire)

BOOST_AUTO_TEST_CASE(form_encoding_escapes_everything_but_unreserved_bytes) {
  BOOST_TEST(stripe::form_encode({{"a", "b c"}, {"metadata[k]", "x&y=z/é"}})
             == "a=b%20c&metadata%5Bk%5D=x%26y%3Dz%2F%C3%A9");
  BOOST_TEST(stripe::form_encode({{"k", "A-z.0_9~"}}) == "k=A-z.0_9~");
  BOOST_TEST(stripe::form_encode({}).empty());
}

BOOST_AUTO_TEST_CASE(a_charge_creates_and_confirms_a_payment_intent_in_one_call) {
  auto form = stripe::charge_form(sample_charge());
  BOOST_TEST(form == "amount=4900&currency=usd&payment_method=pm_card_visa&confirm=true"
                     "&payment_method_types%5B%5D=card&metadata%5Border_id%5D=order_0123"
                     "&metadata%5Bcustomer_id%5D=cust%201%262");
  auto req = sample_charge();
  req.payment_method.clear();
  BOOST_TEST(stripe::charge_form(req).find("payment_method=pm_card_visa") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(keys_follow_the_checkout_record) {
  auto req = sample_charge();
  BOOST_TEST(stripe::charge_key(req) == "pay_key_1");
  req.idempotency_key.clear();
  BOOST_TEST(stripe::charge_key(req) == "order_0123");
  BOOST_TEST(stripe::refund_key("pi_1") == "refund-pi_1");
  BOOST_TEST(stripe::refund_form("pi_1") == "payment_intent=pi_1&reason=requested_by_customer");
}

BOOST_AUTO_TEST_CASE(a_succeeded_payment_intent_is_a_capture) {
  auto r = stripe::read_charge(200, succeeded, "");
  BOOST_TEST(static_cast<int>(r.kind) == static_cast<int>(verdict::captured));
  BOOST_TEST(r.result.payment_id == "pi_3Abc");
  BOOST_TEST(r.result.status == "captured");
  BOOST_TEST(r.result.amount == 4900);
  BOOST_TEST(r.result.currency == "USD");
  BOOST_TEST(r.result.processor == "stripe");
}

BOOST_AUTO_TEST_CASE(card_errors_are_declines_with_the_processors_code) {
  auto generic = stripe::read_charge(402, R"({"error":{"type":"card_error","code":"card_declined",
    "decline_code":"generic_decline","message":"Your card was declined.",
    "payment_intent":{"id":"pi_D","object":"payment_intent","status":"requires_payment_method"}}})",
                                     "");
  BOOST_TEST(static_cast<int>(generic.kind) == static_cast<int>(verdict::declined));
  BOOST_TEST(generic.result.status == "declined");
  BOOST_TEST(generic.result.decline_code == "generic_decline");
  BOOST_TEST(generic.result.payment_id == "pi_D");
  auto funds = stripe::read_charge(402, R"({"error":{"type":"card_error","code":"card_declined",
    "decline_code":"insufficient_funds"}})", "");
  BOOST_TEST(funds.result.decline_code == "insufficient_funds");
  auto code_only = stripe::read_charge(402, R"({"error":{"type":"card_error","code":"expired_card"}})", "");
  BOOST_TEST(code_only.result.decline_code == "expired_card");
  // A PaymentIntent that needs the buyer again moved no money: final.
  auto action = stripe::read_charge(200, R"({"id":"pi_A","object":"payment_intent","amount":1,
    "currency":"usd","status":"requires_action"})", "");
  BOOST_TEST(static_cast<int>(action.kind) == static_cast<int>(verdict::declined));
  BOOST_TEST(action.result.decline_code == "authentication_required");
}

BOOST_AUTO_TEST_CASE(client_errors_are_definite_refusals) {
  for (int status : {400, 401, 403, 404}) {
    auto r = stripe::read_charge(status, R"({"error":{"type":"invalid_request_error",
      "code":"resource_missing","message":"No such PaymentMethod: 'pm_x'"}})", "");
    BOOST_TEST(static_cast<int>(r.kind) == static_cast<int>(verdict::refused), "status " << status);
    BOOST_TEST(r.reason.find("No such PaymentMethod") != std::string::npos);
  }
}

// The same key with other parameters: a request under that key went
// before, and may have charged (an amount priced before a change).
BOOST_AUTO_TEST_CASE(an_idempotency_error_is_in_doubt_not_a_refusal) {
  auto reused = stripe::read_charge(400, R"({"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters"}})", "");
  BOOST_TEST(static_cast<int>(reused.kind) == static_cast<int>(verdict::in_doubt));
  BOOST_TEST(reused.reason.find("idempotency_error") != std::string::npos);
}

// orders.payment_id is unique and required: a decline must carry an id.
BOOST_AUTO_TEST_CASE(a_decline_without_a_payment_intent_takes_an_id_from_its_key) {
  auto r = stripe::read_charge(402, R"({"error":{"type":"card_error","code":"card_declined"}})",
                               "", "pay_key_9");
  BOOST_TEST(static_cast<int>(r.kind) == static_cast<int>(verdict::declined));
  BOOST_TEST(r.result.payment_id == "declined_pay_key_9");
  auto named = stripe::read_charge(402, R"({"error":{"type":"card_error","code":"card_declined",
    "payment_intent":{"id":"pi_N"}}})", "", "pay_key_9");
  BOOST_TEST(named.result.payment_id == "pi_N");
}

BOOST_AUTO_TEST_CASE(everything_else_is_in_doubt) {
  for (int status : {409, 429, 500, 502, 503, 504}) {
    auto r = stripe::read_charge(status, R"({"error":{"type":"api_error","message":"x"}})", "");
    BOOST_TEST(static_cast<int>(r.kind) == static_cast<int>(verdict::in_doubt), "status " << status);
  }
  auto lost = stripe::read_charge(0, "", "Connection reset by peer");
  BOOST_TEST(static_cast<int>(lost.kind) == static_cast<int>(verdict::in_doubt));
  BOOST_TEST(lost.reason.find("Connection reset") != std::string::npos);
  auto garbled = stripe::read_charge(200, "<html>proxy</html>", "");
  BOOST_TEST(static_cast<int>(garbled.kind) == static_cast<int>(verdict::in_doubt));
  auto processing = stripe::read_charge(200, R"({"id":"pi_P","object":"payment_intent","amount":1,
    "currency":"usd","status":"processing"})", "");
  BOOST_TEST(static_cast<int>(processing.kind) == static_cast<int>(verdict::in_doubt));
  auto not_card = stripe::read_charge(402, R"({"error":{"type":"invalid_request_error"}})", "");
  BOOST_TEST(static_cast<int>(not_card.kind) == static_cast<int>(verdict::in_doubt));
}

BOOST_AUTO_TEST_CASE(refunds_read_as_done_refused_or_in_doubt) {
  auto done = stripe::read_refund(200, R"({"id":"re_1","object":"refund","status":"succeeded"})", "");
  BOOST_TEST(done.refunded);
  auto again = stripe::read_refund(400, R"({"error":{"type":"invalid_request_error",
    "code":"charge_already_refunded","message":"already refunded"}})", "");
  BOOST_TEST(again.refunded);
  auto refused = stripe::read_refund(400, R"({"error":{"type":"invalid_request_error",
    "code":"payment_intent_unexpected_state"}})", "");
  BOOST_TEST(!refused.refunded);
  BOOST_TEST(static_cast<int>(refused.kind) == static_cast<int>(verdict::refused));
  auto failed = stripe::read_refund(200, R"({"id":"re_2","object":"refund","status":"failed"})", "");
  BOOST_TEST(!failed.refunded);
  BOOST_TEST(static_cast<int>(failed.kind) == static_cast<int>(verdict::refused));
  for (int status : {0, 429, 500}) {
    auto r = stripe::read_refund(status, "", "timeout");
    BOOST_TEST(!r.refunded);
    BOOST_TEST(static_cast<int>(r.kind) == static_cast<int>(verdict::in_doubt));
  }
}

BOOST_AUTO_TEST_SUITE_END()
