#include "core/crypto.hpp"
#include "core/ed25519_scalar.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>

#include <pthread.h>
#include <sys/random.h>

#include <cryptopp/aes.h>
#include <cryptopp/cryptlib.h>
#include <cryptopp/gcm.h>
#include <cryptopp/hkdf.h>
#include <cryptopp/hmac.h>
#include <cryptopp/misc.h>
#include <cryptopp/oaep.h>
#include <cryptopp/osrng.h>
#include <cryptopp/queue.h>
#include <cryptopp/rsa.h>
#include <cryptopp/sha.h>
#include <cryptopp/xed25519.h>

namespace ap::crypto {

namespace {

using CryptoPP::byte;

constexpr std::size_t ed25519_key_size = 32;
constexpr std::size_t ed25519_signature_size = 64;
constexpr std::size_t aes256_key_size = 32;
constexpr std::size_t gcm_nonce_size = 12;
constexpr std::size_t gcm_tag_size = 16;
constexpr unsigned rsa_min_bits = 2048;

// Crypto++ takes (pointer, length) pairs and some of its code paths assert
// on or dereference a null pointer even when the length is zero, while an
// empty std::string_view may carry a null data(). Hand it a valid address
// instead; with length zero it is never read.
const byte* bytes_of(std::string_view s) {
  static const byte empty = 0;
  return s.empty() ? &empty : reinterpret_cast<const byte*>(s.data());
}

byte* bytes_of(std::string& s) {
  return reinterpret_cast<byte*>(s.data());
}

[[noreturn]] void fail(const char* what, const CryptoPP::Exception& e) {
  throw crypto_error(std::string(what) + ": " + e.what());
}

// -- base64 ---------------------------------------------------------------------

constexpr char base64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// The 6-bit value of a standard-alphabet character, or -1.
int base64_value(char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// -- PEM --------------------------------------------------------------------------

struct pem_block {
  std::string label; // e.g. "PUBLIC KEY"
  std::string der;
};

/// Parses exactly one PEM block (RFC 7468) surrounded by optional whitespace.
/// Only CR and LF may appear inside the base64 body; anything else, including
/// text before or after the block, is rejected rather than guessed at.
pem_block parse_pem(std::string_view text) {
  constexpr std::string_view ws = " \t\r\n";
  auto first = text.find_first_not_of(ws);
  if (first == std::string_view::npos)
    throw crypto_error("PEM: empty input");
  text = text.substr(first, text.find_last_not_of(ws) - first + 1);

  constexpr std::string_view begin_prefix = "-----BEGIN ";
  constexpr std::string_view end_prefix = "-----END ";
  constexpr std::string_view dashes = "-----";
  if (text.substr(0, begin_prefix.size()) != begin_prefix)
    throw crypto_error("PEM: missing BEGIN line");
  auto label_end = text.find(dashes, begin_prefix.size());
  if (label_end == std::string_view::npos)
    throw crypto_error("PEM: malformed BEGIN line");
  std::string label(text.substr(begin_prefix.size(), label_end - begin_prefix.size()));

  std::string end_line = std::string(end_prefix) + label + std::string(dashes);
  if (text.size() < end_line.size()
      || text.substr(text.size() - end_line.size()) != end_line)
    throw crypto_error("PEM: missing or mismatched END line for '" + label + "'");

  auto body_start = label_end + dashes.size();
  auto body_end = text.size() - end_line.size();
  if (body_end < body_start)
    throw crypto_error("PEM: malformed block");
  std::string body;
  body.reserve(body_end - body_start);
  for (char c : text.substr(body_start, body_end - body_start)) {
    if (c != '\r' && c != '\n')
      body.push_back(c);
  }

  auto der = base64_decode(body);
  if (!der || der->empty())
    throw crypto_error("PEM: body of '" + label + "' is not valid base64");
  return {std::move(label), std::move(*der)};
}

/// Loads an RSA key from DER via `load`, insisting the encoding is consumed
/// completely: trailing bytes mean the input is not the structure we expect.
template <class Load>
void load_der(const std::string& der, Load&& load) {
  CryptoPP::ByteQueue queue;
  queue.Put(bytes_of(der), der.size());
  queue.MessageEnd();
  load(queue);
  if (queue.AnyRetrievable())
    throw crypto_error("RSA key: trailing data after the DER structure");
}

CryptoPP::RSA::PublicKey load_rsa_public_key(std::string_view pem) {
  auto block = parse_pem(pem);
  if (block.label != "PUBLIC KEY")
    throw crypto_error("RSA public key: expected 'PUBLIC KEY' (SubjectPublicKeyInfo), got '"
                       + block.label + "'");
  CryptoPP::RSA::PublicKey key;
  try {
    // Load() parses SubjectPublicKeyInfo and checks the rsaEncryption OID.
    load_der(block.der, [&](CryptoPP::BufferedTransformation& bt) { key.Load(bt); });
    // Level 0 only checks the cheap structural properties (n and e odd,
    // 1 < e < n), which is what guards the public operation.
    CryptoPP::AutoSeededRandomPool rng;
    if (!key.Validate(rng, 0))
      throw crypto_error("RSA public key: invalid parameters");
  } catch (const CryptoPP::Exception& e) {
    fail("RSA public key", e);
  }
  return key;
}

CryptoPP::RSA::PrivateKey load_rsa_private_key(std::string_view pem) {
  auto block = parse_pem(pem);
  CryptoPP::RSA::PrivateKey key;
  try {
    if (block.label == "PRIVATE KEY") {
      // PKCS#8 PrivateKeyInfo, with the rsaEncryption OID checked.
      load_der(block.der, [&](CryptoPP::BufferedTransformation& bt) { key.Load(bt); });
    } else if (block.label == "RSA PRIVATE KEY") {
      // PKCS#1 RSAPrivateKey is the bare structure PKCS#8 wraps.
      load_der(block.der, [&](CryptoPP::BufferedTransformation& bt) {
        key.BERDecodePrivateKey(bt, false, static_cast<std::size_t>(bt.MaxRetrievable()));
      });
    } else {
      throw crypto_error("RSA private key: expected 'PRIVATE KEY' or 'RSA PRIVATE KEY', got '"
                         + block.label + "'");
    }
    // Level 1 adds consistency checks (n = p*q, e*d = 1 mod lcm(p-1, q-1), ...)
    // without the costly primality tests, so an inconsistent key is refused
    // here rather than producing wrong output later.
    CryptoPP::AutoSeededRandomPool rng;
    if (!key.Validate(rng, 1))
      throw crypto_error("RSA private key: inconsistent parameters");
  } catch (const CryptoPP::Exception& e) {
    fail("RSA private key", e);
  }
  return key;
}

using rsa_oaep = CryptoPP::RSAES<CryptoPP::OAEP<CryptoPP::SHA256>>;

} // namespace

// -- encodings ------------------------------------------------------------------

std::string hex_encode(std::string_view bytes) {
  constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 0x0f]);
  }
  return out;
}

