#pragma once

// Encrypted delivery (SPEC §5): a per-order AES-256-GCM key from HKDF, the
// key released either in the license or wrapped to the buyer's RSA key.

#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace ap::domain {

/// The kid of a lone DELIVERY_KEY, and the one a stored delivery that names
/// none was sealed with (before deliveries recorded `keyId`, SPEC §12).
constexpr std::string_view legacy_delivery_kid = "d1";

/// A delivery master key and the kid that names it (SPEC §12).
struct delivery_master {
  std::string kid;
  std::string key;
};

/// The kid a delivery record was sealed under: its `keyId`, or
/// legacy_delivery_kid when it has none.
std::string delivery_key_id(const rapidjson::Value& delivery);

/// A stored checkout result (JSON text) whose delivery names its master
/// key: `result` itself unless it has a delivery without `keyId` (stored
/// before deliveries named their key), which then reads the legacy kid.
std::string result_naming_delivery_key(std::string result);

/// Gives a delivery record without `keyId` the legacy kid, so that every
/// delivery read back names its master key; leaves any other value alone.
void name_delivery_key_id(rapidjson::Value& delivery,
                          rapidjson::Document::AllocatorType& alloc);

/// K = HKDF-SHA256(IKM = delivery key, salt = orderId,
/// info = "artifact-publisher delivery v1", 32 bytes).
std::string delivery_key(const std::string& master_key, const std::string& order_id);

/// A sealed delivery's fields, all encodings applied.
struct sealed_delivery {
  std::string nonce_b64;
  std::string cipher_text_b64;
  std::string aad;
  /// "license" or "buyer".
  std::string key_mode;
  /// base64(K) in license mode, empty otherwise.
  std::string license_key_b64;
  /// base64(RSA-OAEP(K)) in buyer mode, empty otherwise.
  std::string wrapped_key_b64;
};

/// Encrypts `plaintext` for the order under K with a fresh random nonce and
/// AAD `orderId|licenseId`; wraps K to `buyer_public_key_pem` when given.
sealed_delivery seal_delivery(const std::string& master_key, const std::string& order_id,
                              const std::string& license_id, const std::string& plaintext,
                              const std::string& buyer_public_key_pem);

/// Decrypts a delivery with K (raw 32 bytes); throws crypto::crypto_error.
std::string open_delivery(const std::string& key, const std::string& nonce_b64,
                          const std::string& cipher_text_b64, const std::string& aad);

} // namespace ap::domain
