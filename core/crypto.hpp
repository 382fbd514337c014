#pragma once

// The cryptographic primitives of SPEC §5, on Crypto++. Byte strings are
// std::string holding raw bytes; encodings are explicit (hex, base64).
// Every function throws crypto_error on invalid input (bad key, bad tag,
// malformed encoding) and never returns partial output.

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ap::crypto {

/// A key, signature or ciphertext was rejected.
class crypto_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// -- encodings ---------------------------------------------------------------

/// Lower-case hex.
std::string hex_encode(std::string_view bytes);
/// Hex (either case) to bytes; nullopt on odd length or a non-hex digit.
std::optional<std::string> hex_decode(std::string_view text);
/// Standard base64 with padding (RFC 4648 §4), no line breaks.
std::string base64_encode(std::string_view bytes);
/// Strict standard base64 with padding; nullopt on anything else
/// (whitespace, URL alphabet, missing padding, non-canonical trailing bits).
std::optional<std::string> base64_decode(std::string_view text);

// -- hashes and MACs -----------------------------------------------------------

/// SHA-256, raw 32 bytes.
std::string sha256(std::string_view data);
/// SHA-256, lower-case hex.
std::string sha256_hex(std::string_view data);
/// HMAC-SHA256, raw 32 bytes.
std::string hmac_sha256(std::string_view key, std::string_view message);
/// HMAC-SHA256, lower-case hex.
std::string hmac_sha256_hex(std::string_view key, std::string_view message);
/// HKDF-SHA256 (RFC 5869): `length` bytes from IKM, salt (may be empty) and info.
std::string hkdf_sha256(std::string_view ikm, std::string_view salt, std::string_view info,
                        std::size_t length);
/// Compares in time independent of where the inputs differ.
bool constant_time_equal(std::string_view a, std::string_view b);

// -- Ed25519 (RFC 8032) ----------------------------------------------------------

/// The 32-byte public key of a 32-byte private seed.
std::string ed25519_public_key(std::string_view seed);
/// The 64-byte signature of `message` by the key with this 32-byte seed.
std::string ed25519_sign(std::string_view seed, std::string_view message);

/// A private key that signs many messages: the public key, which every
/// signature needs, is derived once, here, where `ed25519_sign` derives it
/// again on each call (half of its cost). Copies share the key; signing is
/// safe from several threads.
class ed25519_signer {
public:
  /// Throws crypto_error unless `seed` is 32 bytes.
  explicit ed25519_signer(std::string_view seed);
  /// The 64-byte signature of `message`.
  std::string sign(std::string_view message) const;
  /// The raw 32-byte public key.
  const std::string& public_key() const { return public_key_; }

private:
  struct key;
  std::shared_ptr<const key> key_;
  std::string public_key_;
};

/// Whether `signature` (64 bytes) is valid for `message` under the 32-byte
/// public key; false (not an exception) for wrong sizes.
bool ed25519_verify(std::string_view public_key, std::string_view message,
                    std::string_view signature);

/// A public key that checks many signatures: once its first verification
/// has built a table of the key's multiples (165 KB, a few milliseconds;
/// the base point's table, as large, is built once per process), it does
/// so in well under half the time of ed25519_verify, and answers as
/// ed25519_verify does, except that a key it cannot use verifies nothing:
/// one that is not 32 bytes, not the canonical encoding of a curve point
/// (y below p, x = 0 only with its sign bit clear), or of small order
/// (under such a key anyone can make signatures that verify, and
/// ed25519_verify accepts them). For public data only: its time depends on
/// the signature and the key. Copies share the table; verifying is safe
/// from several threads.
class ed25519_verifier {
public:
  /// Any bytes; decodes the key (a few microseconds). Without `tabled`, it
  /// builds no table and verifies with ed25519_verify, for keys too many
  /// to keep tables for; it refuses the same keys either way.
  explicit ed25519_verifier(std::string_view public_key, bool tabled = true);
  /// Whether the key can verify anything (see above).
  bool usable() const { return usable_; }
  /// Whether `signature` (64 bytes) is valid for `message` under the key.
  bool verify(std::string_view message, std::string_view signature) const;

  /// One signature to check with `verify_each`.
  struct check {
    const ed25519_verifier* verifier; // not null
    std::string_view message;
    std::string_view signature;
  };
  /// For each check, what `check.verifier->verify(message, signature)`
  /// answers. The tabled verifications share one field inversion instead
  /// of one each (about a fifth of a verification's cost).
  static std::vector<bool> verify_each(const std::vector<check>& checks);
  /// The raw public key it was made with.
  const std::string& public_key() const { return public_key_; }
  /// Whether it keeps tables (a usable key made with `tabled`).
  bool tabled() const { return tables_ != nullptr; }
  /// Verifiers are equal when their keys are.
  bool operator==(const ed25519_verifier& other) const { return public_key_ == other.public_key_; }
  bool operator!=(const ed25519_verifier& other) const { return !(*this == other); }

private:
  struct tables;
  struct product;
  /// The answer when it is known without the product (an unusable key, no
  /// table, a malformed signature); else nullopt and [S]B - [k]A in `out`.
  std::optional<bool> start(std::string_view message, std::string_view signature,
                            product& out) const;
  std::string public_key_;
  bool usable_ = false;
  std::shared_ptr<tables> tables_; // none when not tabled or not usable
};

// -- AES-256-GCM -------------------------------------------------------------------

/// Encrypts with a 32-byte key and 12-byte nonce; returns ciphertext followed
/// by the 16-byte tag.
std::string aes256gcm_encrypt(std::string_view key, std::string_view nonce,
                              std::string_view plaintext, std::string_view aad);
/// Decrypts ciphertext‖tag; throws crypto_error when the tag does not verify.
std::string aes256gcm_decrypt(std::string_view key, std::string_view nonce,
                              std::string_view ciphertext_and_tag, std::string_view aad);

// -- RSA-OAEP (SHA-256, MGF1-SHA-256, empty label) ----------------------------------

/// Encrypts to a PEM SubjectPublicKeyInfo RSA key of at least 2048 bits.
std::string rsa_oaep_sha256_encrypt(std::string_view public_key_pem, std::string_view data);
/// Decrypts with a PEM PKCS#8 ("BEGIN PRIVATE KEY") or PKCS#1
/// ("BEGIN RSA PRIVATE KEY") RSA private key.
std::string rsa_oaep_sha256_decrypt(std::string_view private_key_pem, std::string_view data);
/// The modulus size in bits of a PEM SubjectPublicKeyInfo RSA key; throws
/// crypto_error when it is not one.
unsigned rsa_public_key_bits(std::string_view public_key_pem);

/// The sizes that decide what a public RSA operation costs.
struct rsa_public_key_shape {
  unsigned modulus_bits = 0;
  /// The public exponent, or nullopt when it needs more than 64 bits.
  std::optional<std::uint64_t> exponent;
};

/// The shape of a PEM SubjectPublicKeyInfo RSA key; throws crypto_error when
/// it is not one.
rsa_public_key_shape rsa_public_key_shape_of(std::string_view public_key_pem);

// -- randomness ------------------------------------------------------------------------

/// `n` bytes from the operating system's CSPRNG, drawn for this call: for
/// keys and seeds.
std::string random_bytes(std::size_t n);

/// `n` bytes from the operating system's CSPRNG for values that are made
/// public (ids, nonces): each thread draws them 512 at a time and hands out
/// each byte once, so a checkout's ids and nonce cost no system call of
/// their own. Never for a key or a seed, which would then sit in the pool
/// before it is used. A child process made by fork starts with an empty
/// pool, so parent and child never hand out the same bytes.
std::string public_random_bytes(std::size_t n);

} // namespace ap::crypto
