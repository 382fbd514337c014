#include <boost/test/unit_test.hpp>

#include "core/crypto.hpp"
#include "core/ed25519_scalar.hpp"
#include "domain/proof.hpp"
#include "domain/secret_commitment.hpp"

#include <cryptopp/base64.h>
#include <cryptopp/filters.h>
#include <cryptopp/hex.h>
#include <cryptopp/integer.h>
#include <cryptopp/osrng.h>
#include <cryptopp/rsa.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <random>
#include <thread>
#include <string>
#include <vector>

using namespace ap::crypto;

namespace {

/// Hex to bytes through Crypto++, so fixtures do not depend on the
/// hex_decode under test.
std::string unhex(const std::string& hex) {
  std::string out;
  CryptoPP::StringSource(hex, true, new CryptoPP::HexDecoder(new CryptoPP::StringSink(out)));
  BOOST_REQUIRE_EQUAL(out.size() * 2, hex.size());
  return out;
}

/// Wraps DER in PEM armour with 64-character lines, as OpenSSL writes it.
std::string to_pem(const std::string& label, const std::string& der,
                   const std::string& newline = "\n") {
  std::string body;
  CryptoPP::StringSource(der, true,
                         new CryptoPP::Base64Encoder(new CryptoPP::StringSink(body),
                                                     /*insertLineBreaks=*/true,
                                                     /*maxLineLength=*/64));
  if (newline != "\n") {
    std::string converted;
    for (char c : body)
      converted += (c == '\n') ? newline : std::string(1, c);
    body = converted;
  }
  return "-----BEGIN " + label + "-----" + newline + body + "-----END " + label + "-----"
         + newline;
}

struct rsa_pems {
  std::string public_spki;
  std::string private_pkcs8;
  std::string private_pkcs1;
};

rsa_pems make_rsa_pems(unsigned bits) {
  CryptoPP::AutoSeededRandomPool rng;
  CryptoPP::InvertibleRSAFunction priv;
  priv.Initialize(rng, bits, 65537);
  CryptoPP::RSAFunction pub(priv);

  std::string spki, pkcs8, pkcs1;
  CryptoPP::StringSink spki_sink(spki), pkcs8_sink(pkcs8), pkcs1_sink(pkcs1);
  pub.DEREncode(spki_sink);                // SubjectPublicKeyInfo
  priv.DEREncode(pkcs8_sink);              // PKCS#8 PrivateKeyInfo
  priv.DEREncodePrivateKey(pkcs1_sink);    // PKCS#1 RSAPrivateKey
  return {to_pem("PUBLIC KEY", spki), to_pem("PRIVATE KEY", pkcs8),
          to_pem("RSA PRIVATE KEY", pkcs1)};
}

/// Key generation is the slow part; one 2048-bit pair serves every test.
const rsa_pems& rsa2048() {
  static const rsa_pems pems = make_rsa_pems(2048);
  return pems;
}

/// The decoded bytes, or a marker Boost.Test can print when decoding failed.
std::string or_rejected(const std::optional<std::string>& decoded) {
  return decoded ? *decoded : std::string("<rejected>");
}

std::string flip_bit(std::string s, std::size_t byte, unsigned bit = 0) {
  s.at(byte) = static_cast<char>(s.at(byte) ^ (1u << bit));
  return s;
}

} // namespace

BOOST_AUTO_TEST_SUITE(crypto_primitives)

// -- SHA-256 -------------------------------------------------------------------

// FIPS 180-2, Appendix B.1 (one-block message "abc").
BOOST_AUTO_TEST_CASE(sha256_fips180_abc) {
  const std::string expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  BOOST_TEST(sha256_hex("abc") == expected);
  BOOST_TEST(sha256("abc") == unhex(expected));
  BOOST_TEST(sha256("abc").size() == 32u);
}

// -- HMAC-SHA256 -----------------------------------------------------------------