std::optional<std::string> hex_decode(std::string_view text) {
  if (text.size() % 2 != 0)
    return std::nullopt;
  std::string out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    int hi = hex_value(text[i]);
    int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16)
                      | (std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8)
                      | std::uint32_t(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(base64_alphabet[(v >> 18) & 0x3f]);
    out.push_back(base64_alphabet[(v >> 12) & 0x3f]);
    out.push_back(base64_alphabet[(v >> 6) & 0x3f]);
    out.push_back(base64_alphabet[v & 0x3f]);
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2)
      v |= std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(base64_alphabet[(v >> 18) & 0x3f]);
    out.push_back(base64_alphabet[(v >> 12) & 0x3f]);
    out.push_back(rest == 2 ? base64_alphabet[(v >> 6) & 0x3f] : '=');
    out.push_back('=');
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0)
    return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=')
    padding = (text[text.size() - 2] == '=') ? 2 : 1;

  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t acc = 0;
  std::size_t data_chars = text.size() - padding;
  for (std::size_t i = 0; i < data_chars; ++i) {
    // '=' anywhere but the last one or two positions lands here and fails.
    int v = base64_value(text[i]);
    if (v < 0)
      return std::nullopt;
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    if (i % 4 == 3) {
      out.push_back(static_cast<char>((acc >> 16) & 0xff));
      out.push_back(static_cast<char>((acc >> 8) & 0xff));
      out.push_back(static_cast<char>(acc & 0xff));
      acc = 0;
    }
  }
  // The final quantum: "xx==" carries one byte in 12 bits, "xxx=" two bytes
  // in 18 bits. The unused low bits must be zero, or two different texts
  // would decode to the same bytes (non-canonical encoding).
  if (padding == 2) {
    if ((acc & 0x0f) != 0)
      return std::nullopt;
    out.push_back(static_cast<char>((acc >> 4) & 0xff));
  } else if (padding == 1) {
    if ((acc & 0x03) != 0)
      return std::nullopt;
    out.push_back(static_cast<char>((acc >> 10) & 0xff));
    out.push_back(static_cast<char>((acc >> 2) & 0xff));
  }
  return out;
}

