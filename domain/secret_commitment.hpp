#pragma once

// What a secret rotation commits to (SPEC §12): a value approvers can
// compare without the secret being revealed.

#include <optional>
#include <string>
#include <string_view>

namespace ap::domain {

/// The versioned secret sets of SPEC §12.
enum class secret_set { proof, delivery, stripe, kernel_token };

/// "proof", "delivery", "stripe" or "kernel-token".
const char* to_string(secret_set s);

/// Reads what to_string wrote; nullopt for anything else.
std::optional<secret_set> secret_set_from(std::string_view name);

/// What a `secret-rotation` proposal's version names: the set and the kid
/// in it to activate.
struct rotation_target {
  secret_set set = secret_set::proof;
  std::string kid;
};

/// Reads a rotation version: `<set>:<kid>` (`delivery:d2`), or a bare kid
/// for the proof set. Nullopt for an unknown set or a kid that is not 1-64
/// characters of A-Z a-z 0-9 . _ -.
std::optional<rotation_target> rotation_target_of(std::string_view version);

/// What a refused rotation version is told.
constexpr const char* rotation_version_rule =
  "version must name the version to activate: <set>:<kid> with set proof, delivery, stripe or "
  "kernel-token (a bare kid is the proof set) and a kid of 1-64 characters of A-Z a-z 0-9 . _ -";

/// How instances report and look up a version of a set (`v2` for the
/// proof set, as before the other sets rotated; `delivery:d2` otherwise).
std::string reported_name(const rotation_target& t);

/// The commitment to version `kid` of `set` holding `secret`, lower-case
/// hex. For the proof set, the hex SHA-256 of the kid's Ed25519 public key
/// as the proof key is derived (key_commitment, what a proof rotation's
/// binaryHash is); for the others, HKDF-SHA256(IKM = secret, salt = "",
/// info = "artifact-publisher secret commitment " + set + " " + kid, 32
/// bytes): one-way, and bound to the set and kid so that one secret
/// configured twice commits differently.
std::string secret_commitment(secret_set set, const std::string& kid, const std::string& secret);

} // namespace ap::domain
