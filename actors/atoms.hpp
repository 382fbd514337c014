#pragma once

// Every atom of the message protocol (CAF 0.17: at most 10 characters).

#include <caf/atom.hpp>

namespace ap::atoms {

/// Asks for a liveness/readiness answer.
using ping_atom = caf::atom_constant<caf::atom("ping")>;

/// Tells the supervisor to start a child again after its backoff.
using restart_atom = caf::atom_constant<caf::atom("restart")>;

} // namespace ap::atoms
