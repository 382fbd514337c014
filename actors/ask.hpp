#pragma once

#include <chrono>
#include <functional>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>

#include "actors/atoms.hpp"
#include "actors/errors.hpp"

namespace ap {

/// Sends one request to an actor from outside the actor system (a Beast io
/// thread) without blocking: a short-lived actor makes the request with a
/// bounded timeout and hands the reply or the error to `done`, on a CAF
/// thread. `done` must not block; it posts the response back to the
/// connection's strand through its reply function.
template <class Reply, class Handle, class... Ts>
void ask(caf::actor_system& sys, const Handle& dest, std::chrono::milliseconds timeout,
         std::function<void(caf::expected<Reply>)> done, Ts... xs) {
  if (!dest) {
    done(make_error(error_code::internal, "actor not started"));
    return;
  }
  sys.spawn([dest, timeout, done = std::move(done), xs...](caf::event_based_actor* self) {
    // The actor lives until the response or the timeout arrives.
    self->request(dest, timeout, xs...)
      .then([done](Reply& reply) { done(std::move(reply)); },
            [done](caf::error& err) { done(std::move(err)); });
  });
}

} // namespace ap
