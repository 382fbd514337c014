#pragma once

// Messages between the audit forwarder, the outbox and the Kernel.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace ap::kernel {

/// One audit event as submitted to POST /kernel/audit.
struct audit_submission {
  std::string event_id;
  std::string event_type;
  /// Canonical JSON object.
  std::string payload;
  std::string source;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_submission& x) {
  return f(caf::meta::type_name("audit_submission"), x.event_id, x.event_type, x.payload, x.source);
}

/// The Kernel's acknowledgement.
struct audit_ack {
  /// The Kernel's id of the stored event.
  std::string kernel_id;
  std::string hash;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_ack& x) {
  return f(caf::meta::type_name("audit_ack"), x.kernel_id, x.hash);
}

/// The completion of one HTTP exchange with the Kernel (status 0 when the
/// exchange itself failed; `error` then says why).
struct kernel_reply {
  std::int32_t status = 0;
  std::string body;
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, kernel_reply& x) {
  return f(caf::meta::type_name("kernel_reply"), x.status, x.body, x.error);
}

/// A claimed outbox row.
struct outbox_row {
  std::string event_id;
  std::string event_type;
  std::string payload;
  /// When the order's transaction wrote the row, in Unix milliseconds.
  std::int64_t committed_at_ms = 0;
  std::int32_t attempts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outbox_row& x) {
  return f(caf::meta::type_name("outbox_row"), x.event_id, x.event_type, x.payload,
           x.committed_at_ms, x.attempts);
}

/// What happened to one claimed row.
struct delivery_outcome {
  std::string event_id;
  bool delivered = false;
  std::string kernel_id;
  std::int32_t attempts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery_outcome& x) {
  return f(caf::meta::type_name("delivery_outcome"), x.event_id, x.delivered, x.kernel_id,
           x.attempts);
}

/// The outbox at a glance, for metrics.
struct outbox_stats {
  std::int64_t pending = 0;
  std::int64_t oldest_pending_ms = 0;
  std::int64_t pending_past_budget = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outbox_stats& x) {
  return f(caf::meta::type_name("outbox_stats"), x.pending, x.oldest_pending_ms,
           x.pending_past_budget);
}

} // namespace ap::kernel
