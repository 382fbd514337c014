#include "actors/stripe_connector.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/errors.hpp"
#include "actors/metering.hpp"
#include "core/log.hpp"
#include "domain/stripe.hpp"

namespace ap {

namespace {

/// Enough connections for every checkout in flight at 64 clients.
constexpr std::size_t processor_connections = 32;
/// Charges waiting for a connection at most: beyond, a charge fails at once
/// (never sent, so never in doubt) instead of piling up behind a processor
/// that stopped answering.
constexpr std::size_t processor_queue = 256;

using self_ptr = stripe_connector_actor::stateful_pointer<stripe_connector_state>;

} // namespace

stripe_connector_actor::behavior_type
stripe_connector(self_ptr self, stripe_config cfg, metrics::registry* registry) {
  // A reply lost after the request was written is this actor's to retry
  // (and to count), under the same Idempotency-Key: the client never sends
  // a written POST twice.
  upstream::client_options options;
  options.name = "processor";
  options.max_connections = processor_connections;
  options.max_queue = processor_queue;
  options.tls = cfg.tls;
  options.registry = registry;
  self->state.http = upstream::make_client(cfg.where, options);
  auto charges = [registry](const char* outcome) -> metrics::counter& {
    return registry->get_counter("ap_payment_charges_total", "Charges made by the payment processor",
                                 {{"outcome", outcome}});
  };
  auto& captured = charges("captured");
  auto& declined = charges("declined");
  auto& refused = charges("refused");
  auto& doubtful = charges("in_doubt");
  auto& refunds = registry->get_counter("ap_payment_refunds_total", "Captured charges refunded");
  auto& retries = registry->get_counter("ap_payment_retries_total",
                                        "Processor calls sent again under the same key after an "
                                        "answer in doubt");
  auto headers = [cfg](const std::string& key) {
    // The active version now: a retry after a rotation uses the new key.
    auto active = cfg.secrets ? cfg.secrets->active(domain::secret_set::stripe) : std::nullopt;
    return std::vector<std::pair<std::string, std::string>>{
      {"Authorization", "Bearer " + (active ? active->value : cfg.secret_key)},
      {"Stripe-Version", domain::stripe::api_version},
      {"Idempotency-Key", key},
    };
  };
  // Sends one attempt; its completion comes back as `pdone` (a strong
  // handle keeps this actor alive until the last one).
  auto send = [self, cfg, headers](std::uint64_t id) {
    auto it = self->state.exchanges.find(id);
    if (it == self->state.exchanges.end())
      return;
    auto& x = it->second;
    ++x.attempts;
    auto done = [handle = caf::actor_cast<stripe_connector_actor>(self), id](upstream::reply reply) {
      caf::anon_send(handle, atoms::pdone_atom::value, id, std::move(reply));
    };
    if (!self->state.http)
      return done(upstream::reply{0, {}, "no client (see the start-up log)", false});
    self->state.http->send({"POST", x.target, x.form, "application/x-www-form-urlencoded",
                            headers(x.idempotency_key), cfg.attempt_timeout},
                           std::move(done));
  };
  auto start = [self, send](stripe_exchange x) {
    auto id = self->state.next_exchange++;
    self->state.exchanges.emplace(id, std::move(x));
    send(id);
  };
  // An answer in doubt: try again under the same key after a backoff, or
  // give the doubt to the caller once the attempts are spent.
  auto retry_or_give_up = [self, cfg, &retries](std::uint64_t id, stripe_exchange& x,
                                                const std::string& reason) -> bool {
    x.was_in_doubt = true;
    if (x.attempts >= cfg.max_attempts)
      return false;
    retries.inc();
    auto backoff = cfg.first_backoff * (1 << (x.attempts - 1));
    log::info("the payment processor's answer is in doubt; retrying under the same key",
              {{"actor", "payment"}, {"subject", x.subject}, {"attempt", std::to_string(x.attempts)},
               {"reason", reason}});
    self->delayed_send(self, backoff, atoms::pretry_atom::value, id);
    return true;
  };
  auto meter_ = actor_meter::make(*registry, "payment");
  return {
    metered(self, meter_, [self, start](atoms::charge_atom, const domain::charge_request& req)
                            -> caf::result<domain::charge_result> {
      stripe_exchange x;
      x.what = stripe_exchange::kind::charge;
      x.target = "/v1/payment_intents";
      x.form = domain::stripe::charge_form(req);
      x.idempotency_key = domain::stripe::charge_key(req);
      x.subject = req.order_id;
      x.charged = self->make_response_promise<domain::charge_result>();
      auto promise = x.charged;
      start(std::move(x));
      return promise;
    }),
    metered(self, meter_, [self, start](atoms::void_atom, const std::string& payment_id)
                            -> caf::result<bool> {
      stripe_exchange x;
      x.what = stripe_exchange::kind::refund;
      x.target = "/v1/refunds";
      x.form = domain::stripe::refund_form(payment_id);
      x.idempotency_key = domain::stripe::refund_key(payment_id);
      x.subject = payment_id;
      x.refunded = self->make_response_promise<bool>();
      auto promise = x.refunded;
      start(std::move(x));
      return promise;
    }),
    metered(self, meter_, [self, retry_or_give_up, &captured, &declined, &refused, &doubtful,
                           &refunds](atoms::pdone_atom, std::uint64_t id,
                                     const upstream::reply& reply) {
      auto it = self->state.exchanges.find(id);
      if (it == self->state.exchanges.end())
        return;
      auto& x = it->second;
      if (x.what == stripe_exchange::kind::charge) {
        auto reading =
          domain::stripe::read_charge(reply.status, reply.body, reply.error, x.idempotency_key);
        if (reading.kind == domain::stripe::verdict::refused && x.was_in_doubt)
          reading.kind = domain::stripe::verdict::in_doubt;
        switch (reading.kind) {
          case domain::stripe::verdict::captured:
            captured.inc();
            x.charged.deliver(std::move(reading.result));
            break;
          case domain::stripe::verdict::declined:
            declined.inc();
            x.charged.deliver(std::move(reading.result));
            break;
          case domain::stripe::verdict::refused:
            refused.inc();
            log::warn("the payment processor refused a charge",
                      {{"actor", "payment"}, {"orderId", x.subject}, {"reason", reading.reason}});
            x.charged.deliver(make_error(error_code::upstream_refused, reading.reason));
            break;
          case domain::stripe::verdict::in_doubt:
            if (retry_or_give_up(id, x, reading.reason))
              return;
            doubtful.inc();
            log::warn("a charge is still in doubt after every attempt; its checkout stays "
                      "recorded for the reconciler",
                      {{"actor", "payment"}, {"orderId", x.subject}, {"reason", reading.reason}});
            x.charged.deliver(make_error(error_code::upstream_unavailable,
                                         "the payment processor did not answer clearly: "
                                           + reading.reason));
            break;
        }
      } else {
        auto reading = domain::stripe::read_refund(reply.status, reply.body, reply.error);
        if (!reading.refunded && reading.kind == domain::stripe::verdict::refused
            && x.was_in_doubt)
          reading.kind = domain::stripe::verdict::in_doubt;
        if (reading.refunded) {
          refunds.inc();
          x.refunded.deliver(true);
        } else if (reading.kind == domain::stripe::verdict::refused) {
          log::error("the payment processor refused a refund",
                     {{"actor", "payment"}, {"paymentId", x.subject}, {"reason", reading.reason}});
          x.refunded.deliver(make_error(error_code::upstream_refused, reading.reason));
        } else {
          if (retry_or_give_up(id, x, reading.reason))
            return;
          x.refunded.deliver(make_error(error_code::upstream_unavailable,
                                        "the payment processor did not answer clearly: "
                                          + reading.reason));
        }
      }
      self->state.exchanges.erase(it);
    }),
    metered(self, meter_, [send](atoms::pretry_atom, std::uint64_t id) { send(id); }),
  };
}

} // namespace ap
