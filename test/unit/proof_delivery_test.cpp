// Proofs pinned by a fixed vector, and deliveries opened with OpenSSL — an
// AES-GCM and RSA-OAEP implementation that is not this project's code.
#include <boost/test/unit_test.hpp>

#include <memory>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/delivery.hpp"
#include "domain/order.hpp"
#include "domain/proof.hpp"

using namespace ap;
using namespace ap::domain;

namespace {

const std::string vector_secret = "proof-vector-secret-0123456789abcdef";

// The proof of a fixed order under a fixed secret. The expected values were
// computed outside this project (Python's hashlib/hmac for the hash, HMAC and
// HKDF seed; the OpenSSL command line for the Ed25519 signature and key).
struct fixed_order {
  checkout_request req;
  quote q;
  charge_result payment;
  journal_entry entry;
  fixed_order() {
    req.customer_id = "cust-vector";
    q.currency = "usd";
    q.items = {{"creator-basic", 2, 1200, 2400}, {"artifact-compliance", 1, 450, 450}};
    std::sort(q.items.begin(), q.items.end(),
              [](const auto& a, const auto& b) { return a.sku < b.sku; });
    q.total = 2850;
    payment.payment_id = "pay_000000000000000000000001";
    entry.entry_id = "fin_000000000000000000000001";
  }
};

std::string openssl_gcm_decrypt(const std::string& key, const std::string& nonce,
                                const std::string& cipher_and_tag, const std::string& aad) {
  BOOST_REQUIRE(cipher_and_tag.size() >= 16u);
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx{EVP_CIPHER_CTX_new(),
                                                                      EVP_CIPHER_CTX_free};
  auto bytes = [](const std::string& s) { return reinterpret_cast<const unsigned char*>(s.data()); };
  BOOST_REQUIRE(EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) == 1);
  BOOST_REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                                    nullptr)
                == 1);
  BOOST_REQUIRE(EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, bytes(key), bytes(nonce)) == 1);
  int len = 0;
  BOOST_REQUIRE(EVP_DecryptUpdate(ctx.get(), nullptr, &len, bytes(aad), static_cast<int>(aad.size()))
                == 1);
  auto body_size = cipher_and_tag.size() - 16;
  std::string plain(body_size, '\0');
  BOOST_REQUIRE(EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                                  bytes(cipher_and_tag), static_cast<int>(body_size))
                == 1);
  std::string tag = cipher_and_tag.substr(body_size);
  BOOST_REQUIRE(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16, tag.data()) == 1);
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), nullptr, &final_len) != 1)
    return "<tag mismatch>";
  return plain;
}

rapidjson::Document json_of(const std::string& text) {
  rapidjson::Document doc;
  BOOST_REQUIRE(!json::parse_strict(text, doc));
  return doc;
}

} // namespace

BOOST_AUTO_TEST_SUITE(proof_and_delivery)

BOOST_AUTO_TEST_CASE(proof_fingerprint_is_pinned_by_a_fixed_vector) {
  fixed_order o;
  auto key = derive_proof_key("v1", vector_secret);
  BOOST_TEST(crypto::hex_encode(key.ed25519_seed)
             == "aa7490940ac00ce1aa5837379f4e6ad8534285eebbd245859f70721cd1fb0f18");
  BOOST_TEST(crypto::base64_encode(key.public_key) == "YGrL7nDbIaDfOABQmUtYP6Lr/nyKv/Tmkf2vlgrihKE=");
  auto payload = proof_payload("order_000000000000000000000001", o.req, o.q, o.payment, o.entry);
  BOOST_TEST(json::canonical(payload)
             == R"({"currency":"usd","customerId":"cust-vector","financeEntry":"fin_000000000000000000000001",)"
                R"("items":[{"amount":450,"quantity":1,"sku":"artifact-compliance","unitAmount":450},)"
                R"({"amount":2400,"quantity":2,"sku":"creator-basic","unitAmount":1200}],)"
                R"("orderId":"order_000000000000000000000001","paymentId":"pay_000000000000000000000001","total":2850})");
  auto proof = sign_proof(key, payload, "2026-01-01T00:00:00.000Z");
  BOOST_TEST(proof.payload_hash == "c024d8dc401c8676b39cd65cb77752ed93c165b2ddb813b0517559416c1be6c1");
  BOOST_TEST(proof.proof_id == "proof_c024d8dc401c8676b39cd65c");
  auto record = json_of(proof.record);
  BOOST_TEST(std::string{record["signature"].GetString()}
             == "449fa427b1441b574066cc5a6896673ee1f099bea0ae21c03774357bad1c8184");
  BOOST_TEST(std::string{record["ed25519"]["signature"].GetString()}
             == "qq5SP2BsZW0EmwpCzPoF40yswf7sQrFosoOyNVHr4OSonE7V7TVlxLrOLCckGWNzMgdKO3EP+PPelsXeI25zCQ==");
  BOOST_TEST(std::string{record["kid"].GetString()} == "v1");
  // The record is canonical as written, and issuedAt is outside the signature.
  BOOST_TEST(json::canonical(record) == proof.record);
  auto later = sign_proof(key, payload, "2027-06-30T12:00:00.000Z");
  BOOST_TEST(later.payload_hash == proof.payload_hash);
}