// RFC 4231 section 4, test cases 1-4, 6 and 7 (5 is truncated output).
BOOST_AUTO_TEST_CASE(hmac_sha256_rfc4231) {
  struct vector {
    int test_case;
    std::string key;
    std::string data;
    std::string mac_hex;
  };
  const std::vector<vector> vectors = {
      {1, std::string(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      {2, "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      {3, std::string(20, '\xaa'), std::string(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      {4, unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), std::string(50, '\xcd'),
       "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
      {6, std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
      {7, std::string(131, '\xaa'),
       "This is a test using a larger than block-size key and a larger than block-size data. "
       "The key needs to be hashed before being used by the HMAC algorithm.",
       "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
  };
  for (const auto& v : vectors) {
    BOOST_TEST_CONTEXT("RFC 4231 test case " << v.test_case) {
      BOOST_TEST(hmac_sha256_hex(v.key, v.data) == v.mac_hex);
      BOOST_TEST(hmac_sha256(v.key, v.data) == unhex(v.mac_hex));
    }
  }
}

// -- HKDF-SHA256 -------------------------------------------------------------------

// RFC 5869 appendix A.1: basic test case.
BOOST_AUTO_TEST_CASE(hkdf_sha256_rfc5869_case1) {
  auto okm = hkdf_sha256(std::string(22, '\x0b'), unhex("000102030405060708090a0b0c"),
                         unhex("f0f1f2f3f4f5f6f7f8f9"), 42);
  BOOST_TEST(hex_encode(okm)
             == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b8871"
                "85865");
}

// RFC 5869 appendix A.2: longer inputs and outputs (80-byte IKM/salt/info, L=82).
BOOST_AUTO_TEST_CASE(hkdf_sha256_rfc5869_case2) {
  std::string ikm, salt, info;
  for (int i = 0x00; i <= 0x4f; ++i)
    ikm.push_back(static_cast<char>(i));
  for (int i = 0x60; i <= 0xaf; ++i)
    salt.push_back(static_cast<char>(i));
  for (int i = 0xb0; i <= 0xff; ++i)
    info.push_back(static_cast<char>(i));
  BOOST_REQUIRE_EQUAL(ikm.size(), 80u);
  BOOST_REQUIRE_EQUAL(salt.size(), 80u);
  BOOST_REQUIRE_EQUAL(info.size(), 80u);
  auto okm = hkdf_sha256(ikm, salt, info, 82);
  BOOST_TEST(hex_encode(okm)
             == "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac78272"
                "71cb41c65e590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f"
                "1d87");
}

// RFC 5869 appendix A.3: zero-length salt and info.
BOOST_AUTO_TEST_CASE(hkdf_sha256_rfc5869_case3) {
  auto okm = hkdf_sha256(std::string(22, '\x0b'), "", "", 42);
  BOOST_TEST(hex_encode(okm)
             == "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a"
                "96c8");
}

// RFC 5869 section 2.3: L <= 255 * HashLen.
BOOST_AUTO_TEST_CASE(hkdf_sha256_output_length_limit) {
  BOOST_TEST(hkdf_sha256("ikm", "salt", "info", 255 * 32).size() == 255u * 32u);
  BOOST_CHECK_THROW(hkdf_sha256("ikm", "salt", "info", 255 * 32 + 1), crypto_error);
  // A prefix of a longer output: HKDF-Expand is a stream.
  BOOST_TEST(hkdf_sha256("ikm", "salt", "info", 10)
             == hkdf_sha256("ikm", "salt", "info", 50).substr(0, 10));
}

BOOST_AUTO_TEST_CASE(constant_time_equal_compares_contents_and_length) {
  BOOST_TEST(constant_time_equal("", ""));
  BOOST_TEST(constant_time_equal("abcdef", "abcdef"));
  BOOST_TEST(!constant_time_equal("abcdef", "abcdeg"));
  BOOST_TEST(!constant_time_equal("abcdef", "Abcdef"));
  BOOST_TEST(!constant_time_equal("abcdef", "abcde"));
  BOOST_TEST(!constant_time_equal("", "a"));
}

// -- Ed25519 ------------------------------------------------------------------------

namespace {

struct ed25519_vector {
  const char* name;
  std::string secret_hex;
  std::string public_hex;
  std::string message_hex;
  std::string signature_hex;
};

// RFC 8032 section 7.1, TEST 1, TEST 2 and TEST 3.
const std::vector<ed25519_vector>& rfc8032_vectors() {
  static const std::vector<ed25519_vector> vectors = {
      {"TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
       "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
       "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e3"
       "9701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
      {"TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
       "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
       "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3"
       "613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
      {"TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
       "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
       "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f"
       "760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
  };
  return vectors;
}

} // namespace

BOOST_AUTO_TEST_CASE(ed25519_rfc8032_public_keys_and_signatures) {
  for (const auto& v : rfc8032_vectors()) {
    BOOST_TEST_CONTEXT("RFC 8032 7.1 " << v.name) {
      auto seed = unhex(v.secret_hex);
      auto message = unhex(v.message_hex);
      BOOST_TEST(hex_encode(ed25519_public_key(seed)) == v.public_hex);
      BOOST_TEST(hex_encode(ed25519_sign(seed, message)) == v.signature_hex);
      BOOST_TEST(ed25519_verify(unhex(v.public_hex), message, unhex(v.signature_hex)));
    }
  }
}

BOOST_AUTO_TEST_CASE(ed25519_signer_keeps_its_key_across_signatures) {
  for (const auto& v : rfc8032_vectors()) {
    BOOST_TEST_CONTEXT("RFC 8032 7.1 " << v.name) {
      ed25519_signer signer{unhex(v.secret_hex)};
      BOOST_TEST(hex_encode(signer.public_key()) == v.public_hex);
      auto message = unhex(v.message_hex);
      // Twice, and from a copy: the key it holds is not used up or changed.
      BOOST_TEST(hex_encode(signer.sign(message)) == v.signature_hex);
      auto copy = signer;
      BOOST_TEST(hex_encode(copy.sign(message)) == v.signature_hex);
      BOOST_TEST(hex_encode(signer.sign(message)) == v.signature_hex);
    }
  }
  BOOST_CHECK_THROW(ed25519_signer{std::string(31, 'x')}, crypto_error);
}

namespace {

using ed25519_check = bool (*)(const std::string& key, const std::string& message,
                               const std::string& signature);

// Every way of checking: ed25519_verify, and a verifier with its key's
// tables, made for the key at hand, alone and through verify_each.
const std::vector<std::pair<const char*, ed25519_check>>& ed25519_checkers() {
  static const std::vector<std::pair<const char*, ed25519_check>> checkers = {
      {"ed25519_verify",
       [](const std::string& k, const std::string& m, const std::string& s) {
         return ed25519_verify(k, m, s);
       }},
      {"ed25519_verifier",
       [](const std::string& k, const std::string& m, const std::string& s) {
         return ed25519_verifier{k}.verify(m, s);
       }},
      {"verify_each",
       [](const std::string& k, const std::string& m, const std::string& s) {
         ed25519_verifier verifier{k};
         auto answers = ed25519_verifier::verify_each({{&verifier, m, s}});
         return answers.size() == 1 && answers[0];
       }},
    };
  return checkers;
}

// n bytes from a seeded generator, so that a failure repeats.
std::string seeded_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string out(n, '\0');
  for (auto& c : out)
    c = static_cast<char>(rng());
  return out;
}

} // namespace

BOOST_AUTO_TEST_CASE(ed25519_verify_rejects_tampering) {
  for (const auto& [name, verify] : ed25519_checkers()) {
    for (const auto& v : rfc8032_vectors()) {
      BOOST_TEST_CONTEXT(name << ", RFC 8032 7.1 " << v.name) {
        auto key = unhex(v.public_hex);
        auto message = unhex(v.message_hex);
        auto signature = unhex(v.signature_hex);
        BOOST_REQUIRE(verify(key, message, signature));

        if (!message.empty())
          BOOST_TEST(!verify(key, flip_bit(message, 0), signature));
        // TEST 1 signs the empty message: any appended byte must break it.
        BOOST_TEST(!verify(key, message + "x", signature));
        BOOST_TEST(!verify(key, message, flip_bit(signature, 0)));  // R
        BOOST_TEST(!verify(key, message, flip_bit(signature, 40))); // S
        BOOST_TEST(!verify(flip_bit(key, 0), message, signature));
        BOOST_TEST(!verify(flip_bit(key, 31, 3), message, signature));
        // Another vector's key.
        const auto& other = rfc8032_vectors()[(&v - rfc8032_vectors().data() + 1) % 3];
        BOOST_TEST(!verify(unhex(other.public_hex), message, signature));
        // Wrong sizes.
        BOOST_TEST(!verify(key.substr(0, 31), message, signature));
        BOOST_TEST(!verify(key + '\0', message, signature));
        BOOST_TEST(!verify("", message, signature));
        BOOST_TEST(!verify(key, message, signature.substr(0, 63)));
        BOOST_TEST(!verify(key, message, signature + '\0'));
        BOOST_TEST(!verify(key, message, ""));
      }
    }
  }
}

// RFC 8032 section 5.1.7: a signature whose S is not below the group order L
// is invalid, even though S + L acts identically in the group equation.
BOOST_AUTO_TEST_CASE(ed25519_verify_rejects_non_canonical_s) {
  const auto& v = rfc8032_vectors()[0];
  // TEST 1's signature with S replaced by S + L (little-endian), computed
  // from L = 2^252 + 27742317777372353535851937790883648493.
  auto malleated = unhex(
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
      "4c8c7872aa064e049dbb3013fbf29380d25bf5f0595bbe24655141438e7a101b");
  for (const auto& [name, verify] : ed25519_checkers())
    BOOST_TEST(!verify(unhex(v.public_hex), "", malleated), name);
}

// k = SHA-512(R ‖ A ‖ M) mod L, reduced by the verifier without a general
// big-number library: checked against Crypto++'s long division at the edges
// (0, the largest input, multiples of L and their neighbours) and on
// seeded random digests.
BOOST_AUTO_TEST_CASE(ed25519_scalar_reduce_agrees_with_long_division) {
  const CryptoPP::Integer order(
      "7237005577332262213973186563042994240857116359379907606001950938285454250989");
  const CryptoPP::Integer two_512 = CryptoPP::Integer::Power2(512);
  auto wide_of = [](const CryptoPP::Integer& x) {
    std::string wide(64, '\0');
    x.Encode(reinterpret_cast<CryptoPP::byte*>(wide.data()), 64, CryptoPP::Integer::UNSIGNED);
    std::reverse(wide.begin(), wide.end()); // little endian
    return wide;
  };
  auto check = [&](const std::string& wide) {
    BOOST_REQUIRE_EQUAL(wide.size(), 64u);
    CryptoPP::Integer x(reinterpret_cast<const CryptoPP::byte*>(wide.data()), 64,
                        CryptoPP::Integer::UNSIGNED, CryptoPP::LITTLE_ENDIAN_ORDER);
    CryptoPP::Integer expected = x % order;
    std::string expected_bytes(32, '\0');
    expected.Encode(reinterpret_cast<CryptoPP::byte*>(expected_bytes.data()), 32,
                    CryptoPP::Integer::UNSIGNED);
    std::reverse(expected_bytes.begin(), expected_bytes.end());
    auto got = detail::ed25519_scalar_reduce(reinterpret_cast<const unsigned char*>(wide.data()));
    std::string got_bytes(got.begin(), got.end());
    BOOST_TEST(got_bytes == expected_bytes, "x = " << x);
  };
  std::vector<CryptoPP::Integer> edges = {CryptoPP::Integer::Zero(), CryptoPP::Integer::One(),
                                          two_512 - 1, two_512 - order};
  const CryptoPP::Integer largest_multiple = (two_512 - 1) / order;
  for (const auto& m : {CryptoPP::Integer::One(), CryptoPP::Integer::Two(),
                        CryptoPP::Integer(1000003), CryptoPP::Integer::Power2(200),
                        CryptoPP::Integer::Power2(259), largest_multiple - 1, largest_multiple}) {
    edges.push_back(m * order - 1);
    edges.push_back(m * order);
    edges.push_back(m * order + 1);
    edges.push_back(m * order + order - 1);
  }
  for (const auto& x : edges)
    if (x < two_512)
      check(wide_of(x));
  std::mt19937_64 rng{20261206};
  for (int i = 0; i < 20000; ++i)
    check(seeded_bytes(rng, 64));
  // Digests below L and just above it, where the quotient is 0 or 1.
  for (int i = 0; i < 2000; ++i) {
    auto small = seeded_bytes(rng, 64);
    std::fill(small.begin() + 32, small.end(), '\0');
    small[31] = static_cast<char>(small[31] & (i % 2 ? 0x1f : 0x0f));
    check(small);
  }
}

// The verifier checks the published vectors, twice (the second time from
// the table the first built), and says which key it holds.
BOOST_AUTO_TEST_CASE(ed25519_verifier_checks_the_rfc8032_vectors) {
  for (const auto& v : rfc8032_vectors()) {
    BOOST_TEST_CONTEXT("RFC 8032 7.1 " << v.name) {
      auto key = unhex(v.public_hex);
      ed25519_verifier verifier{key};
      BOOST_TEST(verifier.public_key() == key);
      BOOST_TEST(verifier.tabled());
      BOOST_TEST(verifier.verify(unhex(v.message_hex), unhex(v.signature_hex)));
      BOOST_TEST(verifier.verify(unhex(v.message_hex), unhex(v.signature_hex)));
    }
  }
}

// Many keys, messages and single-bit changes: every answer the same as
// ed25519_verify's, true for each genuine signature, false for each change.
BOOST_AUTO_TEST_CASE(ed25519_verifier_agrees_with_ed25519_verify) {
  std::mt19937_64 rng{20261206};
  auto bytes = [&](std::size_t n) { return seeded_bytes(rng, n); };
  int genuine = 0, changed = 0;
  for (int k = 0; k < 12; ++k) {
    ed25519_signer signer{bytes(32)};
    ed25519_verifier verifier{signer.public_key()};
    for (int m = 0; m < 12; ++m) {
      auto message = bytes(rng() % 80);
      auto signature = signer.sign(message);
      BOOST_TEST(verifier.verify(message, signature));
      ++genuine;
      for (int f = 0; f < 6; ++f) {
        auto bit = rng() % (8 * (signature.size() + message.size()));
        auto sig = signature;
        auto msg = message;
        if (bit < 8 * sig.size())
          sig = flip_bit(sig, bit / 8, bit % 8);
        else
          msg = flip_bit(msg, bit / 8 - sig.size(), bit % 8);
        BOOST_TEST_CONTEXT("key " << k << " message " << m << " bit " << bit) {
          bool expected = ed25519_verify(signer.public_key(), msg, sig);
          BOOST_TEST(verifier.verify(msg, sig) == expected);
          BOOST_TEST(!expected);
        }
        ++changed;
      }
    }
    // Without tables it is ed25519_verify itself.
    auto message0 = bytes(20);
    ed25519_verifier plain{signer.public_key(), false};
    BOOST_TEST(!plain.tabled());
    BOOST_TEST(plain.verify(message0, signer.sign(message0)));
    BOOST_TEST(!plain.verify(message0, flip_bit(signer.sign(message0), 33)));
    auto other = flip_bit(signer.public_key(), rng() % 32, rng() % 8);
    auto message = bytes(32);
    auto signature = signer.sign(message);
    BOOST_TEST(ed25519_verifier{other}.verify(message, signature)
               == ed25519_verify(other, message, signature));
  }
  BOOST_TEST(genuine == 144);
  BOOST_TEST(changed == 864);
}

// verify_each answers each check as verify does, whatever sits beside it in
// the batch: genuine signatures under several keys, tabled or not, among
// changed ones, wrong sizes, S + L and a key of small order.
BOOST_AUTO_TEST_CASE(ed25519_verify_each_answers_as_verify) {
  BOOST_TEST(ed25519_verifier::verify_each({}).empty());
  std::mt19937_64 rng{20261207};
  auto bytes = [&](std::size_t n) { return seeded_bytes(rng, n); };
  std::vector<ed25519_signer> signers;
  std::vector<ed25519_verifier> verifiers;
  for (int k = 0; k < 4; ++k) {
    signers.emplace_back(bytes(32));
    verifiers.emplace_back(signers.back().public_key(), k != 3); // the last untabled
  }
  std::string small_order(32, '\0');
  small_order[0] = 1; // the identity
  verifiers.emplace_back(small_order);
  struct item {
    std::size_t key;
    std::string message, signature;
  };
  std::vector<item> items;
  int genuine = 0;
  for (int n = 0; n < 60; ++n) {
    std::size_t key = rng() % 4;
    auto message = bytes(rng() % 48);
    auto signature = signers[key].sign(message);
    switch (n % 6) {
      case 0:
      case 1:
        ++genuine;
        break;
      case 2:
        signature = flip_bit(signature, rng() % 64, rng() % 8);
        break;
      case 3:
        message = flip_bit(message + "m", rng() % (message.size() + 1), rng() % 8);
        break;
      case 4:
        key = (key + 1) % 4; // another key's signature
        break;
      case 5:
        signature = n % 12 == 5 ? signature.substr(0, 63) : signature + "x";
        break;
    }
    items.push_back({key, std::move(message), std::move(signature)});
  }
  // S + L under RFC 8032's TEST 1 key, and R = B, S = 1 under the identity.
  const auto& v = rfc8032_vectors()[0];
  verifiers.emplace_back(unhex(v.public_hex));
  items.push_back({5, "", unhex("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
                                "4c8c7872aa064e049dbb3013fbf29380d25bf5f0595bbe24655141438e7a101b")});
  items.push_back({5, "", unhex(v.signature_hex)});
  ++genuine;
  std::string one(32, '\0');
  one[0] = 1;
  items.push_back({4, "any message",
                   unhex("5866666666666666666666666666666666666666666666666666666666666666") + one});
  std::shuffle(items.begin(), items.end(), rng);

  std::vector<ed25519_verifier::check> checks;
  for (const auto& i : items)
    checks.push_back({&verifiers[i.key], i.message, i.signature});
  auto answers = ed25519_verifier::verify_each(checks);
  BOOST_REQUIRE(answers.size() == items.size());
  int accepted = 0;
  for (std::size_t i = 0; i < items.size(); ++i) {
    bool alone = verifiers[items[i].key].verify(items[i].message, items[i].signature);
    BOOST_TEST(answers[i] == alone, "item " << i << " under key " << items[i].key);
    accepted += answers[i];
  }
  BOOST_TEST(accepted == genuine);
  BOOST_TEST(genuine == 21);
}

// Keys the verifier cannot use verify nothing, tabled or not: encodings that
// are not points, aliases with y at or above p, and points of small order,
// under which ed25519_verify accepts signatures anyone can make.
BOOST_AUTO_TEST_CASE(ed25519_verifier_refuses_keys_it_cannot_use) {
  auto key_with_y = [](unsigned y) {
    std::string key(32, '\0');
    key[0] = static_cast<char>(y);
    return key;
  };
  // Whether (y^2 - 1) / (d y^2 + 1) is a square modulo p, for y below 40.
  for (unsigned y : {3u, 4u, 5u, 6u, 9u, 10u, 14u, 15u, 16u, 39u})
    BOOST_TEST(ed25519_verifier{key_with_y(y)}.usable(), "y = " << y << " is a point");
  for (unsigned y : {2u, 7u, 8u, 11u, 12u, 13u, 17u, 20u, 22u, 38u})
    BOOST_TEST(!ed25519_verifier{key_with_y(y)}.usable(), "y = " << y << " is not a point");
  BOOST_TEST(ed25519_verifier{unhex(rfc8032_vectors()[0].public_hex)}.usable());
  BOOST_TEST(!ed25519_verifier{std::string(31, '\x03')}.usable());

  // R = B and S = 1: under a key A of small order [S]B - [k]A can be B for
  // any message, and ed25519_verify accepts it under the identity.
  auto base = unhex("5866666666666666666666666666666666666666666666666666666666666666");
  std::string forged = base + key_with_y(1);
  BOOST_REQUIRE(ed25519_verify(key_with_y(1), "any message", forged));
  std::vector<std::pair<const char*, std::string>> refused = {
    {"the identity", key_with_y(1)},
    {"the identity, sign bit set", unhex("0100000000000000000000000000000000000000000000000000000000000080")},
    {"the identity as y = p + 1", unhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
    {"order 2 (y = -1)", unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")},
    {"order 2, sign bit set", unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")},
    {"order 4 (y = 0)", std::string(32, '\0')},
    {"order 4, negative x", unhex("0000000000000000000000000000000000000000000000000000000000000080")},
  };
  for (const auto& [name, key] : refused) {
    BOOST_TEST_CONTEXT(name) {
      for (bool tabled : {true, false}) {
        ed25519_verifier verifier{key, tabled};
        BOOST_TEST(!verifier.usable());
        BOOST_TEST(!verifier.tabled());
        BOOST_TEST(!verifier.verify("any message", forged));
      }
    }
  }
}

// Copies share one table, built once, from whichever thread verifies first.
BOOST_AUTO_TEST_CASE(ed25519_verifier_is_shared_by_copies_and_threads) {
  const auto& v = rfc8032_vectors()[2];
  ed25519_verifier verifier{unhex(v.public_hex)};
  auto message = unhex(v.message_hex);
  auto signature = unhex(v.signature_hex);
  std::vector<int> ok(4, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i, copy = verifier] {
      for (int n = 0; n < 5; ++n)
        ok[i] += copy.verify(message, signature) && !copy.verify(message, flip_bit(signature, 1));
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(ok == std::vector<int>(4, 5), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(ed25519_sign_verify_round_trip_and_seed_size) {
  auto seed = random_bytes(32);
  auto key = ed25519_public_key(seed);
  BOOST_TEST(key.size() == 32u);
  auto signature = ed25519_sign(seed, "artifact manifest");
  BOOST_TEST(signature.size() == 64u);
  BOOST_TEST(ed25519_verify(key, "artifact manifest", signature));
  BOOST_TEST(!ed25519_verify(key, "artifact manifest!", signature));
  // Deterministic signatures (RFC 8032): same seed and message, same bytes.
  BOOST_TEST(ed25519_sign(seed, "artifact manifest") == signature);

  BOOST_CHECK_THROW(ed25519_public_key(seed.substr(0, 31)), crypto_error);
  BOOST_CHECK_THROW(ed25519_public_key(seed + '\0'), crypto_error);
  BOOST_CHECK_THROW(ed25519_public_key(""), crypto_error);
  BOOST_CHECK_THROW(ed25519_sign(seed.substr(0, 31), "m"), crypto_error);
  BOOST_CHECK_THROW(ed25519_sign(seed + seed, "m"), crypto_error); // 64-byte "expanded" key
}

// -- AES-256-GCM ----------------------------------------------------------------------

namespace {

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test case 16
// (256-bit key, 96-bit IV, 60-byte plaintext, 20-byte AAD).
const std::string gcm16_key =
    "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const std::string gcm16_iv = "cafebabefacedbaddecaf888";
const std::string gcm16_plaintext =
    "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e24"
    "49a6b525b16aedf5aa0de657ba637b39";
const std::string gcm16_aad = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const std::string gcm16_ciphertext =
    "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b10"
    "56828838c5f61e6393ba7a0abcc9f662";
const std::string gcm16_tag = "76fc6ece0f4e1768cddf8853bb2d551b";

} // namespace

BOOST_AUTO_TEST_CASE(aes256gcm_gcm_spec_test_case_16) {
  auto sealed = aes256gcm_encrypt(unhex(gcm16_key), unhex(gcm16_iv), unhex(gcm16_plaintext),
                                  unhex(gcm16_aad));
  BOOST_TEST(hex_encode(sealed) == gcm16_ciphertext + gcm16_tag);
  auto opened = aes256gcm_decrypt(unhex(gcm16_key), unhex(gcm16_iv),
                                  unhex(gcm16_ciphertext + gcm16_tag), unhex(gcm16_aad));
  BOOST_TEST(hex_encode(opened) == gcm16_plaintext);
}

// Same document, test cases 13 (empty plaintext: tag only) and 14 (one zero
// block), both with the all-zero 256-bit key and IV and no AAD.
BOOST_AUTO_TEST_CASE(aes256gcm_gcm_spec_test_cases_13_and_14) {
  const std::string zero_key(32, '\0'), zero_iv(12, '\0');
  BOOST_TEST(hex_encode(aes256gcm_encrypt(zero_key, zero_iv, "", ""))
             == "530f8afbc74536b9a963b4f1c4cb738b");
  BOOST_TEST(aes256gcm_decrypt(zero_key, zero_iv, unhex("530f8afbc74536b9a963b4f1c4cb738b"), "")
             == "");
  BOOST_TEST(hex_encode(aes256gcm_encrypt(zero_key, zero_iv, std::string(16, '\0'), ""))
             == "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
}

BOOST_AUTO_TEST_CASE(aes256gcm_round_trip) {
  auto key = random_bytes(32);
  auto nonce = random_bytes(12);
  for (std::size_t size : {0u, 1u, 15u, 16u, 17u, 1000u}) {
    BOOST_TEST_CONTEXT("plaintext size " << size) {
      std::string plaintext = random_bytes(size);
      auto sealed = aes256gcm_encrypt(key, nonce, plaintext, "header");
      BOOST_TEST(sealed.size() == size + 16);
      BOOST_TEST(aes256gcm_decrypt(key, nonce, sealed, "header") == plaintext);
    }
  }
}

BOOST_AUTO_TEST_CASE(aes256gcm_decrypt_rejects_tampering) {
  const auto key = unhex(gcm16_key);
  const auto iv = unhex(gcm16_iv);
  const auto aad = unhex(gcm16_aad);
  const auto sealed = unhex(gcm16_ciphertext + gcm16_tag);
  BOOST_REQUIRE(aes256gcm_decrypt(key, iv, sealed, aad) == unhex(gcm16_plaintext));

  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, flip_bit(sealed, 0), aad), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, flip_bit(sealed, 59, 7), aad), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, flip_bit(sealed, 60), aad), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, flip_bit(sealed, sealed.size() - 1), aad),
                    crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, sealed, flip_bit(aad, 0)), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, sealed, ""), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(flip_bit(key, 31), iv, sealed, aad), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, flip_bit(iv, 0), sealed, aad), crypto_error);
  // Truncation: dropping a ciphertext byte or the tag.
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, sealed.substr(1), aad), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, sealed.substr(0, 15), aad), crypto_error);
  BOOST_CHECK_THROW(aes256gcm_decrypt(key, iv, "", aad), crypto_error);
}

BOOST_AUTO_TEST_CASE(aes256gcm_rejects_wrong_key_and_nonce_sizes) {
  const std::string key(32, 'k'), nonce(12, 'n');
  auto sealed = aes256gcm_encrypt(key, nonce, "data", "");
  BOOST_REQUIRE(aes256gcm_decrypt(key, nonce, sealed, "") == "data");
  for (std::size_t key_size : {0u, 16u, 24u, 31u, 33u}) {
    BOOST_TEST_CONTEXT("key size " << key_size) {
      BOOST_CHECK_THROW(aes256gcm_encrypt(std::string(key_size, 'k'), nonce, "data", ""),
                        crypto_error);
      BOOST_CHECK_THROW(aes256gcm_decrypt(std::string(key_size, 'k'), nonce, sealed, ""),
                        crypto_error);
    }
  }
  for (std::size_t nonce_size : {0u, 8u, 11u, 13u, 16u}) {
    BOOST_TEST_CONTEXT("nonce size " << nonce_size) {
      BOOST_CHECK_THROW(aes256gcm_encrypt(key, std::string(nonce_size, 'n'), "data", ""),
                        crypto_error);
      BOOST_CHECK_THROW(aes256gcm_decrypt(key, std::string(nonce_size, 'n'), sealed, ""),
                        crypto_error);
    }
  }
}

// -- hex and base64 ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(hex_round_trip_and_rejections) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  auto encoded = hex_encode(all);
  BOOST_TEST(encoded.size() == 512u);
  BOOST_TEST(encoded.substr(0, 8) == "00010203");
  BOOST_TEST(encoded.substr(504) == "fcfdfeff"); // lower case
  BOOST_TEST(or_rejected(hex_decode(encoded)) == all);
  BOOST_TEST(hex_encode("") == "");
  BOOST_TEST(or_rejected(hex_decode("")) == std::string());
  BOOST_TEST(or_rejected(hex_decode("DEADbeef")) == std::string("\xde\xad\xbe\xef"));

  BOOST_TEST(!hex_decode("abc"));  // odd length
  BOOST_TEST(!hex_decode("0g"));   // not a hex digit
  BOOST_TEST(!hex_decode("g0"));
  BOOST_TEST(!hex_decode(" 0"));
  BOOST_TEST(!hex_decode("0x00"));
  BOOST_TEST(!hex_decode("00\n"));
}

// RFC 4648 section 10.
BOOST_AUTO_TEST_CASE(base64_rfc4648_vectors) {
  const std::vector<std::pair<std::string, std::string>> vectors = {
      {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},        {"foo", "Zm9v"},
      {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
  };
  for (const auto& [plain, encoded] : vectors) {
    BOOST_TEST_CONTEXT("BASE64(\"" << plain << "\")") {
      BOOST_TEST(base64_encode(plain) == encoded);
      BOOST_TEST(or_rejected(base64_decode(encoded)) == plain);
    }
  }
}

BOOST_AUTO_TEST_CASE(base64_round_trip) {
  std::string all;
  for (int i = 0; i < 256; ++i)
    all.push_back(static_cast<char>(i));
  // Every length mod 3 and both the '+' and '/' characters get exercised.
  for (std::size_t n = 0; n <= all.size(); n += 7) {
    auto bytes = all.substr(all.size() - n);
    BOOST_TEST_CONTEXT("length " << n) {
      auto encoded = base64_encode(bytes);
      BOOST_TEST(encoded.size() == (n + 2) / 3 * 4);
      BOOST_TEST(or_rejected(base64_decode(encoded)) == bytes);
    }
  }
  BOOST_TEST(base64_encode("\xfb\xff\xbf") == "+/+/");
  BOOST_TEST(or_rejected(base64_decode("+/+/")) == std::string("\xfb\xff\xbf"));
}

BOOST_AUTO_TEST_CASE(base64_decode_is_strict) {
  // Each rejected input sits next to a canonical form that decodes, so the
  // rejection is about the defect named, not about the input as a whole.
  BOOST_REQUIRE(base64_decode("Zg==") == std::string("f"));
  BOOST_REQUIRE(base64_decode("Zm8=") == std::string("fo"));
  BOOST_REQUIRE(base64_decode("Zm9v") == std::string("foo"));
  BOOST_REQUIRE(base64_decode("+/8=") == std::string("\xfb\xff"));

  const std::vector<std::string> rejected = {
      "Zg",         // missing padding
      "Zg=",        // incomplete padding
      "Zm8",        // missing padding
      "Zm9v\n",     // trailing newline
      "Zm9\nv",     // embedded newline
      " Zm9v",      // leading space
      "Zm9v ",      // trailing space
      "Zm 9v",      // embedded space
      "Zh==",       // non-canonical: 'h' leaves low bits set ("f" is "Zg==")
      "Zm9=",       // non-canonical: '9' leaves low bits set ("fo" is "Zm8=")
      "Z===",       // three padding characters
      "====",       // padding only
      "-_8=",       // URL-safe alphabet ("+/8=" is valid)
      "Zm9v=",      // length not a multiple of 4
      "Zm9v====",   // padding past a full quantum
      "Zg==Zg==",   // padding in the middle
      "Z=g=",       // padding before data
      "=Zm9",       // padding first
  };
  for (const auto& text : rejected) {
    BOOST_TEST_CONTEXT("input \"" << text << "\"") {
      BOOST_TEST(!base64_decode(text));
    }
  }
  BOOST_TEST(!base64_decode(std::string("Zm9v\0\0\0\0", 8))); // NUL bytes
  BOOST_TEST(!base64_decode(std::string("Zm\xc3\xa9", 4)));   // non-ASCII
}

// -- RSA-OAEP ---------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(rsa_oaep_round_trip_with_pkcs8_and_pkcs1_keys) {
  const auto& keys = rsa2048();
  BOOST_TEST(rsa_public_key_bits(keys.public_spki) == 2048u);

  auto secret = random_bytes(32);
  auto ciphertext = rsa_oaep_sha256_encrypt(keys.public_spki, secret);
  BOOST_TEST(ciphertext.size() == 256u);
  BOOST_TEST(rsa_oaep_sha256_decrypt(keys.private_pkcs8, ciphertext) == secret);
  BOOST_TEST(rsa_oaep_sha256_decrypt(keys.private_pkcs1, ciphertext) == secret);
  // OAEP is randomised: encrypting twice gives different ciphertexts.
  BOOST_TEST(rsa_oaep_sha256_encrypt(keys.public_spki, secret) != ciphertext);

  // The largest message for a 2048-bit key with SHA-256: 256 - 2*32 - 2.
  auto largest = std::string(190, 'm');
  BOOST_TEST(rsa_oaep_sha256_decrypt(keys.private_pkcs8,
                                     rsa_oaep_sha256_encrypt(keys.public_spki, largest))
             == largest);
  BOOST_CHECK_THROW(rsa_oaep_sha256_encrypt(keys.public_spki, std::string(191, 'm')),
                    crypto_error);
  BOOST_TEST(rsa_oaep_sha256_decrypt(keys.private_pkcs8,
                                     rsa_oaep_sha256_encrypt(keys.public_spki, ""))
             == "");
}

BOOST_AUTO_TEST_CASE(rsa_oaep_accepts_crlf_pem) {
  const auto& keys = rsa2048();
  // Rebuild the PEMs with CRLF line ends from their DER.
  auto der_of = [](const std::string& pem) {
    auto begin = pem.find('\n') + 1;
    auto end = pem.find("-----END");
    std::string body;
    for (char c : pem.substr(begin, end - begin))
      if (c != '\n')
        body += c;
    std::string der;
    CryptoPP::StringSource(body, true,
                           new CryptoPP::Base64Decoder(new CryptoPP::StringSink(der)));
    return der;
  };
  auto public_crlf = to_pem("PUBLIC KEY", der_of(keys.public_spki), "\r\n");
  auto private_crlf = to_pem("PRIVATE KEY", der_of(keys.private_pkcs8), "\r\n");
  BOOST_REQUIRE(public_crlf.find("\r\n") != std::string::npos);
  auto ciphertext = rsa_oaep_sha256_encrypt(public_crlf, "key material");
  BOOST_TEST(rsa_oaep_sha256_decrypt(private_crlf, ciphertext) == "key material");
}

BOOST_AUTO_TEST_CASE(rsa_oaep_decrypt_rejects_bad_ciphertexts) {
  const auto& keys = rsa2048();
  auto ciphertext = rsa_oaep_sha256_encrypt(keys.public_spki, random_bytes(32));
  BOOST_REQUIRE(rsa_oaep_sha256_decrypt(keys.private_pkcs8, ciphertext).size() == 32u);

  BOOST_CHECK_THROW(rsa_oaep_sha256_decrypt(keys.private_pkcs8, flip_bit(ciphertext, 100)),
                    crypto_error);
  BOOST_CHECK_THROW(rsa_oaep_sha256_decrypt(keys.private_pkcs8, ciphertext.substr(1)),
                    crypto_error);
  BOOST_CHECK_THROW(rsa_oaep_sha256_decrypt(keys.private_pkcs8, ciphertext + '\0'),
                    crypto_error);
  BOOST_CHECK_THROW(rsa_oaep_sha256_decrypt(keys.private_pkcs8, ""), crypto_error);
  // A value not below the modulus is not an RSA ciphertext at all.
  BOOST_CHECK_THROW(rsa_oaep_sha256_decrypt(keys.private_pkcs8, std::string(256, '\xff')),
                    crypto_error);
  // Another key pair's private key.
  auto other = make_rsa_pems(2048);
  BOOST_CHECK_THROW(rsa_oaep_sha256_decrypt(other.private_pkcs8, ciphertext), crypto_error);
}

// Interoperability: a ciphertext made by OpenSSL 3.0 with
//   openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep
//     -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
// under a throwaway key from `openssl genpkey -algorithm RSA` (PKCS#8). A
// round trip alone cannot tell MGF1-SHA-256 from MGF1-SHA-1; this can.
BOOST_AUTO_TEST_CASE(rsa_oaep_decrypts_openssl_ciphertext) {
  const std::string private_pem =
      "-----BEGIN PRIVATE KEY-----\n"
      "MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC+Dr7wGZXoXpVC\n"
      "Xt1iw0B5QC7TSTzZoZs1MBlOeW1ilDRupoIBWrUlIDnJWAa/cYOtVoWSBAkJT/x/\n"
      "zM2PWKzLraHetyGnpyyW7YF9D0lHp/HrYWJbiCH6rp3tUBa6RXQ/YjvkwVoA07uA\n"
      "4//967/JwIgCLeXh9WRg21FYfYjSXP0dA79UophKrIkNfcqIPuUy6jJRiTdVKZHp\n"
      "zGE6Qq5X5DxViVrYj6FVLHtRCVQsuJI9UQn+LFjqIM63WI6aJNc7YmBlk8c7a9Mr\n"
      "w46i/8DJLuNDsQ0EY05YOJ/yLuf9AeX1oRiKQ6ckopULj/kM13r5/0QAAGzCeuDj\n"
      "yHzuzGGzAgMBAAECggEAL8ygm90rdRoYmu0l67lkhTotrKjuO2PoF5vluXVTm+ff\n"
      "Ofb5mmKYTWKJ9ggEBnEDp3wrsrn+Fc/+lpvJFSS9rKoaHFvdhH9IeRr5ppzKFtH3\n"
      "x3WiGZgmx5fUE0PBu45NOsW3f4RbYPrfXP66ur9oaFLaQgYOG2KuoKd4EXPdDd6z\n"
      "EjuhrqpKx0v4UFOs6CSxFJxEMw46TzA+hnhygxZH4+MWPtywYHDUcrXX+RrDpQMi\n"
      "Yu38MtuLNUoZ9q73fTm2UjVziSAzBCNzTK/LN3TMpnXIrlxUodjkzOPSVZ/gEFoK\n"
      "QPUASKfQSGovvF3EVhN6pSsV+/Qr0SQyBpuQgvEA8QKBgQDo5dtLL4f/61MkDH+L\n"
      "Q2O9sDk3GRRRJb6mm2ig2gmNvuuQB4HTU7eYvUY5hDirwOPnyliY2Ae3RAdoe0mS\n"
      "+J3S40Bcx7wlubVTlgO317fdAp7teXHYr8GIriy4mfewOwb5VjlrKD8Lg6cr1vgK\n"
      "NMThYPqwJnQg7cQoGr5+d4vwIwKBgQDQ6QPounzJeWxFgkdP4gLjdjbMB8wUjGWa\n"
      "obGmjdPEr8GyYt+12QWm1DRG/Ql99BXYicfZbEm0VAR9Z0LFPHm8mN9JVjroJaRV\n"
      "yYfFePCNw+ZST0ZrQWNJPmcWHHRa6Ph/7rKfE2kzDwIyKRmcc4IdFg804Y1bHe/5\n"
      "/3Xf9DAZMQKBgQDDtzX8Dut5EycBKkecnnsZExhhxv+d2dxHYl4gnlpc9c47cTOW\n"
      "hcnJ33U+LHD7VNOxHAgsGY8SYWbgVIrVqXvnlvWlgmwIP/GzVmO1gOCQJ/2qjt4v\n"
      "PDOlSslmMG1HebM4oU8LT/z7Dh3T54j1+rZguACzOv1oFqc7FI509L1yhQKBgHF3\n"
      "Dat6lkorS9YY4ziM7bqzOyHn3j0O4CRzS/TFNU6vkwmbUBwJiltJCDfCOUSSrMbW\n"
      "VphNi16I/4NI8WgE5626bhP75LSvtSju83IatLSawN7Vtc6NTiq63OySedPikw2R\n"
      "DKz/svSLY0rxLbretb2sfIfhNZBWmz9yM4h2rSURAoGBALGSFhHzuHbapDIFxiOF\n"
      "ZUedwTg8Gm6DZz+vrDOMDRwyf1Krfz5atCvahWrXdxsfHx6YJhBwigOrh7AV24Au\n"
      "/gCoDOU6w95ogI5gmBELtacvgLvpmbSfSL56272a5VTFPD+aj2IhUmUE6eo/m2Xn\n"
      "KXTujQcy1OxpM+7UTYjI0tlU\n"
      "-----END PRIVATE KEY-----\n";
  const std::string ciphertext = unhex(
      "543433b2dcb980b25f3951e63b0ffcbfd54031619f10c6a61c1d11b8d211e43abb6e599e1e7eca49"
      "73340bed8da9c0559c5919e41c8b48472a108b5342a295379d178a0dc2ffa0d9ec4dc17ce018869f"
      "3830f7df3e106475c762718d06a8e15e4174a3306eaa081fd803d04692f568ea440fef3f640f5d1a"
      "695647c3bc04d13ff70a683194870829a1f7ba40ef4bfe9d8f298e33c684e4a464b9307a30c41205"
      "60e08ef7e9d43eb816adda8c567c0f97c48ea8228537fe81bc9ac289baaf5a1bfe1501aa9603de54"
      "b0953bd5d93adac277daf07c958b3da928f23ef568f56ed05bbf3fd7b8e6d05a1dc15d1618f2ca12"
      "f8ab2bff2d042abdb4ace21c241eeea9");
  BOOST_TEST(hex_encode(rsa_oaep_sha256_decrypt(private_pem, ciphertext))
             == "00112233445566778899aabbccddeeff102132435465768798a9bacbdcedfe0f");
}

BOOST_AUTO_TEST_CASE(rsa_oaep_refuses_1024_bit_keys) {
  auto small = make_rsa_pems(1024);
  // The key itself parses; it is refused for its size alone.
  BOOST_TEST(rsa_public_key_bits(small.public_spki) == 1024u);
  BOOST_CHECK_THROW(rsa_oaep_sha256_encrypt(small.public_spki, random_bytes(32)), crypto_error);
}

BOOST_AUTO_TEST_CASE(rsa_rejects_malformed_pem) {
  const auto& keys = rsa2048();
  BOOST_REQUIRE(rsa_public_key_bits(keys.public_spki) == 2048u);

  auto body_of = [](const std::string& pem) {
    auto begin = pem.find('\n') + 1;
    return pem.substr(begin, pem.find("-----END") - begin);
  };
  const std::string spki_body = body_of(keys.public_spki);

  const std::vector<std::pair<std::string, std::string>> bad_public = {
      {"empty", ""},
      {"not PEM", "hello world"},
      {"garbage body", "-----BEGIN PUBLIC KEY-----\nnot base64!!\n-----END PUBLIC KEY-----\n"},
      {"empty body", "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"},
      {"random DER", to_pem("PUBLIC KEY", std::string(200, '\x30'))},
      {"missing END", "-----BEGIN PUBLIC KEY-----\n" + spki_body},
      {"mismatched END", "-----BEGIN PUBLIC KEY-----\n" + spki_body + "-----END PRIVATE KEY-----\n"},
      {"PKCS#1 public label", "-----BEGIN RSA PUBLIC KEY-----\n" + spki_body
                                  + "-----END RSA PUBLIC KEY-----\n"},
      {"private key given", keys.private_pkcs8},
      {"space in body", "-----BEGIN PUBLIC KEY-----\n " + spki_body + "-----END PUBLIC KEY-----\n"},
      {"text after END", keys.public_spki + "trailing\n"},
      {"two blocks", keys.public_spki + keys.public_spki},
      {"truncated body", "-----BEGIN PUBLIC KEY-----\n" + spki_body.substr(0, 128)
                             + "\n-----END PUBLIC KEY-----\n"},
  };
  for (const auto& [what, pem] : bad_public) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_CHECK_THROW(rsa_public_key_bits(pem), crypto_error);
      BOOST_CHECK_THROW(rsa_oaep_sha256_encrypt(pem, "data"), crypto_error);
    }
  }

  auto ciphertext = rsa_oaep_sha256_encrypt(keys.public_spki, "data");
  const std::vector<std::pair<std::string, std::string>> bad_private = {
      {"empty", ""},
      {"not PEM", "-----BEGIN PRIVATE KEY-----\n%%%%\n-----END PRIVATE KEY-----\n"},
      {"public key given", keys.public_spki},
      {"PKCS#8 body under PKCS#1 label",
       "-----BEGIN RSA PRIVATE KEY-----\n" + body_of(keys.private_pkcs8)
           + "-----END RSA PRIVATE KEY-----\n"},
      {"random DER", to_pem("PRIVATE KEY", std::string(300, '\x02'))},
  };
  for (const auto& [what, pem] : bad_private) {
    BOOST_TEST_CONTEXT(what) {
      BOOST_CHECK_THROW(rsa_oaep_sha256_decrypt(pem, ciphertext), crypto_error);
    }
  }
}

