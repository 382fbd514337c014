#pragma once

// What the Kernel client takes and answers (SPEC §6, §7).

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>

#include "domain/multisig.hpp"

namespace ap::kernel {

/// The Kernel's acknowledgement of an audit event: the AuditEvent it answers
/// (SPEC §6) less the payload and metadata the service sent, which is the
/// event's receipt (SPEC §11). The client fills in what the answer carries
/// (missing fields stay empty); whether it proves anything is checked by
/// domain::check_receipt before the event counts as delivered.
struct audit_ack {
  /// The Kernel's id of the stored event (`id`).
  std::string kernel_id;
  /// The service's id of the event it acknowledges (`metadata.eventId`).
  std::string event_id;
  /// Lower-case hex SHA-256 of the payload and the previous hash.
  std::string hash;
  /// The previous event's hash; empty for the first event of the log.
  std::string prev_hash;
  /// Base64 Ed25519 over the 32 bytes of `hash`.
  std::string signature;
  /// Which of the Kernel's published keys signed it.
  std::string signer_id;
  /// When the Kernel stored it (RFC 3339).
  std::string ts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_ack& x) {
  return f(caf::meta::type_name("audit_ack"), x.kernel_id, x.event_id, x.hash, x.prev_hash,
           x.signature, x.signer_id, x.ts);
}

/// The Kernel's answer to one audit event of several sent together: its
/// acknowledgement, or, when `error` is set, why there is none (the Kernel
/// unreachable, a 5xx, a refusal of the event: see audit_submission_error).
struct audit_answer {
  audit_ack ack;
  caf::error error;
  /// When its reply arrived (wall-clock Unix ms), which may be well before
  /// the answer to the whole call; 0 when unknown (the answer's own time).
  std::int64_t answered_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_answer& x) {
  return f(caf::meta::type_name("audit_answer"), x.ack, x.error, x.answered_at_ms);
}

/// One of the Kernel's signing keys, as `GET /kernel/keys` publishes it.
struct signer_key {
  std::string signer_id;
  /// The raw 32-byte Ed25519 public key.
  std::string public_key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, signer_key& x) {
  return f(caf::meta::type_name("signer_key"), x.signer_id, x.public_key);
}

/// Which step of a multisig upgrade the Kernel is asked to take, or `read`:
/// what the Kernel holds of it (`GET /kernel/upgrade/{id}`), asked when the
/// outcome of a step is unknown.
enum class upgrade_call_kind : std::uint8_t { propose, approve, apply, read };

/// One upgrade step submitted to the Kernel, which enforces the multisig
/// rules itself (`POST /kernel/upgrade[/{id}/approve|/apply]`).
struct upgrade_call {
  upgrade_call_kind kind = upgrade_call_kind::propose;
  /// The upgrade as the service recorded it (for propose: its id and proposal).
  domain::upgrade_record upgrade;
  /// For approve.
  std::string approver;
  std::string signature;
  /// For apply: sent as X-Applied-By.
  std::string applied_by;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upgrade_call& x) {
  return f(caf::meta::type_name("upgrade_call"), x.kind, x.upgrade, x.approver, x.signature,
           x.applied_by);
}

/// The Kernel took the step: its record of the upgrade as it answered it
/// (what an answer leaves out stays empty); for apply and read, when it
/// applied it.
struct upgrade_ack {
  std::int64_t applied_at_ms = 0;
  std::string status;
  std::string payload_hash;
  /// The approvers whose approvals the Kernel holds.
  std::vector<std::string> approvers;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upgrade_ack& x) {
  return f(caf::meta::type_name("upgrade_ack"), x.applied_at_ms, x.status, x.payload_hash,
           x.approvers);
}

} // namespace ap::kernel
