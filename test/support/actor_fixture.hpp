#pragma once

// A deterministic actor-system fixture for Boost.Test: CAF's test
// coordinator runs every actor on the test thread, one message at a time,
// and time moves only when the test says so. No sleeps.

#include <chrono>
#include <optional>
#include <utility>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/node.hpp"

namespace ap::test {

struct actor_fixture {
  static caf::actor_system_config& prepare(caf::actor_system_config& cfg) {
    configure_actor_system(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  actor_fixture()
    : sys(prepare(cfg)), sched(dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler())) {
  }

  ~actor_fixture() {
    // Drain every message and timer, or the actor system waits forever for
    // actors with pending timeouts.
    for (int i = 0; i < 1000 && (sched.has_job() || sched.has_pending_timeout()); ++i) {
      sched.run();
      sched.trigger_timeouts();
    }
  }

  /// Runs every queued message (never advances time).
  std::size_t run() { return sched.run(); }

  /// Moves simulated time forward, then runs what became due.
  void advance(std::chrono::milliseconds by) {
    sched.advance_time(by);
    run();
  }

  /// Sends one request from a probe actor and runs the system until the
  /// reply (or error) arrives; nullopt if nothing came back.
  template <class Reply, class Handle, class... Ts>
  std::optional<caf::expected<Reply>> ask(const Handle& dest, Ts... xs) {
    auto out = std::make_shared<std::optional<caf::expected<Reply>>>();
    sys.spawn([=](caf::event_based_actor* self) {
      self->request(dest, std::chrono::seconds(1), xs...)
        .then([out](Reply& r) { *out = std::move(r); },
              [out](caf::error& e) { *out = caf::expected<Reply>{std::move(e)}; });
    });
    run();
    return *out;
  }

  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scheduler::test_coordinator& sched;
};

} // namespace ap::test
