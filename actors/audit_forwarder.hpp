#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "domain/receipt.hpp"

namespace ap {

/// How the audit forwarder runs.
struct audit_forwarder_config {
  /// Names this instance in outbox leases.
  std::string instance_id = "local";
  std::int32_t batch_size = 100;
  /// Lease-send-settle cycles in flight at once; a full batch starts the
  /// next cycle while its events are still on their way.
  int max_cycles = 4;
  /// How long a leased row stays reserved for this instance. Short, so that
  /// the rows of an instance that died are taken over within the budget;
  /// the rows of a call still running are renewed every half lease, so a
  /// Kernel slower than the lease does not get them twice.
  std::int32_t lease_ms = 2000;
  /// A wake-up leases after this long, so that the events of the checkouts
  /// committed meanwhile travel in the same lease and settle (one lease per
  /// gather window instead of one per checkout); zero leases at once.
  std::chrono::milliseconds gather{10};
  /// Handed-over rows held at most while every cycle is busy (a Kernel that
  /// does not keep up); further ones wait for their lease to run out and are
  /// then leased by a poll, so the memory stays bounded and no row is lost.
  std::size_t max_handed = 20000;
  /// The outcomes of a batch whose calls are all decided wait up to this
  /// long for those of the batches decided after it, and one statement
  /// records them all: a settle costs PostgreSQL mostly per call (0.45 ms
  /// for 8 events, 0.70 for 37, 1.7 for 150), and at 16 connections batches
  /// are decided every few milliseconds with 15 events each. Zero records
  /// each batch's at once. The wait delays only the record (the order shows
  /// its receipts that much later), not the Kernel calls.
  std::chrono::milliseconds settle_gather{25};
  /// ... or until this many outcomes wait.
  std::size_t settle_max = 500;
  /// Polls this often even without a wake-up (another instance's rows, retries).
  std::chrono::milliseconds poll_interval{250};
  std::chrono::milliseconds stats_interval{1000};
  /// One Kernel call may take this long; longer than the budget, so a slow
  /// Kernel delays events rather than making the forwarder give up early.
  /// Checked for a batch's calls together by the poll, so a call unanswered
  /// ends up to a `poll_interval` later.
  std::chrono::milliseconds kernel_timeout{5000};
  /// The Kernel's signing keys are read at most this often: a receipt from
  /// a signer not among the keys read last, or whose signature fails under
  /// the key read last, waits for the next read.
  std::chrono::milliseconds keys_interval{1000};
  /// A rejected receipt is logged at most this often for each reason (each
  /// is counted).
  std::chrono::milliseconds rejection_log_interval{10000};
  std::chrono::milliseconds budget = domain::audit_freshness_budget;
  /// Wall-clock Unix milliseconds; tests pass simulated time.
  std::function<std::int64_t()> now_ms;
  /// Where the outbox and the Kernel are (looked up at each use, so a
  /// restarted actor is picked up).
  std::function<outbox_actor()> outbox;
  std::function<kernel_actor()> kernel;
};

/// The rows of one lease (or hand-over) on their way to the Kernel.
struct audit_batch;

/// State of the audit forwarder.
struct audit_forwarder_state {
  static constexpr const char* name = "audit-forwarder";
  int in_flight = 0;
  bool wake_pending = false;
  /// A gather window is open: what arrives is sent when it ends.
  bool gathering = false;
  /// A wake-up asked for a lease at the end of the window.
  bool lease_wanted = false;
  /// Rows handed over, already leased to this instance, not yet sent.
  std::deque<domain::audit_event> handed;
  std::chrono::steady_clock::time_point last_stats{};
  /// The batches on their way to the Kernel, by id, each with when its
  /// rows' lease was last set (a batch out for half a lease has it renewed,
  /// so a Kernel slower than the lease still gets each event once) and when
  /// its calls are due (the rows still unanswered then go again); both
  /// checked by the poll.
  std::map<std::uint64_t, std::shared_ptr<audit_batch>> on_their_way;
  /// Batches decided, waiting for the end of the settle window; their rows
  /// stay leased to this instance until recorded.
  std::vector<std::shared_ptr<audit_batch>> to_settle;
  std::size_t to_settle_rows = 0;
  bool settle_window = false;
  std::uint64_t next_batch = 0;
  /// The Kernel's signing keys as last read (SPEC §11).
  domain::signer_keys signer_keys;
  /// A read of the keys is on its way; another waits for its turn.
  bool keys_reading = false;
  bool keys_read_scheduled = false;
  std::optional<std::chrono::steady_clock::time_point> last_keys_read;
  /// Receipts whose signer's key is in doubt, checked again once the keys being
  /// read arrive (with true), or released for a retry when they cannot be
  /// read (with false).
  std::vector<std::function<void(bool keys_read)>> awaiting_keys;
  /// When each kind of rejection was last logged, and how many were not
  /// logged since.
  std::map<domain::receipt_check, std::pair<std::chrono::steady_clock::time_point, std::uint64_t>>
    rejections_logged;
};

/// The timed audit forwarder: submits outbox rows to the Kernel
/// concurrently, checks each answer as a receipt of the event sent (SPEC
/// §11: it names the event, its hash is that of the payload sent, its
/// signature verifies under the Kernel's published key, read at the start
/// and again when a receipt names an unknown signer or fails under the key
/// read last, at most once every `keys_interval`), and records each
/// outcome (delivered with its receipt, or released for a retry with
/// backoff). A receipt that fails a check is counted in
/// `ap_audit_receipt_rejections_total{reason}` and logged. The rows of this instance's
/// checkouts are handed over by the checkout, written already leased; it
/// polls for the others (another instance's, retries, expired leases),
/// leasing them (FOR UPDATE SKIP LOCKED) and repeating while rows remain. Measures
/// the lag from commit to Kernel ack (`ap_audit_lag_seconds`), counts events
/// past the budget (`ap_audit_freshness_breaches_total`, logged once each),
/// and exports the outbox figures as gauges.
audit_forwarder_actor::behavior_type
audit_forwarder(audit_forwarder_actor::stateful_pointer<audit_forwarder_state> self,
                audit_forwarder_config cfg, metrics::registry* registry);

} // namespace ap