// -- hashes and MACs ----------------------------------------------------------------

std::string sha256(std::string_view data) {
  std::string digest(CryptoPP::SHA256::DIGESTSIZE, '\0');
  CryptoPP::SHA256().CalculateDigest(bytes_of(digest), bytes_of(data), data.size());
  return digest;
}

std::string sha256_hex(std::string_view data) {
  return hex_encode(sha256(data));
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  try {
    std::string mac(CryptoPP::HMAC<CryptoPP::SHA256>::DIGESTSIZE, '\0');
    CryptoPP::HMAC<CryptoPP::SHA256> hmac(bytes_of(key), key.size());
    hmac.CalculateDigest(bytes_of(mac), bytes_of(message), message.size());
    return mac;
  } catch (const CryptoPP::Exception& e) {
    fail("HMAC-SHA256", e);
  }
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  return hex_encode(hmac_sha256(key, message));
}

std::string hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info,
                        std::size_t length) {
  CryptoPP::HKDF<CryptoPP::SHA256> hkdf;
  if (length > hkdf.MaxDerivedKeyLength())
    throw crypto_error("HKDF-SHA256: at most 8160 bytes can be derived");
  if (length == 0)
    return {};
  try {
    std::string out(length, '\0');
    // A null salt selects RFC 5869's default of HashLen zero bytes; an empty
    // HMAC key is equivalent anyway, but this states the intent.
    hkdf.DeriveKey(bytes_of(out), out.size(), bytes_of(ikm), ikm.size(),
                   salt.empty() ? nullptr : bytes_of(salt), salt.size(), bytes_of(info),
                   info.size());
    return out;
  } catch (const CryptoPP::Exception& e) {
    fail("HKDF-SHA256", e);
  }
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Lengths are not secret here (MACs and tags have fixed sizes); only the
  // position of the first differing byte must not leak.
  if (a.size() != b.size())
    return false;
  return CryptoPP::VerifyBufsEqual(bytes_of(a), bytes_of(b), a.size());
}

// -- Ed25519 -----------------------------------------------------------------------

// Crypto++ 8.7 only checks the top three bits of S, so without this S + L
// would verify too and signatures would be malleable.
bool detail::ed25519_scalar_is_canonical(const unsigned char* s) {
  static constexpr byte order[32] = {
      0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
      0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};
  // Compare from the most significant byte. S and L are public, so a
  // data-dependent early exit leaks nothing.
  for (int i = 31; i >= 0; --i) {
    if (s[i] != order[i])
      return s[i] < order[i];
  }
  return false; // S == L
}

namespace {

// out = a - b over five 64-bit limbs, modulo 2^320; whether it borrowed
// (a < b).
bool subtract(const std::uint64_t* a, const std::uint64_t* b, std::uint64_t* out) {
  std::uint64_t borrow = 0;
  for (int i = 0; i < 5; ++i) {
    unsigned __int128 t = static_cast<unsigned __int128>(a[i]) - b[i] - borrow;
    out[i] = static_cast<std::uint64_t>(t);
    borrow = static_cast<std::uint64_t>(t >> 64) & 1;
  }
  return borrow != 0;
}

} // namespace

