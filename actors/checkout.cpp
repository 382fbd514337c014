#include "actors/checkout.hpp"

#include <caf/all.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "domain/order.hpp"

namespace ap {

namespace {

/// Each step of a checkout has its own bound, all within the HTTP request
/// timeout of the edge.
constexpr auto catalog_timeout = std::chrono::seconds{2};
constexpr auto claim_timeout = std::chrono::seconds{2};
constexpr auto payment_timeout = std::chrono::seconds{2};
constexpr auto ledger_timeout = std::chrono::seconds{2};
constexpr auto store_timeout = std::chrono::seconds{3};
constexpr auto compensation_timeout = std::chrono::seconds{5};

using self_ptr = checkout_actor::stateful_pointer<checkout_state>;

// One checkout in progress, shared by the continuations of its steps.
struct job {
  domain::checkout_request req;
  std::string key;
  domain::quote quote;
  domain::order_ids ids;
  domain::charge_result payment;
  domain::journal_entry entry;
  bool claimed = false;
  bool charged = false;
  bool posted = false;
  caf::typed_response_promise<http_answer> promise;
};
using job_ptr = std::shared_ptr<job>;

struct context {
  self_ptr self;
  checkout_config cfg;
  actor_directory* directory;
  metrics::registry* registry;

  metrics::counter& outcome(const std::string& name) const {
    return registry->get_counter("ap_checkouts_total", "Checkouts by outcome",
                                 {{"outcome", name}});
  }
};

void fail(const context& ctx, const job_ptr& j, caf::error err);
void charge(const context& ctx, const job_ptr& j);

// Undoes what the failed checkout did outside PostgreSQL, then answers.
void fail(const context& ctx, const job_ptr& j, caf::error err) {
  auto self = ctx.self;
  if (j->charged && j->payment.status == "captured")
    self->request(ctx.directory->payment(), compensation_timeout, atoms::void_atom::value,
                  j->payment.payment_id)
      .then([](bool) {},
            [j](caf::error& e) {
              log::error("could not void a charge of a failed checkout",
                         {{"actor", "checkout"}, {"paymentId", j->payment.payment_id},
                          {"error", caf::to_string(e)}});
            });
  if (j->posted)
    self->request(ctx.directory->ledger(), compensation_timeout, atoms::reverse_atom::value,
                  j->entry.entry_id)
      .then([](bool) {},
            [j](caf::error& e) {
              log::error("could not reverse a ledger entry of a failed checkout",
                         {{"actor", "checkout"}, {"entryId", j->entry.entry_id},
                          {"error", caf::to_string(e)}});
            });
  if (j->claimed)
    self->request(ctx.directory->database(), compensation_timeout, atoms::release_atom::value,
                  j->req.customer_id, j->key)
      .then([](bool) {}, [](caf::error&) {
        // The claim then goes stale and is taken over by the next retry.
      });
  ctx.outcome("failed").inc();
  j->promise.deliver(std::move(err));
}

void store(const context& ctx, const job_ptr& j, domain::order_record rec) {
  rec.idempotency_key = j->key;
  auto answer = http_answer{rec.http_status, rec.response_body};
  auto outcome = rec.status;
  ctx.self->request(ctx.directory->database(), store_timeout, atoms::store_atom::value,
                    std::move(rec))
    .then(
      [ctx, j, answer, outcome](std::string&) {
        ctx.outcome(outcome).inc();
        // The events are committed: the forwarder sends them now rather
        // than at its next poll.
        if (auto forwarder = ctx.directory->forwarder())
          caf::anon_send(forwarder, atoms::wake_atom::value);
        j->promise.deliver(answer);
      },
      [ctx, j](caf::error& e) { fail(ctx, j, std::move(e)); });
}

void complete(const context& ctx, const job_ptr& j) {
  try {
    auto rec = domain::assemble_completed(j->ids, j->req, j->quote, j->payment, j->entry,
                                          ctx.cfg.keys->active(), ctx.cfg.delivery_key,
                                          *ctx.self->state.catalog);
    store(ctx, j, std::move(rec));
  } catch (const std::exception& e) {
    log::error("assembling an order failed", {{"actor", "checkout"}, {"error", e.what()}});
    fail(ctx, j, make_error(error_code::internal, "internal error"));
  }
}

void post_ledger(const context& ctx, const job_ptr& j) {
  domain::journal_request entry{j->ids.order_id, j->payment.payment_id, j->quote.total,
                                j->quote.currency};
  ctx.self->request(ctx.directory->ledger(), ledger_timeout, atoms::post_atom::value, entry)
    .then(
      [ctx, j](domain::journal_entry& e) {
        j->entry = std::move(e);
        j->posted = true;
        if (j->entry.credit != j->entry.debit || j->entry.credit != j->quote.total) {
          fail(ctx, j, make_error(error_code::upstream_unavailable,
                                  "the finance ledger booked an unbalanced entry"));
          return;
        }
        complete(ctx, j);
      },
      [ctx, j](caf::error& e) {
        log::warn("ledger failed", {{"actor", "checkout"}, {"error", caf::to_string(e)}});
        fail(ctx, j, make_error(error_code::upstream_unavailable,
                                "the finance ledger is unavailable"));
      });
}

void charge(const context& ctx, const job_ptr& j) {
  domain::charge_request req{j->ids.order_id, j->req.customer_id, j->quote.total,
                             j->quote.currency, j->req.payment_method};
  ctx.self->request(ctx.directory->payment(), payment_timeout, atoms::charge_atom::value, req)
    .then(
      [ctx, j](domain::charge_result& res) {
        j->payment = std::move(res);
        j->charged = true;
        if (j->payment.status == "captured")
          return post_ledger(ctx, j);
        // A decline is kept as an order (payment_failed) with its audit event.
        store(ctx, j, domain::assemble_payment_failed(j->ids, j->req, j->quote, j->payment));
      },
      [ctx, j](caf::error& e) {
        log::warn("payment failed", {{"actor", "checkout"}, {"error", caf::to_string(e)}});
        fail(ctx, j, make_error(error_code::upstream_unavailable,
                                "the payment processor is unavailable"));
      });
}

void claim_and_charge(const context& ctx, const job_ptr& j) {
  if (j->key.empty())
    return charge(ctx, j);
  persistence::idempotency_claim c{j->req.customer_id, j->key, j->req.fingerprint};
  ctx.self->request(ctx.directory->database(), claim_timeout, atoms::claim_atom::value, c)
    .then(
      [ctx, j](persistence::claim_result& r) {
        if (r.state == "claimed") {
          j->claimed = true;
          return charge(ctx, j);
        }
        if (r.state == "replay") {
          ctx.outcome("replayed").inc();
          j->promise.deliver(http_answer{r.status, std::move(r.body)});
          return;
        }
        ctx.outcome("rejected").inc();
        if (r.state == "mismatch") {
          j->promise.deliver(make_error(error_code::idempotency_mismatch,
                                        "this Idempotency-Key was used with a different request "
                                        "body",
                                        "Idempotency-Key"));
          return;
        }
        j->promise.deliver(make_error(error_code::conflict,
                                      "a request with this Idempotency-Key is still in progress",
                                      "Idempotency-Key"));
      },
      [ctx, j](caf::error& e) {
        ctx.outcome("failed").inc();
        j->promise.deliver(std::move(e));
      });
}

void with_catalog(const context& ctx, const job_ptr& j) {
  auto proceed = [ctx, j] {
    auto priced = domain::price(j->req, *ctx.self->state.catalog);
    if (auto* err = std::get_if<domain::input_error>(&priced)) {
      ctx.outcome("rejected").inc();
      j->promise.deliver(make_error(error_code::invalid_input, err->message, err->field));
      return;
    }
    j->quote = std::get<domain::quote>(std::move(priced));
    claim_and_charge(ctx, j);
  };
  if (ctx.self->state.catalog)
    return proceed();
  ctx.self->request(ctx.directory->database(), catalog_timeout, atoms::catalog_atom::value)
    .then(
      [ctx, proceed](std::vector<domain::catalog_item>& items) {
        domain::catalog cat;
        for (auto& item : items)
          cat.emplace(item.sku, std::move(item));
        ctx.self->state.catalog = std::move(cat);
        proceed();
      },
      [ctx, j](caf::error& e) {
        ctx.outcome("failed").inc();
        j->promise.deliver(std::move(e));
      });
}

} // namespace

checkout_actor::behavior_type checkout(checkout_actor::stateful_pointer<checkout_state> self,
                                       checkout_config cfg, actor_directory* directory,
                                       metrics::registry* registry) {
  context ctx{self, std::move(cfg), directory, registry};
  auto meter_ = actor_meter::make(*registry, "checkout");
  return {
    metered(ctx.self, meter_, [ctx](atoms::checkout_atom, domain::checkout_request& req,
          std::string& key) -> caf::result<http_answer> {
      auto j = std::make_shared<job>();
      j->req = std::move(req);
      j->key = std::move(key);
      j->ids = domain::new_order_ids();
      j->promise = ctx.self->make_response_promise<http_answer>();
      with_catalog(ctx, j);
      return j->promise;
    }),
  };
}

} // namespace ap
