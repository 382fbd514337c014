#include "actors/checkout.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/handoff.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "domain/order.hpp"

namespace ap {

namespace {

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
  checkout_phase phase = checkout_phase::pricing;
  /// Taken over by the reconciler: recorded before, by whoever started it.
  bool resumed = false;
  domain::checkout_request req;
  std::string key;
  domain::quote quote;
  domain::order_ids ids;
  domain::charge_result payment;
  domain::journal_entry entry;
  bool posted = false;
  /// Set once undoing the sale is decided (and recorded).
  std::string undo_reason;
  /// The caller has its answer: an outcome, or an error naming the order.
  bool answered = false;
  /// Where the answer goes: the reply the HTTP edge sent, or else the
  /// response to the request.
  checkout_reply reply;
  caf::typed_response_promise<checkout_outcome> promise;
};

namespace {

using job_ptr = std::shared_ptr<checkout_job>;

const char* phase_name(checkout_phase phase) {
  switch (phase) {
    case checkout_phase::pricing:
      return "pricing";
    case checkout_phase::recording:
      return "recording";
    case checkout_phase::charging:
      return "charging";
    case checkout_phase::posting:
      return "posting";
    case checkout_phase::signing:
      return "signing";
    case checkout_phase::storing:
      return "storing";
    case checkout_phase::undoing:
      return "undoing";
    case checkout_phase::done:
      return "done";
  }
  return "unknown";
}

struct context {
  self_ptr self;
  /// Shared, not copied: every step's callbacks hold a context, and a copy
  /// of the configuration would copy the delivery master key each time.
  std::shared_ptr<const checkout_config> cfg;
  actor_directory* directory;
  metrics::registry* registry;

