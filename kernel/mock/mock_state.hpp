#pragma once

// What the kernel-mock program's route areas share: the audit log, the
// upgrades, the state file and the faults that every /kernel/* route obeys.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "domain/multisig.hpp"
#include "http/router.hpp"
#include "kernel/mock/audit_log.hpp"

namespace ap::kernel::mock {

/// The faults in force, set by flags and changed at run time through
/// /mock/faults; atomics because routes read them without the state's mutex.
struct faults {
  std::atomic<long> latency_ms{0};
  std::atomic<long> jitter_ms{0};
  std::atomic<double> error_rate{0};
  std::atomic<double> reset_rate{0};
  std::atomic<bool> outage{false};
  /// The next this many upgrade steps (propose, approve, apply) take effect
  /// and are then answered with a connection reset: a reply lost after the
  /// Kernel acted.
  std::atomic<long> upgrade_resets{0};

  /// Takes one of `upgrade_resets`, if any are left.
  bool take_upgrade_reset();

  /// Audit submissions refused for what they carry (`refuse_event_type`).
  std::atomic<long> refused{0};

  /// Audit events of `type` are refused with 413, as a Kernel refuses an
  /// oversized payload (none when empty).
  void refuse_event_type(std::string type);
  bool refuses(const std::string& type) const;

  /// The body of GET /mock/faults.
  std::string to_json() const;

 private:
  mutable std::mutex refused_type_mutex_;
  std::string refused_type_;
};

/// The bearer token the mock demands of every /kernel/* and /health request
/// (--require-token, changed at run time through /mock/faults), and how many
/// requests came with and without it, so a test can see what its client
/// sent across a rotation.
class token_check {
public:
  /// Demands `Authorization: Bearer <token>` from now on; empty demands nothing.
  void require(std::string token);
  /// Whether `req` carries the token (always, when none is required);
  /// counts it when one is.
  bool admits(const http::request& req);
  /// The body of GET /mock/requests.
  std::string to_json() const;

private:
  mutable std::mutex mutex_;
  std::string token_;
  std::uint64_t authorized_ = 0;
  std::uint64_t unauthorized_ = 0;
};

/// Runs callbacks after a delay on one background thread, so injected
/// latency never blocks the io thread.
class delay_queue {
public:
  delay_queue();
  ~delay_queue();
  delay_queue(const delay_queue&) = delete;
  delay_queue& operator=(const delay_queue&) = delete;

  /// Calls `fn` on the queue's thread once `delay` has passed.
  void after(std::chrono::milliseconds delay, std::function<void()> fn);

private:
  void loop();
  std::mutex mutex_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

/// The mock Kernel: one per process, shared by every route.
struct mock_state {
  /// Guarded by `mutex`.
  kernel::audit_log log;
  /// Guarded by `mutex`.
  domain::upgrade_book upgrades;
  std::mutex mutex;
  /// The --state file (kernel/mock/state_file.hpp), appended to under
  /// `mutex`; not open without one.
  std::ofstream state;
  faults f;
  token_check token;
  delay_queue delays;
  std::mt19937_64 rng{std::random_device{}()};
  /// Guards `rng` alone: routes answer while holding `mutex`.
  std::mutex rng_mutex;

  mock_state(const std::string& seed, std::map<std::string, std::string> registry, int threshold)
    : log(seed, "kernel-mock"), upgrades(std::move(registry), threshold) {}

  /// Appends one line to the state file and flushes it, so that a change
  /// is on disk before its answer goes out; nothing without a state file.
  /// The caller holds `mutex`.
  void persist(const std::string& line);

  /// Applies the latency and jitter faults to a /kernel/* answer.
  void answer(http::reply_fn reply, http::response res);

  bool injected_error() { return draw(f.error_rate.load()); }
  bool injected_reset() { return draw(f.reset_rate.load()); }

  /// True with probability `rate`.
  bool draw(double rate);
};

/// Wraps a route with the token check: without the token required, 401
/// and `WWW-Authenticate: Bearer`, before any fault.
http::handler guarded(mock_state& k, http::handler inner);

/// Wraps a Kernel route with the token check, then the outage and
/// error-rate faults and latency.
http::handler faulty(mock_state& k, http::handler inner);

/// The audit log (SPEC §6): append, verify, find, search, and the signer's keys.
void add_audit_routes(http::router& r, mock_state& k);

/// Upgrades (SPEC §6, §7): propose, approve, apply and read, under the
/// multisig rules the Kernel enforces itself.
void add_upgrade_routes(http::router& r, mock_state& k);

/// /health, the run-time fault settings of /mock/faults and the token
/// counts of /mock/requests; no fault but the outage (on /health) and the
/// token (on /health) affects them.
void add_control_routes(http::router& r, mock_state& k);

} // namespace ap::kernel::mock
