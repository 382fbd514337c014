#pragma once

// The mock Kernel's audit log (SPEC §6): a hash chain of events, each signed
// with Ed25519, idempotent by metadata.eventId. Plain C++: the kernel-mock
// process and the in-process kernel actor of the actor tests share it. It is
// a test double, apart from the production Kernel client in kernel/.

#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

#include "core/crypto.hpp"

namespace ap::kernel {

/// One event as the mock Kernel stored it: what was submitted, plus its
/// place in the chain and its signature.
struct logged_event {
  std::string id;
  std::string event_type;
  /// Canonical JSON of the payload.
  std::string payload;
  std::string event_id;
  std::string source;
  std::string prev_hash;
  std::string hash;
  /// base64 Ed25519 over the 32 hash bytes.
  std::string signature;
  std::string signer_id;
  std::string ts;
  /// Canonical value of each top-level payload field, for search, in the
  /// payload's order.
  std::vector<std::pair<std::string, std::string>> fields;
};

/// Renders an event as the Kernel's AuditEvent JSON (canonical).
std::string to_json(const logged_event& e);

/// The hash of SPEC §6: hex SHA-256(canonical(payload) ‖ the 32 bytes that
/// prev_hash hex-encodes; nothing for the first event).
std::string chain_hash(const std::string& canonical_payload, const std::string& prev_hash);

/// The log. Not thread-safe: callers serialise access.
class audit_log {
public:
  /// `signing_seed` is the 32-byte Ed25519 seed of the Kernel's signer.
  audit_log(std::string signing_seed, std::string signer_id);

  struct append_result {
    const logged_event* event;
    /// False when `event_id` was already in the log (nothing appended).
    bool created;
  };

  /// Appends an event, or returns the stored one for a known event id.
  /// `payload` must be an object of strings, integers, booleans, null,
  /// arrays and objects (canonicalisable); throws std::invalid_argument.
  append_result append(const std::string& event_type, const rapidjson::Value& payload,
                       const std::string& event_id, const std::string& source,
                       const std::string& ts);

  /// The event whose Kernel id (`kae_…`) is `id`, or null.
  const logged_event* find(const std::string& id) const;

  /// Events whose payload fields equal `criteria` (canonical values), and of
  /// `event_type` when given, oldest first, at most `limit`.
  std::vector<const logged_event*> search(const std::map<std::string, std::string>& criteria,
                                          const std::string& event_type, std::size_t limit) const;

  struct verification {
    bool valid;
    std::size_t length;
    std::string head;
  };
  /// Recomputes every hash and checks every signature.
  verification verify() const;

  std::size_t size() const { return events_.size(); }
  const std::deque<logged_event>& events() const { return events_; }
  /// Raw 32-byte public key of the signer.
  const std::string& public_key() const { return signer_.public_key(); }
  const std::string& signer_id() const { return signer_id_; }

  /// One line of the state file for `e` (JSON, no newline).
  static std::string to_line(const logged_event& e);
  /// Re-appends an event read from a state-file line, checking its hash and
  /// signature against the chain; returns false for a line that does not fit.
  bool restore_line(const std::string& line);

private:
  crypto::ed25519_signer signer_;
  std::string signer_id_;
  // A deque: appending never moves the events already stored, where a
  // vector, as the log grows to hundreds of MB, would stop every append for
  // as long as it takes to move them all to a larger block.
  std::deque<logged_event> events_;
  // Hashed, not ordered: the service's event ids share long prefixes
  // (placed by time), which made every lookup in an ordered map compare
  // them byte by byte down a tree as deep as the log is long.
  std::unordered_map<std::string, std::size_t> by_id_;
  // What makes `append` idempotent by metadata.eventId.
  std::unordered_map<std::string, std::size_t> by_event_id_;
};

} // namespace ap::kernel
