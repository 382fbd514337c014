#pragma once

// Per-actor metrics (SPEC §8): messages handled, processing time and
// mailbox size, recorded by wrapping each message handler. (The actor
// profiler hooks of CAF are not compiled into Debian's libcaf.)

#include <chrono>
#include <string>
#include <utility>

#include <caf/detail/type_traits.hpp>

#include "core/metrics.hpp"

namespace ap {

/// The instruments of one actor (shared by all its instances).
struct actor_meter {
  metrics::counter* messages = nullptr;
  metrics::histogram* processing = nullptr;
  metrics::gauge* mailbox = nullptr;

  /// `ap_actor_messages_total{actor}`, `ap_actor_processing_seconds{actor}`,
  /// `ap_actor_mailbox_size{actor}`.
  static actor_meter make(metrics::registry& registry, const std::string& actor) {
    actor_meter m;
    m.messages = &registry.get_counter("ap_actor_messages_total", "Messages handled per actor",
                                       {{"actor", actor}});
    m.processing = &registry.get_histogram(
      "ap_actor_processing_seconds", "Time an actor spends handling one message",
      {{"actor", actor}},
      {0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1});
    m.mailbox = &registry.get_gauge("ap_actor_mailbox_size",
                                    "Messages waiting in the actor's mailbox when it last took one",
                                    {{"actor", actor}});
    return m;
  }
};

/// Where actors started without a registry (some tests) record: nowhere
/// anyone reads.
inline metrics::registry& unobserved_registry() {
  static metrics::registry r;
  return r;
}

namespace detail {

template <class Self, class F, class R, class... Ts>
auto metered_handler(Self* self, actor_meter m, F f, caf::detail::type_list<Ts...>) {
  return [self, m, f](Ts... xs) mutable -> R {
    m.messages->inc();
    m.mailbox->set(static_cast<double>(self->mailbox().size()));
    struct stopwatch {
      metrics::histogram* h;
      std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
      ~stopwatch() {
        h->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    } watch{m.processing};
    return f(std::forward<Ts>(xs)...);
  };
}

} // namespace detail

/// Wraps a message handler of `self` with the same signature, so CAF
/// dispatches to it exactly as before.
template <class Self, class F>
auto metered(Self* self, const actor_meter& m, F f) {
  using trait = caf::detail::get_callable_trait<F>;
  return detail::metered_handler<Self, F, typename trait::result_type>(self, m, std::move(f),
                                                                       typename trait::arg_types{});
}

} // namespace ap
