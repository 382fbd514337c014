#pragma once

#include <chrono>
#include <optional>

#include <caf/fwd.hpp>

#include "actors/actors.hpp"
#include "actors/audit_forwarder.hpp"
#include "actors/checkout.hpp"
#include "actors/database.hpp"
#include "actors/multisig.hpp"
#include "actors/proof.hpp"
#include "actors/reconciler.hpp"
#include "actors/stripe_connector.hpp"
#include "actors/directory.hpp"
#include "actors/janitor.hpp"
#include "actors/kernel_client.hpp"
#include "actors/supervisor.hpp"
#include "core/metrics.hpp"

namespace ap {

/// What the actor graph is built from.
struct node_options {
  database_config database;
  supervisor_config supervision;
  checkout_config checkout;
  /// DETERMINISTIC_SALT: seeds the payment and ledger mocks' identifiers.
  std::string deterministic_salt;
  std::string ledger_id;
  /// The Stripe connector's settings; unset: the embedded payment mock.
  std::optional<stripe_config> stripe;
  /// Where the Kernel is, how to reach it, and the source its audit events name.
  kernel_client_config kernel;
  multisig_config multisig;
  /// The proof keys and how the active kid is followed (its store lookup is
  /// filled in by start_node).
  proof_config proof;
  /// How the audit forwarder runs (its outbox and kernel lookups are filled
  /// in by start_node).
  audit_forwarder_config forwarder;
  /// How unfinished checkouts are taken over (SPEC §9).
  reconciler_config reconciler;
  /// How long idempotency keys and delivered outbox rows are kept.
  janitor_config janitor;
};

/// Prepares an actor system configuration for the service: the `ap` error
/// category, CAF's own logger silenced (the service logs JSON lines itself),
/// `threads` scheduler threads (0: CAF's default, one per core), and idle
/// workers that wait for their next message without a spell of timed polls.
void configure_actor_system(caf::actor_system_config& cfg, std::size_t threads = 0);

/// Builds the actor graph: the supervisor with every domain actor as its
/// child, each published in `dir` by the time this returns (so a server
/// that listens next never finds a handle unset). Stop it with an exit message
/// (`caf::exit_reason::user_shutdown`), which the supervisor passes on.
supervisor_actor start_node(caf::actor_system& sys, node_options opts, actor_directory& dir,
                            metrics::registry& registry);

/// SPEC §8: on SIGTERM, flushes what the outbox can. The forwarder is woken
/// and this waits, at most `limit`, until nothing is pending; what remains
/// stays in the outbox for the next start or another instance.
void flush_outbox(caf::actor_system& sys, actor_directory& dir, std::chrono::milliseconds limit);

/// Stops the actor graph started by start_node and waits for every actor.
void stop_node(caf::actor_system& sys, const supervisor_actor& root);

} // namespace ap
