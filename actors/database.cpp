#include "actors/database.hpp"

#include <caf/all.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/multisig_store.hpp"

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
};

/// A batch outlives no request: this bounds it well past the callers' own
/// timeouts.
constexpr auto batch_timeout = std::chrono::seconds{10};

database_worker_actor& next_worker(facade_ptr self) {
  auto& st = self->state;
  return st.workers[st.next++ % st.workers.size()];
}

// What answering one request of a batch needs of its item: a stored
// order's id; nothing of a claim.
std::string answer_key(const persistence::idempotency_claim&) {
  return {};
}

std::string answer_key(const domain::order_record& order) {
  return order.order_id;
}

// The answer of one request of a batch.
void answer(caf::typed_response_promise<persistence::claim_result>& p, const std::string&,
            persistence::claim_result& r) {
  p.deliver(std::move(r));
}

void answer(caf::typed_response_promise<std::string>& p, const std::string& order_id,
            caf::error& e) {
  if (e)
    p.deliver(std::move(e));
  else
    p.deliver(order_id);
}

template <class Item, class Reply>
void dispatch(facade_ptr self, batch_queue<Item, Reply>& q, const batching_config& cfg);

// Sends what is waiting, in batches, while fewer than `in_flight` batches
// are at the workers. A request that arrives while the workers are busy
// waits for the next batch, so batches grow with the load and a lone
// request goes out at once.
template <class Item, class Reply>
void dispatch(facade_ptr self, batch_queue<Item, Reply>& q, const batching_config& cfg) {
  constexpr bool is_claim = std::is_same<Item, persistence::idempotency_claim>::value;
  using atom = std::conditional_t<is_claim, atoms::claim_atom, atoms::store_atom>;
  using replies_t = std::conditional_t<is_claim, std::vector<persistence::claim_result>,
                                       std::vector<caf::error>>;
  while (q.in_flight < cfg.in_flight && !q.items.empty()) {
    auto n = std::min(q.items.size(), cfg.max_batch);
    std::vector<Item> items(std::make_move_iterator(q.items.begin()),
                            std::make_move_iterator(q.items.begin() + n));
    auto keys = std::make_shared<std::vector<std::string>>();
    keys->reserve(n);
    for (const auto& item : items)
      keys->push_back(answer_key(item));
    auto promises = std::make_shared<std::vector<caf::typed_response_promise<Reply>>>(
      std::make_move_iterator(q.promises.begin()), std::make_move_iterator(q.promises.begin() + n));
    q.items.erase(q.items.begin(), q.items.begin() + n);
    q.promises.erase(q.promises.begin(), q.promises.begin() + n);
    ++q.in_flight;
    (is_claim ? cfg.claim_batches : cfg.store_batches)->inc();
    (is_claim ? cfg.claims : cfg.stores)->inc(n);
    self->request(next_worker(self), batch_timeout, atom::value, std::move(items))
      .then(
        [self, &q, cfg, keys, promises](replies_t& replies) {
          for (std::size_t i = 0; i < promises->size(); ++i) {
            if (i < replies.size())
              answer((*promises)[i], (*keys)[i], replies[i]);
            else
              (*promises)[i].deliver(make_error(error_code::internal, "database error"));
          }
          --q.in_flight;
          dispatch(self, q, cfg);
        },
        [self, &q, cfg, promises](caf::error& e) {
          for (auto& p : *promises)
            p.deliver(e);
          --q.in_flight;
          dispatch(self, q, cfg);
        });
  }
}

template <class Item, class Reply>
caf::result<Reply> enqueue(facade_ptr self, batch_queue<Item, Reply>& q, Item item,
                           const batching_config& cfg) {
  auto promise = self->make_response_promise<Reply>();
  q.items.push_back(std::move(item));
  q.promises.push_back(promise);
  dispatch(self, q, cfg);
  return promise;
}

} // namespace

