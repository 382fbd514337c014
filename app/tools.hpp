#pragma once

#include <string>
#include <vector>

namespace ap::app {

/// `artifact-publisher verify-proof FILE [--keys FILE | --public-key BASE64]`:
/// checks a proof offline with the published Ed25519 key. Returns 0 when
/// valid, 1 when not, 2 on a usage or input error.
int verify_proof_command(const std::vector<std::string>& args);

/// `artifact-publisher decrypt-delivery FILE [--license-key BASE64 |
/// --private-key PEMFILE]`: decrypts a delivery and prints its plaintext.
/// Returns 0 on success, 1 when it cannot be decrypted, 2 on a usage error.
int decrypt_delivery_command(const std::vector<std::string>& args);

} // namespace ap::app
