// The audit events of an order: which ones each order status has, pinned
// against the assemble_* functions that write them, and the payloads of a
// completed order rebuilt from its CheckoutResult alone.
#include <boost/test/unit_test.hpp>

#include "core/json.hpp"
#include "core/crypto.hpp"
#include "domain/order.hpp"
#include "domain/receipt.hpp"

using namespace ap;
using namespace ap::domain;

namespace {

rapidjson::Document json_of(const std::string& text) {
  rapidjson::Document doc;
  BOOST_REQUIRE(!json::parse_strict(text, doc));
  return doc;
}

// A completed order, a declined one and a refunded one of the same request.
struct three_orders {
  order_record completed;
  order_record declined;
  order_record refunded;
  // What they were made of.
  checkout_request req;
  quote q;
  charge_result paid;
  journal_entry entry;
  catalog items;
  order_ids ids;
  signed_proof proof;
  three_orders() {
    req.customer_id = "cust-receipt";
    req.email = "r@example.com";
    req.currency = "usd";
    req.items = {{"creator-basic", 1}};
    q.currency = "usd";
    q.items = {{"creator-basic", 1, 1200, 1200}};
    q.total = 1200;
    paid.payment_id = "pay_000000000000000000000007";
    paid.amount = 1200;
    paid.currency = "usd";
    paid.status = "captured";
    paid.processor = "mock";
    entry.entry_id = "fin_000000000000000000000007";
    entry.ledger_id = "ledger";
    entry.currency = "usd";
    entry.credit = entry.debit = 1200;
    items = catalog{{"creator-basic", {"creator-basic", "Creator Basic", 1200, "usd",
                                       "https://a/b", std::string(64, 'a')}}};
    ids.order_id = "order_000000000000000000000007";
    ids.payment_key = ids.order_id;
    ids.license_id = "lic_000000000000000000000007";
    ids.delivery_id = "dlv_000000000000000000000007";
    ids.completed_event_id = "evt_000000000000000000000071";
    ids.delivery_event_id = "evt_000000000000000000000072";
    ids.created_at = "2026-01-01T00:00:00.000Z";
    ids.license_expires_at = "2027-01-01T00:00:00.000Z";
    proof = sign_proof(derive_proof_key("v1", "receipt-test-proof-secret-0123456789"),
                       proof_payload(ids.order_id, req, q, paid, entry), ids.created_at);
    completed = assemble_completed(ids, req, q, paid, entry, proof,
                                   {"d1", "receipt-test-delivery-key-0123456789"}, items);
    auto declined_payment = paid;
    declined_payment.status = "declined";
    declined_payment.decline_code = "generic_decline";
    declined = assemble_payment_failed(ids, req, q, declined_payment);
    refunded = assemble_settlement_failed(ids, req, q, paid, "ledger_refused");
  }
};

std::vector<std::string> types_of(const order_record& o) {
  std::vector<std::string> out;
  for (const auto& e : o.events)
    out.push_back(e.event_type);
  return out;
}

} // namespace

BOOST_AUTO_TEST_SUITE(order_events)

BOOST_AUTO_TEST_CASE(each_order_status_has_the_events_its_assemble_function_writes) {
  three_orders o;
  BOOST_TEST(types_of(o.completed) == audit_event_types(order_status::completed),
             boost::test_tools::per_element());
  BOOST_TEST(types_of(o.declined) == audit_event_types(o.declined.status),
             boost::test_tools::per_element());
  BOOST_TEST(types_of(o.refunded) == audit_event_types(o.refunded.status),
             boost::test_tools::per_element());
  BOOST_TEST(to_string(o.declined.status) == "payment_failed");
  BOOST_TEST(to_string(o.refunded.status) == "settlement_failed");
}

// SPEC §12: the delivery names the master key that sealed it, and one stored
// before deliveries did reads back as the legacy kid.
BOOST_AUTO_TEST_CASE(a_delivery_records_its_master_key_id) {
  three_orders o;
  auto result = json_of(o.completed.result);
  BOOST_TEST(std::string{result["delivery"]["keyId"].GetString()} == "d1");
  auto d2 = assemble_completed(o.ids, o.req, o.q, o.paid, o.entry, o.proof,
                               {"d2", "receipt-test-delivery-key-d2-0123456789"}, o.items);
  auto sealed_d2 = json_of(d2.result);
  BOOST_TEST(std::string{sealed_d2["delivery"]["keyId"].GetString()} == "d2");
  BOOST_TEST(std::string{sealed_d2["license"]["licenseKey"].GetString()}
             == crypto::base64_encode(
               delivery_key("receipt-test-delivery-key-d2-0123456789", o.ids.order_id)));

  sealed_d2["delivery"].RemoveMember("keyId");
  BOOST_TEST(delivery_key_id(sealed_d2["delivery"]) == "d1");
  auto read = json_of(result_with_receipts(json::canonical(sealed_d2), order_status::completed, {}));
  BOOST_TEST(std::string{read["delivery"]["keyId"].GetString()} == "d1");
  // A kid it names stays as it is.
  auto named = json_of(result_with_receipts(d2.result, order_status::completed, {}));
  BOOST_TEST(std::string{named["delivery"]["keyId"].GetString()} == "d2");
}

