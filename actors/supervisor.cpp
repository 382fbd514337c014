#include "actors/supervisor.hpp"

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/metering.hpp"

#include "core/log.hpp"

namespace ap {

std::chrono::milliseconds supervisor_config::backoff(unsigned failures) const {
  auto delay = initial_backoff;
  for (unsigned i = 0; i < failures && delay < max_backoff; ++i)
    delay *= 2;
  return std::min(delay, max_backoff);
}

namespace {

/// Spawns a fresh instance of `c` (which publishes its handle).
void launch(caf::actor_system& sys, supervisor_state::child& c) {
  c.current = c.spec.start(sys);
  c.started = sys.clock().now();
}

void start_child(supervisor_actor::stateful_pointer<supervisor_state> self,
                 supervisor_state::child& c) {
  launch(self->system(), c);
  self->monitor(c.current);
}

supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           std::vector<supervisor_state::child> children, supervisor_config cfg,
           metrics::registry* registry) {
  self->state.children = std::move(children);
  // A child that went down before this ran is reported down at once.
  for (auto& c : self->state.children)
    self->monitor(c.current);

  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.stopping)
      return;
    for (auto& c : st.children) {
      if (!c.current || c.current.address() != msg.source)
        continue;
      c.current = nullptr;
      if (self->clock().now() - c.started >= cfg.stable_after)
        c.failures = 0;
      auto delay = cfg.backoff(c.failures++);
      log::warn("actor went down; restarting after backoff",
                {{"actor", c.spec.name},
                 {"reason", to_string(msg.reason)},
                 {"backoffMs", std::to_string(delay.count())}});
      self->delayed_send(self, delay, atoms::restart_atom::value, c.spec.name);
      return;
    }
  });

  self->set_exit_handler([=](caf::exit_msg& msg) {
    self->state.stopping = true;
    for (auto& c : self->state.children)
      if (c.current)
        self->send_exit(c.current, msg.reason);
    self->quit(msg.reason);
  });

  auto meter_ = actor_meter::make(*registry, "supervisor");
  return {
    metered(self, meter_, [=](atoms::restart_atom, const std::string& name) {
      auto& st = self->state;
      if (st.stopping)
        return;
      for (auto& c : st.children) {
        if (c.spec.name != name || c.current)
          continue;
        try {
          start_child(self, c);
          c.restarts->inc();
          log::info("actor restarted", {{"actor", name}});
        } catch (const std::exception& e) {
          // A failing start is retried like a crash, with a longer delay.
          auto delay = cfg.backoff(c.failures++);
          log::error("actor restart failed",
                     {{"actor", name}, {"error", e.what()}});
          self->delayed_send(self, delay, atoms::restart_atom::value, name);
        }
      }
    }),
  };
}

} // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys, std::vector<child_spec> specs,
                                  supervisor_config cfg, metrics::registry* registry) {
  std::vector<supervisor_state::child> children;
  children.reserve(specs.size());
  try {
    for (auto& spec : specs) {
      supervisor_state::child c;
      c.restarts = &registry->get_counter("ap_actor_restarts_total",
                                          "Restarts of supervised actors after a crash",
                                          {{"actor", spec.name}});
      c.spec = std::move(spec);
      launch(sys, c);
      children.push_back(std::move(c));
    }
  } catch (...) {
    // Nothing would stop the children started so far.
    for (auto& c : children)
      caf::anon_send_exit(c.current, caf::exit_reason::user_shutdown);
    throw;
  }
  return sys.spawn(supervisor, std::move(children), cfg, registry);
}

} // namespace ap
