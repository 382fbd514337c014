#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/metrics.hpp"
#include "domain/proof.hpp"
#include "http/errors.hpp"
#include "http/router.hpp"

namespace ap {
class gateway;
}

namespace ap::http {

/// How long a multisig step may take: database check, Kernel call,
/// database write (the one-shot route: several of them). The longest wait
/// of any route.
constexpr auto multisig_timeout = std::chrono::milliseconds{15000};

/// What the service's routes need: the way to the actors, the registry to
/// render and the configuration.
struct route_context {
  const gateway* actors;
  metrics::registry* registry;
  const service_config* config;
  /// Found at start and shown by /health until the next start (an active
  /// or signing proof kid without a secret, outside production).
  std::vector<std::string> degraded_reasons = {};
};

/// Registers every route of the service (SPEC §4) on `r`, area by area.
void add_service_routes(router& r, route_context ctx);

/// Health, readiness, metrics (SPEC §8) and the OpenAPI document.
void add_operations_routes(router& r, const route_context& ctx);

/// Checkout, the order and its parts, and the sandbox (SPEC §4).
void add_order_routes(router& r, const route_context& ctx);

/// Proof verification and the public keys (SPEC §5).
void add_proof_routes(router& r, const route_context& ctx);

/// Multisig upgrades (SPEC §7).
void add_multisig_routes(router& r, const route_context& ctx);

} // namespace ap::http