  metrics::counter& outcome(std::string_view name) const {
    auto& known = self->state.outcomes;
    auto it = known.find(name);
    if (it == known.end()) {
      std::string label{name};
      auto& c = registry->get_counter("ap_checkouts_total", "Checkouts by outcome",
                                      {{"outcome", label}});
      it = known.emplace(std::move(label), &c).first;
    }
    return *it->second;
  }
};

// Has what is held given once the messages waiting now are handled.
void flush_soon(const context& ctx) {
  auto& st = ctx.self->state;
  if (st.flushing)
    return;
  st.flushing = true;
  ctx.self->send(ctx.self, atoms::flush_atom::value);
}

// Gives what was held: the events to the forwarder, then the answers to
// the edge, in one hand-off to its io thread.
void flush(const context& ctx) {
  auto& st = ctx.self->state;
  st.flushing = false;
  if (!st.handover.empty()) {
    if (auto forwarder = ctx.directory->forwarder())
      caf::anon_send(forwarder, atoms::handover_atom::value, std::move(st.handover));
    st.handover.clear();
  }
  st.answers.give();
}

// Answers the caller once; later answers (a step completing after the
// deadline) are dropped. The edge's answers are held for the next flush.
template <class Answer>
void answer(const context& ctx, const job_ptr& j, Answer x) {
  if (j->answered)
    return;
  j->answered = true;
  ctx.self->state.unanswered.erase(j->number);
  if (!j->reply) {
    j->promise.deliver(std::move(x));
    return;
  }
  ctx.self->state.answers.hold(std::move(j->reply), caf::expected<checkout_outcome>{std::move(x)});
  flush_soon(ctx);
}

void finish(const context& ctx, const job_ptr& j, domain::checkout_outcome_kind kind, std::string body,
            const char* counted_as) {
  j->phase = checkout_phase::done;
  if (!j->answered)
    ctx.outcome(counted_as).inc();
  answer(ctx, j, checkout_outcome{kind, false, j->ids.order_id, std::move(body)});
}

void arm_sweep(const context& ctx) {
  auto& st = ctx.self->state;
  if (st.sweeping || st.unanswered.empty())
    return;
  st.sweeping = true;
  ctx.self->delayed_send(ctx.self, sweep_interval, atoms::sweep_atom::value);
}

// Answers every checkout past its deadline with a timeout (504) naming its
// order; the checkout itself goes on. Jobs are numbered on arrival and
// share one deadline length, so the overdue ones are the first ones.
void sweep(const context& ctx) {
  auto& st = ctx.self->state;
  st.sweeping = false;
  auto now = ctx.self->clock().now();
  while (!st.unanswered.empty() && st.unanswered.begin()->second->deadline <= now) {
    auto j = st.unanswered.begin()->second;
    log::warn("a checkout missed its deadline; it goes on",
              {{"actor", "checkout"}, {"orderId", j->ids.order_id}, {"phase", phase_name(j->phase)}});
    ctx.outcome("timed_out").inc();
    answer(ctx, j,
           make_order_error(error_code::timeout,
                            "the checkout did not finish in time; it goes on: follow order "
                              + j->ids.order_id,
                            j->ids.order_id));
  }
  arm_sweep(ctx);
}

// A step's outcome is not known: nothing is undone (SPEC §9). The caller
// learns the order id, and the recorded checkout is finished by the
// reconciler with the same ids.
void in_doubt(const context& ctx, const job_ptr& j, const char* step, const caf::error& err) {
  log::warn("a checkout is in doubt; the reconciler will finish it",
            {{"actor", "checkout"}, {"orderId", j->ids.order_id}, {"step", step},
             {"error", caf::to_string(err)}});
  j->phase = checkout_phase::done;
  if (j->answered)
    return;
  ctx.outcome("in_doubt").inc();
  // The step says which side is in doubt: the database (503) or an
  // upstream, the processor or the ledger (502).
  std::string_view s{step};
  bool database = s == "record" || s == "store" || s == "undo" || s == "abandon";
  auto message = std::string{"the checkout could not be finished now ("} + step + "); "
                 + (s == "record" ? "if it was recorded it" : "it is recorded and")
                 + " will be finished: follow order " + j->ids.order_id;
  answer(ctx, j,
         make_order_error(database ? error_code::database_unavailable
                                   : error_code::upstream_unavailable,
                          std::move(message), j->ids.order_id));
}

void store(const context& ctx, const job_ptr& j, domain::order_record rec,
           domain::checkout_outcome_kind kind, const char* counted_as) {
  j->phase = checkout_phase::storing;
  rec.idempotency_key = j->key;
  auto body = rec.status == domain::order_status::completed ? rec.result : rec.failure_body;
  ctx.self->request(ctx.directory->database(), caf::infinite, atoms::store_atom::value,
                    std::move(rec))
    .then(
      [ctx, j, kind, counted_as, body = std::move(body)](persistence::stored_order& stored) mutable {
        // The events are written leased to this instance; once they are
        // committed the forwarder gets them from here, with no lease
        // statement, together with those of the orders stored alongside.
        // Stored before (by a retry, or by the reconciler): those events
        // are the earlier store's, and are forwarded from there.
        if (stored.stored_now) {
          auto& handover = ctx.self->state.handover;
          handover.insert(handover.end(), std::make_move_iterator(stored.events.begin()),
                          std::make_move_iterator(stored.events.end()));
          flush_soon(ctx);
        }
        if (j->answered && !j->resumed)
          log::info("a checkout was finished after its deadline",
                    {{"actor", "checkout"}, {"orderId", j->ids.order_id}});
        finish(ctx, j, kind, std::move(body), counted_as);
      },
      [ctx, j](caf::error& e) { in_doubt(ctx, j, "store", e); });
}

// The sale was definitely refused after its capture. The decision is
// recorded first, so that whoever finishes the checkout (this actor, or
// the reconciler after a crash) only undoes it from then on; then the
// charge is refunded, the entry reversed, and a settlement_failed order
// stored with its order.settlement_failed event.
void undo(const context& ctx, const job_ptr& j, std::string reason) {
  j->phase = checkout_phase::undoing;
  log::warn("a captured checkout was refused; undoing it",
            {{"actor", "checkout"}, {"orderId", j->ids.order_id}, {"reason", reason}});
  auto refund_and_store = [ctx, j] {
    ctx.self->request(ctx.directory->payment(), caf::infinite, atoms::void_atom::value,
                      j->payment.payment_id)
      .then(
        [ctx, j](bool) {
          if (j->posted)
            // Reversing is idempotent by entry; a reversal that fails is
            // logged for finance and does not hold the refunded order back.
            ctx.self->request(ctx.directory->ledger(), caf::infinite, atoms::reverse_atom::value,
                              j->entry.entry_id)
              .then([](bool) {},
                    [j](caf::error& e) {
                      log::error("could not reverse the ledger entry of a refunded sale",
                                 {{"actor", "checkout"}, {"entryId", j->entry.entry_id},
                                  {"error", caf::to_string(e)}});
                    });
          store(ctx, j,
                domain::assemble_settlement_failed(j->ids, j->req, j->quote, j->payment,
                                                   j->undo_reason),
                domain::checkout_outcome_kind::settlement_failed, "settlement_failed");
        },
        [ctx, j](caf::error& e) { in_doubt(ctx, j, "refund", e); });
  };
  if (!j->undo_reason.empty())
    return refund_and_store();  // decided and recorded before
  ctx.self->request(ctx.directory->database(), caf::infinite, atoms::undo_atom::value,
                    j->ids.order_id, reason)
    .then(
      [ctx, j, reason, refund_and_store](persistence::undo_decision decision) {
        if (decision == persistence::undo_decision::undo) {
          j->undo_reason = reason;
          return refund_and_store();
        }
        // Stored: its order was stored meanwhile (by the reconciler) and
        // stands. Gone: not recorded. Either way nothing is undone here.
        in_doubt(ctx, j, "undo", make_error(error_code::conflict, persistence::to_string(decision)));
      },
      [ctx, j](caf::error& e) { in_doubt(ctx, j, "undo", e); });
}

// The master key a delivery sealed now is made with: the active version.
domain::delivery_master active_delivery_key(const checkout_config& cfg) {
  if (cfg.secrets)
    if (auto v = cfg.secrets->active(domain::secret_set::delivery))
      return {std::move(v->kid), std::move(v->value)};
  return cfg.delivery;
}

void complete(const context& ctx, const job_ptr& j, const domain::signed_proof& proof) {
  domain::order_record rec;
  try {
    rec = domain::assemble_completed(j->ids, j->req, j->quote, j->payment, j->entry, proof,
                                     active_delivery_key(*ctx.cfg), *ctx.self->state.catalog);
  } catch (const std::exception& e) {
    // It would fail again on every retry: a definite failure.
    log::error("assembling an order failed", {{"actor", "checkout"}, {"error", e.what()}});
    return undo(ctx, j, "the order could not be assembled");
  }
  store(ctx, j, std::move(rec), domain::checkout_outcome_kind::completed, "completed");
}

// The proof actor signs with the active key. It holds no state of the
// order: should it be down, the recorded checkout is finished later.
void sign(const context& ctx, const job_ptr& j) {
  j->phase = checkout_phase::signing;
  auto payload = json::canonical(
    domain::proof_payload(j->ids.order_id, j->req, j->quote, j->payment, j->entry));
  ctx.self
    ->request(ctx.directory->proof(), caf::infinite, atoms::sign_atom::value, std::move(payload),
              j->ids.created_at)
    .then([ctx, j](domain::signed_proof& proof) { complete(ctx, j, proof); },
          [ctx, j](caf::error& e) { in_doubt(ctx, j, "proof", e); });
}

void post_ledger(const context& ctx, const job_ptr& j) {
  j->phase = checkout_phase::posting;
  domain::journal_request entry{j->ids.order_id, j->payment.payment_id, j->quote.total,
                                j->quote.currency};
  ctx.self->request(ctx.directory->ledger(), caf::infinite, atoms::post_atom::value, entry)
    .then(
      [ctx, j](domain::journal_entry& e) {
        j->entry = std::move(e);
        j->posted = true;
        if (j->entry.credit != j->entry.debit || j->entry.credit != j->quote.total)
          return undo(ctx, j, "the finance ledger booked an unbalanced entry");
        sign(ctx, j);
      },
      [ctx, j](caf::error& e) {
        if (is_definite_refusal(e))
          return undo(ctx, j, "the finance ledger refused the entry: " + error_message(e));
        in_doubt(ctx, j, "ledger", e);
      });
}

// A definite refusal before any charge: the checkout ends without an order,
// and its key answers the same refusal from now on.
void refuse(const context& ctx, const job_ptr& j, const caf::error& e) {
  auto body = domain::order_error_body(
    "payment_refused", "the payment processor refused the charge: " + error_message(e),
    j->ids.order_id);
  ctx.self->request(ctx.directory->database(), caf::infinite, atoms::abandon_atom::value,
                    j->ids.order_id, body)
    .then([ctx, j, body](bool) { finish(ctx, j, domain::checkout_outcome_kind::refused, body, "refused"); },
          [ctx, j](caf::error& err) { in_doubt(ctx, j, "abandon", err); });
}

void charge(const context& ctx, const job_ptr& j) {
  j->phase = checkout_phase::charging;
  domain::charge_request req{j->ids.order_id,      j->req.customer_id,    j->quote.total,
                             j->quote.currency,    j->req.payment_method, j->ids.payment_key};
  ctx.self->request(ctx.directory->payment(), caf::infinite, atoms::charge_atom::value, req)
    .then(
      [ctx, j](domain::charge_result& res) {
        j->payment = std::move(res);
        if (j->payment.status == "captured") {
          if (!j->undo_reason.empty())
            return undo(ctx, j, j->undo_reason);
          return post_ledger(ctx, j);
        }
        // A decline is kept as an order (payment_failed) with its audit event.
        store(ctx, j, domain::assemble_payment_failed(j->ids, j->req, j->quote, j->payment),
              domain::checkout_outcome_kind::payment_failed, "payment_failed");
      },
      [ctx, j](caf::error& e) {
        // A refusal proves that nothing was charged only for a checkout that
        // was never charged before. A resumed one may have been charged by
        // the process that recorded it (under another API key, or before a
        // price change): its refusal is a doubt, left for the runbook.
        if (is_definite_refusal(e) && !j->resumed)
          return refuse(ctx, j, e);
        in_doubt(ctx, j, "payment", e);
      });
}

void record_and_charge(const context& ctx, const job_ptr& j) {
  if (j->resumed)
    return charge(ctx, j);  // recorded by whoever started it
  j->phase = checkout_phase::recording;
  persistence::checkout_begin rec{j->ids.order_id,  j->req.customer_id, j->key,
                                  j->req.fingerprint, j->ids.payment_key,
                                  domain::encode_intent(j->req, j->ids)};
  ctx.self->request(ctx.directory->database(), caf::infinite, atoms::begin_atom::value,
                    std::move(rec))
    .then(
      [ctx, j](persistence::claim_result& r) {
        if (r.state == persistence::claim_state::claimed)
          return charge(ctx, j);
        j->phase = checkout_phase::done;
        if (j->answered)
          return;
        if (r.state == persistence::claim_state::replay) {
          ctx.outcome("replayed").inc();
          answer(ctx, j, checkout_outcome{r.replay, true, {}, std::move(r.body)});
          return;
        }
        ctx.outcome("rejected").inc();
        if (r.state == persistence::claim_state::mismatch) {
          answer(ctx, j, make_error(error_code::idempotency_mismatch,
                                    "this Idempotency-Key was used with a different request body",
                                    "Idempotency-Key"));
          return;
        }
        answer(ctx, j, make_error(error_code::conflict,
                                  "a request with this Idempotency-Key is still in progress",
                                  "Idempotency-Key"));
      },
      // Recorded or not, nothing external has happened; if the record
      // lands after all, the reconciler finishes the checkout.
      [ctx, j](caf::error& e) { in_doubt(ctx, j, "record", e); });
}

void with_catalog(const context& ctx, const job_ptr& j) {
  auto proceed = [ctx, j] {
    if (j->answered && !j->resumed)
      return;
    auto priced = domain::price(j->req, *ctx.self->state.catalog);
    if (auto* err = std::get_if<domain::input_error>(&priced)) {
      j->phase = checkout_phase::done;
      if (j->resumed) {
        // Priced once when it was recorded: the catalog changed since.
        log::error("a recorded checkout no longer prices",
                   {{"actor", "checkout"}, {"orderId", j->ids.order_id}, {"error", err->message}});
        answer(ctx, j, make_order_error(error_code::internal, err->message, j->ids.order_id));
        return;
      }
      ctx.outcome("rejected").inc();
      answer(ctx, j, make_error(error_code::invalid_input, err->message, err->field));
      return;
    }
    j->quote = std::get<domain::quote>(std::move(priced));
    record_and_charge(ctx, j);
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
        // Nothing is recorded yet (or, resumed, it stays recorded).
        j->phase = checkout_phase::done;
        answer(ctx, j, make_order_error(error_code::database_unavailable,
                                        "the catalog could not be read", j->ids.order_id));
        log::warn("the catalog could not be read",
                  {{"actor", "checkout"}, {"error", caf::to_string(e)}});
      });
}

job_ptr new_job(const context& ctx, checkout_reply reply = {}) {
  auto j = std::make_shared<checkout_job>();
  auto& st = ctx.self->state;
  j->number = st.next_job++;
  j->deadline = ctx.self->clock().now() + ctx.cfg->deadline;
  if (reply)
    j->reply = std::move(reply);
  else
    j->promise = ctx.self->make_response_promise<checkout_outcome>();
  st.unanswered.emplace(j->number, j);
  arm_sweep(ctx);
  return j;
}

// A new checkout of `req` under Idempotency-Key `key` ("" for none).
job_ptr start_checkout(const context& ctx, domain::checkout_request& req, std::string& key,
                       domain::order_ids& ids, checkout_reply reply = {}) {
  auto j = new_job(ctx, std::move(reply));
  j->req = std::move(req);
  j->key = std::move(key);
  j->ids = std::move(ids);
  if (!j->key.empty())
    j->ids.payment_key = domain::payment_key_for(j->req.customer_id, j->key);
  with_catalog(ctx, j);
  return j;
}

} // namespace

