#pragma once

// Assembling an order's documents (CheckoutResult, proof, license, delivery,
// audit events) and the record that persists them in one transaction.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "domain/audit.hpp"
#include "domain/checkout.hpp"
#include "domain/delivery.hpp"
#include "domain/payments.hpp"
#include "domain/proof.hpp"

namespace ap::domain {

/// Where a stored order ended (the `orders.status` column).
enum class order_status : std::uint8_t {
  completed,
  /// The payment was declined.
  payment_failed,
  /// Refused after the capture, and refunded (SPEC §9).
  settlement_failed,
};

/// "completed", "payment_failed" or "settlement_failed".
const char* to_string(order_status s);

/// Reads what to_string wrote; nullopt for anything else.
std::optional<order_status> order_status_from(std::string_view text);

/// How a checkout ended, for its client; the HTTP edge picks the status.
enum class checkout_outcome_kind : std::uint8_t {
  /// Completed: the order's result is the answer.
  completed,
  /// The payment was declined; the order is kept as payment_failed.
  payment_failed,
  /// Refused after the capture: refunded, kept as settlement_failed.
  settlement_failed,
  /// A definite refusal before any charge: no order.
  refused,
};

/// The outcome a stored order answers with.
checkout_outcome_kind outcome_of(order_status s);

/// "completed", "payment_failed", "settlement_failed" or "refused".
const char* to_string(checkout_outcome_kind k);

/// Everything one checkout writes, in one transaction.
struct order_record {
  std::string order_id;
  std::string customer_id;
  std::string email;
  order_status status = order_status::completed;
  std::string currency;
  std::int64_t total = 0;
  std::string payment_id;
  /// Empty for a payment_failed order.
  std::string finance_entry_id;
  std::vector<priced_item> items;
  std::string created_at;
  /// What GET /api/checkout/{id} answers, and a completed checkout's
  /// answer. Its proof, license and delivery are members of it.
  std::string result;
  /// The answer of a checkout that did not complete, naming the order
  /// (`{"error","message","orderId"}`); empty for a completed one.
  std::string failure_body;
  std::vector<audit_event> events;
  /// The client's Idempotency-Key (empty for none): stored completed with
  /// the order, so that it replays this checkout's answer.
  std::string idempotency_key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_record& x) {
  return f(caf::meta::type_name("order_record"), x.order_id, x.customer_id, x.email, x.status,
           x.currency, x.total, x.payment_id, x.finance_entry_id, x.items, x.created_at, x.result,
           x.failure_body, x.events, x.idempotency_key);
}

/// Fresh identifiers and times for one order, chosen by the caller so that
/// assembling stays deterministic and testable.
struct order_ids {
  std::string order_id;
  /// The processor's Idempotency-Key for this order's charge (SPEC §9):
  /// derived from (customerId, Idempotency-Key) for a keyed checkout, so a
  /// retry finds the same charge; the order id otherwise.
  std::string payment_key;
  std::string license_id;
  std::string delivery_id;
  std::string completed_event_id;
  std::string delivery_event_id;
  std::string created_at;
  std::string license_expires_at;
};

/// Draws random ids (`order_` + 24 hex and so on) and the current time.
/// The payment key is the order id.
order_ids new_order_ids();

/// The processor's Idempotency-Key of a checkout with a client key.
std::string payment_key_for(const std::string& customer_id, const std::string& idempotency_key);

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, order_ids& x) {
  return f(caf::meta::type_name("order_ids"), x.order_id, x.payment_key, x.license_id,
           x.delivery_id, x.completed_event_id, x.delivery_event_id, x.created_at,
           x.license_expires_at);
}

/// The priced lines as `[{amount, quantity, sku, unitAmount}]`, in `alloc`.
rapidjson::Value priced_items_json(const quote& q, rapidjson::Document::AllocatorType& alloc);

/// The same lines as canonical JSON text, the form an order's row keeps
/// them in (migration 0017). Lines in SKU order, as price() leaves them,
/// give the proof's bytes.
std::string priced_items_text(const std::vector<priced_item>& items);

/// The signed payload of SPEC §5 for an order.
rapidjson::Document proof_payload(const std::string& order_id, const checkout_request& req,
                                  const quote& q, const charge_result& payment,
                                  const journal_entry& entry);

/// What an order's `order.completed` event says of its sale (SPEC §6).
struct completed_sale {
  std::string order_id;
  std::string customer_id;
  std::string currency;
  std::int64_t total = 0;
  std::string payment_id;
  std::string finance_entry;
  std::string proof_id;
  std::string payload_hash;
};

/// The canonical payload of `order.completed`: the one function that builds
/// it, for the checkout and for a buyer checking its receipt.
std::string order_completed_payload(const completed_sale& sale);

/// What an order's `delivery.generated` event says of its delivery.
struct generated_delivery {
  std::string order_id;
  std::string license_id;
  std::string delivery_id;
  std::string key_mode;
};

/// The canonical payload of `delivery.generated` (as order_completed_payload).
std::string delivery_generated_payload(const generated_delivery& delivery);

/// The payload of a completed order's event of `event_type`
/// (`order.completed` or `delivery.generated`) rebuilt from the order's
/// CheckoutResult alone, byte for byte what the checkout sent to the Kernel.
/// nullopt for another type, or when the result lacks a member it needs.
std::optional<std::string> event_payload_from_result(const rapidjson::Value& result,
                                                     std::string_view event_type);

/// The types of the audit events an order of this status has, in the order
/// the assemble_* function of that status writes them: the events whose
/// receipts make the order's audit read delivered.
std::vector<std::string> audit_event_types(order_status s);

/// Builds a completed order around its signed proof (of `proof_payload`,
/// signed by the proof actor): license, encrypted delivery (sealed under
/// `master`, whose kid it records as `keyId`), the CheckoutResult and the
/// `order.completed` and `delivery.generated` events.
order_record assemble_completed(const order_ids& ids, const checkout_request& req, const quote& q,
                                const charge_result& payment, const journal_entry& entry,
                                const signed_proof& proof, const delivery_master& master,
                                const catalog& items);

/// Builds an order whose payment was declined: the 402 response, the order
/// view and the `order.payment_failed` event.
order_record assemble_payment_failed(const order_ids& ids, const checkout_request& req,
                                     const quote& q, const charge_result& payment);

/// Builds an order whose settlement was refused after its payment was
/// captured (SPEC §9): the charge is refunded, the order records why, the
/// POST answers 502 naming the order, and `order.settlement_failed` goes to
/// the Kernel.
order_record assemble_settlement_failed(const order_ids& ids, const checkout_request& req,
                                        const quote& q, const charge_result& payment,
                                        const std::string& reason);

/// An error body that names the order: `{"error","message","orderId"}`
/// (SPEC §4, §9).
std::string order_error_body(std::string_view code, const std::string& message,
                             const std::string& order_id);

/// What a checkout records before its first external call (SPEC §9): the
/// request and every id the order will carry, so that whoever finishes it
/// (the checkout, or the reconciler after a crash) makes the same order.
/// Canonical JSON.
std::string encode_intent(const checkout_request& req, const order_ids& ids);

/// Reads what encode_intent wrote; false when `text` is not such a record.
bool decode_intent(const std::string& text, checkout_request& req, order_ids& ids);

} // namespace ap::domain
