#pragma once

#include <string>
#include <vector>

namespace ap::app {

/// `artifact-publisher verify-proof FILE [--keys FILE | --public-key BASE64]
/// [--kernel-keys FILE]`: checks a proof offline with the published Ed25519
/// key and, with the Kernel's keys, the audit receipts of a CheckoutResult
/// read back after delivery (SPEC §11), each event's payload rebuilt from
/// the result. Returns 0 when valid, 1 when not (naming the failed check
/// and the event), 2 on a usage or input error.
int verify_proof_command(const std::vector<std::string>& args);

/// `artifact-publisher decrypt-delivery FILE [--license-key BASE64 |
/// --private-key PEMFILE | --delivery-keys JSON|@FILE]`: decrypts a delivery
/// and prints its plaintext. With the operator's master keys (the
/// DELIVERY_KEYS form) it re-derives the per-order key from the master key
/// the delivery's `keyId` names (d1 when it names none). Returns 0 on
/// success, 1 when it cannot be decrypted (naming a kid that is not given),
/// 2 on a usage error.
int decrypt_delivery_command(const std::vector<std::string>& args);

} // namespace ap::app

namespace ap::app {

/// `artifact-publisher keygen [--out NAME|PATH]`: prints a fresh Ed25519 key
/// pair as `{"privateKey": base64 seed, "publicKey": base64 raw key}`; with
/// --out, writes NAME.key (mode 600) and NAME.pub into
/// `${XDG_DATA_HOME:-$HOME/.local/share}/artifact-publisher/keys` (mode 700),
/// or PATH.key and PATH.pub when PATH has a slash, and prints the public key.
int keygen_command(const std::vector<std::string>& args);

/// `artifact-publisher commit-secret --set SET --kid KID --value VALUE|@FILE`:
/// prints the SPEC §12 commitment (lower-case hex) of version KID of SET
/// (proof, delivery, stripe, kernel-token) holding that secret: what a
/// `secret-rotation` proposal's binaryHash must be. A file's surrounding
/// white space is not part of the secret. Returns 0, or 2 on a usage or
/// input error.
int commit_secret_command(const std::vector<std::string>& args);

/// `artifact-publisher sign-approval --upgrade-id ID --payload-hash HEX
/// --approver ID --private-key BASE64|@FILE`: prints the approval signature
/// (base64 Ed25519 over the SPEC §7 message).
int sign_approval_command(const std::vector<std::string>& args);

} // namespace ap::app
