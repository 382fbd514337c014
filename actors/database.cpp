#include "actors/database.hpp"

#include <caf/all.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/log.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/multisig_store.hpp"

namespace ap {

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
  auto next = [self]() -> database_worker_actor& {
    auto& st = self->state;
    return st.workers[st.next++ % st.workers.size()];
  };
  auto* registry = cfg.registry ? cfg.registry : &unobserved_registry();
  auto meter_ = actor_meter::make(*registry, "database");
  return {
    metered(self, meter_, [=](atoms::ping_atom x) -> caf::result<persistence::db_status> {
      return self->delegate(next(), x);
    }),
    metered(self, meter_, [=](atoms::catalog_atom x) -> caf::result<std::vector<domain::catalog_item>> {
      return self->delegate(next(), x);
    }),
    metered(self, meter_, [=](atoms::claim_atom x,
        persistence::idempotency_claim& c) -> caf::result<persistence::claim_result> {
      return self->delegate(next(), x, std::move(c));
    }),
    metered(self, meter_, [=](atoms::release_atom x, std::string& customer, std::string& key) -> caf::result<bool> {
      return self->delegate(next(), x, std::move(customer), std::move(key));
    }),
    metered(self, meter_, [=](atoms::store_atom x, domain::order_record& order) -> caf::result<std::string> {
      return self->delegate(next(), x, std::move(order));
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
      log::error("database request failed",
                 {{"actor", "database-worker"}, {"request", what}, {"error", e.what()},
                  {"sqlstate", e.sqlstate()}});
      if (e.connection_lost())
        return make_error(error_code::database_unavailable, "the database is unavailable");
      if (e.sqlstate() == "40001")
        return make_error(error_code::conflict, "a concurrent request changed the same record");
      return make_error(error_code::internal, "database error");
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
    metered(self, meter_, [=](atoms::release_atom, const std::string& customer,
        const std::string& key) -> caf::result<bool> {
      return to_result(with_connection(self, "release", [&](persistence::connection& db) {
        persistence::release_idempotency_key(db, customer, key);
        return true;
      }));
    }),
    metered(self, meter_, [=](atoms::store_atom, const domain::order_record& order) -> caf::result<std::string> {
      return to_result(with_connection(self, "store", [&](persistence::connection& db) {
        persistence::store_order(db, order);
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
        auto text = persistence::load_order_part(db, id, which);
        if (text.empty() && which != persistence::order_part::result
            && !persistence::load_order_part(db, id, persistence::order_part::result).empty())
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