// Barrett's reduction with mu = floor(2^512 / L): q = floor(x·mu / 2^512)
// is floor(x / L) or one less (x·mu / 2^512 lies in (x/L - 1, x/L], as
// x < 2^512), so x - q·L is below 2L and one conditional subtraction of L
// leaves x mod L. Every step is on 64-bit limbs; x - q·L, below 2^254, is
// computed modulo 2^320 from the low limbs of x and of q·L.
std::array<byte, 32> detail::ed25519_scalar_reduce(const byte* wide) {
  using u64 = std::uint64_t;
  using u128 = unsigned __int128;
  static constexpr u64 order[5] = {0x5812631a5cf5d3ed, 0x14def9dea2f79cd6, 0, 0x1000000000000000,
                                   0};
  static constexpr u64 mu[5] = {0xed9ce5a30a2c131b, 0x2106215d086329a7, 0xffffffffffffffeb,
                                0xffffffffffffffff, 0xf};
  u64 x[8];
  for (int i = 0; i < 8; ++i)
    std::memcpy(&x[i], wide + 8 * i, 8); // every target we build for is little endian
  u64 product[13] = {}; // x·mu
  for (int i = 0; i < 8; ++i) {
    u64 carry = 0;
    for (int j = 0; j < 5; ++j) {
      u128 t = static_cast<u128>(x[i]) * mu[j] + product[i + j] + carry;
      product[i + j] = static_cast<u64>(t);
      carry = static_cast<u64>(t >> 64);
    }
    product[i + 5] = carry;
  }
  const u64* q = product + 8; // floor(x·mu / 2^512), below 2^260
  u64 ql[5] = {};             // q·L mod 2^320
  for (int i = 0; i < 5; ++i) {
    u64 carry = 0;
    for (int j = 0; i + j < 5; ++j) {
      u128 t = static_cast<u128>(q[i]) * order[j] + ql[i + j] + carry;
      ql[i + j] = static_cast<u64>(t);
      carry = static_cast<u64>(t >> 64);
    }
  }
  u64 r[5], less_order[5];
  subtract(x, ql, r); // x - q·L, below 2L
  if (!subtract(r, order, less_order)) // r >= L
    std::memcpy(r, less_order, sizeof r);
  std::array<byte, 32> out;
  for (int i = 0; i < 4; ++i)
    std::memcpy(out.data() + 8 * i, &r[i], 8);
  return out;
}

struct ed25519_signer::key {
  explicit key(const byte* seed) : signer(seed) {}
  CryptoPP::ed25519Signer signer;
};

ed25519_signer::ed25519_signer(std::string_view seed) {
  if (seed.size() != ed25519_key_size)
    throw crypto_error("Ed25519: private seed must be 32 bytes");
  try {
    // The signer derives the public key from the seed when constructed.
    auto k = std::make_shared<const key>(bytes_of(seed));
    const auto& pk =
        static_cast<const CryptoPP::ed25519PrivateKey&>(k->signer.GetPrivateKey());
    public_key_.assign(reinterpret_cast<const char*>(pk.GetPublicKeyBytePtr()),
                       ed25519_key_size);
    key_ = std::move(k);
  } catch (const CryptoPP::Exception& e) {
    fail("Ed25519 key", e);
  }
}

std::string ed25519_signer::sign(std::string_view message) const {
  try {
    std::string signature(ed25519_signature_size, '\0');
    // Ed25519 signing is deterministic, so no entropy is needed.
    key_->signer.SignMessage(CryptoPP::NullRNG(), bytes_of(message), message.size(),
                             bytes_of(signature));
    return signature;
  } catch (const CryptoPP::Exception& e) {
    fail("Ed25519 sign", e);
  }
}

std::string ed25519_public_key(std::string_view seed) {
  return ed25519_signer(seed).public_key();
}

std::string ed25519_sign(std::string_view seed, std::string_view message) {
  return ed25519_signer(seed).sign(message);
}

bool ed25519_verify(std::string_view public_key, std::string_view message,
                    std::string_view signature) {
  if (public_key.size() != ed25519_key_size || signature.size() != ed25519_signature_size)
    return false;
  if (!detail::ed25519_scalar_is_canonical(bytes_of(signature) + 32))
    return false;
  try {
    CryptoPP::ed25519Verifier verifier(bytes_of(public_key));
    return verifier.VerifyMessage(bytes_of(message), message.size(), bytes_of(signature),
                                  signature.size());
  } catch (const CryptoPP::Exception&) {
    // A key that does not decode to a curve point cannot have produced the
    // signature; callers ask a yes/no question, so answer it.
    return false;
  }
}

