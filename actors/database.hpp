#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "core/reachability.hpp"

#include "persistence/connection.hpp"

namespace ap {

/// How long the database must go without a failed call before an answer
/// counts as its recovery: while its commits stall, reads still answer.
constexpr std::chrono::milliseconds database_settle{2000};

/// How the database facade is set up.
struct database_config {
  std::string url;
  /// Detached workers, one PostgreSQL connection each.
  std::size_t workers = 4;
  /// How long each worker's calls may take (none by default).
  persistence::session_limits limits;
  /// The approver registry (id → raw Ed25519 key) and threshold of the
  /// multisig rules.
  std::map<std::string, std::string> approvers;
  int multisig_threshold = 2;
  /// Concurrent checkout records and stores are gathered into batches of at
  /// most this many of each kind, sent in at most `batches_in_flight` calls
  /// at the workers at once, a batch of each kind together in one call when
  /// both wait: one transaction commits many orders (group commit). One:
  /// what arrives while a call commits goes in the next, so batches are as
  /// large as the load makes them and PostgreSQL's cost per call (the
  /// function, its plans, the commit) is shared by more orders. A second
  /// batch in flight halved the mean batch and cost more CPU per checkout
  /// (docs/performance.md).
  std::size_t max_batch = 64;
  std::size_t batches_in_flight = 1;
  /// When a call answers records, the records waiting behind it wait up to
  /// this long more for those checkouts' stores, so that the next call
  /// carries both (one transaction, one commit) instead of the records
  /// alone with the stores a call later. A checkout's store follows its
  /// record within a few hundred microseconds when its payment is made in
  /// the process; a wait that ends without them (a processor reached over
  /// the network, a refused payment) is not repeated for the next
  /// `store_wait_rest` calls. Only for calls that answered at most
  /// `store_wait_most` records: a larger batch means a load at which the
  /// calls are full anyway, and its stores, signed one after the other,
  /// would keep the workers idle longer than a commit saves. Zero: no wait.
  std::chrono::microseconds store_wait{2000};
  std::size_t store_wait_rest = 16;
  std::size_t store_wait_most = 8;
  /// Stored orders' outbox events are written leased to this instance's
  /// forwarder, to which the checkout hands them (no owner: not leased).
  persistence::outbox_lease outbox_lease;
  /// Where the actors' own metrics go (none when null).
  metrics::registry* registry = nullptr;
  /// Whether PostgreSQL can be reached, as the workers' calls find it;
  /// shared by the workers and kept across restarts of the facade (made by
  /// the facade when null).
  std::shared_ptr<reachability> reachable;
};

/// Requests of one kind waiting to go to a worker as a batch.
template <class Item, class Reply>
struct batch_queue {
  std::vector<Item> items;
  std::vector<caf::typed_response_promise<Reply>> promises;
};

/// The probe connection's limits: `/readyz` must answer within a second,
/// so its call gives up well before that.
persistence::session_limits probe_limits();

/// State of the database facade.
struct database_state {
  static constexpr const char* name = "database";
  std::vector<database_worker_actor> workers;
  std::size_t next = 0;
  /// One more worker for the periodic scans (unfinished checkouts, outbox
  /// statistics, the reconciler's lease, the retention janitor's batches): they read tables that churn
  /// thousands of rows a second and can take tens of milliseconds, which
  /// would otherwise hold up the checkout batches queued behind them.
  database_worker_actor background;
  /// One more for the open probes (/readyz, /health), with a short call
  /// deadline of its own (`probe_limits`): a probe never queues behind
  /// stuck checkouts, and a database that stops committing is reported
  /// within a second.
  database_worker_actor probe;
  batch_queue<persistence::checkout_begin, persistence::claim_result> begins;
  batch_queue<domain::order_record, persistence::stored_order> stores;
  /// Calls carrying records, stores or both at each worker now.
  std::vector<std::size_t> carrying;
  /// Stores awaited before the next call (those of the records the last
  /// call answered), until `awaited_until`; none: no wait.
  std::size_t awaited = 0;
  std::chrono::steady_clock::time_point awaited_until;
  /// Whether a timer for the end of that wait is set.
  bool wait_timer = false;
  /// Calls whose answered records are not waited for, after a wait that
  /// ended without their stores.
  std::size_t resting = 0;
};

/// The database facade: spawns `workers` detached workers linked to itself
/// (a dying worker takes the facade down and the supervisor restarts both)
/// and delegates each request to the next worker in turn, except checkout
/// records and stores, which it sends in batches to the first worker carrying
/// none, and the periodic scans, which go to a worker of their own.
database_actor::behavior_type database(database_actor::stateful_pointer<database_state> self,
                                       database_config cfg);

/// State of one database worker.
struct database_worker_state {
  static constexpr const char* name = "database-worker";
  std::unique_ptr<persistence::connection> conn;
  std::shared_ptr<reachability> reachable;
  /// `ap_db_pool_busy`: workers inside a database call right now.
  metrics::gauge* busy = nullptr;
  /// `ap_db_calls_past_deadline_total`, and how many of the connection's
  /// it has counted.
  metrics::counter* past_deadline = nullptr;
  std::uint64_t past_deadline_seen = 0;
};

/// One database worker; spawn it detached, since every handler blocks on libpq.
database_worker_actor::behavior_type
database_worker(database_worker_actor::stateful_pointer<database_worker_state> self,
                database_config cfg);

} // namespace ap
