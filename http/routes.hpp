#pragma once

#include <chrono>
#include <memory>

#include <caf/fwd.hpp>

#include "actors/directory.hpp"
#include "core/config.hpp"
#include "core/metrics.hpp"
#include "domain/proof.hpp"
#include "http/router.hpp"

namespace ap::http {

/// What the service's routes need: where to find actors, the registry to
/// render and the configuration.
struct route_context {
  caf::actor_system* system;
  actor_directory* directory;
  metrics::registry* registry;
  const service_config* config;
  std::shared_ptr<const domain::proof_keyring> keys;
};

/// Registers every route of the service (SPEC §4) on `r`.
void add_service_routes(router& r, route_context ctx);

/// Maps an error from an actor to its response through one table: the
/// service's `error_code`s to their statuses, a request timeout to 504, an
/// unavailable actor to 503, anything else to a 500 without internal text.
response response_for(const caf::error& err);

/// The HTTP status of a checkout's outcome (SPEC §4, §9).
int checkout_status(const checkout_outcome& outcome);

} // namespace ap::http
