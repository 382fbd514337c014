#pragma once

// The audit event, from the checkout that writes it to the Kernel that
// stores it (SPEC §6), and the rules of its forwarding. Plain C++.

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace ap::domain {

/// SPEC §6: every event lands in the Kernel within 3 s of its checkout's answer.
constexpr auto audit_freshness_budget = std::chrono::milliseconds{3000};

/// A failed forwarding is tried again after a backoff of 100 ms doubling
/// with each attempt, at most this long: well inside the budget once the
/// Kernel is back.
constexpr auto audit_max_retry_backoff = std::chrono::milliseconds{1000};

/// One audit event: a row of the transactional outbox and what is
/// submitted to `POST /kernel/audit`.
struct audit_event {
  std::string event_id;
  std::string event_type;
  /// Canonical JSON; every order.* and delivery.* payload has a top-level orderId.
  std::string payload;
  /// When the transaction that wrote it committed, in Unix milliseconds
  /// (0 until it is stored).
  std::int64_t committed_at_ms = 0;
  /// Forwarding attempts so far, the current one included.
  std::int32_t attempts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_event& x) {
  return f(caf::meta::type_name("audit_event"), x.event_id, x.event_type, x.payload,
           x.committed_at_ms, x.attempts);
}

/// A receipt as the columns of its row keep it (migration 0026): the hashes
/// and the signature as their bytes, the Kernel's ids and time as the
/// strings they are. SQL's receipt_document() puts the canonical JSON back
/// from them (domain/receipt.hpp, receipt_in_columns).
struct receipt_columns {
  std::string hash;
  std::string prev_hash;
  std::string signature;
  std::string kernel_id;
  std::string signer_id;
  std::string ts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, receipt_columns& x) {
  return f(caf::meta::type_name("receipt_columns"), x.hash, x.prev_hash, x.signature, x.kernel_id,
           x.signer_id, x.ts);
}

/// How forwarding one leased event ended.
struct forwarding_outcome {
  std::string event_id;
  /// The Kernel acknowledged it with a receipt that passed every check
  /// (SPEC §11); `kernel_id` is its id there.
  bool acknowledged = false;
  std::string kernel_id;
  std::int32_t attempts = 0;
  /// The receipt of an acknowledged event, as canonical JSON (domain/receipt.hpp);
  /// empty otherwise.
  std::string receipt;
  /// Non-zero when the Kernel refused the event for what it carries (a 4xx
  /// such as 413 or 422): the Kernel's status. The event is dead-lettered,
  /// not sent again until an operator requeues it.
  std::int32_t refused_status = 0;
  /// With `refused_status`: a bounded excerpt of the Kernel's answer.
  std::string refusal;
  /// Whether `columns` holds the receipt of an acknowledged event, which is
  /// then kept in them rather than as `receipt`'s text (left empty).
  bool in_columns = false;
  receipt_columns columns{};
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, forwarding_outcome& x) {
  return f(caf::meta::type_name("forwarding_outcome"), x.event_id, x.acknowledged, x.kernel_id,
           x.attempts, x.receipt, x.refused_status, x.refusal, x.in_columns, x.columns);
}

/// The outbox at a glance, for metrics. Dead-lettered events are not
/// pending (nothing sends them until an operator requeues them): they are
/// counted apart.
struct outbox_stats {
  std::int64_t pending = 0;
  std::int64_t oldest_pending_ms = 0;
  std::int64_t pending_past_budget = 0;
  std::int64_t dead_lettered = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outbox_stats& x) {
  return f(caf::meta::type_name("outbox_stats"), x.pending, x.oldest_pending_ms,
           x.pending_past_budget, x.dead_lettered);
}

} // namespace ap::domain
