// The table verifier of Ed25519 (crypto::ed25519_verifier) against the
// general one (crypto::ed25519_verify), on signatures the fuzzer changes.
//
// Input: byte 0 picks one of four fixed keys (bits 0-1) and a mode (the
// rest, modulo 3):
//   0  byte 1 is a count n (modulo 9), then n (index, mask) byte pairs that
//      XOR the signature, then the message: the key signs the message and
//      the pairs change its signature;
//   1  64 bytes of signature, then the message;
//   2  32 bytes of public key, 64 of signature, then the message: a
//      verifier is made for that key.
//
// Properties: the verifier, with or without its table, and in a batch of
// verify_each, answers as ed25519_verify does for every key it can use, and
// verifies nothing under one it cannot (not a canonical point, or of small
// order); a signature the key made verifies, and one with any byte changed
// does not.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/crypto.hpp"
#include "fuzz/property.hpp"

namespace {

using namespace ap;
using ap::fuzz::violated;

struct fixture {
  std::array<crypto::ed25519_signer, 4> signers{
    crypto::ed25519_signer{std::string(32, '\x01')}, crypto::ed25519_signer{std::string(32, '\x5a')},
    crypto::ed25519_signer{std::string(32, '\xa5')}, crypto::ed25519_signer{std::string(32, '\xfe')}};
  std::array<crypto::ed25519_verifier, 4> verifiers{
    crypto::ed25519_verifier{signers[0].public_key()}, crypto::ed25519_verifier{signers[1].public_key()},
    crypto::ed25519_verifier{signers[2].public_key()}, crypto::ed25519_verifier{signers[3].public_key()}};
};

fixture& state() {
  static fixture f;
  return f;
}

void agree(const crypto::ed25519_verifier& verifier, const std::string& message,
           const std::string& signature) {
  bool tabled = verifier.verify(message, signature);
  // Checked together with genuine signatures on either side, which share
  // its inversion: every answer as alone.
  auto& f = state();
  static const std::string before = f.signers[1].sign("before"), after = f.signers[2].sign("after");
  auto answers = crypto::ed25519_verifier::verify_each(
    {{&f.verifiers[1], "before", before}, {&verifier, message, signature},
     {&f.verifiers[2], "after", after}});
  if (answers.size() != 3 || !answers[0] || !answers[2])
    violated("verify_each refuses a genuine signature beside another");
  else if (answers[1] != tabled)
    violated("verify_each answers differently from verify");
  if (!verifier.usable()) {
    if (tabled)
      violated("a key the verifier cannot use verifies a signature");
    return;
  }
  if (tabled != crypto::ed25519_verify(verifier.public_key(), message, signature))
    violated("the table verifier and ed25519_verify disagree",
             tabled ? "only the table verifier accepts" : "only ed25519_verify accepts");
  if (crypto::ed25519_verifier{verifier.public_key(), false}.verify(message, signature) != tabled)
    violated("the verifier answers differently without its table");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1)
    return 0;
  auto& f = state();
  std::string input{reinterpret_cast<const char*>(data), size};
  unsigned key = data[0] & 3u;
  unsigned mode = (data[0] >> 2) % 3u;
  if (mode == 0) {
    if (size < 2)
      return 0;
    std::size_t flips = data[1] % 9u;
    if (size < 2 + 2 * flips)
      return 0;
    std::string message = input.substr(2 + 2 * flips);
    std::string genuine = f.signers[key].sign(message);
    std::string signature = genuine;
    for (std::size_t i = 0; i < flips; ++i) {
      auto at = data[2 + 2 * i] % 64u;
      signature[at] = static_cast<char>(signature[at] ^ data[3 + 2 * i]);
    }
    bool valid = f.verifiers[key].verify(message, signature);
    if (valid != (signature == genuine))
      violated(valid ? "a changed signature verifies" : "a genuine signature does not verify");
    agree(f.verifiers[key], message, signature);
  } else if (mode == 1) {
    if (size < 1 + 64)
      return 0;
    agree(f.verifiers[key], input.substr(65), input.substr(1, 64));
  } else {
    if (size < 1 + 32 + 64)
      return 0;
    agree(crypto::ed25519_verifier{input.substr(1, 32)}, input.substr(97), input.substr(33, 64));
  }
  return 0;
}
