#pragma once

// What the end-to-end fault tests share: steady checkout traffic that keeps
// every answer, and the invariants every fault must leave intact, checked
// against PostgreSQL, the Kernel's log and the processor's own records.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "persistence/connection.hpp"
#include "test/support/service.hpp"

namespace ap::test {

/// One answered checkout.
struct outcome {
  int status = 0;
  std::string order_id;
  std::string error;
  std::chrono::milliseconds latency{0};
  std::chrono::steady_clock::time_point at;
  /// The Idempotency-Key and body a keyed client sent (empty without a key).
  std::string key;
  std::string body;
};

/// Client threads placing checkouts back to back (each a new customer and,
/// unless `keyed` is false, Idempotency-Key) against a port until stopped,
/// recording every answer. With `retry_in_doubt`, a keyed client does what a
/// careful client does with an answer that leaves its checkout in doubt (no
/// answer, 409 in progress, 5xx): it sends the same request with the same key
/// again until the answer is final.
class steady_load {
public:
  steady_load(std::uint16_t port, std::string tag, int clients = 4, bool keyed = true,
              bool retry_in_doubt = false);
  ~steady_load();

  void stop();
  std::vector<outcome> outcomes();
  std::size_t acknowledged();
  /// Waits until `n` more checkouts than now are acknowledged (or `limit`).
  bool wait_for_more(std::size_t n, std::chrono::seconds limit);

private:
  std::atomic<bool> running_{true};
  std::mutex mutex_;
  std::vector<outcome> outcomes_;
  std::vector<std::thread> threads_;
};

/// Two clients placing checkouts without a key and two careful clients with
/// one (`retry_in_doubt`), side by side.
struct mixed_load {
  mixed_load(std::uint16_t port, const std::string& tag);
  /// Stops both and answers every outcome of both.
  std::vector<outcome> stop();
  steady_load keyless;
  steady_load keyed;
};

/// Holds `LOCK TABLE orders IN ACCESS EXCLUSIVE MODE` for `how_long`.
void lock_orders_for(const std::string& db_url, std::chrono::seconds how_long);

/// Terminates every other client connection to the database (`pg_terminate_backend`).
void terminate_other_connections(persistence::connection& admin);

/// The first value of a one-value query.
std::string count(persistence::connection& db, const std::string& sql);

/// Waits until no checkout is unfinished (the reconciler has finished what
/// the fault left), at most `limit`; answers how many are left.
std::string wait_until_finished(persistence::connection& db, std::chrono::seconds limit);

/// The value of a metric line (`name` with its labels) in /metrics, 0 when absent.
double metric(std::uint16_t port, const std::string& name);

/// The invariants every fault must leave intact: nothing unfinished, every
/// 201 stored whole with its events, every event in the Kernel's log once.
void check_invariants(const std::string& db_url, std::uint16_t kernel_port,
                      const std::vector<outcome>& outcomes);

/// SPEC §9's invariants against the processor's own records (payments-mock's
/// list APIs): every succeeded, unrefunded charge belongs to exactly one
/// completed order that names it; no completed order's charge is refunded or
/// cancelled; a settlement_failed order's charge is refunded whole. Returns
/// the number of unrefunded charges.
std::size_t check_processor_invariants(const std::string& db_url, std::uint16_t processor_port);

/// Latencies of the 201 answers, sorted.
std::vector<std::chrono::milliseconds> latencies_of_201(const std::vector<outcome>& outcomes);

/// The service's environment for the Stripe connector against payments-mock,
/// with the Kernel at `kernel`.
std::map<std::string, std::string> stripe_env(const payments_process& processor,
                                              const kernel_process& kernel,
                                              const std::string& request_timeout_ms = "2000",
                                              const std::string& reconcile_after_ms = "3000");
/// Follows an order named by an answer in doubt until it is final (not 202).
http_reply final_state(std::uint16_t port, const std::string& order_id);
/// What became of the orders named by answers that were not final.
struct doubts_followed {
  /// Finished as completed orders.
  std::size_t completed = 0;
  /// Never recorded: the answer came while the record was still waiting
  /// (behind a lock, or behind the first request of the same key), and
  /// nothing was charged. (One recorded after its answer and charged is
  /// followed until it completes, and counted as completed.)
  std::size_t never_recorded = 0;
};
/// Every order named by an answer that was not final (502/503/504, each
/// naming its order) ends completed, or was never recorded and then nothing
/// was charged for it, by the processor's records.
doubts_followed follow_doubts(std::uint16_t port, std::uint16_t processor_port,
                              const std::vector<outcome>& outcomes);
/// What a careful client does last: each key whose last answer was not 201
/// is sent again until the answer is final, which must be 201, replaying the
/// order the answer in doubt named if that order exists. Answers how many
/// keys were settled so.
std::size_t settle_keyed_doubts(std::uint16_t port, const std::vector<outcome>& outcomes);

} // namespace ap::test
