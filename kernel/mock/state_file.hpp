#pragma once

// The kernel-mock's --state file: one JSON line per change that took effect,
// appended and flushed before the answer goes out, so that a restart
// rebuilds the same Kernel. A line is one of two kinds:
//
// - an audit event, exactly as the Kernel answers it (AuditEvent); a state
//   file written before upgrades were kept holds only these;
// - an upgrade step that took effect, `{"upgradeStep":"propose"|"approve"|
//   "apply","atMs":…,"upgradeId":…,…}`: its input and the time the Kernel
//   took it.
//
// Upgrade steps are kept as steps, not as records, and replayed through the
// same upgrade_book operations with their recorded time: the multisig rules
// check them again (a signature that does not verify under the registry of
// this start refuses the file), and the restored records, timestamps
// included, are those the Kernel answered before the restart.

#include <string>

#include "domain/multisig.hpp"

namespace ap::kernel::mock {

struct mock_state;

/// The line of a proposal the Kernel took (`r` as `propose` returned it).
std::string proposed_line(const domain::upgrade_record& r);

/// The line of the approval `approve` just added to `r` (its last).
std::string approved_line(const domain::upgrade_record& r);

/// The line of an upgrade `apply` just applied.
std::string applied_line(const domain::upgrade_record& r);

/// Reads `file` (absent: empty) into `k`, audit events and upgrade steps
/// in their order. A line that does not verify or replay is refused: an
/// error log line names the file, the line number and why, and the result
/// is false.
bool load_state(mock_state& k, const std::string& file);

} // namespace ap::kernel::mock
