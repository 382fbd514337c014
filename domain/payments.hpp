#pragma once

// What the checkout asks of the payment processor and the finance ledger.
// Both are actors behind typed interfaces (actors/actors.hpp); the embedded
// mocks (mocks/) fill them today, a real connector can tomorrow.

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace ap::domain {

/// A charge for one order.
struct charge_request {
  std::string order_id;
  std::string customer_id;
  std::int64_t amount = 0;
  std::string currency;
  std::string payment_method;
  /// The processor's Idempotency-Key (SPEC §9): charging again with it
  /// answers the first charge instead of charging twice.
  std::string idempotency_key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, charge_request& x) {
  return f(caf::meta::type_name("charge_request"), x.order_id, x.customer_id, x.amount,
           x.currency, x.payment_method, x.idempotency_key);
}

/// The processor's answer: `captured` or `declined`.
struct charge_result {
  std::string payment_id;
  std::int64_t amount = 0;
  std::string currency;
  std::string status;
  std::string processor;
  /// Why a charge was declined (Stripe's decline codes), empty otherwise.
  std::string decline_code;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, charge_result& x) {
  return f(caf::meta::type_name("charge_result"), x.payment_id, x.amount, x.currency, x.status,
           x.processor, x.decline_code);
}

/// A sale to record in the ledger.
struct journal_request {
  std::string order_id;
  std::string payment_id;
  std::int64_t amount = 0;
  std::string currency;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, journal_request& x) {
  return f(caf::meta::type_name("journal_request"), x.order_id, x.payment_id, x.amount,
           x.currency);
}

/// A balanced journal entry: what was credited equals what was debited.
struct journal_entry {
  std::string entry_id;
  std::string ledger_id;
  std::int64_t credit = 0;
  std::int64_t debit = 0;
  std::string currency;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, journal_entry& x) {
  return f(caf::meta::type_name("journal_entry"), x.entry_id, x.ledger_id, x.credit, x.debit,
           x.currency);
}

} // namespace ap::domain
