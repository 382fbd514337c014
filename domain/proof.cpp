#include "domain/proof.hpp"

#include <stdexcept>

#include "core/crypto.hpp"
#include "core/json.hpp"

namespace ap::domain {

proof_key derive_proof_key(const std::string& kid, const std::string& secret) {
  auto seed = crypto::hkdf_sha256(secret, "", "artifact-publisher proof ed25519 " + kid, 32);
  crypto::ed25519_signer signer{seed};
  auto public_key = signer.public_key();
  return proof_key{kid, secret, std::move(seed), std::move(public_key), std::move(signer)};
}

proof_keyring::proof_keyring(std::string active_kid,
                             const std::map<std::string, std::string>& secrets)
  : active_(std::move(active_kid)) {
  for (const auto& [kid, secret] : secrets)
    keys_.emplace(kid, derive_proof_key(kid, secret));
  if (!keys_.count(active_))
    throw std::invalid_argument("no secret for the active proof kid '" + active_ + "'");
}

bool proof_keyring::activate(const std::string& kid) {
  if (!keys_.count(kid))
    return false;
  active_ = kid;
  return true;
}

std::string key_commitment(const proof_key& key) {
  return crypto::sha256_hex(key.public_key);
}

std::string key_set_document(const proof_keyring& keys) {
  // std::map iterates in byte order: canonical as written.
  std::string out = "{";
  for (const auto& [kid, key] : keys.keys()) {
    if (out.size() > 1)
      out += ',';
    json::append_quoted(out, kid);
    out += ':';
    json::append_quoted(out, key_commitment(key));
  }
  out += '}';
  return out;
}

const proof_key* proof_keyring::find(const std::string& kid) const {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

signed_proof sign_proof(const proof_key& key, const rapidjson::Value& payload,
                        const std::string& issued_at) {
  return sign_canonical_proof(key, json::canonical(payload), issued_at);
}

signed_proof sign_canonical_proof(const proof_key& key, const std::string& canonical_payload,
                                  const std::string& issued_at) {
  auto digest = crypto::sha256(canonical_payload);
  signed_proof out;
  out.payload_hash = crypto::hex_encode(digest);
  out.proof_id = "proof_" + out.payload_hash.substr(0, 24);
  auto hmac = crypto::hmac_sha256_hex(key.secret, out.payload_hash);
  auto ed = crypto::base64_encode(key.signer.sign(digest));
  // Keys in byte order, so the record is canonical as written.
  std::string& r = out.record;
  r = "{\"algorithm\":\"hmac-sha256\",\"ed25519\":{\"kid\":";
  json::append_quoted(r, key.kid);
  r += ",\"signature\":";
  json::append_quoted(r, ed);
  r += "},\"issuedAt\":";
  json::append_quoted(r, issued_at);
  r += ",\"kid\":";
  json::append_quoted(r, key.kid);
  r += ",\"payload\":";
  r += canonical_payload;
  r += ",\"payloadHash\":\"" + out.payload_hash + "\",\"proofId\":\"" + out.proof_id
       + "\",\"signature\":\"" + hmac + "\"}";
  return out;
}

namespace {

verification fail(std::string reason) {
  return {false, std::move(reason)};
}

// The checks that need no secret; on success `digest` is SHA-256(payload).
verification check_payload(const rapidjson::Value& proof, const rapidjson::Value& payload,
                           std::string& digest) {
  if (!proof.IsObject())
    return fail("proof_malformed");
  if (!payload.IsObject())
    return fail("payload_malformed");
  if (json::string_member(proof, "algorithm") != "hmac-sha256")
    return fail("unsupported_algorithm");
  std::string canonical_payload;
  try {
    canonical_payload = json::canonical(payload);
  } catch (const std::invalid_argument&) {
    return fail("payload_malformed");
  }
  if (auto inner = proof.FindMember("payload"); inner != proof.MemberEnd()) {
    try {
      if (json::canonical(inner->value) != canonical_payload)
        return fail("payload_mismatch");
    } catch (const std::invalid_argument&) {
      return fail("payload_mismatch");
    }
  }
  digest = crypto::sha256(canonical_payload);
  auto hash = crypto::hex_encode(digest);
  if (!crypto::constant_time_equal(json::string_member(proof, "payloadHash"), hash))
    return fail("payload_hash_mismatch");
  if (json::string_member(proof, "proofId") != "proof_" + hash.substr(0, 24))
    return fail("proof_id_mismatch");
  return {true, {}};
}

verification check_ed25519(const rapidjson::Value& proof, const std::string& digest,
                           const std::string& public_key) {
  auto kid = json::string_member(proof, "kid");
  auto ed = proof.FindMember("ed25519");
  if (ed == proof.MemberEnd() || !ed->value.IsObject() || json::string_member(ed->value, "kid") != kid)
    return fail("bad_ed25519_signature");
  auto sig = crypto::base64_decode(json::string_member(ed->value, "signature"));
  if (!sig || !crypto::ed25519_verify(public_key, digest, *sig))
    return fail("bad_ed25519_signature");
  return {true, {}};
}

} // namespace

verification verify_proof_offline(const rapidjson::Value& proof, const rapidjson::Value& payload,
                                  const std::string& public_key) {
  std::string digest;
  if (auto v = check_payload(proof, payload, digest); !v.valid)
    return v;
  return check_ed25519(proof, digest, public_key);
}

verification verify_proof(const proof_keyring& keys, const rapidjson::Value& proof,
                          const rapidjson::Value& payload) {
  std::string digest;
  if (auto v = check_payload(proof, payload, digest); !v.valid)
    return v;
  auto kid = json::string_member(proof, "kid");
  const auto* key = keys.find(kid);
  if (!key)
    return fail("unknown_kid");
  auto hash = crypto::hex_encode(digest);
  auto expected = crypto::hmac_sha256_hex(key->secret, hash);
  if (!crypto::constant_time_equal(json::string_member(proof, "signature"), expected))
    return fail("bad_signature");
  return check_ed25519(proof, digest, key->public_key);
}

std::string public_keys_document(const proof_keyring& keys) {
  std::string out = "{\"keys\":[";
  bool first = true;
  auto active = keys.active_kid();
  for (const auto& [kid, key] : keys.keys()) {
    if (!first)
      out += ',';
    first = false;
    out += "{\"active\":";
    out += kid == active ? "true" : "false";
    out += ",\"algorithm\":\"ed25519\",\"kid\":";
    json::append_quoted(out, kid);
    out += ",\"publicKey\":";
    json::append_quoted(out, crypto::base64_encode(key.public_key));
    out += '}';
  }
  out += "]}";
  return out;
}

} // namespace ap::domain
