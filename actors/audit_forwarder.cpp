#include "actors/audit_forwarder.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/errors.hpp"
#include "actors/metering.hpp"

#include "core/json.hpp"
#include "core/time.hpp"
#include "core/log.hpp"

namespace ap {

// The rows of one lease (or hand-over) on their way, and how each ended.
struct audit_batch {
  /// Its key in the state's `on_their_way`.
  std::uint64_t id = 0;
  /// When its rows' lease was last set, and when its calls are due.
  caf::actor_clock::time_point lease_set_at;
  caf::actor_clock::time_point deadline;
  std::vector<domain::audit_event> rows;
  std::vector<domain::forwarding_outcome> outcomes;
  /// Which rows are decided: an answer that comes after its row was
  /// decided (past the batch's deadline) is dropped.
  std::vector<bool> decided;
  std::size_t remaining = 0;
  bool full = false;
};

namespace {

/// How long one outbox request may take.
constexpr auto outbox_timeout = std::chrono::seconds{3};

using self_ptr = audit_forwarder_actor::stateful_pointer<audit_forwarder_state>;

struct instruments {
  metrics::histogram& lag;
  metrics::counter& breaches;
  metrics::counter& delivered;
  metrics::counter& failed;
  metrics::counter& dead_letters;
  metrics::gauge& pending;
  metrics::gauge& oldest;
  metrics::gauge& past_budget;
  metrics::gauge& dead_lettered;
  std::map<domain::receipt_check, metrics::counter*> rejections;

