#pragma once

// Every typed actor interface of the service. Read with atoms.hpp, this is
// the whole message protocol between actors.

#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "persistence/db_status.hpp"

namespace ap {

/// The database facade: the one handle through which actors reach
/// PostgreSQL. It spreads requests over detached workers, each owning one
/// connection, so no libpq call ever runs on a scheduler thread.
using database_actor = caf::typed_actor<
  // Round trip to PostgreSQL plus the schema version: readiness.
  caf::replies_to<atoms::ping_atom>::with<persistence::db_status>>;

/// One database worker: a detached actor that owns one connection. Same
/// interface as the facade, which delegates to it.
using database_worker_actor = database_actor;

/// The supervisor: spawns the domain actors, monitors them, and starts a
/// crashed one again after a backoff, counting each restart.
using supervisor_actor = caf::typed_actor<
  // Starts the named child again (the supervisor sends it to itself once
  // the backoff delay has passed).
  caf::reacts_to<atoms::restart_atom, std::string>>;

} // namespace ap