database_actor::behavior_type database(database_actor::stateful_pointer<database_state> self,
                                       database_config cfg) {
  if (cfg.registry)
    cfg.registry->get_gauge("ap_db_pool_size", "Database workers (one connection each)")
      .set(static_cast<double>(std::max<std::size_t>(cfg.workers, 1)));
  for (std::size_t i = 0; i < std::max<std::size_t>(cfg.workers, 1); ++i)
    self->state.workers.push_back(
      self->spawn<caf::detached + caf::linked>(database_worker, cfg));
  // Each request goes to the next worker; its reply goes straight back to
  // the requester.
  auto next = [self]() -> database_worker_actor& { return next_worker(self); };
  auto* registry = cfg.registry ? cfg.registry : &unobserved_registry();
  auto batch_counter = [registry](const char* name, const char* help, const char* kind) {
    return &registry->get_counter(name, help, {{"kind", kind}});
  };
  batching_config batching{
    std::max<std::size_t>(cfg.max_batch, 1), std::max<std::size_t>(cfg.batches_in_flight, 1),
    batch_counter("ap_db_batches_total", "Batches sent to the database workers", "claim"),
    batch_counter("ap_db_batched_requests_total", "Requests sent in those batches", "claim"),
    batch_counter("ap_db_batches_total", "Batches sent to the database workers", "store"),
    batch_counter("ap_db_batched_requests_total", "Requests sent in those batches", "store")};
  auto meter_ = actor_meter::make(*registry, "database");
  return {
    metered(self, meter_, [=](atoms::ping_atom x) -> caf::result<persistence::db_status> {
      return self->delegate(next(), x);
    }),
    metered(self, meter_, [=](atoms::catalog_atom x) -> caf::result<std::vector<domain::catalog_item>> {
      return self->delegate(next(), x);
    }),
    metered(self, meter_, [=](atoms::claim_atom,
        persistence::idempotency_claim& c) -> caf::result<persistence::claim_result> {
      return enqueue(self, self->state.claims, std::move(c), batching);
    }),
    metered(self, meter_, [=](atoms::release_atom x, std::string& customer, std::string& key) -> caf::result<bool> {
      return self->delegate(next(), x, std::move(customer), std::move(key));
    }),
    metered(self, meter_, [=](atoms::store_atom, domain::order_record& order) -> caf::result<std::string> {
      return enqueue(self, self->state.stores, std::move(order), batching);
    }),
    metered(self, meter_, [=](atoms::get_atom x, std::string& id, std::string& part) -> caf::result<std::string> {
      return self->delegate(next(), x, std::move(id), std::move(part));
    }),
    metered(self, meter_, [=](atoms::lease_atom x, std::string& instance, std::int32_t limit,
        std::int32_t lease_ms) -> caf::result<std::vector<kernel::outbox_row>> {
      return self->delegate(next(), x, std::move(instance), limit, lease_ms);
    }),
    metered(self, meter_, [=](atoms::settle_atom x,
        std::vector<kernel::delivery_outcome>& outcomes) -> caf::result<bool> {
      return self->delegate(next(), x, std::move(outcomes));
    }),
    metered(self, meter_, [=](atoms::stats_atom x) -> caf::result<kernel::outbox_stats> {
      return self->delegate(next(), x);
    }),
    metered(self, meter_, [=](atoms::multisig_atom x,
        persistence::multisig_command& cmd) -> caf::result<persistence::multisig_outcome> {
      return self->delegate(next(), x, std::move(cmd));
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
  if (e.connection_lost())
    return make_error(error_code::database_unavailable, "the database is unavailable");
  if (e.sqlstate() == "40001")
    return make_error(error_code::conflict, "a concurrent request changed the same record");
  return make_error(error_code::internal, "database error");
}

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
  for (int attempt = 0;; ++attempt) {
    try {
      return work(*self->state.conn);
    } catch (const persistence::db_error& e) {
      if (e.connection_lost() && attempt == 0)
        continue;
      return failure(what, e);
    } catch (const std::exception& e) {
      log::error("database request failed",
                 {{"actor", "database-worker"}, {"request", what}, {"error", e.what()}});
      return make_error(error_code::internal, "database error");
    }
  }
}

/// Failed deliveries are retried after at most this long, well inside the
/// freshness budget once the Kernel is back.
constexpr int max_retry_backoff_ms = 1000;
/// SPEC §6: every event lands in the Kernel within 3 s.
constexpr int audit_budget_ms = 3000;

template <class T>
caf::result<T> to_result(caf::expected<T> x) {
  if (x)
    return std::move(*x);
  return std::move(x.error());
}

} // namespace

database_worker_actor::behavior_type
database_worker(database_worker_actor::stateful_pointer<database_worker_state> self,
                database_config cfg) {
  self->state.conn = std::make_unique<persistence::connection>(cfg.url);
  auto& reg = cfg.registry ? *cfg.registry : unobserved_registry();
  self->state.busy = &reg.get_gauge("ap_db_pool_busy", "Database workers inside a call");
  auto* registry = cfg.registry ? cfg.registry : &unobserved_registry();
  auto meter_ = actor_meter::make(*registry, "database-worker");
  return {
    metered(self, meter_, [=](atoms::ping_atom) -> persistence::db_status {
      persistence::db_status status;
      status.expected_version = persistence::latest_version();
      // A connection the server dropped (say, by restarting) is only found
      // out by using it: one retry reconnects.
      for (int attempt = 0; attempt < 2; ++attempt) {
        try {
          auto& db = *self->state.conn;
          db.exec("SELECT 1");
          status.schema_version = persistence::current_version(db);
          status.reachable = true;
          status.detail = status.ready() ? "" : "migrations pending: run 'artifact-publisher migrate'";
          return status;
        } catch (const persistence::db_error& e) {
          status.detail = e.what();
          if (!e.connection_lost())
            break;
        }
      }
      return status;
    }),
    metered(self, meter_, [=](atoms::catalog_atom) -> caf::result<std::vector<domain::catalog_item>> {
      return to_result(with_connection(
        self, "catalog", [](persistence::connection& db) { return persistence::load_catalog(db); }));
    }),
    metered(self, meter_, [=](atoms::claim_atom,
        const persistence::idempotency_claim& c) -> caf::result<persistence::claim_result> {
      return to_result(with_connection(self, "claim", [&](persistence::connection& db) {
        return persistence::claim_idempotency_key(db, c);
      }));
    }),
    metered(self, meter_, [=](atoms::claim_atom,
        const std::vector<persistence::idempotency_claim>& claims)
        -> caf::result<std::vector<persistence::claim_result>> {
      return to_result(with_connection(self, "claim", [&](persistence::connection& db) {
        return persistence::claim_idempotency_keys(db, claims);
      }));
    }),
    metered(self, meter_, [=](atoms::store_atom, const std::vector<domain::order_record>& orders)
        -> caf::result<std::vector<caf::error>> {
      return to_result(with_connection(self, "store", [&](persistence::connection& db) {
        try {
          persistence::store_orders(db, orders, cfg.outbox_lease);
          return std::vector<caf::error>(orders.size());
        } catch (const persistence::db_error& e) {
          if (e.connection_lost())
            throw;
        }
        // One order of the batch could not be written (its key was taken
        // over, say): each is tried on its own, so only that one fails.
        std::vector<caf::error> outcomes;
        outcomes.reserve(orders.size());
        for (const auto& order : orders) {
          try {
            persistence::store_order(db, order, cfg.outbox_lease);
            outcomes.emplace_back();
          } catch (const persistence::db_error& e) {
            if (e.connection_lost())
              throw;
            outcomes.push_back(failure("store", e));
          }
        }
        return outcomes;
      }));
    }),
    metered(self, meter_, [=](atoms::release_atom, const std::string& customer,
        const std::string& key) -> caf::result<bool> {
      return to_result(with_connection(self, "release", [&](persistence::connection& db) {
        persistence::release_idempotency_key(db, customer, key);
        return true;
      }));
    }),
    metered(self, meter_, [=](atoms::store_atom, const domain::order_record& order) -> caf::result<std::string> {
      return to_result(with_connection(self, "store", [&](persistence::connection& db) {
        persistence::store_order(db, order, cfg.outbox_lease);
        return order.order_id;
      }));
    }),
    metered(self, meter_, [=](atoms::get_atom, const std::string& id, const std::string& part) -> caf::result<std::string> {
      persistence::order_part which = persistence::order_part::result;
      if (part == "proof")
        which = persistence::order_part::proof;
      else if (part == "license")
        which = persistence::order_part::license;
      else if (part == "delivery")
        which = persistence::order_part::delivery;
      auto doc = with_connection(self, "get", [&](persistence::connection& db) {
        auto result = persistence::load_order_part(db, id, persistence::order_part::result);
        if (result.empty())
          return result;
        auto text = persistence::order_part_of(result, which);
        if (text.empty())
          return std::string{"-"};  // the order exists without this part
        return text;
      });
      if (!doc)
        return std::move(doc.error());
      if (doc->empty())
        return make_error(error_code::not_found, "no order " + id);
      if (*doc == "-")
        return make_error(error_code::not_found,
                          "order " + id + " has no " + part + ": its payment did not complete");
      return std::move(*doc);
    }),
    metered(self, meter_, [=](atoms::lease_atom, const std::string& instance, std::int32_t limit,
        std::int32_t lease_ms) -> caf::result<std::vector<kernel::outbox_row>> {
      return to_result(with_connection(self, "lease", [&](persistence::connection& db) {
        return persistence::claim_outbox(db, instance, limit, lease_ms);
      }));
    }),
    metered(self, meter_, [=](atoms::settle_atom,
        const std::vector<kernel::delivery_outcome>& outcomes) -> caf::result<bool> {
      return to_result(with_connection(self, "settle", [&](persistence::connection& db) {
        persistence::settle_outbox(db, outcomes, max_retry_backoff_ms);
        return true;
      }));
    }),
    metered(self, meter_, [=](atoms::stats_atom) -> caf::result<kernel::outbox_stats> {
      return to_result(with_connection(self, "stats", [&](persistence::connection& db) {
        return persistence::outbox_statistics(db, audit_budget_ms);
      }));
    }),
    metered(self, meter_, [=](atoms::multisig_atom,
        const persistence::multisig_command& cmd) -> caf::result<persistence::multisig_outcome> {
      return to_result(with_connection(self, "multisig", [&](persistence::connection& db) {
        return persistence::run_multisig(db, cmd, cfg.approvers, cfg.multisig_threshold);
      }));
    }),
  };
}

} // namespace ap
