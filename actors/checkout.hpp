#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "actors/actors.hpp"
#include "actors/directory.hpp"
#include "core/metrics.hpp"
#include "domain/checkout.hpp"
#include "domain/proof.hpp"

namespace ap {

/// What the checkout actor works with.
struct checkout_config {
  /// Signs new proofs with its active key.
  std::shared_ptr<const domain::proof_keyring> keys;
  /// The DELIVERY_KEY master key.
  std::string delivery_key;
  /// Every checkout is answered within this (REQUEST_TIMEOUT_MS).
  std::chrono::milliseconds deadline{5000};
};

struct checkout_job;

/// State of the checkout actor.
struct checkout_state {
  static constexpr const char* name = "checkout";
  /// Loaded from PostgreSQL on first use; the catalog changes only by migration.
  std::optional<domain::catalog> catalog;
  /// Checkouts not answered yet, by arrival (which is also deadline order).
  std::map<std::uint64_t, std::shared_ptr<checkout_job>> unanswered;
  std::uint64_t next_job = 0;
  /// Whether a deadline sweep is scheduled.
  bool sweeping = false;
};

/// The checkout pipeline (SPEC §4): prices the request, claims its
/// Idempotency-Key, charges the payment, posts the ledger entry, signs the
/// proof, issues the license, seals the delivery, and stores it all with its
/// outbox events in one transaction. A failure after the charge voids it
/// (and reverses the entry), so a failed checkout leaves nothing behind.
///
/// Each checkout has one deadline (`checkout_config::deadline`), not one
/// timer per step: a sweep a few times a second answers the overdue ones
/// with a timeout. A step that answers after that is still followed
/// through: a late charge or ledger entry is undone, a late store stands
/// (the order is committed; a retry with the same Idempotency-Key replays
/// it).
checkout_actor::behavior_type checkout(checkout_actor::stateful_pointer<checkout_state> self,
                                       checkout_config cfg, actor_directory* directory,
                                       metrics::registry* registry);

} // namespace ap
