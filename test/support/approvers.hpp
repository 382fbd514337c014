#pragma once

// Approvers and signed upgrade proposals for the tests that drive the
// multisig flow through HTTP: each approver's Ed25519 seed is its name's
// first letter, repeated.

#include <map>
#include <string>
#include <vector>

#include "core/crypto.hpp"
#include "domain/multisig.hpp"

namespace ap::test {

/// The seed of approver `who`.
inline std::string seed_of(const std::string& who) {
  return std::string(32, who[0]);
}

/// The registered public key of approver `who` (base64).
inline std::string public_key_of(const std::string& who) {
  return crypto::base64_encode(crypto::ed25519_public_key(seed_of(who)));
}

/// An APPROVERS registry (`[{id, publicKey}]`).
inline std::string registry(const std::map<std::string, std::string>& keys) {
  std::string out = "[";
  for (const auto& [id, key] : keys)
    out += (out.size() > 1 ? "," : "") + std::string{R"({"id":")"} + id + R"(","publicKey":")" + key + "\"}";
  return out + "]";
}

/// alice, bob and carol.
inline std::string standard_registry() {
  return registry({{"alice", public_key_of("alice")}, {"bob", public_key_of("bob")},
                   {"carol", public_key_of("carol")}});
}

/// A proposal with its payloadHash and upgradeId, its request body, and
/// each approver's approval of it.
struct upgrade {
  domain::upgrade_proposal p;
  std::string hash;
  std::string id;
  explicit upgrade(std::string version, std::vector<std::string> approvers = {"alice", "bob"},
                   std::string kind = "upgrade", std::string binary = std::string(64, 'e')) {
    p.version = std::move(version);
    p.binary_hash = std::move(binary);
    p.approvers = std::move(approvers);
    p.kind = std::move(kind);
    hash = domain::upgrade_payload_hash(p);
    id = domain::upgrade_id_for(hash);
  }
  std::string body() const {
    std::string out = R"({"version":")" + p.version + R"(","binaryHash":")" + p.binary_hash
                      + R"(","kind":")" + p.kind + R"(","approvers":[)";
    for (std::size_t i = 0; i < p.approvers.size(); ++i)
      out += (i ? "," : "") + std::string{"\""} + p.approvers[i] + "\"";
    return out + "]}";
  }
  std::string signature(const std::string& who, const std::string& over_hash = {},
                        const std::string& over_id = {}) const {
    return crypto::base64_encode(crypto::ed25519_sign(
      seed_of(who), domain::approval_message(over_id.empty() ? id : over_id,
                                             over_hash.empty() ? hash : over_hash, who)));
  }
  std::string approval(const std::string& who, const std::string& sig) const {
    return R"({"approver":")" + who + R"(","signature":")" + sig + "\"}";
  }
};

} // namespace ap::test
