#pragma once

// The SQL of multisig upgrades. Each step runs the domain rules
// (domain/multisig.hpp) on the stored state under a transaction-scoped
// advisory lock, so concurrent steps, on one instance or several, are
// decided one at a time.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "domain/multisig.hpp"

namespace ap::persistence {

class connection;

/// One step, checked (`write` false) or checked and recorded.
struct multisig_command {
  /// "propose", "approve", "apply" or "get".
  std::string op;
  domain::upgrade_proposal proposal;
  std::string upgrade_id;
  std::string approver;
  std::string signature;
  std::string applied_by;
  std::int64_t now_ms = 0;
  /// For "apply": the Kernel's appliedAt.
  std::int64_t applied_at_ms = 0;
  bool write = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, multisig_command& x) {
  return f(caf::meta::type_name("multisig_command"), x.op, x.proposal, x.upgrade_id, x.approver,
           x.signature, x.applied_by, x.now_ms, x.applied_at_ms, x.write);
}

/// The outcome of a step: `status` 0 and the record, or a refusal.
struct multisig_outcome {
  std::int32_t status = 0;
  std::string code;
  std::string message;
  std::string field;
  domain::upgrade_record record;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, multisig_outcome& x) {
  return f(caf::meta::type_name("multisig_outcome"), x.status, x.code, x.message, x.field, x.record);
}

/// Runs `cmd` against the stored upgrades with `registry` (approver id →
/// raw public key) and `threshold`. With `cmd.write`, a successful step is
/// recorded with its audit event (`upgrade.proposed|approved|applied`, and
/// `proof_key.activated` for an applied secret rotation) in one
/// transaction. A refused approval or apply of an existing upgrade records
/// `upgrade.rejected`, checked or not.
multisig_outcome run_multisig(connection& db, const multisig_command& cmd,
                              const std::map<std::string, std::string>& registry, int threshold);

/// The kid of the most recently applied secret rotation, if any.
std::optional<std::string> active_proof_kid(connection& db);

} // namespace ap::persistence