// -- AES-256-GCM ---------------------------------------------------------------------

std::string aes256gcm_encrypt(std::string_view key, std::string_view nonce,
                              std::string_view plaintext, std::string_view aad) {
  // AES itself would accept 16- and 24-byte keys and GCM any IV length;
  // enforce the sizes the format promises.
  if (key.size() != aes256_key_size)
    throw crypto_error("AES-256-GCM: key must be 32 bytes");
  if (nonce.size() != gcm_nonce_size)
    throw crypto_error("AES-256-GCM: nonce must be 12 bytes");
  try {
    CryptoPP::GCM<CryptoPP::AES>::Encryption gcm;
    // Crypto++ insists on an IV when keying GCM; EncryptAndAuthenticate
    // sets the same one again, which is harmless.
    gcm.SetKeyWithIV(bytes_of(key), key.size(), bytes_of(nonce), nonce.size());
    std::string out(plaintext.size() + gcm_tag_size, '\0');
    auto* ciphertext = bytes_of(out);
    gcm.EncryptAndAuthenticate(ciphertext, ciphertext + plaintext.size(), gcm_tag_size,
                               bytes_of(nonce), static_cast<int>(nonce.size()), bytes_of(aad),
                               aad.size(), bytes_of(plaintext), plaintext.size());
    return out;
  } catch (const CryptoPP::Exception& e) {
    fail("AES-256-GCM encrypt", e);
  }
}

std::string aes256gcm_decrypt(std::string_view key, std::string_view nonce,
                              std::string_view ciphertext_and_tag, std::string_view aad) {
  if (key.size() != aes256_key_size)
    throw crypto_error("AES-256-GCM: key must be 32 bytes");
  if (nonce.size() != gcm_nonce_size)
    throw crypto_error("AES-256-GCM: nonce must be 12 bytes");
  if (ciphertext_and_tag.size() < gcm_tag_size)
    throw crypto_error("AES-256-GCM: input shorter than the 16-byte tag");
  auto ciphertext = ciphertext_and_tag.substr(0, ciphertext_and_tag.size() - gcm_tag_size);
  auto tag = ciphertext_and_tag.substr(ciphertext.size());
  bool ok = false;
  std::string plaintext(ciphertext.size(), '\0');
  try {
    CryptoPP::GCM<CryptoPP::AES>::Decryption gcm;
    gcm.SetKeyWithIV(bytes_of(key), key.size(), bytes_of(nonce), nonce.size());
    ok = gcm.DecryptAndVerify(bytes_of(plaintext), bytes_of(tag), tag.size(), bytes_of(nonce),
                              static_cast<int>(nonce.size()), bytes_of(aad), aad.size(),
                              bytes_of(ciphertext), ciphertext.size());
  } catch (const CryptoPP::Exception& e) {
    fail("AES-256-GCM decrypt", e);
  }
  // DecryptAndVerify writes the plaintext before checking the tag; never
  // hand out unauthenticated bytes.
  if (!ok) {
    CryptoPP::SecureWipeBuffer(bytes_of(plaintext), plaintext.size());
    throw crypto_error("AES-256-GCM decrypt: authentication tag mismatch");
  }
  return plaintext;
}

// -- RSA-OAEP -------------------------------------------------------------------------

std::string rsa_oaep_sha256_encrypt(std::string_view public_key_pem, std::string_view data) {
  auto key = load_rsa_public_key(public_key_pem);
  auto bits = key.GetModulus().BitCount();
  if (bits < rsa_min_bits)
    throw crypto_error("RSA-OAEP encrypt: key has " + std::to_string(bits)
                       + " bits, at least 2048 required");
  try {
    rsa_oaep::Encryptor encryptor(key);
    if (data.size() > encryptor.FixedMaxPlaintextLength())
      throw crypto_error("RSA-OAEP encrypt: " + std::to_string(data.size())
                         + " bytes exceed the key's limit of "
                         + std::to_string(encryptor.FixedMaxPlaintextLength()));
    std::string out(encryptor.FixedCiphertextLength(), '\0');
    CryptoPP::AutoSeededRandomPool rng;
    encryptor.Encrypt(rng, bytes_of(data), data.size(), bytes_of(out));
    return out;
  } catch (const CryptoPP::Exception& e) {
    fail("RSA-OAEP encrypt", e);
  }
}

