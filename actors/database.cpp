#include "actors/database.hpp"

#include <algorithm>
#include <numeric>
#include <optional>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/multisig_store.hpp"
#include "persistence/outbox_store.hpp"
#include "persistence/retention_store.hpp"

namespace ap {

namespace {

using facade_ptr = database_actor::stateful_pointer<database_state>;

/// How the facade batches, and what it reports about it.
struct batching_config {
  std::size_t max_batch;
  std::size_t in_flight;
  metrics::counter* claim_batches;
  metrics::counter* claims;
  metrics::counter* store_batches;
  metrics::counter* stores;
  metrics::counter* together;
  std::chrono::microseconds store_wait;
  std::size_t store_wait_rest;
  std::size_t store_wait_most;
};

// The worker whose turn it is.
std::size_t next_lane(database_state& st) {
  return st.next++ % st.workers.size();
}

database_worker_actor& next_worker(facade_ptr self) {
  auto& st = self->state;
  return st.workers[next_lane(st)];
}

// Calls carrying checkouts at the workers now.
std::size_t checkout_calls(const database_state& st) {
  return std::accumulate(st.carrying.begin(), st.carrying.end(), std::size_t{0});
}

// The worker the next call carrying checkouts goes to: the first carrying
// none (the next in turn when all carry some), so with one call in flight
// one worker and its PostgreSQL backend make every call, instead of each in
// turn: that backend stays warm, and PostgreSQL spent 10-20 % less CPU per
// checkout at 16 connections (docs/performance.md).
std::size_t checkout_lane(database_state& st) {
  auto idle = std::find(st.carrying.begin(), st.carrying.end(), 0);
  if (idle != st.carrying.end())
    return static_cast<std::size_t>(idle - st.carrying.begin());
  return next_lane(st);
}

// Delivers one answer per request of a batch, in order.
void deliver(std::vector<caf::typed_response_promise<persistence::claim_result>>& promises,
             std::vector<persistence::claim_result>& replies) {
  for (std::size_t i = 0; i < promises.size(); ++i) {
    if (i < replies.size())
      promises[i].deliver(std::move(replies[i]));
    else
      promises[i].deliver(make_error(error_code::internal, "database error"));
  }
}

void deliver(std::vector<caf::typed_response_promise<persistence::stored_order>>& promises,
             store_batch_outcome& outcome) {
  for (std::size_t i = 0; i < promises.size(); ++i) {
    if (i >= outcome.errors.size() || i >= outcome.stored.size())
      promises[i].deliver(make_error(error_code::internal, "database error"));
    else if (outcome.errors[i])
      promises[i].deliver(std::move(outcome.errors[i]));
    else
      promises[i].deliver(std::move(outcome.stored[i]));
  }
}

// Up to `max` of what waits in `q`, taken out of it.
template <class Item, class Reply>
struct taken {
  std::vector<Item> items;
  std::shared_ptr<std::vector<caf::typed_response_promise<Reply>>> promises;
};

template <class Item, class Reply>
taken<Item, Reply> take(batch_queue<Item, Reply>& q, std::size_t max) {
  auto n = std::min(q.items.size(), max);
  taken<Item, Reply> out{
    std::vector<Item>(std::make_move_iterator(q.items.begin()),
                      std::make_move_iterator(q.items.begin() + n)),
    std::make_shared<std::vector<caf::typed_response_promise<Reply>>>(
      std::make_move_iterator(q.promises.begin()),
      std::make_move_iterator(q.promises.begin() + n))};
  q.items.erase(q.items.begin(), q.items.begin() + n);
  q.promises.erase(q.promises.begin(), q.promises.begin() + n);
  return out;
}

template <class Reply>
void fail(std::vector<caf::typed_response_promise<Reply>>& promises, const caf::error& e) {
  for (auto& p : promises)
    p.deliver(e);
}

// After a call answered `claims`, the next waits for the stores of those
// claimed (database_config::store_wait), unless they are many or the facade
// rests after a wait that ended without them.
void await_stores(database_state& st, const batching_config& cfg,
                  const std::vector<persistence::claim_result>& claims) {
  if (cfg.store_wait.count() <= 0)
    return;
  if (st.resting > 0) {
    --st.resting;
    return;
  }
  auto claimed = static_cast<std::size_t>(
    std::count_if(claims.begin(), claims.end(), [](const persistence::claim_result& c) {
      return c.state == persistence::claim_state::claimed;
    }));
  if (claimed == 0 || claimed > cfg.store_wait_most)
    return;
  st.awaited = std::min(st.stores.items.size() + claimed, cfg.max_batch);
  st.awaited_until = std::chrono::steady_clock::now() + cfg.store_wait;
}

// Whether what waits stays for the stores awaited: until they are all
// there or the wait ends, whose end a timer of the facade's marks.
bool awaiting_stores(facade_ptr self, const batching_config& cfg) {
  auto& st = self->state;
  if (st.awaited == 0)
    return false;
  if (st.stores.items.size() >= st.awaited) {
    st.awaited = 0;
    return false;
  }
  auto now = std::chrono::steady_clock::now();
  if (now >= st.awaited_until) {
    st.awaited = 0;
    st.resting = cfg.store_wait_rest;
    return false;
  }
  if (!st.wait_timer) {
    st.wait_timer = true;
    self->delayed_send(self, st.awaited_until - now, atoms::gather_atom::value);
  }
  return true;
}

// Sends what is waiting while fewer than `in_flight` calls carrying
// checkouts' records or stores (one by default) are at the workers: every
// record and store waiting (at most `max_batch` of each) goes in the next
// call, both kinds together when both wait (migration 0021: one
// transaction, one commit). A request that arrives while a call is at a
// worker waits for the next one, so batches grow with the load and a lone
// request goes out at once. When a call answered records, what waits
// behind it may wait a little longer for their stores (`await_stores`).
//
// A call is sent without a timer of its own (which would cost CAF's clock
// thread two wake-ups a call; only a wait for stores sets one, and only
// while something waits): the worker bounds every call it makes (the
// call deadline, DB_CALL_DEADLINE_MS, then the cancel's grace, then the
// connection is dropped, an outcome in doubt; connecting has its
// connect_timeout), and a worker that dies takes this facade with it (they
// are linked), so no batch is left unanswered. The callers take an error as
// an outcome in doubt (SPEC §9), never as a refusal.
void dispatch(facade_ptr self, const batching_config& cfg) {
  auto& st = self->state;
  while (checkout_calls(st) < cfg.in_flight
         && (!st.begins.items.empty() || !st.stores.items.empty())) {
    if (awaiting_stores(self, cfg))
      return;
    auto begins = take(st.begins, cfg.max_batch);
    auto stores = take(st.stores, cfg.max_batch);
    if (!begins.items.empty()) {
      cfg.claim_batches->inc();
      cfg.claims->inc(begins.items.size());
    }
    if (!stores.items.empty()) {
      cfg.store_batches->inc();
      cfg.stores->inc(stores.items.size());
    }
    auto lane = checkout_lane(st);
    ++st.carrying[lane];
    auto& worker = st.workers[lane];
    auto done = [self, cfg, lane] {
      --self->state.carrying[lane];
      dispatch(self, cfg);
    };
    if (!begins.items.empty() && !stores.items.empty()) {
      cfg.together->inc();
      self->request(worker, caf::infinite, atoms::begin_atom::value,
                    std::move(begins.items), std::move(stores.items))
        .then(
          [self, cfg, done, b = begins.promises, s = stores.promises](checkout_batch_outcome& out) {
            if (out.begin_error) {
              fail(*b, out.begin_error);
            } else {
              await_stores(self->state, cfg, out.claims);
              deliver(*b, out.claims);
            }
            deliver(*s, out.stores);
            done();
          },
          [done, b = begins.promises, s = stores.promises](caf::error& e) {
            fail(*b, e);
            fail(*s, e);
            done();
          });
    } else if (!begins.items.empty()) {
      self->request(worker, caf::infinite, atoms::begin_atom::value,
                    std::move(begins.items))
        .then(
          [self, cfg, done, b = begins.promises](std::vector<persistence::claim_result>& claims) {
            await_stores(self->state, cfg, claims);
            deliver(*b, claims);
            done();
          },
          [done, b = begins.promises](caf::error& e) {
            fail(*b, e);
            done();
          });
    } else {
      self->request(worker, caf::infinite, atoms::store_atom::value,
                    std::move(stores.items))
        .then(
          [done, s = stores.promises](store_batch_outcome& out) {
            deliver(*s, out);
            done();
          },
          [done, s = stores.promises](caf::error& e) {
            fail(*s, e);
            done();
          });
    }
  }
}

template <class Item, class Reply>
caf::result<Reply> enqueue(facade_ptr self, batch_queue<Item, Reply>& q, Item item,
                           const batching_config& cfg) {
  auto promise = self->make_response_promise<Reply>();
  q.items.push_back(std::move(item));
  q.promises.push_back(promise);
  dispatch(self, cfg);
  return promise;
}

} // namespace

persistence::session_limits probe_limits() {
  persistence::session_limits limits;
  limits.statement_timeout = std::chrono::milliseconds{500};
  limits.lock_timeout = std::chrono::milliseconds{500};
  limits.idle_in_transaction_timeout = std::chrono::milliseconds{1000};
  limits.call_deadline = std::chrono::milliseconds{600};
  limits.cancel_grace = std::chrono::milliseconds{200};
  return limits;
}

database_actor::behavior_type database(database_actor::stateful_pointer<database_state> self,
                                       database_config cfg) {
  if (!cfg.reachable)
    cfg.reachable = std::make_shared<reachability>("database", database_settle);
  if (cfg.registry)
    cfg.registry->add_callback_gauge("ap_upstream_reachable",
                                     "1 unless the last call to the upstream found it unreachable",
                                     {{"upstream", "database"}},
                                     [r = cfg.reachable] { return r->reachable() ? 1.0 : 0.0; });
  if (cfg.registry)
    cfg.registry->get_gauge("ap_db_pool_size", "Database workers (one connection each), "
                            "DB_POOL_SIZE and the one for periodic scans")
      .set(static_cast<double>(std::max<std::size_t>(cfg.workers, 1) + 1));
  for (std::size_t i = 0; i < std::max<std::size_t>(cfg.workers, 1); ++i)
    self->state.workers.push_back(
      self->spawn<caf::detached + caf::linked>(database_worker, cfg));
  self->state.carrying.assign(self->state.workers.size(), 0);
  self->state.background = self->spawn<caf::detached + caf::linked>(database_worker, cfg);
  {
    auto probe_cfg = cfg;
    probe_cfg.limits = probe_limits();
    self->state.probe = self->spawn<caf::detached + caf::linked>(database_worker, probe_cfg);
  }
  auto background = [self]() -> database_worker_actor& { return self->state.background; };
  // Each request goes to the next worker; its reply goes straight back to
  // the requester.
  auto next = [self]() -> database_worker_actor& { return next_worker(self); };
  auto* registry = cfg.registry ? cfg.registry : &unobserved_registry();
  auto batch_counter = [registry](const char* name, const char* help, const char* kind) {
    return &registry->get_counter(name, help, {{"kind", kind}});
  };
  batching_config batching{
    std::max<std::size_t>(cfg.max_batch, 1), std::max<std::size_t>(cfg.batches_in_flight, 1),
    batch_counter("ap_db_batches_total", "Batches sent to the database workers", "begin"),
    batch_counter("ap_db_batched_requests_total", "Requests sent in those batches", "begin"),
    batch_counter("ap_db_batches_total", "Batches sent to the database workers", "store"),
    batch_counter("ap_db_batched_requests_total", "Requests sent in those batches", "store"),
    &registry->get_counter("ap_db_batches_together_total",
                           "Calls that carried a batch of each kind (records and stores) in "
                           "one transaction"),
    cfg.store_wait, cfg.store_wait_rest, cfg.store_wait_most};
  auto meter_ = actor_meter::make(*registry, "database");
  return {
    metered(self, meter_, [=](atoms::ping_atom x) -> caf::result<persistence::db_status> {
      return self->delegate(self->state.probe, x);
    }),
    metered(self, meter_, [=](atoms::catalog_atom x) -> caf::result<std::vector<domain::catalog_item>> {
      return self->delegate(next(), x);
    }),
    metered(self, meter_, [=](atoms::begin_atom,
        persistence::checkout_begin& c) -> caf::result<persistence::claim_result> {
      return enqueue(self, self->state.begins, std::move(c), batching);
    }),
    metered(self, meter_, [=](atoms::store_atom,
        domain::order_record& order) -> caf::result<persistence::stored_order> {
      return enqueue(self, self->state.stores, std::move(order), batching);
    }),
    metered(self, meter_, [=](atoms::gather_atom) {
      self->state.wait_timer = false;
      dispatch(self, batching);
    }),
    metered(self, meter_, [=](atoms::abandon_atom x, std::string& id,
        std::string& body) -> caf::result<bool> {
      return self->delegate(next(), x, std::move(id), std::move(body));
    }),
    metered(self, meter_, [=](atoms::undo_atom x, std::string& id,
        std::string& reason) -> caf::result<persistence::undo_decision> {
      return self->delegate(next(), x, std::move(id), std::move(reason));
    }),
    metered(self, meter_, [=](atoms::overdue_atom x, persistence::lease_terms& terms,
        std::int32_t older_ms) -> caf::result<std::vector<persistence::unfinished_checkout>> {
      return self->delegate(background(), x, std::move(terms), older_ms);
    }),
    metered(self, meter_, [=](atoms::unfinished_atom x) -> caf::result<persistence::unfinished_stats> {
      return self->delegate(background(), x);
    }),
    metered(self, meter_, [=](atoms::get_atom x, std::string& id,
        persistence::order_part part) -> caf::result<std::string> {
      return self->delegate(next(), x, std::move(id), part);
    }),
    metered(self, meter_, [=](atoms::lease_atom x,
        persistence::lease_terms& terms) -> caf::result<std::vector<domain::audit_event>> {
      return self->delegate(next(), x, std::move(terms));
    }),
    metered(self, meter_, [=](atoms::renew_atom x, persistence::lease_terms& terms,
        std::vector<std::string>& ids) -> caf::result<std::int32_t> {
      return self->delegate(next(), x, std::move(terms), std::move(ids));
    }),
    metered(self, meter_, [=](atoms::settle_atom x,
        std::vector<domain::forwarding_outcome>& outcomes) -> caf::result<bool> {
      return self->delegate(next(), x, std::move(outcomes));
    }),
    metered(self, meter_, [=](atoms::stats_atom x) -> caf::result<domain::outbox_stats> {
      return self->delegate(background(), x);
    }),
    metered(self, meter_, [=](atoms::multisig_atom x,
        persistence::upgrade_step& step) -> caf::result<domain::upgrade_record> {
      return self->delegate(next(), x, std::move(step));
    }),
    // Periodic: never behind the checkouts' statements.
    metered(self, meter_, [=](atoms::purge_atom x,
        persistence::purge_terms& terms) -> caf::result<persistence::purge_outcome> {
      return self->delegate(background(), x, terms);
    }),
    metered(self, meter_, [=](atoms::retained_atom x,
        persistence::retention_table table) -> caf::result<std::int64_t> {
      return self->delegate(background(), x, table);
    }),
    metered(self, meter_, [=](atoms::vacuum_atom x) -> caf::result<bool> {
      return self->delegate(background(), x);
    }),
    metered(self, meter_, [=](atoms::keyset_atom x, std::string& instance,
        std::string& key_set) -> caf::result<std::vector<std::string>> {
      return self->delegate(background(), x, std::move(instance), std::move(key_set));
    }),
    metered(self, meter_, [=](atoms::rotation_atom x, std::string& kid, std::string& commitment,
        std::int32_t within_ms) -> caf::result<std::vector<std::string>> {
      return self->delegate(next(), x, std::move(kid), std::move(commitment), within_ms);
    }),
  };
}

namespace {

// Logs a failed request and turns it into an error the HTTP edge maps to a
// status.
caf::error failure(const char* what, const persistence::db_error& e) {
  log::error("database request failed",
             {{"actor", "database-worker"}, {"request", what}, {"error", e.what()},
              {"sqlstate", e.sqlstate()}});
  // Past the call deadline, statement_timeout (57014) or lock_timeout
  // (55P03): the database is stalled or busy, which a later try may not be.
  if (e.past_deadline() || e.sqlstate() == "57014" || e.sqlstate() == "55P03")
    return make_error(error_code::database_unavailable, "the database did not answer in time");
  if (e.connection_lost())
    return make_error(error_code::database_unavailable, "the database is unavailable");
  if (e.sqlstate() == "40001")
    return make_error(error_code::conflict, "a concurrent request changed the same record");
  return make_error(error_code::internal, "database error");
}

// Adds the calls of the worker's connection that outlived their deadline
// to `ap_db_calls_past_deadline_total` when the request ends.
struct count_past_deadline {
  database_worker_state& state;
  ~count_past_deadline() {
    auto seen = state.conn->calls_past_deadline();
    state.past_deadline->inc(seen - state.past_deadline_seen);
    state.past_deadline_seen = seen;
  }
};

// Runs `work` on the worker's connection, retrying once when the connection
// turns out to be lost (a restarted server), and turns failures into errors
// the HTTP edge maps to statuses. Exceptions never leave a handler: they
// would kill the actor.
template <class F>
auto with_connection(database_worker_actor::stateful_pointer<database_worker_state> self,
                     const char* what, F&& work)
  -> caf::expected<decltype(work(std::declval<persistence::connection&>()))> {
  struct busy_scope {
    metrics::gauge* g;
    explicit busy_scope(metrics::gauge* gauge) : g(gauge) { g->add(1); }
    ~busy_scope() { g->add(-1); }
  } busy{self->state.busy};
  count_past_deadline scope{self->state};
  for (int attempt = 0;; ++attempt) {
    try {
      auto cancelled_before = self->state.conn->calls_past_deadline();
      auto out = work(*self->state.conn);
      // A call that outlived its deadline and then finished (a commit
      // whose wait for a synchronous standby was cancelled) is not a
      // database that answers.
      if (self->state.conn->calls_past_deadline() == cancelled_before)
        self->state.reachable->answered();
      else
        self->state.reachable->unreachable(
          "a call outlived its "
          + std::to_string(self->state.conn->limits().call_deadline.count())
          + " ms deadline (ARTIFACT_PUBLISHER_DB_CALL_DEADLINE_MS) and was cancelled");
      return out;
    } catch (const persistence::db_error& e) {
      // A connection lost to a restart is made again once; a call that
      // outlived its deadline is not sent again, since the database is
      // stalled and its outcome may be unknown.
      if (e.connection_lost() && !e.past_deadline() && attempt == 0)
        continue;
      // Lost, or stalled past the call deadline: either way not answering.
      if (e.connection_lost() || e.past_deadline())
        self->state.reachable->unreachable(e.what());
      return failure(what, e);
    } catch (const std::exception& e) {
      log::error("database request failed",
                 {{"actor", "database-worker"}, {"request", what}, {"error", e.what()}});
      return make_error(error_code::internal, "database error");
    }
  }
}

// A read-only transaction (25006), or a hot standby, which can assign no
// transaction id while it recovers.
bool read_only(const persistence::db_error& e) {
  return e.sqlstate() == "25006" || std::string_view{e.what()}.find("during recovery") != std::string_view::npos;
}

template <class T>
caf::result<T> to_result(caf::expected<T> x) {
  if (x)
    return std::move(*x);
  return std::move(x.error());
}

using worker_ptr = database_worker_actor::stateful_pointer<database_worker_state>;

// Records a batch of checkouts with one statement.
caf::expected<std::vector<persistence::claim_result>>
begin_batch(worker_ptr self, const std::vector<persistence::checkout_begin>& all) {
  return with_connection(self, "begin", [&](persistence::connection& db) {
    return persistence::begin_checkouts(db, all);
  });
}

// Stores a batch of orders with one statement, or each on its own when
// one of them cannot be written.
caf::expected<store_batch_outcome> store_batch(worker_ptr self,
                                               const std::vector<domain::order_record>& orders,
                                               const persistence::outbox_lease& lease) {
  // Storing is idempotent, so a retry after a lost connection whose
  // commit did land finds the orders stored, and answers them stored.
  return with_connection(self, "store", [&](persistence::connection& db) {
    store_batch_outcome out;
    try {
      out.stored = persistence::store_orders(db, orders, lease);
      out.errors.resize(orders.size());
      return out;
    } catch (const persistence::db_error& e) {
      if (e.connection_lost())
        throw;
    }
    // One order of the batch could not be written (its key was taken
    // over, say): each is tried on its own, so only that one fails.
    out.errors.reserve(orders.size());
    out.stored.reserve(orders.size());
    for (const auto& order : orders) {
      try {
        out.stored.push_back(persistence::store_order(db, order, lease));
        out.errors.emplace_back();
      } catch (const persistence::db_error& e) {
        if (e.connection_lost())
          throw;
        out.stored.emplace_back();
        out.errors.push_back(failure("store", e));
      }
    }
    return out;
  });
}

} // namespace

database_worker_actor::behavior_type
database_worker(database_worker_actor::stateful_pointer<database_worker_state> self,
                database_config cfg) {
  self->state.conn = std::make_unique<persistence::connection>(cfg.url, cfg.limits);
  self->state.reachable =
    cfg.reachable ? cfg.reachable : std::make_shared<reachability>("database", database_settle);
  auto& reg = cfg.registry ? *cfg.registry : unobserved_registry();
  self->state.busy = &reg.get_gauge("ap_db_pool_busy", "Database workers inside a call");
  self->state.past_deadline = &reg.get_counter(
    "ap_db_calls_past_deadline_total",
    "Database calls that outlived ARTIFACT_PUBLISHER_DB_CALL_DEADLINE_MS and were cancelled "
    "(or their connection dropped)");
  auto* registry = cfg.registry ? cfg.registry : &unobserved_registry();
  auto meter_ = actor_meter::make(*registry, "database-worker");
  // What the open probes cost the database: a few round trips and one
  // small commit per check, at most about one check a second however
  // many probes arrive (the gateway shares them).
  auto* status_checks = &registry->get_counter(
    "ap_db_status_checks_total", "Readiness checks run against the database (a commit and the "
                                 "schema version), on a connection of their own");
  // The catalog route answers from a cache: this shows it does not read
  // per request.
  auto* catalog_reads = &registry->get_counter(
    "ap_db_catalog_reads_total", "Reads of the catalog from the database");
  return {
    metered(self, meter_, [=](atoms::ping_atom) -> persistence::db_status {
      status_checks->inc();
      count_past_deadline scope{self->state};
      const std::string late_commit = "the database did not commit within "
                                      + std::to_string(cfg.limits.call_deadline.count()) + " ms";
      persistence::db_status status;
      status.expected_version = persistence::latest_version();
      // A connection the server dropped (say, by restarting) is only found
      // out by using it: one retry reconnects.
      for (int attempt = 0; attempt < 2; ++attempt) {
        auto& db = *self->state.conn;
        auto cancelled_before = db.calls_past_deadline();
        try {
          // Whether the database commits, not only whether it answers: a
          // server waiting for a synchronous standby that never confirms,
          // or for a stalled disk, still answers SELECT 1.
          // A transactional WAL message (no table, nothing stored) makes
          // the statement's end a commit the server must flush, and
          // replicate with synchronous_standby_names, before it answers;
          // a transaction that only took an id would skip that wait.
          db.exec("SELECT pg_logical_emit_message(true, 'artifact-publisher.probe', '')");
          status.schema_version = persistence::current_version(db);
          // The commit was cancelled past the deadline and then landed:
          // answered, but not in time, which is what checkouts see.
          if (db.calls_past_deadline() != cancelled_before)
            throw persistence::db_error(late_commit, "57014", false, true);
          status.reachable = true;
          self->state.reachable->answered();
          status.detail = status.ready() ? "" : "migrations pending: run 'artifact-publisher migrate'";
          return status;
        } catch (const persistence::db_error& e) {
          status.detail = e.past_deadline()          ? late_commit
                          : read_only(e)            ? "the database accepts no writes (a standby?)"
                                                    : e.what();
          status.reachable = false;
          if (e.past_deadline() || (e.connection_lost() && attempt == 1))
            self->state.reachable->unreachable(status.detail);
          if (!e.connection_lost() || e.past_deadline())
            break;
        }
      }
      return status;
    }),
    metered(self, meter_, [=](atoms::catalog_atom) -> caf::result<std::vector<domain::catalog_item>> {
      catalog_reads->inc();
      return to_result(with_connection(
        self, "catalog", [](persistence::connection& db) { return persistence::load_catalog(db); }));
    }),
    metered(self, meter_, [=](atoms::begin_atom,
        const std::vector<persistence::checkout_begin>& all)
        -> caf::result<std::vector<persistence::claim_result>> {
      return to_result(begin_batch(self, all));
    }),
    metered(self, meter_, [=](atoms::store_atom, const std::vector<domain::order_record>& orders)
        -> caf::result<store_batch_outcome> {
      return to_result(store_batch(self, orders, cfg.outbox_lease));
    }),
    metered(self, meter_, [=](atoms::begin_atom,
        const std::vector<persistence::checkout_begin>& begins,
        const std::vector<domain::order_record>& orders) -> caf::result<checkout_batch_outcome> {
      checkout_batch_outcome out;
      std::optional<persistence::begun_and_stored> together;
      auto sent = with_connection(self, "begin+store", [&](persistence::connection& db) {
        try {
          together = persistence::begin_and_store(db, begins, orders, cfg.outbox_lease);
        } catch (const persistence::db_error& e) {
          // Lost or past its deadline: its outcome may be unknown, and
          // with_connection decides (both batches get its answer).
          if (e.connection_lost() || e.past_deadline())
            throw;
          together.reset();
        }
        return true;
      });
      if (!sent)
        return std::move(sent.error());
      caf::expected<std::vector<persistence::claim_result>> claims{
        std::vector<persistence::claim_result>{}};
      if (!together) {
        // Refused (a key taken over, a checkout decided to be undone): each
        // batch on its own, so that one's failure refuses nothing of the
        // other, and the stores one by one from there as ever.
        claims = begin_batch(self, begins);
        if (auto stores = store_batch(self, orders, cfg.outbox_lease)) {
          out.stores = std::move(*stores);
        } else {
          out.stores.stored.resize(orders.size());
          out.stores.errors.assign(orders.size(), stores.error());
        }
      } else {
        out.stores.stored = std::move(together->stored);
        out.stores.errors.resize(orders.size());
        claims = with_connection(self, "begin", [&](persistence::connection& db) {
          return persistence::finish_begins(db, begins, together->begun);
        });
      }
      if (claims)
        out.claims = std::move(*claims);
      else
        out.begin_error = std::move(claims.error());
      return out;
    }),
    metered(self, meter_, [=](atoms::abandon_atom, const std::string& id,
        const std::string& body) -> caf::result<bool> {
      return to_result(with_connection(self, "abandon", [&](persistence::connection& db) {
        return persistence::abandon_checkout(db, id, body);
      }));
    }),
    metered(self, meter_, [=](atoms::undo_atom, const std::string& id,
        const std::string& reason) -> caf::result<persistence::undo_decision> {
      return to_result(with_connection(self, "undo", [&](persistence::connection& db) {
        return persistence::decide_undo(db, id, reason);
      }));
    }),
    metered(self, meter_, [=](atoms::overdue_atom, const persistence::lease_terms& terms,
        std::int32_t older_ms) -> caf::result<std::vector<persistence::unfinished_checkout>> {
      return to_result(with_connection(self, "overdue", [&](persistence::connection& db) {
        return persistence::lease_unfinished(db, terms, older_ms);
      }));
    }),
    metered(self, meter_, [=](atoms::unfinished_atom) -> caf::result<persistence::unfinished_stats> {
      return to_result(with_connection(self, "unfinished", [&](persistence::connection& db) {
        return persistence::unfinished_statistics(db);
      }));
    }),
    metered(self, meter_, [=](atoms::get_atom, const std::string& id,
        persistence::order_part part) -> caf::result<std::string> {
      // What the order's row says about `part`.
      enum class found { document, no_order, unfinished, no_part };
      std::string text;
      auto where = with_connection(self, "get", [&](persistence::connection& db) {
        text = persistence::load_order_part(db, id, part);
        if (!text.empty())
          return found::document;
        if (part != persistence::order_part::result && persistence::order_exists(db, id))
          return found::no_part;
        return persistence::is_unfinished(db, id) ? found::unfinished : found::no_order;
      });
      if (!where)
        return std::move(where.error());
      switch (*where) {
        case found::document:
          return text;
        case found::unfinished:  // recorded, not finished yet (SPEC §9)
          return make_order_error(error_code::processing, "order " + id + " is processing", id);
        case found::no_part:
          return make_error(error_code::not_found, "order " + id + " has no "
                                                     + persistence::to_string(part)
                                                     + ": its payment did not complete");
        case found::no_order:
          break;
      }
      return make_error(error_code::not_found, "no order " + id);
    }),
    metered(self, meter_, [=](atoms::lease_atom,
        const persistence::lease_terms& terms) -> caf::result<std::vector<domain::audit_event>> {
      return to_result(with_connection(self, "lease", [&](persistence::connection& db) {
        return persistence::lease_outbox(db, terms);
      }));
    }),
    metered(self, meter_, [=](atoms::renew_atom, const persistence::lease_terms& terms,
        const std::vector<std::string>& ids) -> caf::result<std::int32_t> {
      return to_result(with_connection(self, "renew", [&](persistence::connection& db) {
        return persistence::renew_outbox_leases(db, terms, ids);
      }));
    }),
    metered(self, meter_, [=](atoms::settle_atom,
        const std::vector<domain::forwarding_outcome>& outcomes) -> caf::result<bool> {
      return to_result(with_connection(self, "settle", [&](persistence::connection& db) {
        persistence::settle_outbox(db, outcomes);
        return true;
      }));
    }),
    metered(self, meter_, [=](atoms::stats_atom) -> caf::result<domain::outbox_stats> {
      return to_result(with_connection(self, "stats", [&](persistence::connection& db) {
        return persistence::outbox_statistics(db);
      }));
    }),
    metered(self, meter_, [=](atoms::multisig_atom,
        const persistence::upgrade_step& step) -> caf::result<domain::upgrade_record> {
      auto out = with_connection(self, "multisig", [&](persistence::connection& db) {
        return persistence::run_multisig(db, step, cfg.approvers, cfg.multisig_threshold);
      });
      if (!out)
        return std::move(out.error());
      if (out->refusal)
        return refusal_error(*out->refusal);
      return std::move(out->record);
    }),
    metered(self, meter_, [=](atoms::purge_atom,
        const persistence::purge_terms& terms) -> caf::result<persistence::purge_outcome> {
      return to_result(with_connection(self, "purge", [&](persistence::connection& db) {
        return persistence::purge_batch(db, terms);
      }));
    }),
    metered(self, meter_, [=](atoms::retained_atom,
        persistence::retention_table table) -> caf::result<std::int64_t> {
      return to_result(with_connection(self, "retained", [&](persistence::connection& db) {
        return persistence::oldest_kept_seconds(db, table);
      }));
    }),
    metered(self, meter_, [=](atoms::vacuum_atom) -> caf::result<bool> {
      return to_result(with_connection(self, "vacuum", [&](persistence::connection& db) {
        persistence::vacuum_queues(db);
        return true;
      }));
    }),
    metered(self, meter_, [=](atoms::keyset_atom, const std::string& instance,
        const std::string& key_set) -> caf::result<std::vector<std::string>> {
      return to_result(with_connection(self, "keyset", [&](persistence::connection& db) {
        return persistence::report_proof_keys(db, instance, key_set);
      }));
    }),
    metered(self, meter_, [=](atoms::rotation_atom, const std::string& kid,
        const std::string& commitment, std::int32_t within_ms)
        -> caf::result<std::vector<std::string>> {
      return to_result(with_connection(self, "rotation", [&](persistence::connection& db) {
        return persistence::rotation_problems(db, kid, commitment, within_ms);
      }));
    }),
  };
}

} // namespace ap
