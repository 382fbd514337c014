#pragma once

// The versions of the delivery, processor and Kernel-token secrets (SPEC
// §12) and which one is active, shared by the actors that use them.

#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "domain/secret_commitment.hpp"

namespace ap::domain {

/// One configured version of a secret.
struct secret_version {
  std::string kid;
  /// As configured: the secret, or for a Kernel token possibly `@file`.
  std::string value;
};

/// Every configured version of the delivery, Stripe and Kernel-token sets
/// with the commitment of each, and the active kid of each set. The proof
/// actor moves the active kid when a rotation is applied (here or, through
/// PostgreSQL, on another instance); the checkout actor, the Stripe
/// connector and the Kernel client read the active version at each use, so
/// everything made after a rotation uses the new version. Thread-safe. The
/// proof set is not held here: the proof actor owns its keyring.
class secret_versions {
public:
  /// Adds a version with the commitment to its value (what a rotation's
  /// binaryHash must be); the first version added to a set is its active
  /// one until `activate` says otherwise.
  void add(secret_set set, const std::string& kid, const std::string& value,
           const std::string& commitment);

  /// Makes `kid` the active version of `set`; false (nothing changes) when
  /// it is not configured here.
  bool activate(secret_set set, const std::string& kid);

  /// The active version of `set`; nullopt when the set has none configured.
  std::optional<secret_version> active(secret_set set) const;

  /// The commitment to version `kid` of `set`; nullopt when not configured.
  std::optional<std::string> commitment(secret_set set, const std::string& kid) const;

  /// `"<set>:<kid>":"<commitment>"` members for every version held, comma
  /// separated, in a stable order: what this instance reports beside its
  /// proof keys so that a rotation is checked against every live instance.
  std::string key_set_members() const;

private:
  struct held {
    std::string value;
    std::string commitment;
  };
  struct set_versions {
    std::map<std::string, held> versions;
    std::string active;
  };
  mutable std::mutex mutex_;
  std::map<secret_set, set_versions> sets_;
};

} // namespace ap::domain
