#pragma once

#include <string>
#include <vector>

namespace ap::app {

/// `artifact-publisher serve`: runs the service until SIGTERM/SIGINT.
/// Returns the process exit code.
int serve();

/// `artifact-publisher migrate`: applies missing migrations and prints a
/// JSON report. Returns the process exit code.
int migrate();

} // namespace ap::app
