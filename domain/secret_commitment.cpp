#include "domain/secret_commitment.hpp"

#include <cctype>

#include "core/crypto.hpp"
#include "domain/proof.hpp"

namespace ap::domain {

const char* to_string(secret_set s) {
  switch (s) {
    case secret_set::proof:
      return "proof";
    case secret_set::delivery:
      return "delivery";
    case secret_set::stripe:
      return "stripe";
    case secret_set::kernel_token:
      return "kernel-token";
  }
  return "";
}

std::optional<secret_set> secret_set_from(std::string_view name) {
  for (auto s : {secret_set::proof, secret_set::delivery, secret_set::stripe,
                 secret_set::kernel_token})
    if (name == to_string(s))
      return s;
  return std::nullopt;
}

std::optional<rotation_target> rotation_target_of(std::string_view version) {
  rotation_target t;
  auto colon = version.find(':');
  if (colon != std::string_view::npos) {
    auto set = secret_set_from(version.substr(0, colon));
    if (!set)
      return std::nullopt;
    t.set = *set;
    version.remove_prefix(colon + 1);
  }
  if (version.empty() || version.size() > 64)
    return std::nullopt;
  for (char c : version)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return std::nullopt;
  t.kid = std::string{version};
  return t;
}

std::string reported_name(const rotation_target& t) {
  if (t.set == secret_set::proof)
    return t.kid;
  return std::string{to_string(t.set)} + ":" + t.kid;
}

std::string secret_commitment(secret_set set, const std::string& kid, const std::string& secret) {
  if (set == secret_set::proof)
    return key_commitment(derive_proof_key(kid, secret));
  return crypto::hex_encode(crypto::hkdf_sha256(
    secret, "", "artifact-publisher secret commitment " + std::string{to_string(set)} + " " + kid,
    32));
}

} // namespace ap::domain
