#pragma once

// A result shared by concurrent callers and reused for a short while. The
// open probes (/health, /readyz) each cost a database round trip on the
// workers that serve checkouts; without it, a flood of probes queues ahead
// of checkouts. With it, a flood costs one fetch per freshness period
// however many probes arrive, and a probe still reports a state no older
// than that period. Plain C++ (no CAF, no Beast) so it is tested directly.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace ap {

/// Caches the last result of an asynchronous fetch for `freshness` after it
/// arrived. A caller that finds no fresh result joins the fetch in flight,
/// or starts one when none is; every caller waiting on a fetch gets its
/// result. Errors are results like any other: cached for the same period,
/// never longer. Thread-safe: callers and the fetch's completion may run on
/// any thread; callbacks run outside the lock, on the thread that completes
/// the fetch (or the caller's, for a fresh result).
template <class Value>
class single_flight_cache {
public:
  using clock = std::chrono::steady_clock;
  /// Receives the result.
  using callback = std::function<void(const Value&)>;
  /// Starts a fetch, which must call its argument exactly once, from any
  /// thread (a fetch that may never answer needs a timeout of its own).
  using fetch_fn = std::function<void(std::function<void(Value)>)>;

  /// `now` stands in for the clock in tests.
  explicit single_flight_cache(clock::duration freshness,
                               std::function<clock::time_point()> now = &clock::now)
    : state_(std::make_shared<state>(freshness, std::move(now))) {
  }

  /// Hands `done` a result no older than the freshness period, fetching one
  /// with `fetch` only when neither a fresh result nor a fetch in flight
  /// exists.
  void get(const fetch_fn& fetch, callback done) const {
    std::unique_lock<std::mutex> lock{state_->mutex};
    if (state_->last && state_->now() - state_->fetched_at < state_->freshness) {
      Value copy = *state_->last;
      lock.unlock();
      done(copy);
      return;
    }
    state_->waiting.push_back(std::move(done));
    if (state_->in_flight)
      return;
    state_->in_flight = true;
    lock.unlock();
    // The completion holds the state, so a cache destroyed while a fetch is
    // still out (on shutdown) is not touched after it is gone.
    fetch([st = state_](Value result) { st->complete(std::move(result)); });
  }

private:
  struct state {
    state(clock::duration f, std::function<clock::time_point()> n)
      : freshness(f), now(std::move(n)) {
    }

    void complete(Value result) {
      std::vector<callback> callers;
      {
        std::lock_guard<std::mutex> guard{mutex};
        last = result;
        // Stamped on arrival: a fetch that ended in a timeout is cached for
        // the period after the timeout, not for a period already spent
        // waiting for it.
        fetched_at = now();
        in_flight = false;
        callers.swap(waiting);
      }
      for (auto& c : callers)
        c(result);
    }

    const clock::duration freshness;
    const std::function<clock::time_point()> now;
    std::mutex mutex;
    std::optional<Value> last;
    clock::time_point fetched_at;
    bool in_flight = false;
    std::vector<callback> waiting;
  };

  std::shared_ptr<state> state_;
};

} // namespace ap
