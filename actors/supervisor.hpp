#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_clock.hpp>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"

namespace ap {

/// How to start one supervised actor.
struct child_spec {
  std::string name;
  /// Spawns a fresh instance, publishes its handle (in the actor directory)
  /// and returns it for monitoring.
  std::function<caf::actor(caf::actor_system&)> start;
};

/// Restart policy: exponential backoff from `initial_backoff`, capped at
/// `max_backoff`; a child that ran `stable_after` without failing starts
/// again from the initial delay.
struct supervisor_config {
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{5000};
  std::chrono::milliseconds stable_after{30000};

  /// The delay before restart number `failures` (0-based) in a row.
  std::chrono::milliseconds backoff(unsigned failures) const;
};

/// State of the supervisor.
struct supervisor_state {
  static constexpr const char* name = "supervisor";
  struct child {
    child_spec spec;
    caf::actor current;
    unsigned failures = 0;
    caf::actor_clock::time_point started;
    metrics::counter* restarts = nullptr;
  };
  std::vector<child> children;
  bool stopping = false;
};

/// Starts every child on the calling thread, so that each has published its
/// handle when this returns, then the supervisor, which monitors them and
/// restarts a child that goes down after its backoff, counting
/// `ap_actor_restarts_total{actor=…}`. An exit message (shutdown) is passed
/// on to every child and nothing is restarted.
supervisor_actor spawn_supervisor(caf::actor_system& sys, std::vector<child_spec> children,
                                  supervisor_config cfg, metrics::registry* registry);

} // namespace ap
