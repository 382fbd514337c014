#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <string_view>

namespace ap {

/// Whether an upstream (the Kernel, the payment processor, the database) can
/// be reached, as the calls to it find it, and the log of its changes: a
/// warning naming the upstream and the reason when a call first finds it
/// unreachable, an info line when one is answered again — once per change,
/// not per call.
///
/// With a settle period, an answer ends an outage only once no call has
/// found it unreachable for that long: a database whose commits stall still
/// answers reads, and its state must not flap with every read in between.
///
/// The callers are on hot paths: a call answered while nothing changes costs
/// one relaxed atomic load (no lock, no allocation). A change takes a lock,
/// so that the lines of two changes racing on two threads are written in
/// the order the state took.
class reachability {
public:
  /// `upstream` names it in the log (`kernel`, `processor`, `database`).
  explicit reachability(std::string upstream,
                        std::chrono::milliseconds settle = std::chrono::milliseconds{0});
  reachability(const reachability&) = delete;
  reachability& operator=(const reachability&) = delete;

  /// A call was answered. True when that ended an outage (and it was
  /// logged): at once, or with a settle period only when no call found it
  /// unreachable for that long.
  bool answered() noexcept {
    if (!down_.load(std::memory_order_relaxed))
      return false;
    return recovered();
  }

  /// A call found the upstream unreachable for `reason` ("connect: Connection
  /// refused", "timeout", "tls: …", "answered 503", …). True when that began
  /// an outage (and it was logged).
  bool unreachable(std::string_view reason);

  /// False from a call that found it unreachable until one is answered
  /// (after the settle period).
  bool reachable() const noexcept { return !down_.load(std::memory_order_relaxed); }

  const std::string& upstream() const noexcept { return upstream_; }

private:
  bool recovered() noexcept;

  std::string upstream_;
  std::chrono::steady_clock::duration settle_;
  std::atomic<bool> down_{false};
  /// When a call last found it unreachable (steady clock, since its epoch).
  std::atomic<std::chrono::steady_clock::rep> last_failure_{0};
  std::mutex change_;
  std::chrono::steady_clock::time_point down_since_{};
};

} // namespace ap
