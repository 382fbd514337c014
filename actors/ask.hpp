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

/// As `ask`, for a destination that answers every request within a deadline
/// of its own (the checkout actor): no timer per request, which would cost
/// CAF's clock thread two wake-ups a request. The short-lived actor
/// monitors the destination instead, so that its death still ends the
/// request (with sec::request_receiver_down, a 503); the HTTP server's own
/// handler deadline stays the last guard.
template <class Reply, class Handle, class... Ts>
void ask_within_callee_deadline(caf::actor_system& sys, const Handle& dest,
                                std::function<void(caf::expected<Reply>)> done, Ts... xs) {
  if (!dest) {
    done(make_error(error_code::internal, "actor not started"));
    return;
  }
  sys.spawn([dest, done = std::move(done), xs...](caf::event_based_actor* self) -> caf::behavior {
    // Without a timer nothing but the destination's promise refers to this
    // actor, and a destination that dies drops it unanswered: the actor
    // keeps itself until the answer or the down message.
    auto keep =
      std::make_shared<caf::strong_actor_ptr>(caf::actor_cast<caf::strong_actor_ptr>(self));
    self->monitor(dest);
    self->set_down_handler([self, done, keep](caf::down_msg&) {
      done(caf::make_error(caf::sec::request_receiver_down));
      self->quit();
      keep->reset();
    });
    auto finish = [self, dest, done, keep](caf::expected<Reply> result) {
      // A monitor stays registered with the destination until removed.
      self->demonitor(dest.address());
      done(std::move(result));
      self->quit();
      keep->reset();
    };
    self->request(dest, caf::infinite, xs...)
      .then([finish](Reply& reply) { finish(std::move(reply)); },
            [finish](caf::error& err) { finish(std::move(err)); });
    // CAF 0.17 handles no down message for an actor without a behavior; it
    // gets one that matches nothing, and ends by quitting.
    return {[](atoms::wait_atom) {}};
  });
}

} // namespace ap