std::string rsa_oaep_sha256_decrypt(std::string_view private_key_pem, std::string_view data) {
  auto key = load_rsa_private_key(private_key_pem);
  try {
    rsa_oaep::Decryptor decryptor(key);
    // Crypto++ 8.7 rejects other lengths too; checking here keeps that
    // guarantee (and a clear message) independent of the library version.
    if (data.size() != decryptor.FixedCiphertextLength())
      throw crypto_error("RSA-OAEP decrypt: ciphertext must be "
                         + std::to_string(decryptor.FixedCiphertextLength()) + " bytes");
    std::string out(decryptor.FixedMaxPlaintextLength(), '\0');
    // The private operation is blinded, which needs randomness.
    CryptoPP::AutoSeededRandomPool rng;
    auto result = decryptor.Decrypt(rng, bytes_of(data), data.size(), bytes_of(out));
    if (!result.isValidCoding)
      throw crypto_error("RSA-OAEP decrypt: invalid ciphertext");
    out.resize(result.messageLength);
    return out;
  } catch (const CryptoPP::Exception& e) {
    fail("RSA-OAEP decrypt", e);
  }
}

unsigned rsa_public_key_bits(std::string_view public_key_pem) {
  return load_rsa_public_key(public_key_pem).GetModulus().BitCount();
}

rsa_public_key_shape rsa_public_key_shape_of(std::string_view public_key_pem) {
  auto key = load_rsa_public_key(public_key_pem);
  rsa_public_key_shape shape;
  shape.modulus_bits = key.GetModulus().BitCount();
  const auto& e = key.GetPublicExponent();
  if (e.BitCount() <= 64) {
    std::uint64_t value = 0;
    for (unsigned i = e.ByteCount(); i-- > 0;)
      value = (value << 8) | e.GetByte(i);
    shape.exponent = value;
  }
  return shape;
}

// -- randomness -------------------------------------------------------------------------

namespace {

// getrandom(2) reads the kernel's generator without a file descriptor: one
// system call, where opening /dev/urandom for each call took three. Without
// flags it blocks only until the pool is first initialised, which it is long
// before we run.
void fill_random(unsigned char* out, std::size_t n) {
  std::size_t filled = 0;
  while (filled < n) {
    auto got = ::getrandom(out + filled, n - filled, 0);
    if (got < 0) {
      if (errno == EINTR)
        continue;
      throw crypto_error(std::string("random_bytes: ")
                         + std::system_category().message(errno));
    }
    filled += static_cast<std::size_t>(got);
  }
}

struct public_pool {
  static constexpr std::size_t size = 512;
  std::array<unsigned char, size> bytes{};
  /// Bytes from here on are not handed out yet.
  std::size_t next = size;
};

thread_local public_pool pool;

// Only the thread that called fork goes on in the child: emptying its pool
// empties every pool the child has.
void empty_pool_in_child() {
  pool.next = public_pool::size;
}

} // namespace

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  fill_random(reinterpret_cast<unsigned char*>(out.data()), n);
  return out;
}

std::string public_random_bytes(std::size_t n) {
  static const int registered = ::pthread_atfork(nullptr, nullptr, empty_pool_in_child);
  (void)registered;
  if (n > public_pool::size)
    return random_bytes(n);
  std::string out(n, '\0');
  std::size_t taken = 0;
  while (taken < n) {
    if (pool.next == public_pool::size) {
      fill_random(pool.bytes.data(), public_pool::size);
      pool.next = 0;
    }
    auto k = std::min(n - taken, public_pool::size - pool.next);
    std::memcpy(out.data() + taken, pool.bytes.data() + pool.next, k);
    pool.next += k;
    taken += k;
  }
  return out;
}

} // namespace ap::crypto
