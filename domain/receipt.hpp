#pragma once

// Audit receipts (SPEC §11): the Kernel's answer to an audit event, which
// proves that the event is in its log. The forwarder checks each one before
// it marks the event delivered, the order shows them, and a buyer checks
// them again offline (`verify-proof --kernel-keys`) with these same
// functions. Plain C++.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "core/crypto.hpp"
#include "domain/audit.hpp"
#include "domain/order.hpp"
#include "kernel/messages.hpp"

namespace ap::domain {

/// What checking a receipt found: `ok`, or the first check it failed.
enum class receipt_check : std::uint8_t {
  ok,
  /// A field is missing or not in its encoding: the ids and signerId
  /// empty, hash not 64 lower-case hex, prevHash neither empty nor 64
  /// lower-case hex, signature not base64 of 64 bytes.
  malformed,
  /// It acknowledges another event than the one sent.
  event_id_mismatch,
  /// Its hash is not SHA-256 of the payload sent and its prevHash.
  hash_mismatch,
  /// No published key of the Kernel has its signerId.
  unknown_signer,
  /// Its signature does not verify under its signer's key.
  bad_signature,
};

/// Every way a receipt can fail, in the order they are checked: the whole
/// set of names a rejection can carry (a metric's labels, say).
inline constexpr receipt_check receipt_failures[] = {
  receipt_check::malformed, receipt_check::event_id_mismatch, receipt_check::hash_mismatch,
  receipt_check::unknown_signer, receipt_check::bad_signature};

/// "ok", "malformed", "event_id_mismatch", "hash_mismatch",
/// "unknown_signer" or "bad_signature".
const char* to_string(receipt_check c);

/// The Kernel's published keys: signer id → its Ed25519 key, which keeps
/// the tables that make checking many receipts under it cheap.
using signer_keys = std::map<std::string, crypto::ed25519_verifier>;

/// The hash of SPEC §6: lower-case hex SHA-256 of the payload's bytes
/// followed by the 32 bytes that `prev_hash` hex-encodes (nothing when it is
/// empty). nullopt when `prev_hash` is neither empty nor 64 hex digits.
std::optional<std::string> receipt_hash(std::string_view payload, std::string_view prev_hash);

/// Checks a receipt against the event that was sent, its id and its
/// canonical payload (the exact bytes submitted), and the Kernel's keys:
/// well-formed, names the event, its hash is that of the payload, and its
/// signature over the 32 hash bytes verifies under the key of its signer.
receipt_check check_receipt(const kernel::audit_ack& receipt, std::string_view event_id,
                            std::string_view payload, const signer_keys& keys);

/// A receipt for `check_receipts`, with the event it answers.
struct receipt_to_check {
  const kernel::audit_ack* receipt; // not null
  std::string_view event_id;
  std::string_view payload;
};

/// check_receipt of each, in order; the signatures are checked together
/// (crypto::ed25519_verifier::verify_each), which costs less than one by one.
std::vector<receipt_check> check_receipts(const std::vector<receipt_to_check>& receipts,
                                          const signer_keys& keys);

/// A receipt as an order shows it and a buyer checks it: the Kernel's
/// acknowledgement and the type of the event it acknowledges.
struct audit_receipt {
  std::string event_type;
  kernel::audit_ack ack;
};

/// Canonical JSON `{eventId, eventType, hash, kernelEventId, prevHash,
/// signature, signerId, ts}`.
std::string to_json(const audit_receipt& r);

/// The columns that keep `r` when SQL's receipt_document() rebuilds
/// exactly to_json(r) from them and the row's event id and type
/// (migration 0026), which it does when: the hash and the previous hash are
/// lower-case hex (the previous hash may be empty), the signature is base64
/// as base64_encode writes it, and the ids, the type and the time need no
/// escape in JSON and are printable ASCII, so that the database's encoding
/// cannot change them. nullopt otherwise: such a receipt is kept as its
/// text.
std::optional<receipt_columns> receipt_in_columns(const audit_receipt& r);

/// The receipt whose columns receipt_in_columns gave, with the event id and
/// type of its row: what receipt_document() rebuilds in SQL.
audit_receipt receipt_of_columns(std::string event_id, std::string event_type,
                                 const receipt_columns& c);

/// Reads a receipt as to_json writes it (in any member order); nullopt when
/// `v` is not an object or one of its members is missing or not a string.
std::optional<audit_receipt> receipt_from_json(const rapidjson::Value& v);

/// The signers of a `GET /kernel/keys` document
/// `{signers:[{signerId, algorithm:"ed25519", publicKey}]}` (publicKey:
/// base64 of 32 raw bytes). Entries that are not such a key are left out,
/// so a receipt naming one is from an unknown signer. nullopt when `text`
/// is not such a document at all.
std::optional<std::vector<kernel::signer_key>> parse_kernel_keys(std::string_view text);

/// The keys by signer id (the last one wins for a repeated id). The first
/// eight distinct signers keep tables for fast checks; the others check
/// without (crypto::ed25519_verifier: the same answers).
signer_keys keys_by_signer(const std::vector<kernel::signer_key>& keys);

/// What `GET /api/checkout/{id}` answers for a stored order: its stored
/// result with the `audit` member rewritten to `{eventId, receipts,
/// status}` (eventId as stored, when it is). `receipts` are the canonical JSON receipts stored for the
/// order's events, shown in the order audit_event_types gives; `status` is
/// "delivered" once each of the order's events (audit_event_types of
/// `status`) has one, else "pending". Throws std::invalid_argument when
/// `stored_result` is not a JSON object.
std::string result_with_receipts(const std::string& stored_result, order_status status,
                                 const std::vector<std::string>& receipts);

} // namespace ap::domain
