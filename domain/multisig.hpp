#pragma once

// Multisig upgrades (SPEC §7) as a plain state machine: the service's
// multisig actor and the Kernel enforce the same rules with it.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <rapidjson/document.h>

namespace ap::domain {

/// What is proposed.
struct upgrade_proposal {
  std::string version;
  /// 64 lower-case hex.
  std::string binary_hash;
  std::string notes;
  /// 2-10 distinct registered approver ids, in the staged order.
  std::vector<std::string> approvers;
  /// "upgrade" or "secret-rotation".
  std::string kind = "upgrade";
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upgrade_proposal& x) {
  return f(caf::meta::type_name("upgrade_proposal"), x.version, x.binary_hash, x.notes,
           x.approvers, x.kind);
}

/// Canonical {approvers, binaryHash, kind, notes, version} (kind "upgrade"
/// when empty): what the payload hash is taken over.
std::string canonical_proposal(const upgrade_proposal& p);

/// Hex SHA-256 of canonical_proposal.
std::string upgrade_payload_hash(const upgrade_proposal& p);

/// `upg_` + the first 24 hex of the payload hash.
std::string upgrade_id_for(const std::string& payload_hash);

/// The bytes an approver signs:
/// `artifact-publisher/upgrade/v1:{upgradeId}:{payloadHash}:{approverId}`.
std::string approval_message(const std::string& upgrade_id, const std::string& payload_hash,
                             const std::string& approver_id);

/// Semantic version order (MAJOR.MINOR.PATCH with optional -prerelease);
/// nullopt when either is not a semantic version.
std::optional<int> compare_semver(const std::string& a, const std::string& b);
bool is_semver(const std::string& v);

/// One accepted approval.
struct approval {
  std::string approver;
  std::string signature;
  std::int64_t approved_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, approval& x) {
  return f(caf::meta::type_name("approval"), x.approver, x.signature, x.approved_at_ms);
}

/// An upgrade and where it stands.
struct upgrade_record {
  std::string upgrade_id;
  upgrade_proposal proposal;
  std::string payload_hash;
  std::int32_t threshold = 2;
  std::int64_t created_at_ms = 0;
  std::int64_t expires_at_ms = 0;
  std::vector<approval> approvals;
  /// "pending" or "applied".
  std::string status = "pending";
  std::int64_t applied_at_ms = 0;
  std::string applied_by;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upgrade_record& x) {
  return f(caf::meta::type_name("upgrade_record"), x.upgrade_id, x.proposal, x.payload_hash,
           x.threshold, x.created_at_ms, x.expires_at_ms, x.approvals, x.status, x.applied_at_ms,
           x.applied_by);
}

/// What kind of refusal a step met (SPEC §7 gives each an HTTP status).
enum class refusal_kind : std::uint8_t {
  /// The input breaks a rule.
  invalid_input,
  /// An unknown approver or a signature that does not verify.
  forbidden,
  /// No such upgrade.
  not_found,
  /// The step conflicts with the upgrade's state (order, quorum, version).
  conflict,
  /// The upgrade expired.
  gone,
};

/// Why a step was refused: its kind, and the specific reason (`code`,
/// e.g. "insufficient_quorum") that the answer names.
struct multisig_refusal {
  refusal_kind kind = refusal_kind::invalid_input;
  std::string code;
  std::string message;
  std::string field;
};

/// The longest approver id: as registered (ARTIFACT_PUBLISHER_APPROVERS).
constexpr std::size_t max_approver_id = 64;
/// The longest approval signature accepted: base64 of a 64-byte Ed25519
/// signature is 88 characters.
constexpr std::size_t max_signature_b64 = 128;

/// Bounds an approval's fields before anything is looked up or recorded:
/// each present and at most its length (`field` prefixes the field names,
/// e.g. "approvals[0].").
std::optional<multisig_refusal> check_approval_fields(const std::string& approver,
                                                      const std::string& signature,
                                                      const std::string& field = {});

/// How long a proposal stays open.
constexpr std::int64_t upgrade_lifetime_ms = 24LL * 3600 * 1000;

/// Checks a proposal against the rules that need no state: semver (for
/// kind "upgrade"), 64-hex binary hash, kind, 2-10 distinct registered
/// approvers, at least `threshold` of them.
std::optional<multisig_refusal>
validate_proposal(const upgrade_proposal& p, const std::map<std::string, std::string>& registry,
                  int threshold);

/// Parses a proposal body `{version, binaryHash, notes?, approvers, kind?}`;
/// extra members listed in `allowed_extra` are ignored, others refused.
std::optional<multisig_refusal> parse_proposal(const rapidjson::Value& body, upgrade_proposal& out,
                                               const std::vector<std::string>& allowed_extra = {});

/// The upgrades and their rules. `registry` maps approver id to the raw
/// 32-byte Ed25519 public key. Not thread-safe.
class upgrade_book {
public:
  upgrade_book(std::map<std::string, std::string> registry, int threshold);

  /// Proposes; refuses an existing id and, for kind "upgrade", a version
  /// not greater than the applied one (conflict).
  std::optional<multisig_refusal> propose(const upgrade_proposal& p, std::int64_t now_ms,
                                          upgrade_record& out);

  /// Accepts the approval of `approver` (signature base64 over
  /// approval_message): unknown approver or bad signature forbidden; out
  /// of order, duplicate or already applied a conflict; expired gone.
  std::optional<multisig_refusal> approve(const std::string& upgrade_id, const std::string& approver,
                                          const std::string& signature_b64, std::int64_t now_ms,
                                          upgrade_record& out);

  /// Applies once the threshold is met (a conflict, insufficient_quorum,
  /// before; a conflict when applied already; gone after expiry).
  std::optional<multisig_refusal> apply(const std::string& upgrade_id, const std::string& by,
                                        std::int64_t now_ms, upgrade_record& out);

  const upgrade_record* find(const std::string& upgrade_id) const;
  /// The highest applied version of kind "upgrade" ("" when none).
  const std::string& applied_version() const { return applied_version_; }

  /// Puts back a record loaded from storage.
  void restore(const upgrade_record& r);

private:
  std::map<std::string, std::string> registry_;
  int threshold_;
  std::map<std::string, upgrade_record> upgrades_;
  std::string applied_version_;
};

/// Renders a record as the service's upgrade JSON (canonical).
std::string upgrade_json(const upgrade_record& r);

/// The one-shot route's summary of a record: `{appliedAt?, approvals,
/// status, upgradeId, version}`.
std::string oneshot_json(const upgrade_record& r);

} // namespace ap::domain
