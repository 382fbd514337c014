#pragma once

// Deterministic stand-ins for the payment processor and the finance ledger.
// Identifiers derive from the order id and DETERMINISTIC_SALT, so the same
// order always maps to the same payment and entry.

#include <map>
#include <set>
#include <string>

#include "actors/actors.hpp"
#include "core/metrics.hpp"

namespace ap::mocks {

/// State of the payment mock: charges by order id, voided payments.
struct payment_mock_state {
  static constexpr const char* name = "payment-mock";
  std::map<std::string, domain::charge_result> charges;
  std::set<std::string> voided;
};

/// A Stripe-like processor: `pm_card_visa` is captured,
/// `pm_card_chargeDeclined` declined with `card_declined`. Charging the same
/// order again answers the first charge. Counts
/// `ap_payment_charges_total{outcome}`.
payment_actor::behavior_type payment_mock(payment_actor::stateful_pointer<payment_mock_state> self,
                                          std::string salt, metrics::registry* registry);

/// State of the ledger mock: entries by order id.
struct ledger_mock_state {
  static constexpr const char* name = "ledger-mock";
  std::map<std::string, domain::journal_entry> entries;
  std::set<std::string> reversed;
};

/// A ledger that books every sale as one balanced entry (credit = debit =
/// amount) in `ledger_id`. Counts `ap_ledger_entries_total`.
ledger_actor::behavior_type ledger_mock(ledger_actor::stateful_pointer<ledger_mock_state> self,
                                        std::string salt, std::string ledger_id,
                                        metrics::registry* registry);

} // namespace ap::mocks
