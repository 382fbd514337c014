#pragma once

// Proofs of sale (SPEC §5): HMAC-SHA256 over the payload hash plus an Ed25519
// signature by a key derived from the same secret, named by a kid.

#include <map>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>
#include <rapidjson/document.h>

#include "core/crypto.hpp"

namespace ap::domain {

/// One proof secret and the Ed25519 key derived from it.
struct proof_key {
  std::string kid;
  std::string secret;
  /// HKDF-SHA256(secret, salt = "", info = "artifact-publisher proof ed25519 " + kid).
  std::string ed25519_seed;
  /// The raw 32-byte public key.
  std::string public_key;
  /// Signs with the key of `ed25519_seed`.
  crypto::ed25519_signer signer;
};

/// Derives the key pair of `kid` from `secret`.
proof_key derive_proof_key(const std::string& kid, const std::string& secret);

/// What a multisig rotation commits to for a proof key (its `binaryHash`):
/// the hex SHA-256 of the raw Ed25519 public key.
std::string key_commitment(const proof_key& key);

/// Every configured proof key and which one signs new proofs. A plain
/// value: the proof actor owns the one the service signs with.
class proof_keyring {
public:
  /// No keys (signing with it is a defect).
  proof_keyring() = default;
  /// `secrets` maps kid → secret and must contain `active_kid`.
  proof_keyring(std::string active_kid, const std::map<std::string, std::string>& secrets);
  /// The key that signs new proofs.
  const proof_key& active() const { return keys_.at(active_); }
  /// The key of `kid`, or nullptr when it is not configured.
  const proof_key* find(const std::string& kid) const;
  const std::map<std::string, proof_key>& keys() const { return keys_; }
  const std::string& active_kid() const { return active_; }
  /// Makes `kid` the signing key (a secret rotation); false when it is not
  /// configured. Proofs under other kids stay verifiable.
  bool activate(const std::string& kid);

private:
  std::string active_;
  std::map<std::string, proof_key> keys_;
};

/// The key set an instance can sign and verify with, as canonical JSON
/// `{kid: commitment}`: what a rotation proposed on any instance is checked
/// against.
std::string key_set_document(const proof_keyring& keys);

/// A signed proof: its parts and the record as canonical JSON.
struct signed_proof {
  std::string proof_id;
  std::string payload_hash;
  std::string record;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, signed_proof& x) {
  return f(caf::meta::type_name("signed_proof"), x.proof_id, x.payload_hash, x.record);
}

/// Signs the canonical form of `payload` (an object) with `key`.
signed_proof sign_proof(const proof_key& key, const rapidjson::Value& payload,
                        const std::string& issued_at);

/// Signs `canonical_payload`, the canonical JSON of a payload object.
signed_proof sign_canonical_proof(const proof_key& key, const std::string& canonical_payload,
                                  const std::string& issued_at);

/// The outcome of a verification; `reason` says which check failed.
struct verification {
  bool valid = false;
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, verification& x) {
  return f(caf::meta::type_name("verification"), x.valid, x.reason);
}

/// Verifies `proof` (a proof record) against `payload`: the hash, the
/// proof id, the HMAC and the Ed25519 signature under the kid it names.
verification verify_proof(const proof_keyring& keys, const rapidjson::Value& proof,
                          const rapidjson::Value& payload);

/// Verifies offline, without the secret: the hash, the proof id and the
/// Ed25519 signature under `public_key` (raw 32 bytes, as published by
/// GET /api/proof/keys for the proof's kid).
verification verify_proof_offline(const rapidjson::Value& proof, const rapidjson::Value& payload,
                                  const std::string& public_key);

/// `{"keys":[{kid, algorithm:"ed25519", publicKey, active}]}` as canonical JSON.
std::string public_keys_document(const proof_keyring& keys);

} // namespace ap::domain