// The items an order's row keeps (migration 0017) are the bytes its proof
// signs, a SKU with characters JSON escapes included.
BOOST_AUTO_TEST_CASE(the_rows_items_are_the_proofs_items) {
  fixed_order o;
  rapidjson::Document doc{rapidjson::kObjectType};
  BOOST_TEST(priced_items_text(o.q.items)
             == json::canonical(priced_items_json(o.q, doc.GetAllocator())));
  BOOST_TEST(priced_items_text(o.q.items)
             == R"([{"amount":450,"quantity":1,"sku":"artifact-compliance","unitAmount":450},)"
                R"({"amount":2400,"quantity":2,"sku":"creator-basic","unitAmount":1200}])");
  quote odd;
  odd.items = {{"a\"b\\c\x01", 3, 5, 15}};
  BOOST_TEST(priced_items_text(odd.items)
             == json::canonical(priced_items_json(odd, doc.GetAllocator())));
  BOOST_TEST(priced_items_text({}) == "[]");
}

BOOST_AUTO_TEST_CASE(verification_accepts_the_proof_and_names_each_failure) {
  fixed_order o;
  proof_keyring ring{"v2", {{"v1", vector_secret}, {"v2", vector_secret + "-rotated"}}};
  auto payload = proof_payload("order_000000000000000000000001", o.req, o.q, o.payment, o.entry);
  // Signed under the older kid, still verifiable while it is configured.
  auto proof = json_of(sign_proof(*ring.find("v1"), payload, "2026-01-01T00:00:00.000Z").record);
  BOOST_TEST(verify_proof(ring, proof, payload).valid);
  auto changed = json_of(json::canonical(payload));
  changed["total"].SetInt64(1);
  BOOST_TEST(verify_proof(ring, proof, changed).reason == "payload_mismatch");
  proof["kid"].SetString("v9");
  BOOST_TEST(verify_proof(ring, proof, payload).reason == "unknown_kid");
  proof["kid"].SetString("v2");  // the right hash, the wrong secret
  BOOST_TEST(verify_proof(ring, proof, payload).reason == "bad_signature");
  proof_keyring only_new{"v2", {{"v2", vector_secret + "-rotated"}}};
  auto again = json_of(sign_proof(*ring.find("v1"), payload, "x").record);
  BOOST_TEST(verify_proof(only_new, again, payload).reason == "unknown_kid");
}

BOOST_AUTO_TEST_CASE(signing_the_canonical_text_gives_the_same_proof) {
  fixed_order o;
  auto key = derive_proof_key("v1", vector_secret);
  auto payload = proof_payload("order_000000000000000000000001", o.req, o.q, o.payment, o.entry);
  auto from_value = sign_proof(key, payload, "2026-01-01T00:00:00.000Z");
  auto from_text = sign_canonical_proof(key, json::canonical(payload), "2026-01-01T00:00:00.000Z");
  BOOST_TEST(from_text.record == from_value.record);
  BOOST_TEST(from_text.proof_id == from_value.proof_id);
}

BOOST_AUTO_TEST_CASE(the_key_set_commits_to_each_public_key_and_activation_needs_a_configured_kid) {
  proof_keyring ring{"v1", {{"v2", vector_secret + "-rotated"}, {"v1", vector_secret}}};
  auto v1 = crypto::sha256_hex(ring.find("v1")->public_key);
  auto v2 = crypto::sha256_hex(ring.find("v2")->public_key);
  BOOST_TEST(key_commitment(*ring.find("v1")) == v1);
  BOOST_TEST(v1 != v2);
  BOOST_TEST(key_set_document(ring) == R"({"v1":")" + v1 + R"(","v2":")" + v2 + R"("})");
  BOOST_TEST(!ring.activate("v9"));
  BOOST_TEST(ring.active_kid() == "v1");
  BOOST_TEST(ring.activate("v2"));
  BOOST_TEST(ring.active().kid == "v2");
}

