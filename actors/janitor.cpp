#include "actors/janitor.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/errors.hpp"
#include "actors/metering.hpp"
#include "core/log.hpp"

namespace ap {

namespace {

/// One batch is bounded by its statement timeout (10 s, retention_store);
/// this leaves it the time to answer.
constexpr auto purge_timeout = std::chrono::seconds{15};
/// The oldest row kept: the first entry of an index.
constexpr auto retained_timeout = std::chrono::seconds{10};
/// A vacuum is bounded by the connection's statement timeout.
constexpr auto vacuum_timeout = std::chrono::seconds{15};

/// The tables in the order a sweep purges them.
constexpr std::array<persistence::retention_table, 2> purged_tables{
  persistence::retention_table::idempotency_keys, persistence::retention_table::audit_outbox};

} // namespace

janitor_actor::behavior_type janitor(janitor_actor::stateful_pointer<janitor_state> self,
                                     janitor_config cfg, metrics::registry* registry) {
  std::array<metrics::counter*, 2> purged_total{};
  std::array<metrics::gauge*, 2> oldest_kept{};
  for (std::size_t i = 0; i < purged_tables.size(); ++i) {
    metrics::labels table{{"table", persistence::to_string(purged_tables[i])}};
    purged_total[i] = &registry->get_counter("ap_retention_rows_purged_total",
                                             "Rows deleted past their retention period", table);
    oldest_kept[i] = &registry->get_gauge(
      "ap_retention_oldest_kept_seconds",
      "Age of the oldest row kept of the kind retention purges, after the last sweep", table);
  }
  std::array<std::chrono::seconds, 2> retention{cfg.idempotency_retention, cfg.outbox_retention};
  // Ends a sweep: the oldest rows kept, and one line if anything went.
  auto finish = [=] {
    self->state.sweeping = false;
    auto purged = self->state.purged;
    if (purged[0] + purged[1] > 0)
      log::info("retention sweep purged rows",
                {{"actor", "janitor"},
                 {"idempotencyKeys", std::to_string(purged[0])},
                 {"auditOutbox", std::to_string(purged[1])}});
    auto db = cfg.store();
    if (!db)
      return;
    for (std::size_t i = 0; i < purged_tables.size(); ++i)
      self->request(db, retained_timeout, atoms::retained_atom::value, purged_tables[i])
        .then([gauge = oldest_kept[i]](std::int64_t age) { gauge->set(static_cast<double>(age)); },
              [](caf::error&) {});
  };
  auto vacuums = [registry](const char* outcome) {
    return &registry->get_counter("ap_queue_vacuums_total", "Vacuums of the queue tables, by outcome",
                                  {{"outcome", outcome}});
  };
  auto* vacuums_done = vacuums("done");
  auto* vacuums_failed = vacuums("failed");
  auto meter_ = actor_meter::make(*registry, "janitor");
  self->delayed_send(self, cfg.interval, atoms::poll_atom::value);
  if (cfg.vacuum_interval.count() > 0)
    self->delayed_send(self, cfg.vacuum_interval, atoms::vacuum_atom::value);
  return {
    metered(self, meter_, [=](atoms::vacuum_atom) {
      self->delayed_send(self, cfg.vacuum_interval, atoms::vacuum_atom::value);
      auto db = cfg.store();
      if (self->state.vacuuming || !db)
        return;
      self->state.vacuuming = true;
      self->request(db, vacuum_timeout, atoms::vacuum_atom::value)
        .then(
          [=](bool) {
            self->state.vacuuming = false;
            self->state.vacuum_failed = false;
            vacuums_done->inc();
          },
          [=](caf::error& e) {
            self->state.vacuuming = false;
            vacuums_failed->inc();
            if (!self->state.vacuum_failed)
              log::warn("vacuuming the queue tables failed; autovacuum still runs and the next"
                        " vacuum tries again",
                        {{"actor", "janitor"}, {"error", caf::to_string(e)}});
            self->state.vacuum_failed = true;
          });
    }),
    metered(self, meter_, [=](atoms::poll_atom) {
      self->delayed_send(self, cfg.interval, atoms::poll_atom::value);
      if (self->state.sweeping)
        return;
      auto& st = self->state;
      st.sweeping = true;
      st.table = 0;
      st.batches = 0;
      st.purged = {};
      self->send(self, atoms::purge_atom::value);
    }),
    metered(self, meter_, [=](atoms::purge_atom) {
      auto& st = self->state;
      if (!st.sweeping)
        return;
      auto db = cfg.store();
      if (st.table >= purged_tables.size() || !db) {
        finish();
        return;
      }
      auto i = st.table;
      persistence::purge_terms terms{purged_tables[i], retention[i].count(), cfg.batch};
      self->request(db, purge_timeout, atoms::purge_atom::value, terms)
        .then(
          [=](persistence::purge_outcome& out) {
            auto& sweep = self->state;
            sweep.purged[i] += out.purged;
            purged_total[i]->inc(static_cast<std::uint64_t>(out.purged));
            ++sweep.batches;
            if (out.locked_out) {
              // Another instance is sweeping: it does this one's work too.
              sweep.table = purged_tables.size();
              self->send(self, atoms::purge_atom::value);
              return;
            }
            if (out.purged < cfg.batch || sweep.batches >= cfg.max_batches) {
              ++sweep.table;
              sweep.batches = 0;
            }
            self->delayed_send(self, cfg.pause, atoms::purge_atom::value);
          },
          [=](caf::error& e) {
            log::warn("a retention batch failed; the next sweep tries again",
                      {{"actor", "janitor"}, {"table", persistence::to_string(purged_tables[i])},
                       {"error", caf::to_string(e)}});
            self->state.table = purged_tables.size();
            self->send(self, atoms::purge_atom::value);
          });
    }),
  };
}

} // namespace ap
