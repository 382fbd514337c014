#pragma once

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
};

/// State of the checkout actor.
struct checkout_state {
  static constexpr const char* name = "checkout";
  /// Loaded from PostgreSQL on first use; the catalog changes only by migration.
  std::optional<domain::catalog> catalog;
};

/// The checkout pipeline (SPEC §4): prices the request, claims its
/// Idempotency-Key, charges the payment, posts the ledger entry, signs the
/// proof, issues the license, seals the delivery, and stores it all with its
/// outbox events in one transaction. A failure after the charge voids it
/// (and reverses the entry), so a failed checkout leaves nothing behind.
checkout_actor::behavior_type checkout(checkout_actor::stateful_pointer<checkout_state> self,
                                       checkout_config cfg, actor_directory* directory,
                                       metrics::registry* registry);

} // namespace ap
