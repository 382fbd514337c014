#pragma once

// The SQL of multisig upgrades. Each step runs the domain rules
// (domain/multisig.hpp) on the stored state under a transaction-scoped
// advisory lock, so concurrent steps, on one instance or several, are
// decided one at a time.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "domain/multisig.hpp"

namespace ap::persistence {

class connection;

/// A multisig step.
enum class upgrade_op : std::uint8_t { propose, approve, apply, get };

/// "propose", "approve", "apply" or "get".
const char* to_string(upgrade_op op);

/// One step, checked (`record` false) or checked and recorded.
struct upgrade_step {
  upgrade_op op = upgrade_op::get;
  /// For propose.
  domain::upgrade_proposal proposal;
  /// For the others.
  std::string upgrade_id;
  /// For approve.
  std::string approver;
  std::string signature;
  /// For apply: who applies, and the Kernel's appliedAt.
  std::string applied_by;
  std::int64_t applied_at_ms = 0;
  std::int64_t now_ms = 0;
  bool record = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upgrade_step& x) {
  return f(caf::meta::type_name("upgrade_step"), x.op, x.proposal, x.upgrade_id, x.approver,
           x.signature, x.applied_by, x.applied_at_ms, x.now_ms, x.record);
}

/// The outcome of a step: the upgrade's record, or why it was refused.
struct multisig_outcome {
  std::optional<domain::multisig_refusal> refusal;
  domain::upgrade_record record;
};

/// Runs `cmd` against the stored upgrades with `registry` (approver id →
/// raw public key) and `threshold`. With `cmd.record`, a successful step is
/// recorded with its audit event (`upgrade.proposed|approved|applied`, and
/// `proof_key.activated` for an applied secret rotation) in one
/// transaction. A refused approval or apply of an existing upgrade records
/// `upgrade.rejected`, checked or not.
multisig_outcome run_multisig(connection& db, const upgrade_step& cmd,
                              const std::map<std::string, std::string>& registry, int threshold);

/// The latest applied secret rotation of each set, as its version was
/// proposed (`v2`, `delivery:d2`); empty before any.
std::vector<std::string> active_rotations(connection& db);

/// The kid of the most recently applied rotation of the proof set, if any.
std::optional<std::string> active_proof_kid(connection& db);

/// Every kid stored proofs may have been signed with: those instances
/// recorded at their start (`record_signing_kid`) and those applied secret
/// rotations activated. Empty before migration 0015.
std::set<std::string> proof_signing_kids(connection& db);

/// Records `kid` as one this instance signs proofs with; done at start,
/// before the first proof. Nothing before migration 0015.
void record_signing_kid(connection& db, const std::string& kid);

/// Records `instance_id`'s key set (canonical `{kid: commitment}`, the other
/// sets' versions as `<set>:<kid>`) as
/// seen now, and answers the latest applied rotation of each set (as
/// active_rotations): one round trip for a proof actor's poll.
std::vector<std::string> report_proof_keys(connection& db, const std::string& instance_id,
                                           const std::string& key_set);

/// Withdraws a stopping instance's key set.
void forget_proof_keys(connection& db, const std::string& instance_id);

/// The instances seen within `within_ms` that could not sign with `kid`
/// under `commitment`, one line each ("instance X has no proof secret for
/// kid 'v2'"); `kid` as reported (`delivery:d2` for the other sets); empty when every one can. Forgets instances not seen for a day.
std::vector<std::string> rotation_problems(connection& db, const std::string& kid,
                                           const std::string& commitment, std::int32_t within_ms);

} // namespace ap::persistence
