#include "mocks/payments.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/metering.hpp"

#include "core/crypto.hpp"
#include "core/ids.hpp"

namespace ap::mocks {

namespace {

std::string derived_id(const std::string& prefix, const std::string& salt,
                       const std::string& purpose, const std::string& order_id) {
  // Placed by time as the order is (order_ + record_id_hex), so that the
  // indexes on payment and ledger ids grow at their recent end too.
  auto digest = crypto::hmac_sha256_hex(salt, purpose + "|" + order_id);
  constexpr std::string_view order_prefix = "order_";
  if (order_id.size() != order_prefix.size() + 24 || order_id.rfind(order_prefix, 0) != 0)
    return prefix + digest.substr(0, 24);
  return prefix + derived_record_id_hex(std::string_view{order_id}.substr(order_prefix.size()), digest);
}

} // namespace

payment_actor::behavior_type payment_mock(payment_actor::stateful_pointer<payment_mock_state> self,
                                          std::string salt, metrics::registry* registry) {
  auto& captured = registry->get_counter("ap_payment_charges_total",
                                         "Charges made by the payment processor",
                                         {{"outcome", "captured"}});
  auto& declined = registry->get_counter("ap_payment_charges_total",
                                         "Charges made by the payment processor",
                                         {{"outcome", "declined"}});
  auto meter_ = actor_meter::make(*registry, "payment");
  return {
    metered(self, meter_, [self, salt, &captured, &declined](atoms::charge_atom,
                                       const domain::charge_request& req) -> domain::charge_result {
      auto& st = self->state;
      // Stripe's idempotency: the same key answers the first charge.
      const auto& key = req.idempotency_key.empty() ? req.order_id : req.idempotency_key;
      if (const auto* earlier = st.charges.find(key))
        return *earlier;
      domain::charge_result res;
      res.payment_id = derived_id("pay_", salt, "payment", req.order_id);
      res.amount = req.amount;
      res.currency = req.currency;
      res.processor = "stripe-mock";
      // Stripe's test cards and their decline codes.
      if (req.payment_method == domain::pm_declined
          || req.payment_method == domain::pm_insufficient_funds) {
        res.status = "declined";
        res.decline_code = req.payment_method == domain::pm_declined ? "generic_decline"
                                                                      : "insufficient_funds";
        declined.inc();
      } else {
        res.status = "captured";
        captured.inc();
      }
      st.charges.remember(key, res);
      return res;
    }),
    metered(self, meter_, [self, registry](atoms::void_atom, const std::string& payment_id) {
      if (!self->state.voided.find(payment_id))
        registry->get_counter("ap_payment_refunds_total", "Captured charges refunded").inc();
      self->state.voided.remember(payment_id, true);
      return true;
    }),
  };
}

ledger_actor::behavior_type ledger_mock(ledger_actor::stateful_pointer<ledger_mock_state> self,
                                        std::string salt, std::string ledger_id,
                                        metrics::registry* registry) {
  auto& posted = registry->get_counter("ap_ledger_entries_total",
                                       "Journal entries posted to the finance ledger");
  auto meter_ = actor_meter::make(*registry, "ledger");
  return {
    metered(self, meter_, [self, salt, ledger_id, &posted](atoms::post_atom,
                                     const domain::journal_request& req) -> domain::journal_entry {
      auto& st = self->state;
      if (const auto* earlier = st.entries.find(req.order_id))
        return *earlier;
      domain::journal_entry e;
      e.entry_id = derived_id("fin_", salt, "ledger", req.order_id);
      e.ledger_id = ledger_id;
      e.credit = req.amount;
      e.debit = req.amount;
      e.currency = req.currency;
      st.entries.remember(req.order_id, e);
      posted.inc();
      return e;
    }),
    metered(self, meter_, [self](atoms::reverse_atom, const std::string& entry_id) {
      self->state.reversed.remember(entry_id, true);
      return true;
    }),
  };
}

} // namespace ap::mocks
