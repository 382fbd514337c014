#pragma once

// Proofs of sale (SPEC §5): HMAC-SHA256 over the payload hash plus an Ed25519
// signature by a key derived from the same secret, named by a kid.

#include <map>
#include <mutex>
#include <string>
#include <vector>

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

/// Every configured proof key and which one signs new proofs.
class proof_keyring {
public:
  /// `secrets` maps kid → secret and must contain `active_kid`.
  proof_keyring(std::string active_kid, const std::map<std::string, std::string>& secrets);
  /// The key that signs new proofs. Thread-safe.
  const proof_key& active() const;
  /// The key of `kid`, or nullptr when it is not configured.
  const proof_key* find(const std::string& kid) const;
  const std::map<std::string, proof_key>& keys() const { return keys_; }
  std::string active_kid() const;
  /// Makes `kid` the signing key (a secret rotation); false when it is not
  /// configured. Proofs under other kids stay verifiable. Thread-safe.
  bool activate(const std::string& kid);

private:
  mutable std::mutex mutex_;
  std::string active_;
  std::map<std::string, proof_key> keys_;
};

/// A signed proof: its parts and the record as canonical JSON.
struct signed_proof {
  std::string proof_id;
  std::string payload_hash;
  std::string record;
};

/// Signs the canonical form of `payload` (an object) with `key`.
signed_proof sign_proof(const proof_key& key, const rapidjson::Value& payload,
                        const std::string& issued_at);

/// The outcome of a verification; `reason` says which check failed.
struct verification {
  bool valid = false;
  std::string reason;
};

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
