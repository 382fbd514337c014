#include "domain/delivery.hpp"

#include "core/crypto.hpp"
#include "core/json.hpp"

namespace ap::domain {

std::string delivery_key_id(const rapidjson::Value& delivery) {
  if (delivery.IsObject()) {
    auto found = delivery.FindMember("keyId");
    if (found != delivery.MemberEnd() && found->value.IsString())
      return found->value.GetString();
  }
  return std::string{legacy_delivery_kid};
}

void name_delivery_key_id(rapidjson::Value& delivery,
                          rapidjson::Document::AllocatorType& alloc) {
  if (!delivery.IsObject() || delivery.HasMember("keyId"))
    return;
  delivery.AddMember("keyId",
                     rapidjson::Value{legacy_delivery_kid.data(),
                                      static_cast<rapidjson::SizeType>(legacy_delivery_kid.size()),
                                      alloc},
                     alloc);
}

std::string result_naming_delivery_key(std::string result) {
  // Text first: only results stored before deliveries named their key are parsed.
  if (result.find("\"delivery\":{") == std::string::npos
      || result.find("\"keyId\":") != std::string::npos)
    return result;
  rapidjson::Document doc;
  if (json::parse_strict(result, doc) || !doc.IsObject())
    return result;
  auto delivery = doc.FindMember("delivery");
  if (delivery == doc.MemberEnd())
    return result;
  name_delivery_key_id(delivery->value, doc.GetAllocator());
  return json::canonical(doc);
}

std::string delivery_key(const std::string& master_key, const std::string& order_id) {
  return crypto::hkdf_sha256(master_key, order_id, "artifact-publisher delivery v1", 32);
}

sealed_delivery seal_delivery(const std::string& master_key, const std::string& order_id,
                              const std::string& license_id, const std::string& plaintext,
                              const std::string& buyer_public_key_pem) {
  sealed_delivery out;
  auto key = delivery_key(master_key, order_id);
  auto nonce = crypto::public_random_bytes(12);
  out.aad = order_id + "|" + license_id;
  out.nonce_b64 = crypto::base64_encode(nonce);
  out.cipher_text_b64 =
    crypto::base64_encode(crypto::aes256gcm_encrypt(key, nonce, plaintext, out.aad));
  if (buyer_public_key_pem.empty()) {
    out.key_mode = "license";
    out.license_key_b64 = crypto::base64_encode(key);
  } else {
    out.key_mode = "buyer";
    out.wrapped_key_b64 =
      crypto::base64_encode(crypto::rsa_oaep_sha256_encrypt(buyer_public_key_pem, key));
  }
  return out;
}

std::string open_delivery(const std::string& key, const std::string& nonce_b64,
                          const std::string& cipher_text_b64, const std::string& aad) {
  auto nonce = crypto::base64_decode(nonce_b64);
  auto cipher = crypto::base64_decode(cipher_text_b64);
  if (!nonce || !cipher)
    throw crypto::crypto_error("nonce and cipherText must be base64");
  return crypto::aes256gcm_decrypt(key, *nonce, *cipher, aad);
}

} // namespace ap::domain