// -- randomness --------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(random_bytes_sizes_and_variation) {
  BOOST_TEST(random_bytes(0).empty());
  BOOST_TEST(random_bytes(1).size() == 1u);
  auto a = random_bytes(32);
  auto b = random_bytes(32);
  BOOST_TEST(a.size() == 32u);
  // Equal 256-bit draws would mean a broken source, not bad luck.
  BOOST_TEST(a != b);
  BOOST_TEST(a != std::string(32, '\0'));
}

// The pooled draw hands each byte out once: across many small draws that
// cross the pool's refills, and in one larger than the pool, no 8-byte
// window repeats (for bytes handed out twice it would).
BOOST_AUTO_TEST_CASE(public_random_bytes_never_hands_out_a_byte_twice) {
  BOOST_TEST(public_random_bytes(0).empty());
  std::string all;
  for (std::size_t n : {1u, 7u, 12u, 48u, 500u, 511u, 513u, 1024u, 5u, 12u, 3000u, 12u})
    for (int k = 0; k < 4; ++k) {
      auto drawn = public_random_bytes(n);
      BOOST_TEST(drawn.size() == n);
      all += drawn;
    }
  std::vector<std::string> windows;
  for (std::size_t i = 0; i + 8 <= all.size(); i += 8)
    windows.push_back(all.substr(i, 8));
  std::sort(windows.begin(), windows.end());
  BOOST_TEST((std::adjacent_find(windows.begin(), windows.end()) == windows.end()));
  BOOST_TEST(all.size() > 20'000u);
}

// A child made by fork does not hand out the bytes its parent's pool still
// holds: the parent's next draw and the child's first differ.
BOOST_AUTO_TEST_CASE(public_random_bytes_differ_in_a_forked_child) {
  public_random_bytes(1);  // the pool is filled and partly handed out
  int pipe_fds[2];
  BOOST_TEST_REQUIRE(::pipe(pipe_fds) == 0);
  auto child = ::fork();
  BOOST_TEST_REQUIRE(child >= 0);
  if (child == 0) {
    auto drawn = public_random_bytes(16);
    auto written = ::write(pipe_fds[1], drawn.data(), drawn.size());
    ::_exit(written == 16 ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string theirs(16, '\0');
  std::size_t got = 0;
  while (got < theirs.size()) {
    auto n = ::read(pipe_fds[0], theirs.data() + got, theirs.size() - got);
    if (n <= 0)
      break;
    got += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_TEST_REQUIRE(got == 16u);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  auto ours = public_random_bytes(16);
  BOOST_TEST(ours != theirs);
}

BOOST_AUTO_TEST_SUITE_END()

// SPEC §12: what a secret-rotation proposal's binaryHash commits to. The
// expected values were computed once, independently of this code, with
// OpenSSL 3.0 on Debian 12:
//   openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt key:SECRET -kdfopt salt:
//               -kdfopt info:"artifact-publisher secret commitment SET KID" HKDF
// (colons removed, lower-cased); the same command reproduces RFC 5869 case 3
// with an empty salt. The proof commitment: the seed by that command with
// info "artifact-publisher proof ed25519 v2", turned into a public key by
//   echo 302e020100300506032b657004220420$SEED | xxd -r -p
//     | openssl pkey -inform DER -pubout -outform DER | tail -c 32 | openssl dgst -sha256
BOOST_AUTO_TEST_SUITE(secret_commitments)

using ap::domain::secret_commitment;
using ap::domain::secret_set;

BOOST_AUTO_TEST_CASE(hkdf_commitments_match_openssl) {
  const std::string delivery_d2 = "delivery-key-d2-0123456789abcdefghijkl";
  BOOST_TEST(secret_commitment(secret_set::delivery, "d2", delivery_d2)
             == "b42a51c2cba49049db7593541cc3a60877f46f9a2a12d4f023475b339dd9702e");
  BOOST_TEST(secret_commitment(secret_set::stripe, "s2", "sk_test_rotation_s2_0123456789abcdef")
             == "b0376da52e2c1932f3a8873e8d19a34cedf9aabb9fae6a61bd0b362d9c319a64");
  // The set is bound in: one secret configured in two sets commits differently.
  BOOST_TEST(secret_commitment(secret_set::kernel_token, "d2", delivery_d2)
             == "e210adeecc4ee399d7165ff2e6dc833de0f512575089af47524dcca8a7b5409f");
  // And the kid.
  BOOST_TEST(secret_commitment(secret_set::delivery, "d3", delivery_d2)
             != secret_commitment(secret_set::delivery, "d2", delivery_d2));
}

BOOST_AUTO_TEST_CASE(the_proof_commitment_is_the_rotation_check_of_today) {
  const std::string secret = "proof-secret-v2-0123456789abcdefghijkl";
  BOOST_TEST(secret_commitment(secret_set::proof, "v2", secret)
             == "cec96133f5609206da4e0c20339c8fca4fa26b8cb5e3a2dd0543c1925099a490");
  BOOST_TEST(secret_commitment(secret_set::proof, "v2", secret)
             == ap::domain::key_commitment(ap::domain::derive_proof_key("v2", secret)));
}

BOOST_AUTO_TEST_CASE(set_names_read_back) {
  for (auto s : {secret_set::proof, secret_set::delivery, secret_set::stripe,
                 secret_set::kernel_token})
    BOOST_TEST((ap::domain::secret_set_from(ap::domain::to_string(s)) == s));
  BOOST_TEST(!ap::domain::secret_set_from("kernel_token"));
  BOOST_TEST(!ap::domain::secret_set_from(""));
}

BOOST_AUTO_TEST_SUITE_END()
