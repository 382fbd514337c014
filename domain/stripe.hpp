#pragma once

// The payment processor's wire protocol (SPEC §9: Stripe's REST API, the
// PaymentIntents and Refunds subset): what the connector sends and how it
// reads each answer. Plain C++, no sockets, so every rule is unit-tested.

#include <string>
#include <utility>
#include <vector>

#include "domain/payments.hpp"

namespace ap::domain::stripe {

/// The API version every request pins (`Stripe-Version`), so the shapes read
/// here do not change under us when the account's default moves.
constexpr const char* api_version = "2024-06-20";

/// The payment method used when a checkout names none.
constexpr const char* default_payment_method = "pm_card_visa";

/// `application/x-www-form-urlencoded`, as Stripe takes request bodies:
/// every byte outside `A-Za-z0-9-._~` percent-encoded, keys as given
/// (`metadata[order_id]`, `payment_method_types[]`).
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params);

/// The body of `POST /v1/payment_intents` that creates and confirms the
/// charge of `req` in one call.
std::string charge_form(const charge_request& req);

/// The body of `POST /v1/refunds` for the whole of `payment_intent`.
std::string refund_form(const std::string& payment_intent);

/// The Idempotency-Key of a charge: the checkout's processor key, or its
/// order id when it has none.
std::string charge_key(const charge_request& req);

/// The Idempotency-Key of the refund of `payment_intent`: one per intent, so
/// a refund re-driven after a lost reply refunds once.
std::string refund_key(const std::string& payment_intent);

/// What an answer of the processor means for the checkout (SPEC §9).
enum class verdict {
  /// The charge succeeded; `result` holds it.
  captured,
  /// The card was declined; `result` holds the decline (a final answer).
  declined,
  /// The processor refused the request and did nothing (400/401/403/404):
  /// retrying cannot help.
  refused,
  /// Nothing is known (409, 429, 5xx, a timeout, a closed connection, an
  /// answer that cannot be read): retry with the same key.
  in_doubt,
};

/// How one answer to a charge reads.
struct charge_reading {
  verdict kind = verdict::in_doubt;
  charge_result result;
  /// Why, for refusals and doubts (the processor's message or the transport
  /// error); never the secret key.
  std::string reason;
};

/// Reads the answer to `POST /v1/payment_intents` sent under
/// `idempotency_key` (`status` 0: no answer, `transport_error` says why).
/// An `idempotency_error` is in doubt, not a refusal: a request under the
/// same key went before it. A decline that names no PaymentIntent gets
/// `declined_<key>` as its payment id, so that its order can be stored.
charge_reading read_charge(int status, const std::string& body,
                           const std::string& transport_error,
                           const std::string& idempotency_key = {});

/// How one answer to a refund reads. A refund made before
/// (`charge_already_refunded`) counts as refunded.
struct refund_reading {
  bool refunded = false;
  /// When not refunded: `refused` or `in_doubt`.
  verdict kind = verdict::in_doubt;
  std::string reason;
};

/// Reads the answer to `POST /v1/refunds`.
refund_reading read_refund(int status, const std::string& body,
                           const std::string& transport_error);

} // namespace ap::domain::stripe
