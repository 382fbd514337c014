#pragma once

// Checkout input: validation per SPEC §4 and pricing against the catalog.
// Plain C++, no CAF or Beast; the structs travel in actor messages, hence
// their `inspect` overloads.

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <rapidjson/document.h>

namespace ap::domain {

/// One catalog entry (seeded by migration 0001).
struct catalog_item {
  std::string sku;
  std::string title;
  std::int64_t unit_amount = 0;
  std::string currency;
  std::string artifact_url;
  std::string artifact_sha256;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, catalog_item& x) {
  return f(caf::meta::type_name("catalog_item"), x.sku, x.title, x.unit_amount, x.currency,
           x.artifact_url, x.artifact_sha256);
}

/// The catalog by SKU.
using catalog = std::map<std::string, catalog_item>;

/// One requested line.
struct checkout_item {
  std::string sku;
  std::int64_t quantity = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_item& x) {
  return f(caf::meta::type_name("checkout_item"), x.sku, x.quantity);
}

/// Payment methods the payment processor knows (Stripe's test names).
constexpr const char* pm_visa = "pm_card_visa";
constexpr const char* pm_declined = "pm_card_chargeDeclined";
constexpr const char* pm_insufficient_funds = "pm_card_chargeDeclinedInsufficientFunds";

/// A validated `POST /api/checkout` body.
struct checkout_request {
  std::string customer_id;
  std::string email;
  std::string currency;
  std::vector<checkout_item> items;
  std::string payment_method = pm_visa;
  /// PEM SubjectPublicKeyInfo (RSA ≥ 2048) or empty.
  std::string buyer_public_key;
  /// Hex SHA-256 of the canonical body: what an Idempotency-Key is bound to.
  std::string fingerprint;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_request& x) {
  return f(caf::meta::type_name("checkout_request"), x.customer_id, x.email, x.currency, x.items,
           x.payment_method, x.buyer_public_key, x.fingerprint);
}

/// Why input was refused: the message and the JSON path of the field.
struct input_error {
  std::string field;
  std::string message;
};

/// Validates a parsed body: every rule of SPEC §4 that needs no catalog.
std::variant<checkout_request, input_error> parse_checkout(const rapidjson::Value& body);

/// A priced line.
struct priced_item {
  std::string sku;
  std::int64_t quantity = 0;
  std::int64_t unit_amount = 0;
  std::int64_t amount = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, priced_item& x) {
  return f(caf::meta::type_name("priced_item"), x.sku, x.quantity, x.unit_amount, x.amount);
}

/// A request priced against the catalog; items sorted by SKU.
struct quote {
  std::vector<priced_item> items;
  std::int64_t total = 0;
  std::string currency;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, quote& x) {
  return f(caf::meta::type_name("quote"), x.items, x.total, x.currency);
}

/// Prices `req`: every SKU must be in the catalog and in the request's
/// currency.
std::variant<quote, input_error> price(const checkout_request& req, const catalog& items);

/// Validation helpers, exposed for tests and other routes.
/// The public catalog document of `GET /api/catalog`:
/// `{"items":[{"currency","name","sku","unitAmount"}]}`, items sorted by
/// SKU whatever the order of `items`, amounts in minor units. The artifact
/// itself (URL, digest) is what a buyer pays for, so it is not listed.
std::string catalog_json(std::vector<catalog_item> items);

bool is_valid_customer_id(std::string_view id);
bool is_plausible_email(std::string_view email);
bool is_valid_sku_format(std::string_view sku);

} // namespace ap::domain