void held_answers::give() {
  auto all = std::move(items_);
  items_.clear();
  handoff::batch together;
  for (auto& [reply, x] : all)
    reply(std::move(x));
}

checkout_actor::behavior_type checkout(checkout_actor::stateful_pointer<checkout_state> self,
                                       checkout_config cfg, actor_directory* directory,
                                       metrics::registry* registry) {
  context ctx{self, std::make_shared<const checkout_config>(std::move(cfg)), directory, registry};
  auto meter_ = actor_meter::make(*registry, "checkout");
  return {
    metered(ctx.self, meter_, [ctx](atoms::checkout_atom, domain::checkout_request& req,
          std::string& key, domain::order_ids& ids) -> caf::result<checkout_outcome> {
      return start_checkout(ctx, req, key, ids)->promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::checkout_atom, domain::checkout_request& req,
          std::string& key, domain::order_ids& ids, checkout_reply& reply) {
      start_checkout(ctx, req, key, ids, std::move(reply));
    }),
    metered(ctx.self, meter_, [ctx](atoms::resume_atom,
          persistence::unfinished_checkout& rec) -> caf::result<checkout_outcome> {
      auto j = new_job(ctx);
      j->resumed = true;
      j->key = std::move(rec.key);
      j->undo_reason = std::move(rec.undo_reason);
      if (!domain::decode_intent(rec.intent, j->req, j->ids)) {
        j->phase = checkout_phase::done;
        answer(ctx, j, make_order_error(error_code::internal, "unreadable checkout record",
                                        rec.order_id));
        return j->promise;
      }
      with_catalog(ctx, j);
      return j->promise;
    }),
    [ctx](atoms::sweep_atom) { sweep(ctx); },
    [ctx](atoms::flush_atom) { flush(ctx); },
  };
}

} // namespace ap