  explicit instruments(metrics::registry& r)
    : lag(r.get_histogram("ap_audit_lag_seconds",
                          "Audit lag: Kernel acknowledgement minus order commit", {},
                          {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30})),
      breaches(r.get_counter("ap_audit_freshness_breaches_total",
                             "Audit events that reached the Kernel later than the 3 s budget")),
      delivered(r.get_counter("ap_audit_events_forwarded_total",
                              "Audit events acknowledged by the Kernel with a valid receipt")),
      failed(r.get_counter("ap_audit_forward_failures_total",
                           "Failed attempts to forward an audit event (retried)")),
      dead_letters(r.get_counter("ap_audit_dead_letters_total",
                                 "Audit events the Kernel refused for what they carry, "
                                 "dead-lettered (not retried until requeued)")),
      pending(r.get_gauge("ap_audit_outbox_pending", "Audit events not yet in the Kernel")),
      oldest(r.get_gauge("ap_audit_outbox_oldest_pending_seconds",
                         "Age of the oldest audit event not yet in the Kernel")),
      past_budget(r.get_gauge("ap_audit_outbox_pending_past_budget",
                              "Audit events pending for longer than the 3 s budget")),
      dead_lettered(r.get_gauge("ap_audit_outbox_dead_lettered",
                                "Audit events dead-lettered in the outbox, waiting for an operator")) {
    // Every reason from the start, so a rate over them has a zero to start from.
    for (auto reason : domain::receipt_failures)
      rejections[reason] = &r.get_counter(
        "ap_audit_receipt_rejections_total",
        "Kernel answers to audit events that failed a receipt check (the event is retried)",
        {{"reason", domain::to_string(reason)}});
  }
};

struct context {
  self_ptr self;
  std::shared_ptr<audit_forwarder_config> cfg;
  std::shared_ptr<instruments> m;
};

void run_cycle(const context& ctx);

void send_handed(const context& ctx);

void finish_cycle(const context& ctx, bool more) {
  auto& st = ctx.self->state;
  --st.in_flight;
  send_handed(ctx);
  if (more || st.wake_pending) {
    st.wake_pending = false;
    run_cycle(ctx);
  }
}

// Says, once they are recorded, which events of `b` are dead-lettered: one
// error line each, with what identifies the event and the Kernel's answer
// (never the payload, whose content may be what was refused).
void report_dead_letters(const context& ctx, const audit_batch& b) {
  for (std::size_t i = 0; i < b.outcomes.size(); ++i) {
    const auto& out = b.outcomes[i];
    if (out.refused_status == 0)
      continue;
    const auto& row = b.rows[i];
    std::string order_id;
    rapidjson::Document payload;
    if (!json::parse_strict(row.payload, payload) && payload.IsObject())
      order_id = json::string_member(payload, "orderId");
    ctx.m->dead_letters.inc();
    log::error("the Kernel refused an audit event for what it carries; it is dead-lettered"
               " (docs/runbooks/audit-freshness.md)",
               {{"actor", "audit-forwarder"}, {"eventId", row.event_id},
                {"eventType", row.event_type}, {"orderId", order_id},
                {"status", std::to_string(out.refused_status)}, {"reason", out.refusal}});
  }
}

// Records the outcomes of every batch waiting to settle, in one call.
void flush_settles(const context& ctx) {
  auto& st = ctx.self->state;
  if (st.to_settle.empty())
    return;
  auto batches = std::move(st.to_settle);
  st.to_settle.clear();
  std::vector<domain::forwarding_outcome> outcomes;
  outcomes.reserve(st.to_settle_rows);
  st.to_settle_rows = 0;
  // Moved into the message, except a refusal's, which is logged once the
  // outcome is recorded.
  for (auto& b : batches)
    for (auto& out : b->outcomes) {
      if (out.refused_status != 0)
        outcomes.push_back(out);
      else
        outcomes.push_back(std::move(out));
    }
  auto events = outcomes.size();
  ctx.self
    ->request(ctx.cfg->outbox(), outbox_timeout, atoms::settle_atom::value, std::move(outcomes))
    .then(
      [ctx, batches = std::move(batches)](bool) {
        for (const auto& b : batches)
          report_dead_letters(ctx, *b);
      },
      [events](caf::error& e) {
        // The leases run out and the rows are sent again; the Kernel
        // deduplicates by event id.
        log::warn("recording audit outcomes failed",
                  {{"actor", "audit-forwarder"}, {"events", std::to_string(events)},
                   {"error", caf::to_string(e)}});
      });
}

// Every row of `b` is decided: its outcomes wait for the settle window (or
// go now), and its cycle is free for the next batch.
void settle(const context& ctx, std::shared_ptr<audit_batch> b) {
  auto& st = ctx.self->state;
  // Settling releases or ends the leases: nothing more to renew or expire.
  st.on_their_way.erase(b->id);
  st.to_settle_rows += b->outcomes.size();
  bool full = b->full;
  st.to_settle.push_back(std::move(b));
  if (ctx.cfg->settle_gather.count() == 0 || st.to_settle_rows >= ctx.cfg->settle_max) {
    flush_settles(ctx);
  } else if (!st.settle_window) {
    st.settle_window = true;
    ctx.self->delayed_send(ctx.self, ctx.cfg->settle_gather, atoms::settle_atom::value);
  }
  finish_cycle(ctx, full);
}

// Row `i`'s outcome is decided; the last one settles the batch.
void decided(const context& ctx, const std::shared_ptr<audit_batch>& b, std::size_t i) {
  if (b->decided[i])
    return;
  b->decided[i] = true;
  if (--b->remaining == 0)
    settle(ctx, b);
}

// The rows of `b` still unanswered at its deadline go again, as a call
// that timed out would.
void expire(const context& ctx, const std::shared_ptr<audit_batch>& b) {
  for (std::size_t i = 0; i < b->rows.size(); ++i) {
    if (b->decided[i])
      continue;
    ctx.m->failed.inc();
    log::debug("the Kernel did not answer an audit event within the call timeout; will retry",
               {{"actor", "audit-forwarder"}, {"eventId", b->rows[i].event_id}});
    decided(ctx, b, i);
  }
}

// Counts a receipt that failed a check and logs it, at most once per reason
// in each interval: a Kernel (or whatever answers in its place) that is
// wrong is wrong for every event, and the counter has the rest.
void reject(const context& ctx, const domain::audit_event& row, const kernel::audit_ack& ack,
            domain::receipt_check reason) {
  ctx.m->rejections[reason]->inc();
  auto now = ctx.self->clock().now();
  auto [it, first] = ctx.self->state.rejections_logged.try_emplace(reason, now, 0);
  auto& [last, unlogged] = it->second;
  if (!first && now - last < ctx.cfg->rejection_log_interval) {
    ++unlogged;
    return;
  }
  log::warn("the Kernel's answer is not a valid receipt of the event; it stays undelivered",
            {{"actor", "audit-forwarder"}, {"reason", domain::to_string(reason)},
             {"eventId", row.event_id}, {"kernelEventId", ack.kernel_id},
             {"signerId", ack.signer_id},
             {"alsoRejectedSinceLastLog", std::to_string(unlogged)}});
  last = now;
  unlogged = 0;
}

void read_keys(const context& ctx);

// Decides row `i` of `b` by the Kernel's answer: acknowledged only with a
// receipt that passes every check (SPEC §11). A receipt from a signer not
// among the keys read last, or whose signature fails under the key read
// last (a Kernel may replace a signer's key and keep its id), waits for the
// next read of the keys and is checked again, once. The lag is counted to
// `acked_at_ms`, when the Kernel's reply arrived (0: now).
void judge(const context& ctx, std::shared_ptr<audit_batch> b, std::size_t i,
           kernel::audit_ack ack, std::int64_t acked_at_ms, bool keys_read_since,
           std::optional<domain::receipt_check> checked = std::nullopt) {
  if (b->decided[i])
    return;  // past the deadline: the row goes again
  const auto& row = b->rows[i];
  auto verdict = checked ? *checked
                         : domain::check_receipt(ack, row.event_id, row.payload,
                                                 ctx.self->state.signer_keys);
  bool key_in_doubt = verdict == domain::receipt_check::unknown_signer
                      || verdict == domain::receipt_check::bad_signature;
  if (key_in_doubt && !keys_read_since) {
    ctx.self->state.awaiting_keys.push_back(
      [ctx, b, i, ack = std::move(ack), acked_at_ms](bool keys_read) mutable {
        if (keys_read)
          return judge(ctx, b, i, std::move(ack), acked_at_ms, true);
        if (b->decided[i])
          return;
        // Nothing is known against the receipt: the event goes again.
        ctx.m->failed.inc();
        decided(ctx, b, i);
      });
    read_keys(ctx);
    return;
  }
  if (verdict != domain::receipt_check::ok) {
    reject(ctx, row, ack, verdict);
    return decided(ctx, b, i);
  }
  auto& out = b->outcomes[i];
  out.acknowledged = true;
  out.kernel_id = ack.kernel_id;
  // Kept in the columns of its row where they give it back exactly
  // (migration 0026), else as its text. The row's event id is the one the
  // receipt was checked against.
  domain::audit_receipt receipt{row.event_type, std::move(ack)};
  if (auto columns = domain::receipt_in_columns(receipt)) {
    out.in_columns = true;
    out.columns = std::move(*columns);
  } else {
    out.receipt = domain::to_json(receipt);
  }
  auto lag_ms = (acked_at_ms != 0 ? acked_at_ms : ctx.cfg->now_ms()) - row.committed_at_ms;
  ctx.m->lag.observe(static_cast<double>(lag_ms) / 1000.0);
  ctx.m->delivered.inc();
  if (lag_ms > ctx.cfg->budget.count()) {
    ctx.m->breaches.inc();
    log::warn("audit freshness budget breached",
              {{"actor", "audit-forwarder"}, {"eventId", row.event_id},
               {"lagMs", std::to_string(lag_ms)}});
  }
  decided(ctx, b, i);
}

// The keys are in (or could not be read): the receipts waiting on them are
// checked.
void keys_read_done(const context& ctx, bool read) {
  auto& st = ctx.self->state;
  st.keys_reading = false;
  auto waiting = std::move(st.awaiting_keys);
  st.awaiting_keys.clear();
  for (auto& check : waiting)
    check(read);
}

// Reads the Kernel's keys: one read at a time, and no sooner than
// `keys_interval` after the last one (a later turn is scheduled instead), so
// a flood of receipts from an unknown signer costs one read a second.
void read_keys(const context& ctx) {
  auto& st = ctx.self->state;
  if (st.keys_reading || st.keys_read_scheduled)
    return;
  auto now = ctx.self->clock().now();
  if (st.last_keys_read && now - *st.last_keys_read < ctx.cfg->keys_interval) {
    st.keys_read_scheduled = true;
    ctx.self->delayed_send(ctx.self, *st.last_keys_read + ctx.cfg->keys_interval - now,
                           atoms::keys_atom::value);
    return;
  }
  st.keys_reading = true;
  st.last_keys_read = now;
  ctx.self->request(ctx.cfg->kernel(), ctx.cfg->kernel_timeout, atoms::keys_atom::value)
    .then(
      [ctx](std::vector<kernel::signer_key>& keys) {
        // The keys published now replace those read before: a key the
        // Kernel withdrew no longer vouches for a receipt. A key published
        // again under its signer keeps the tables it has built.
        auto fresh = domain::keys_by_signer(keys);
        auto& held = ctx.self->state.signer_keys;
        for (auto& [signer, verifier] : fresh) {
          auto before = held.find(signer);
          if (before != held.end() && before->second == verifier
              && before->second.tabled() == verifier.tabled())
            verifier = before->second;
        }
        held = std::move(fresh);
        keys_read_done(ctx, true);
      },
      [ctx](caf::error& e) {
        log::debug("reading the Kernel's keys failed",
                   {{"actor", "audit-forwarder"}, {"error", caf::to_string(e)}});
        keys_read_done(ctx, false);
      });
}

// Row `i` of `b` got no acknowledgement (error `e`): refused for what it
// carries, it is dead-lettered when the batch settles; otherwise it goes
// again.
void failed(const context& ctx, const std::shared_ptr<audit_batch>& b, std::size_t i,
            const caf::error& e) {
  if (b->decided[i])
    return;
  if (auto status = error_upstream_status(e); status != 0) {
    // Refused for what it carries: sent again, it would be refused again.
    b->outcomes[i].refused_status = status;
    b->outcomes[i].refusal = error_upstream_excerpt(e);
    return decided(ctx, b, i);
  }
  ctx.m->failed.inc();
  log::debug("forwarding an audit event failed; will retry",
             {{"actor", "audit-forwarder"}, {"eventId", b->rows[i].event_id},
              {"error", caf::to_string(e)}});
  decided(ctx, b, i);
}

// Sends leased rows and settles their outcomes; `lease_more` when they came
// from a lease, which is repeated after a full batch.
void forward(const context& ctx, std::vector<domain::audit_event> rows, bool lease_more) {
  auto b = std::make_shared<audit_batch>();
  auto& st = ctx.self->state;
  b->id = st.next_batch++;
  // One deadline for the batch's call, checked by the poll: a timed
  // request would cost CAF's clock thread two wake-ups a call, and the
  // Kernel client bounds each exchange itself. The deadline still ends a
  // call that client drops (it died with it in hand).
  b->lease_set_at = ctx.self->clock().now();
  b->deadline = b->lease_set_at + ctx.cfg->kernel_timeout;
  st.on_their_way.emplace(b->id, b);
  b->rows = std::move(rows);
  b->remaining = b->rows.size();
  b->full = lease_more && static_cast<std::int32_t>(b->rows.size()) >= ctx.cfg->batch_size;
  b->outcomes.resize(b->rows.size());
  b->decided.assign(b->rows.size(), false);
  for (std::size_t i = 0; i < b->rows.size(); ++i) {
    const auto& row = b->rows[i];
    b->outcomes[i] = {row.event_id, false, {}, row.attempts, {}, 0, {}};
  }
  // One call for the batch, answered once every event's request has ended.
  ctx.self->request(ctx.cfg->kernel(), caf::infinite, atoms::audit_atom::value, b->rows)
    .then(
      [ctx, b](std::vector<kernel::audit_answer>& answers) {
        // The receipts of the events still undecided, checked together.
        std::vector<domain::receipt_to_check> receipts;
        std::vector<std::size_t> at;
        for (std::size_t i = 0; i < b->rows.size() && i < answers.size(); ++i)
          if (!answers[i].error && !b->decided[i]) {
            receipts.push_back({&answers[i].ack, b->rows[i].event_id, b->rows[i].payload});
            at.push_back(i);
          }
        auto verdicts = domain::check_receipts(receipts, ctx.self->state.signer_keys);
        std::vector<std::optional<domain::receipt_check>> checked(b->rows.size());
        for (std::size_t j = 0; j < at.size(); ++j)
          checked[at[j]] = verdicts[j];
        for (std::size_t i = 0; i < b->rows.size(); ++i) {
          if (i >= answers.size())
            failed(ctx, b, i, make_error(error_code::upstream_unavailable,
                                         "the Kernel client answered fewer events than sent"));
          else if (answers[i].error)
            failed(ctx, b, i, answers[i].error);
          else
            judge(ctx, b, i, std::move(answers[i].ack), answers[i].answered_at_ms, false,
                  checked[i]);
        }
      },
      [ctx, b](caf::error& e) {
        for (std::size_t i = 0; i < b->rows.size(); ++i)
          failed(ctx, b, i, e);
      });
}

// Ends the batches whose calls are past their deadline.
void expire_overdue(const context& ctx) {
  auto now = ctx.self->clock().now();
  std::vector<std::shared_ptr<audit_batch>> overdue;
  for (const auto& [id, b] : ctx.self->state.on_their_way)
    if (b->deadline <= now)
      overdue.push_back(b);
  // Each settles its batch, which changes the map: ended after the walk.
  for (const auto& b : overdue)
    expire(ctx, b);
}

// Renews the leases of the batches out for half a lease or more, in one
// statement; a renewal that fails leaves the lease to run out (the Kernel
// stores a second send once).
void renew_leases(const context& ctx) {
  auto& st = ctx.self->state;
  auto now = ctx.self->clock().now();
  auto half = std::chrono::milliseconds{ctx.cfg->lease_ms / 2};
  std::vector<std::string> ids;
  for (auto& [id, b] : st.on_their_way) {
    if (now - b->lease_set_at < half)
      continue;
    b->lease_set_at = now;
    // Its decided rows too: they stay leased until the batch settles.
    for (const auto& row : b->rows)
      ids.push_back(row.event_id);
  }
  if (ids.empty())
    return;
  ctx.self
    ->request(ctx.cfg->outbox(), outbox_timeout, atoms::renew_atom::value,
              persistence::lease_terms{ctx.cfg->instance_id, 0, ctx.cfg->lease_ms}, std::move(ids))
    .then([](std::int32_t) {},
          [](caf::error& e) {
            log::debug("renewing outbox leases failed",
                       {{"actor", "audit-forwarder"}, {"error", caf::to_string(e)}});
          });
}

void run_cycle(const context& ctx) {
  auto& st = ctx.self->state;
  if (st.in_flight >= ctx.cfg->max_cycles) {
    st.wake_pending = true;
    return;
  }
  ++st.in_flight;
  ctx.self
    ->request(ctx.cfg->outbox(), outbox_timeout, atoms::lease_atom::value,
              persistence::lease_terms{ctx.cfg->instance_id, ctx.cfg->batch_size,
                                       ctx.cfg->lease_ms})
    .then(
      [ctx](std::vector<domain::audit_event>& rows) {
        if (rows.empty())
          return finish_cycle(ctx, false);
        bool full = static_cast<std::int32_t>(rows.size()) >= ctx.cfg->batch_size;
        forward(ctx, std::move(rows), true);
        // More are waiting: lease the next batch while this one travels.
        if (full)
          run_cycle(ctx);
      },
      [ctx](caf::error& e) {
        log::debug("leasing outbox rows failed",
                   {{"actor", "audit-forwarder"}, {"error", caf::to_string(e)}});
        --ctx.self->state.in_flight;
      });
}

// Sends the handed-over rows, a batch per free cycle.
void send_handed(const context& ctx) {
  auto& st = ctx.self->state;
  while (!st.handed.empty() && st.in_flight < ctx.cfg->max_cycles) {
    ++st.in_flight;
    auto n = std::min(st.handed.size(), static_cast<std::size_t>(ctx.cfg->batch_size));
    std::vector<domain::audit_event> rows(std::make_move_iterator(st.handed.begin()),
                                         std::make_move_iterator(st.handed.begin() + n));
    st.handed.erase(st.handed.begin(), st.handed.begin() + n);
    forward(ctx, std::move(rows), false);
  }
}

// The end of a gather window: what it collected goes out together.
void flush(const context& ctx) {
  auto& st = ctx.self->state;
  send_handed(ctx);
  if (st.lease_wanted) {
    st.lease_wanted = false;
    run_cycle(ctx);
  }
}

// Opens a gather window unless one is open (or there is none to wait for).
void gather(const context& ctx) {
  auto& st = ctx.self->state;
  if (ctx.cfg->gather.count() == 0)
    return flush(ctx);
  if (st.gathering)
    return;
  st.gathering = true;
  ctx.self->delayed_send(ctx.self, ctx.cfg->gather, atoms::gather_atom::value);
}

void refresh_stats(const context& ctx) {
  ctx.self->request(ctx.cfg->outbox(), outbox_timeout, atoms::stats_atom::value)
    .then(
      [ctx](domain::outbox_stats& s) {
        ctx.m->pending.set(static_cast<double>(s.pending));
        ctx.m->oldest.set(static_cast<double>(s.oldest_pending_ms) / 1000.0);
        ctx.m->past_budget.set(static_cast<double>(s.pending_past_budget));
        ctx.m->dead_lettered.set(static_cast<double>(s.dead_lettered));
      },
      [](caf::error&) {});
}

} // namespace

audit_forwarder_actor::behavior_type
audit_forwarder(audit_forwarder_actor::stateful_pointer<audit_forwarder_state> self,
                audit_forwarder_config cfg, metrics::registry* registry) {
  if (!cfg.now_ms)
    cfg.now_ms = [] { return unix_ms_now(); };
  context ctx{self, std::make_shared<audit_forwarder_config>(std::move(cfg)),
              std::make_shared<instruments>(*registry)};
  self->send(self, atoms::poll_atom::value);
  // Read before the first receipt needs them, so it need not wait.
  read_keys(ctx);
  auto meter_ = actor_meter::make(*registry, "audit-forwarder");
  return {
    metered(self, meter_, [ctx](atoms::wake_atom) {
      ctx.self->state.lease_wanted = true;
      gather(ctx);
    }),
    metered(self, meter_, [ctx](atoms::handover_atom, std::vector<domain::audit_event>& rows) {
      auto& handed = ctx.self->state.handed;
      if (handed.size() + rows.size() > ctx.cfg->max_handed) {
        // Their lease runs out and a poll takes them.
        log::debug("handed-over audit events left to the poll",
                   {{"actor", "audit-forwarder"}, {"events", std::to_string(rows.size())}});
        return;
      }
      handed.insert(handed.end(), std::make_move_iterator(rows.begin()),
                    std::make_move_iterator(rows.end()));
      gather(ctx);
    }),
    metered(self, meter_, [ctx](atoms::gather_atom) {
      ctx.self->state.gathering = false;
      flush(ctx);
    }),
    metered(self, meter_, [ctx](atoms::settle_atom) {
      ctx.self->state.settle_window = false;
      flush_settles(ctx);
    }),
    metered(self, meter_, [ctx](atoms::keys_atom) {
      auto& st = ctx.self->state;
      st.keys_read_scheduled = false;
      if (!st.awaiting_keys.empty())
        read_keys(ctx);
    }),
    metered(self, meter_, [ctx](atoms::poll_atom) {
      auto self = ctx.self;
      expire_overdue(ctx);
      renew_leases(ctx);
      run_cycle(ctx);
      auto now = self->clock().now();
      if (now - self->state.last_stats >= ctx.cfg->stats_interval) {
        self->state.last_stats = now;
        refresh_stats(ctx);
      }
      self->delayed_send(self, ctx.cfg->poll_interval, atoms::poll_atom::value);
    }),
  };
}

} // namespace ap
