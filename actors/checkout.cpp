#include "actors/checkout.hpp"

#include <caf/all.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "domain/order.hpp"

namespace ap {

namespace {

// Undoing a failed checkout's charge, entry and claim: rare, so each has a
// timer of its own.
constexpr auto compensation_timeout = std::chrono::seconds{5};
// Loading the catalog, once per start.
constexpr auto catalog_timeout = std::chrono::seconds{2};
// How often overdue checkouts are looked for: a checkout is answered at most
// this long after its deadline.
constexpr auto sweep_interval = std::chrono::milliseconds{100};

using self_ptr = checkout_actor::stateful_pointer<checkout_state>;

} // namespace

// One checkout in progress, shared by the continuations of its steps.
struct checkout_job {
  std::uint64_t number = 0;
  caf::actor_clock::time_point deadline;
  domain::checkout_request req;
  std::string key;
  domain::quote quote;
  domain::order_ids ids;
  domain::charge_result payment;
  domain::journal_entry entry;
  bool claimed = false;
  bool charged = false;
  bool posted = false;
  /// The client has its answer: an outcome, or the timeout at the deadline.
  /// A step that completes after that only undoes what it did.
  bool answered = false;
  caf::typed_response_promise<http_answer> promise;
};

namespace {

using job_ptr = std::shared_ptr<checkout_job>;

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

// Answers the client once; later answers (a step completing after the
// deadline) are dropped.
template <class Answer>
void answer(const context& ctx, const job_ptr& j, Answer x) {
  if (j->answered)
    return;
  j->answered = true;
  ctx.self->state.unanswered.erase(j->number);
  j->promise.deliver(std::move(x));
}

void arm_sweep(const context& ctx) {
  auto& st = ctx.self->state;
  if (st.sweeping || st.unanswered.empty())
    return;
  st.sweeping = true;
  ctx.self->delayed_send(ctx.self, sweep_interval, atoms::tick_atom::value);
}

// Answers every checkout past its deadline with a timeout (504). Jobs are
// numbered on arrival and share one deadline length, so the overdue ones
// are the first ones.
void sweep(const context& ctx) {
  auto& st = ctx.self->state;
  st.sweeping = false;
  auto now = ctx.self->clock().now();
  while (!st.unanswered.empty() && st.unanswered.begin()->second->deadline <= now) {
    auto j = st.unanswered.begin()->second;
    log::warn("a checkout missed its deadline",
              {{"actor", "checkout"}, {"orderId", j->ids.order_id}});
    ctx.outcome("timed_out").inc();
    answer(ctx, j, caf::make_error(caf::sec::request_timeout));
  }
  arm_sweep(ctx);
}

// Undoes what a checkout that will not be stored did: voids its charge,
// reverses its ledger entry, releases its Idempotency-Key.
void undo(const context& ctx, const job_ptr& j) {
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
}

// Undoes the checkout, then answers with `err` unless its deadline already
// answered.
void fail(const context& ctx, const job_ptr& j, caf::error err) {
  undo(ctx, j);
  if (j->answered)
    return;
  ctx.outcome("failed").inc();
  answer(ctx, j, std::move(err));
}

void store(const context& ctx, const job_ptr& j, domain::order_record rec) {
  rec.idempotency_key = j->key;
  auto stored = http_answer{rec.http_status, rec.response_body};
  auto outcome = rec.status;
  // The outbox rows are written leased to this instance; once they are
  // committed the forwarder gets them from here, with no lease statement.
  auto events = std::make_shared<std::vector<kernel::outbox_row>>();
  events->reserve(rec.events.size());
  for (const auto& e : rec.events)
    events->push_back({e.event_id, e.event_type, e.payload, 0, 1});
  ctx.self->request(ctx.directory->database(), caf::infinite, atoms::store_atom::value,
                    std::move(rec))
    .then(
      [ctx, j, stored = std::move(stored), outcome, events](std::string&) {
        if (auto forwarder = ctx.directory->forwarder()) {
          auto committed = unix_ms_now();
          for (auto& e : *events)
            e.committed_at_ms = committed;
          caf::anon_send(forwarder, atoms::handover_atom::value, std::move(*events));
        }
        if (j->answered) {
          // Answered with a timeout; the order stands, and a retry with its
          // Idempotency-Key replays it.
          log::warn("a checkout was stored after its deadline",
                    {{"actor", "checkout"}, {"orderId", j->ids.order_id}});
          return;
        }
        ctx.outcome(outcome).inc();
        answer(ctx, j, stored);
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
  ctx.self->request(ctx.directory->ledger(), caf::infinite, atoms::post_atom::value, entry)
    .then(
      [ctx, j](domain::journal_entry& e) {
        j->entry = std::move(e);
        j->posted = true;
        if (j->answered)
          return undo(ctx, j);
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
  ctx.self->request(ctx.directory->payment(), caf::infinite, atoms::charge_atom::value, req)
    .then(
      [ctx, j](domain::charge_result& res) {
        j->payment = std::move(res);
        j->charged = true;
        if (j->answered)
          return undo(ctx, j);
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
  ctx.self->request(ctx.directory->database(), caf::infinite, atoms::claim_atom::value, c)
    .then(
      [ctx, j](persistence::claim_result& r) {
        if (r.state == "claimed") {
          j->claimed = true;
          if (j->answered)
            return undo(ctx, j);
          return charge(ctx, j);
        }
        if (j->answered)
          return;
        if (r.state == "replay") {
          ctx.outcome("replayed").inc();
          answer(ctx, j, http_answer{r.status, std::move(r.body)});
          return;
        }
        ctx.outcome("rejected").inc();
        if (r.state == "mismatch") {
          answer(ctx, j, make_error(error_code::idempotency_mismatch,
                                    "this Idempotency-Key was used with a different request body",
                                    "Idempotency-Key"));
          return;
        }
        answer(ctx, j, make_error(error_code::conflict,
                                  "a request with this Idempotency-Key is still in progress",
                                  "Idempotency-Key"));
      },
      [ctx, j](caf::error& e) { fail(ctx, j, std::move(e)); });
}

void with_catalog(const context& ctx, const job_ptr& j) {
  auto proceed = [ctx, j] {
    if (j->answered)
      return;
    auto priced = domain::price(j->req, *ctx.self->state.catalog);
    if (auto* err = std::get_if<domain::input_error>(&priced)) {
      ctx.outcome("rejected").inc();
      answer(ctx, j, make_error(error_code::invalid_input, err->message, err->field));
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
      [ctx, j](caf::error& e) { fail(ctx, j, std::move(e)); });
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
      auto j = std::make_shared<checkout_job>();
      auto& st = ctx.self->state;
      j->number = st.next_job++;
      j->deadline = ctx.self->clock().now() + ctx.cfg.deadline;
      j->req = std::move(req);
      j->key = std::move(key);
      j->ids = domain::new_order_ids();
      j->promise = ctx.self->make_response_promise<http_answer>();
      st.unanswered.emplace(j->number, j);
      arm_sweep(ctx);
      with_catalog(ctx, j);
      return j->promise;
    }),
    [ctx](atoms::tick_atom) { sweep(ctx); },
  };
}

} // namespace ap
