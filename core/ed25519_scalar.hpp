#pragma once

// What crypto.cpp and ed25519_verifier.cpp share of Ed25519's scalars.

#include <array>

namespace ap::crypto::detail {

/// Whether the scalar S (the second half of an Ed25519 signature, 32 bytes
/// little endian) is below the group order L = 2^252 +
/// 27742317777372353535851937790883648493, as RFC 8032 §5.1.7 requires.
bool ed25519_scalar_is_canonical(const unsigned char* s);

/// x mod L for x the 64 bytes `wide` read little endian (a SHA-512 digest:
/// RFC 8032 §5.1.7's k), as 32 bytes little endian.
std::array<unsigned char, 32> ed25519_scalar_reduce(const unsigned char* wide);

} // namespace ap::crypto::detail