BOOST_AUTO_TEST_CASE(a_completed_order_s_event_payloads_rebuild_from_its_result) {
  three_orders o;
  auto result = json_of(o.completed.result);
  // The payloads as the Kernel has them from every order so far.
  std::string proof_id = result["proof"]["proofId"].GetString();
  std::string payload_hash = result["proof"]["payloadHash"].GetString();
  BOOST_TEST(o.completed.events[0].payload
             == R"({"currency":"usd","customerId":"cust-receipt","financeEntry":"fin_000000000000000000000007",)"
                R"("orderId":"order_000000000000000000000007","payloadHash":")" + payload_hash
                  + R"(","paymentId":"pay_000000000000000000000007","proofId":")" + proof_id
                  + R"(","total":1200})");
  BOOST_TEST(o.completed.events[1].payload
             == R"({"deliveryId":"dlv_000000000000000000000007","keyMode":"license",)"
                R"("licenseId":"lic_000000000000000000000007","orderId":"order_000000000000000000000007"})");
  for (const auto& e : o.completed.events)
    BOOST_TEST(event_payload_from_result(result, e.event_type).value_or("") == e.payload, e.event_type);
  BOOST_TEST(!event_payload_from_result(result, "order.payment_failed"));
  result["proof"].RemoveMember("payloadHash");
  BOOST_TEST(!event_payload_from_result(result, "order.completed"));
  BOOST_TEST(event_payload_from_result(result, "delivery.generated").value_or("")
             == o.completed.events[1].payload);
}

// The completed result is written in one pass, its signed parts spliced in
// as they are: it must still be canonical JSON (the bytes replays and
// receipts are compared by), with every member in place.
BOOST_AUTO_TEST_CASE(a_completed_result_is_canonical_with_its_parts_as_signed) {
  three_orders o;
  const auto& result = o.completed.result;
  auto doc = json_of(result);
  BOOST_TEST(json::canonical(doc) == result);
  std::vector<std::string> members;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it)
    members.emplace_back(it->name.GetString());
  BOOST_TEST(members
               == (std::vector<std::string>{"audit", "createdAt", "currency", "delivery", "finance",
                                            "license", "orderId", "payment", "proof", "status",
                                            "total"}),
             boost::test_tools::per_element());
  BOOST_TEST(result.find(R"("proof":)" + o.proof.record + R"(,"status":"completed","total":1200})")
             != std::string::npos);
  BOOST_TEST(json::canonical(doc["finance"])
             == R"({"credit":1200,"currency":"usd","debit":1200,"entryId":"fin_000000000000000000000007",)"
                R"("ledgerId":"ledger"})");
  BOOST_TEST(json::canonical(doc["payment"])
             == R"({"amount":1200,"currency":"usd","paymentId":"pay_000000000000000000000007",)"
                R"("processor":"mock","status":"captured"})");
  BOOST_TEST(json::canonical(doc["audit"])
             == R"({"eventId":"evt_000000000000000000000071","status":"pending"})");
  BOOST_TEST(std::string{doc["license"]["licenseId"].GetString()} == o.ids.license_id);
  BOOST_TEST(std::string{doc["delivery"]["deliveryId"].GetString()} == o.ids.delivery_id);
  BOOST_TEST(doc["total"].GetInt64() == 1200);
}

// An order that did not complete answers with its view, canonical and with
// its payment written as a completed order's result writes it.
BOOST_AUTO_TEST_CASE(an_unfinished_order_s_view_is_canonical_with_the_payment_as_completed) {
  three_orders o;
  BOOST_TEST(o.declined.result
             == R"({"audit":{"eventId":"evt_000000000000000000000071","status":"pending"},)"
                R"("createdAt":"2026-01-01T00:00:00.000Z","currency":"usd",)"
                R"("orderId":"order_000000000000000000000007","payment":{"amount":1200,)"
                R"("currency":"usd","paymentId":"pay_000000000000000000000007",)"
                R"("processor":"mock","status":"declined"},"status":"payment_failed","total":1200})");
  BOOST_TEST(o.refunded.result
             == R"({"audit":{"eventId":"evt_000000000000000000000071","status":"pending"},)"
                R"("createdAt":"2026-01-01T00:00:00.000Z","currency":"usd",)"
                R"("failure":"ledger_refused","orderId":"order_000000000000000000000007",)"
                R"("payment":{"amount":1200,"currency":"usd","paymentId":"pay_000000000000000000000007",)"
                R"("processor":"mock","status":"refunded"},"status":"settlement_failed","total":1200})");
  for (const auto* rec : {&o.declined, &o.refunded})
    BOOST_TEST(json::canonical(json_of(rec->result)) == rec->result);
  // The same payment written by both (a failed view of a captured charge).
  auto completed = json_of(o.completed.result);
  auto captured = json_of(assemble_payment_failed(o.ids, o.req, o.q, o.paid).result);
  BOOST_TEST(json::canonical(completed["payment"]) == json::canonical(captured["payment"]));
  // Text that JSON escapes is escaped alike in both.
  auto odd = o.paid;
  odd.processor = "mo\"ck\n\u00e9";
  odd.currency = "u\tsd";
  auto odd_completed = json_of(assemble_completed(o.ids, o.req, o.q, odd, o.entry, o.proof,
                                                  {"d1", "receipt-test-delivery-key-0123456789"},
                                                  o.items)
                                 .result);
  auto odd_failed = assemble_payment_failed(o.ids, o.req, o.q, odd);
  BOOST_TEST(json::canonical(json_of(odd_failed.result)) == odd_failed.result);
  BOOST_TEST(json::canonical(odd_completed["payment"])
             == json::canonical(json_of(odd_failed.result)["payment"]));
  BOOST_TEST(std::string{odd_completed["payment"]["processor"].GetString()} == "mo\"ck\n\u00e9");
}

BOOST_AUTO_TEST_SUITE_END()
