#pragma once

#include <string>
#include <vector>

namespace ap::app {

/// `artifact-publisher serve`: runs the service until SIGTERM/SIGINT.
/// Returns the process exit code.
int serve();

/// `artifact-publisher check-config`: reads the configuration as `serve`
/// does and prints it (secrets as their lengths), or every problem found.
/// Returns 0 when `serve` would accept it, 2 otherwise.
int check_config();

/// `artifact-publisher migrate`: applies missing migrations and prints a
/// JSON report. Returns the process exit code.
int migrate();

/// `artifact-publisher requeue-dead-letters [--event-id ID]...`: clears the
/// dead-letter state of the named audit events (of every dead-lettered one
/// without --event-id), so the forwarder leases them again at once, and
/// prints `{"requeued": N}`. For after the cause of the Kernel's refusal is
/// fixed (docs/runbooks/audit-freshness.md). Returns the process exit code.
int requeue_dead_letters(const std::vector<std::string>& args);

} // namespace ap::app
