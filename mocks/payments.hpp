#pragma once

// Deterministic stand-ins for the payment processor and the finance ledger.
// Identifiers derive from the order id and DETERMINISTIC_SALT, so the same
// order always maps to the same payment and entry.

#include <cstddef>
#include <deque>
#include <unordered_map>
#include <string>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"

namespace ap::mocks {

/// The last `capacity` values by key; the oldest is forgotten first. The
/// mocks remember recent charges and entries in one of these, as a
/// processor's idempotency window does, so that their memory stays flat
/// however many sales go through.
template <class T>
class recent {
public:
  explicit recent(std::size_t capacity) : capacity_(capacity) {}

  const T* find(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? nullptr : &it->second;
  }

  void remember(const std::string& key, T value) {
    if (!values_.emplace(key, std::move(value)).second)
      return;
    order_.push_back(key);
    if (order_.size() > capacity_) {
      values_.erase(order_.front());
      order_.pop_front();
    }
  }

  std::size_t size() const { return values_.size(); }

private:
  std::size_t capacity_;
  std::unordered_map<std::string, T> values_;
  std::deque<std::string> order_;
};

/// How many charges and entries the mocks remember.
constexpr std::size_t mock_memory = 10000;

/// State of the payment mock: recent charges by idempotency key, recently
/// refunded payments.
struct payment_mock_state {
  static constexpr const char* name = "payment-mock";
  recent<domain::charge_result> charges{mock_memory};
  recent<bool> voided{mock_memory};
};

/// A Stripe-like processor: `pm_card_visa` is captured,
/// `pm_card_chargeDeclined` declined with `generic_decline`,
/// `pm_card_chargeDeclinedInsufficientFunds` with `insufficient_funds`. Charging with the
/// same idempotency key again answers the first charge (within the last mock_memory). Counts
/// `ap_payment_charges_total{outcome}`.
payment_actor::behavior_type payment_mock(payment_actor::stateful_pointer<payment_mock_state> self,
                                          std::string salt, metrics::registry* registry);

/// State of the ledger mock: recent entries by order id, recently reversed
/// entries.
struct ledger_mock_state {
  static constexpr const char* name = "ledger-mock";
  recent<domain::journal_entry> entries{mock_memory};
  recent<bool> reversed{mock_memory};
};

/// A ledger that books every sale as one balanced entry (credit = debit =
/// amount) in `ledger_id`. Counts `ap_ledger_entries_total`.
ledger_actor::behavior_type ledger_mock(ledger_actor::stateful_pointer<ledger_mock_state> self,
                                        std::string salt, std::string ledger_id,
                                        metrics::registry* registry);

} // namespace ap::mocks
