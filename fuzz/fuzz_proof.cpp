// Proof verification with an attacker-controlled proof record and payload.
// Input: the proof document, a NUL byte, the payload document; without a
// NUL the proof's own "payload" member is the payload, as clients send it.
//
// Properties: verification never crashes; a proof that verifies carries
// exactly the Ed25519 signature the key would have produced (nobody but the
// key holder can make one); and a known-good proof stops verifying when
// any byte of its signature is changed (index and XOR mask taken from the
// first two input bytes).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/crypto.hpp"
#include "fuzz/property.hpp"
#include "core/json.hpp"
#include "domain/proof.hpp"

namespace {

using namespace ap;

using ap::fuzz::violated;

// The unit tests' secret and rotation layout: v1 signed the pinned vector,
// v2 is active.
const std::string vector_secret = "proof-vector-secret-0123456789abcdef";

// The payload of the unit tests' pinned proof vector.
constexpr std::string_view fixed_payload =
  R"({"currency":"usd","customerId":"cust-vector","financeEntry":"fin_000000000000000000000001",)"
  R"("items":[{"amount":450,"quantity":1,"sku":"artifact-compliance","unitAmount":450},)"
  R"({"amount":2400,"quantity":2,"sku":"creator-basic","unitAmount":1200}],)"
  R"("orderId":"order_000000000000000000000001","paymentId":"pay_000000000000000000000001","total":2850})";

struct fixture {
  domain::proof_keyring keys{"v2", {{"v1", vector_secret}, {"v2", vector_secret + "-rotated"}}};
  rapidjson::Document payload;
  rapidjson::Document proof;
  std::string signature; // raw Ed25519 bytes of `proof`
  // Which (byte index, XOR mask) pairs have been tried: each costs two
  // signature checks, so none is repeated.
  std::vector<bool> flips_tried = std::vector<bool>(64 * 256, false);

  fixture() {
    if (json::parse_strict(fixed_payload, payload))
      violated("fixed payload does not parse");
    auto signed_proof = domain::sign_proof(*keys.find("v1"), payload, "2026-01-01T00:00:00.000Z");
    if (json::parse_strict(signed_proof.record, proof))
      violated("a signed proof record does not parse");
    auto decoded = crypto::base64_decode(ap::json::string_member(proof["ed25519"], "signature"));
    if (!decoded || decoded->size() != 64)
      violated("a signed proof carries no 64-byte Ed25519 signature");
    signature = *decoded;
    if (!domain::verify_proof(keys, proof, payload).valid)
      violated("a freshly signed proof does not verify");
    if (!domain::verify_proof_offline(proof, payload, keys.find("v1")->public_key).valid)
      violated("a freshly signed proof does not verify offline");
  }
};

fixture& state() {
  static fixture f;
  return f;
}

void check_signature_flip(fixture& f, std::uint8_t index_byte, std::uint8_t mask) {
  auto index = index_byte % 64u;
  if (mask == 0 || f.flips_tried[index * 256 + mask])
    return;
  f.flips_tried[index * 256 + mask] = true;
  auto flipped = f.signature;
  flipped[index] = static_cast<char>(static_cast<std::uint8_t>(flipped[index]) ^ mask);
  rapidjson::Document tampered;
  tampered.CopyFrom(f.proof, tampered.GetAllocator());
  tampered["ed25519"]["signature"] =
    json::string_value(crypto::base64_encode(flipped), tampered.GetAllocator());
  if (domain::verify_proof(f.keys, tampered, f.payload).valid)
    violated("a proof with a changed signature byte verifies");
  if (domain::verify_proof_offline(tampered, f.payload, f.keys.find("v1")->public_key).valid)
    violated("a proof with a changed signature byte verifies offline");
}

// A proof that verified must carry the one signature the named key makes
// over SHA-256 of the canonical payload.
void check_genuine(const domain::proof_key& key, const rapidjson::Value& proof,
                   const rapidjson::Value& payload) {
  auto digest = crypto::sha256(json::canonical(payload));
  auto expected = crypto::ed25519_sign(key.ed25519_seed, digest);
  auto carried = crypto::base64_decode(ap::json::string_member(proof["ed25519"], "signature"));
  if (!carried || *carried != expected)
    violated("a proof verified with a signature its key did not make");
  if (ap::json::string_member(proof, "signature")
      != crypto::hmac_sha256_hex(key.secret, crypto::hex_encode(digest)))
    violated("a proof verified with an HMAC its secret did not make");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& f = state();
  if (size >= 2)
    check_signature_flip(f, data[0], data[1]);

  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto split = input.find('\0');
  rapidjson::Document proof;
  if (json::parse_strict(input.substr(0, split), proof))
    return 0;
  rapidjson::Document separate_payload;
  const rapidjson::Value* payload = nullptr;
  if (split != std::string_view::npos) {
    if (json::parse_strict(input.substr(split + 1), separate_payload))
      return 0;
    payload = &separate_payload;
  } else if (proof.IsObject() && proof.HasMember("payload")) {
    payload = &proof["payload"];
  } else {
    return 0;
  }

  auto online = domain::verify_proof(f.keys, proof, *payload);
  if (online.valid)
    check_genuine(*f.keys.find(ap::json::string_member(proof, "kid")), proof, *payload);

  // Offline, a verifier picks the public key by the kid the proof names.
  const auto* named = f.keys.find(ap::json::string_member(proof, "kid"));
  const auto& key = named ? *named : f.keys.active();
  auto offline = domain::verify_proof_offline(proof, *payload, key.public_key);
  if (offline.valid) {
    auto digest = crypto::sha256(json::canonical(*payload));
    auto carried = crypto::base64_decode(ap::json::string_member(proof["ed25519"], "signature"));
    if (!carried || *carried != crypto::ed25519_sign(key.ed25519_seed, digest))
      violated("a proof verified offline with a signature its key did not make");
  }
  // Online verification checks everything offline does, and the HMAC.
  if (online.valid && !offline.valid)
    violated("a proof verifies online but not offline under the same key");
  return 0;
}
