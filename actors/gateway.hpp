#pragma once

// The HTTP edge's way into the actors. Each call sends one request to the
// actor in charge, from any thread and without blocking, and hands the
// reply or the error to a callback on a CAF thread (which must not block:
// the edge posts the response back to its connection's strand). It keeps
// CAF's templates out of http/, which sees only this plain interface.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "actors/actors.hpp"
#include "core/single_flight.hpp"

namespace ap {

class actor_directory;

/// How long the open probes reuse what they learnt of the database and the
/// Kernel: a probe reports a state at most this old, and a flood of probes
/// costs one call of each per period.
constexpr auto probe_freshness = std::chrono::seconds{1};

/// Requests to the service's actors, each with a bounded wait.
class gateway {
public:
  template <class T>
  using callback = std::function<void(caf::expected<T>)>;

  /// Looks each actor up in `directory` at the time of the call, so a
  /// restarted actor is reached by the next request.
  /// `catalog_refresh`: how long `cached_catalog` reuses a read.
  gateway(caf::actor_system& system, actor_directory& directory,
          std::chrono::milliseconds catalog_refresh = std::chrono::seconds{30});

  /// The database's readiness.
  void database_status(std::chrono::milliseconds timeout,
                       callback<persistence::db_status> done) const;

  /// Whether the Kernel answers its health check.
  void kernel_health(std::chrono::milliseconds timeout, callback<bool> done) const;

  /// As `database_status`, for the open probes: a result that arrived
  /// within `probe_freshness` (errors and timeouts included) is reused, and
  /// a caller that finds none joins the call in flight, if any.
  void probed_database_status(std::chrono::milliseconds timeout,
                              callback<persistence::db_status> done) const;

  /// As `kernel_health`, reused and shared as `probed_database_status` is.
  void probed_kernel_health(std::chrono::milliseconds timeout, callback<bool> done) const;

  /// Verifies a proof record against a payload (each as JSON text).
  void verify_proof(std::string proof, std::string payload, std::chrono::milliseconds timeout,
                    callback<domain::verification> done) const;

  /// The public proof keys document.
  void proof_keys(std::chrono::milliseconds timeout, callback<std::string> done) const;

  /// The catalog, sorted by SKU.
  void catalog(std::chrono::milliseconds timeout,
               callback<std::vector<domain::catalog_item>> done) const;

  /// As `catalog`, for `GET /api/catalog`: a read is reused for
  /// `catalog_refresh` and shared by the callers that arrive while it is
  /// out; a read that fails answers the last catalog read well instead
  /// (the catalog changes only by migration), and the error only when none
  /// was ever read. So the answer is at most `catalog_refresh` old while
  /// the database answers, and the database sees one read per period
  /// however many requests arrive.
  void cached_catalog(std::chrono::milliseconds timeout,
                      callback<std::vector<domain::catalog_item>> done) const;

  /// One document of an order.
  void order_part(std::string order_id, persistence::order_part part,
                  std::chrono::milliseconds timeout, callback<std::string> done) const;

  /// Runs a checkout. No timeout of its own: the checkout actor answers
  /// every checkout within its deadline. Should the actor die first, the
  /// answer is `database_unavailable` naming the order, which the
  /// reconciler finishes if it was recorded.
  void checkout(domain::checkout_request request, std::string idempotency_key,
                domain::order_ids ids, callback<checkout_outcome> done) const;

  /// Multisig steps (SPEC §7).
  void propose(domain::upgrade_proposal proposal, std::chrono::milliseconds timeout,
               callback<domain::upgrade_record> done) const;
  void approve(std::string upgrade_id, std::string approver, std::string signature,
               std::chrono::milliseconds timeout, callback<domain::upgrade_record> done) const;
  void apply(std::string upgrade_id, std::chrono::milliseconds timeout,
             callback<domain::upgrade_record> done) const;
  void upgrade(std::string upgrade_id, std::chrono::milliseconds timeout,
               callback<domain::upgrade_record> done) const;
  void oneshot(domain::upgrade_proposal proposal, std::vector<domain::approval> approvals,
               std::chrono::milliseconds timeout, callback<domain::upgrade_record> done) const;

private:
  caf::actor_system* system_;
  actor_directory* directory_;
  single_flight_cache<caf::expected<persistence::db_status>> database_probe_;
  single_flight_cache<caf::expected<bool>> kernel_probe_;
  single_flight_cache<caf::expected<std::vector<domain::catalog_item>>> catalog_cache_;
  /// The last catalog read well, shared with reads still out on shutdown.
  struct last_catalog {
    std::mutex mutex;
    std::optional<std::vector<domain::catalog_item>> items;
  };
  std::shared_ptr<last_catalog> last_catalog_ = std::make_shared<last_catalog>();
};

} // namespace ap