BOOST_AUTO_TEST_CASE(license_mode_delivery_opens_with_openssl) {
  std::string master = "delivery-master-key-for-tests-0123456789";
  std::string plain = R"({"artifacts":[{"sha256":"ab","sku":"creator-basic","url":"u"}],"licenseId":"lic_1","orderId":"order_1"})";
  auto sealed = seal_delivery(master, "order_1", "lic_1", plain, "");
  BOOST_TEST(sealed.key_mode == "license");
  BOOST_TEST(sealed.aad == "order_1|lic_1");
  BOOST_TEST(sealed.wrapped_key_b64.empty());
  auto key = crypto::base64_decode(sealed.license_key_b64);
  BOOST_REQUIRE(key);
  BOOST_TEST(*key == delivery_key(master, "order_1"));
  auto nonce = crypto::base64_decode(sealed.nonce_b64);
  auto cipher = crypto::base64_decode(sealed.cipher_text_b64);
  BOOST_REQUIRE(nonce);
  BOOST_REQUIRE(cipher);
  BOOST_TEST(nonce->size() == 12u);
  BOOST_TEST(cipher->size() == plain.size() + 16);
  BOOST_TEST(openssl_gcm_decrypt(*key, *nonce, *cipher, sealed.aad) == plain);
  BOOST_TEST(openssl_gcm_decrypt(*key, *nonce, *cipher, "order_1|lic_2") == "<tag mismatch>");
  // Another order's key does not open it.
  BOOST_TEST(openssl_gcm_decrypt(delivery_key(master, "order_2"), *nonce, *cipher, sealed.aad)
             == "<tag mismatch>");
}

BOOST_AUTO_TEST_CASE(buyer_mode_delivery_round_trips_through_openssl) {
  // The buyer's key pair is made by OpenSSL; only the public half is given
  // to the project's code.
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{EVP_RSA_gen(2048), EVP_PKEY_free};
  BOOST_REQUIRE(pkey);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio{BIO_new(BIO_s_mem()), BIO_free};
  BOOST_REQUIRE(PEM_write_bio_PUBKEY(bio.get(), pkey.get()) == 1);
  char* data = nullptr;
  auto len = BIO_get_mem_data(bio.get(), &data);
  std::string pem{data, static_cast<std::size_t>(len)};

  std::string master = "delivery-master-key-for-tests-0123456789";
  std::string plain = R"({"artifacts":[],"licenseId":"lic_9","orderId":"order_9"})";
  auto sealed = seal_delivery(master, "order_9", "lic_9", plain, pem);
  BOOST_TEST(sealed.key_mode == "buyer");
  BOOST_TEST(sealed.license_key_b64.empty());
  auto wrapped = crypto::base64_decode(sealed.wrapped_key_b64);
  BOOST_REQUIRE(wrapped);

  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx{
    EVP_PKEY_CTX_new(pkey.get(), nullptr), EVP_PKEY_CTX_free};
  BOOST_REQUIRE(EVP_PKEY_decrypt_init(ctx.get()) == 1);
  BOOST_REQUIRE(EVP_PKEY_CTX_set_rsa_padding(ctx.get(), RSA_PKCS1_OAEP_PADDING) == 1);
  BOOST_REQUIRE(EVP_PKEY_CTX_set_rsa_oaep_md(ctx.get(), EVP_sha256()) == 1);
  BOOST_REQUIRE(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx.get(), EVP_sha256()) == 1);
  std::size_t out_len = 512;
  std::string key(out_len, '\0');
  BOOST_REQUIRE(EVP_PKEY_decrypt(ctx.get(), reinterpret_cast<unsigned char*>(key.data()), &out_len,
                                 reinterpret_cast<const unsigned char*>(wrapped->data()),
                                 wrapped->size())
                == 1);
  key.resize(out_len);
  BOOST_TEST(key == delivery_key(master, "order_9"));
  auto nonce = crypto::base64_decode(sealed.nonce_b64);
  auto cipher = crypto::base64_decode(sealed.cipher_text_b64);
  BOOST_TEST(openssl_gcm_decrypt(key, *nonce, *cipher, sealed.aad) == plain);
}

BOOST_AUTO_TEST_SUITE_END()
