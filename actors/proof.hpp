#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "domain/proof.hpp"
#include "domain/secret_versions.hpp"

namespace ap {

/// How the proof actor runs.
struct proof_config {
  /// Every configured proof key (PROOF_SECRET(S)), with the kid that signs
  /// until the stored active kid says otherwise.
  domain::proof_keyring keys;
  /// Names this instance's key set in PostgreSQL.
  std::string instance_id = "local";
  /// How often the key set is reported and the active kid read: a rotation
  /// applied on another instance is followed within this (SPEC §11: 5 s).
  std::chrono::milliseconds poll_interval{1000};
  /// A rotation is checked against the instances whose key set was reported
  /// within this.
  std::chrono::milliseconds live_within{10000};
  /// The versions of the delivery, Stripe and Kernel-token secrets, shared
  /// with the actors that use them: reported and checked like the proof
  /// keys, and moved to each set's stored active kid. May be null (tests
  /// of the proof set alone).
  std::shared_ptr<domain::secret_versions> secrets;
  /// Where the key sets and the active kid are stored (looked up at each
  /// use, so a restarted database actor is picked up).
  std::function<proof_store_actor()> store;
};

/// State of the proof actor.
struct proof_state {
  static constexpr const char* name = "proof";
  /// The stored active kid last seen, configured or not; a change is logged once.
  std::string stored_active;
  /// The stored active kid of each other set last seen.
  std::map<domain::secret_set, std::string> stored_sets;
  /// A poll is waiting for the database.
  bool polling = false;
};

/// The proof actor (SPEC §5, §11): owns the keyring. Signs each checkout's
/// proof with the active key, verifies proofs for `POST /api/proof/verify`,
/// serves `GET /api/proof/keys`, and checks a proposed secret rotation
/// against its own keys and the key set every live instance reported. Every
/// `poll_interval` it reports its key set and reads the active version of
/// each secret set from PostgreSQL (the last applied rotation of each),
/// switching its keyring, and the shared `secrets` for the other sets, to it
/// when it is configured; an applied rotation on this instance switches it
/// at once. The same check and switch serve the delivery, Stripe and
/// Kernel-token sets (SPEC §12), whose users read `secrets`. Reports
/// `ap_proof_active_kid_unconfigured`, `ap_secret_active_kid_unconfigured`
/// by set (1 while the stored active version has no secret here) and
/// `ap_proofs_signed_total`.
proof_actor::behavior_type proof(proof_actor::stateful_pointer<proof_state> self, proof_config cfg,
                                 metrics::registry* registry);

} // namespace ap
