#include "actors/reconciler.hpp"

#include <algorithm>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/errors.hpp"
#include "actors/metering.hpp"
#include "core/log.hpp"

namespace ap {

namespace {

/// Leasing and counting unfinished checkouts: one statement each.
constexpr auto query_timeout = std::chrono::seconds{10};

} // namespace

reconciler_actor::behavior_type reconciler(reconciler_actor::stateful_pointer<reconciler_state> self,
                                           reconciler_config cfg, actor_directory* directory,
                                           metrics::registry* registry) {
  auto interval = std::clamp<std::chrono::milliseconds>(
    cfg.after / 4, std::chrono::milliseconds{100}, std::chrono::milliseconds{5000});
  auto& unfinished = registry->get_gauge("ap_checkouts_unfinished",
                                         "Checkouts recorded and not finished (SPEC §9)");
  auto& oldest = registry->get_gauge("ap_checkouts_unfinished_oldest_seconds",
                                     "Age of the oldest unfinished checkout");
  auto reconciled = [registry](const std::string& outcome) -> metrics::counter& {
    return registry->get_counter("ap_checkouts_reconciled_total",
                                 "Unfinished checkouts taken over, by how they ended",
                                 {{"outcome", outcome}});
  };
  auto meter_ = actor_meter::make(*registry, "reconciler");
  self->delayed_send(self, interval, atoms::poll_atom::value);
  return {
    metered(self, meter_, [=, &unfinished, &oldest](atoms::poll_atom) {
      self->delayed_send(self, interval, atoms::poll_atom::value);
      auto db = directory->database();
      if (!db)
        return;
      self->request(db, query_timeout, atoms::unfinished_atom::value)
        .then(
          [&unfinished, &oldest](persistence::unfinished_stats& st) {
            unfinished.set(static_cast<double>(st.count));
            oldest.set(static_cast<double>(st.oldest_ms) / 1000.0);
          },
          [](caf::error&) {});
      if (self->state.in_flight > 0)
        return;
      auto after_ms = static_cast<std::int32_t>(cfg.after.count());
      // The lease outlasts a finishing, so no other instance takes the same
      // checkout over while this one is at it.
      auto lease_ms = static_cast<std::int32_t>(
        std::max(cfg.after, cfg.resume_timeout + std::chrono::seconds{5}).count());
      self->request(db, query_timeout, atoms::overdue_atom::value,
                    persistence::lease_terms{cfg.instance_id, cfg.batch, lease_ms}, after_ms)
        .then(
          [=](std::vector<persistence::unfinished_checkout>& rows) {
            for (auto& row : rows) {
              log::warn("taking over an unfinished checkout",
                        {{"actor", "reconciler"}, {"orderId", row.order_id},
                         {"attempt", std::to_string(row.attempts)},
                         {"ageMs", std::to_string(row.age_ms)},
                         {"undoing", row.undo_reason.empty() ? "false" : "true"}});
              auto checkout = directory->checkout();
              if (!checkout)
                continue;
              ++self->state.in_flight;
              auto order_id = row.order_id;
              self->request(checkout, cfg.resume_timeout, atoms::resume_atom::value, std::move(row))
                .then(
                  [=](checkout_outcome& out) {
                    --self->state.in_flight;
                    reconciled(domain::to_string(out.kind)).inc();
                    log::info("an unfinished checkout was finished",
                              {{"actor", "reconciler"}, {"orderId", order_id},
                               {"outcome", domain::to_string(out.kind)}});
                  },
                  [=](caf::error& e) {
                    --self->state.in_flight;
                    reconciled("in_doubt").inc();
                    log::warn("an unfinished checkout is still in doubt; it will be tried again",
                              {{"actor", "reconciler"}, {"orderId", order_id},
                               {"error", caf::to_string(e)}});
                  });
            }
          },
          [](caf::error& e) {
            log::warn("could not look for unfinished checkouts",
                      {{"actor", "reconciler"}, {"error", caf::to_string(e)}});
          });
    }),
  };
}

} // namespace ap
