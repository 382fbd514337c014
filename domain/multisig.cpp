#include "domain/multisig.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>

#include "core/crypto.hpp"
#include "core/time.hpp"
#include "core/json.hpp"
#include "domain/secret_commitment.hpp"

namespace ap::domain {

namespace {

std::optional<multisig_refusal> refuse(refusal_kind kind, std::string code, std::string message,
                                       std::string field = {}) {
  return multisig_refusal{kind, std::move(code), std::move(message), std::move(field)};
}

bool is_hex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

bool numeric_identifier(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos
         && (s.size() == 1 || s[0] != '0');
}

struct semver {
  std::vector<long long> core;
  std::vector<std::string> pre;
};

std::optional<semver> parse_semver(const std::string& v) {
  if (v.empty() || v.size() > 64)
    return std::nullopt;
  auto plus = v.find('+');
  auto main = v.substr(0, plus);
  auto dash = main.find('-');
  auto core = main.substr(0, dash);
  semver out;
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    auto dot = core.find('.', start);
    auto part = core.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!numeric_identifier(part) || part.size() > 15)
      return std::nullopt;
    out.core.push_back(std::stoll(part));
    if (i < 2) {
      if (dot == std::string::npos)
        return std::nullopt;
      start = dot + 1;
    } else if (dot != std::string::npos) {
      return std::nullopt;
    }
  }
  if (dash != std::string::npos) {
    auto pre = main.substr(dash + 1);
    std::size_t s = 0;
    while (true) {
      auto dot = pre.find('.', s);
      auto id = pre.substr(s, dot == std::string::npos ? std::string::npos : dot - s);
      if (id.empty() || id.find_first_not_of("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-") != std::string::npos)
        return std::nullopt;
      out.pre.push_back(id);
      if (dot == std::string::npos)
        break;
      s = dot + 1;
    }
  }
  return out;
}


} // namespace

bool is_semver(const std::string& v) {
  return parse_semver(v).has_value();
}

std::optional<int> compare_semver(const std::string& a, const std::string& b) {
  auto x = parse_semver(a);
  auto y = parse_semver(b);
  if (!x || !y)
    return std::nullopt;
  for (int i = 0; i < 3; ++i)
    if (x->core[i] != y->core[i])
      return x->core[i] < y->core[i] ? -1 : 1;
  // A pre-release sorts before its release; identifiers compare numerically
  // when both are numbers, else by ASCII, numbers before text.
  if (x->pre.empty() != y->pre.empty())
    return x->pre.empty() ? 1 : -1;
  for (std::size_t i = 0; i < std::min(x->pre.size(), y->pre.size()); ++i) {
    const auto& p = x->pre[i];
    const auto& q = y->pre[i];
    bool pn = p.find_first_not_of("0123456789") == std::string::npos;
    bool qn = q.find_first_not_of("0123456789") == std::string::npos;
    if (pn && qn) {
      if (p.size() != q.size())
        return p.size() < q.size() ? -1 : 1;
      if (p != q)
        return p < q ? -1 : 1;
    } else if (pn != qn) {
      return pn ? -1 : 1;
    } else if (p != q) {
      return p < q ? -1 : 1;
    }
  }
  if (x->pre.size() != y->pre.size())
    return x->pre.size() < y->pre.size() ? -1 : 1;
  return 0;
}

std::string canonical_proposal(const upgrade_proposal& p) {
  std::string out = "{\"approvers\":";
  json::append_string_array(out, p.approvers);
  out += ",\"binaryHash\":";
  json::append_quoted(out, p.binary_hash);
  out += ",\"kind\":";
  json::append_quoted(out, p.kind.empty() ? "upgrade" : p.kind);
  out += ",\"notes\":";
  json::append_quoted(out, p.notes);
  out += ",\"version\":";
  json::append_quoted(out, p.version);
  out += '}';
  return out;
}

std::string upgrade_payload_hash(const upgrade_proposal& p) {
  return crypto::sha256_hex(canonical_proposal(p));
}

std::string upgrade_id_for(const std::string& payload_hash) {
  return "upg_" + payload_hash.substr(0, 24);
}

std::string approval_message(const std::string& upgrade_id, const std::string& payload_hash,
                             const std::string& approver_id) {
  return "artifact-publisher/upgrade/v1:" + upgrade_id + ":" + payload_hash + ":" + approver_id;
}

std::optional<multisig_refusal>
validate_proposal(const upgrade_proposal& p, const std::map<std::string, std::string>& registry,
                  int threshold) {
  if (p.kind != "upgrade" && p.kind != "secret-rotation")
    return refuse(refusal_kind::invalid_input, "invalid_input", "kind must be \"upgrade\" or \"secret-rotation\"", "kind");
  if (p.kind == "upgrade" && !is_semver(p.version))
    return refuse(refusal_kind::invalid_input, "invalid_input", "version must be a semantic version such as 1.4.0",
                  "version");
  if (p.kind == "secret-rotation" && !rotation_target_of(p.version))
    return refuse(refusal_kind::invalid_input, "invalid_input", rotation_version_rule, "version");
  if (!is_hex64(p.binary_hash))
    return refuse(refusal_kind::invalid_input, "invalid_input", "binaryHash must be 64 lower-case hex characters",
                  "binaryHash");
  if (p.notes.size() > 4096)
    return refuse(refusal_kind::invalid_input, "invalid_input", "notes must be at most 4096 characters", "notes");
  if (p.approvers.size() < 2 || p.approvers.size() > 10)
    return refuse(refusal_kind::invalid_input, "invalid_input", "approvers must list 2 to 10 approver ids", "approvers");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < p.approvers.size(); ++i) {
    const auto& a = p.approvers[i];
    auto field = "approvers[" + std::to_string(i) + "]";
    if (!seen.insert(a).second)
      return refuse(refusal_kind::invalid_input, "invalid_input", "approver '" + a + "' is listed twice", field);
    if (!registry.count(a))
      return refuse(refusal_kind::invalid_input, "invalid_input", "approver '" + a + "' is not registered", field);
  }
  if (static_cast<int>(p.approvers.size()) < threshold)
    return refuse(refusal_kind::invalid_input, "invalid_input",
                  "fewer approvers than the threshold of " + std::to_string(threshold),
                  "approvers");
  return std::nullopt;
}

std::optional<multisig_refusal> check_approval_fields(const std::string& approver,
                                                      const std::string& signature,
                                                      const std::string& field) {
  if (approver.empty() || approver.size() > max_approver_id)
    return refuse(refusal_kind::invalid_input, "invalid_input",
                  "approver must be a registered approver id of 1-"
                    + std::to_string(max_approver_id) + " characters",
                  field + "approver");
  if (signature.empty() || signature.size() > max_signature_b64)
    return refuse(refusal_kind::invalid_input, "invalid_input",
                  "signature must be the base64 Ed25519 signature (at most "
                    + std::to_string(max_signature_b64) + " characters)",
                  field + "signature");
  return std::nullopt;
}

std::optional<multisig_refusal> parse_proposal(const rapidjson::Value& body, upgrade_proposal& out,
                                               const std::vector<std::string>& allowed_extra) {
  if (!body.IsObject())
    return refuse(refusal_kind::invalid_input, "invalid_input", "the body must be a JSON object");
  static const std::set<std::string> known{"version", "binaryHash", "notes", "approvers", "kind"};
  for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
    std::string name = it->name.GetString();
    if (!known.count(name)
        && std::find(allowed_extra.begin(), allowed_extra.end(), name) == allowed_extra.end())
      return refuse(refusal_kind::invalid_input, "invalid_input", "unknown field '" + name + "'", name);
  }
  auto text = [&](const char* name, bool required, std::string& into) -> std::optional<multisig_refusal> {
    auto it = body.FindMember(name);
    if (it == body.MemberEnd() || it->value.IsNull()) {
      if (required)
        return refuse(refusal_kind::invalid_input, "invalid_input", std::string{name} + " is required", name);
      return std::nullopt;
    }
    if (!it->value.IsString())
      return refuse(refusal_kind::invalid_input, "invalid_input", std::string{name} + " must be a string", name);
    into = it->value.GetString();
    return std::nullopt;
  };
  if (auto r = text("version", true, out.version))
    return r;
  if (auto r = text("binaryHash", true, out.binary_hash))
    return r;
  if (auto r = text("notes", false, out.notes))
    return r;
  out.kind = "upgrade";
  if (auto r = text("kind", false, out.kind))
    return r;
  auto list = body.FindMember("approvers");
  if (list == body.MemberEnd() || !list->value.IsArray())
    return refuse(refusal_kind::invalid_input, "invalid_input", "approvers must be an array of approver ids", "approvers");
  out.approvers.clear();
  for (rapidjson::SizeType i = 0; i < list->value.Size(); ++i) {
    if (!list->value[i].IsString())
      return refuse(refusal_kind::invalid_input, "invalid_input", "approver ids are strings",
                    "approvers[" + std::to_string(i) + "]");
    out.approvers.emplace_back(list->value[i].GetString());
  }
  return std::nullopt;
}

upgrade_book::upgrade_book(std::map<std::string, std::string> registry, int threshold)
  : registry_(std::move(registry)), threshold_(threshold) {
}

std::optional<multisig_refusal> upgrade_book::propose(const upgrade_proposal& p,
                                                      std::int64_t now_ms, upgrade_record& out) {
  if (auto r = validate_proposal(p, registry_, threshold_))
    return r;
  auto hash = upgrade_payload_hash(p);
  auto id = upgrade_id_for(hash);
  if (upgrades_.count(id))
    return refuse(refusal_kind::conflict, "conflict", "upgrade " + id + " exists already");
  if (p.kind == "upgrade" && !applied_version_.empty()
      && compare_semver(p.version, applied_version_).value_or(-1) <= 0)
    return refuse(refusal_kind::conflict, "version_not_greater",
                  "version " + p.version + " is not greater than the applied " + applied_version_,
                  "version");
  upgrade_record r;
  r.upgrade_id = id;
  r.proposal = p;
  r.payload_hash = hash;
  r.threshold = threshold_;
  r.created_at_ms = now_ms;
  r.expires_at_ms = now_ms + upgrade_lifetime_ms;
  upgrades_[id] = r;
  out = r;
  return std::nullopt;
}

std::optional<multisig_refusal> upgrade_book::approve(const std::string& upgrade_id,
                                                      const std::string& approver,
                                                      const std::string& signature_b64,
                                                      std::int64_t now_ms, upgrade_record& out) {
  auto it = upgrades_.find(upgrade_id);
  if (it == upgrades_.end())
    return refuse(refusal_kind::not_found, "not_found", "no upgrade " + upgrade_id);
  auto& r = it->second;
  auto key = registry_.find(approver);
  if (key == registry_.end())
    return refuse(refusal_kind::forbidden, "unknown_approver", "approver '" + approver + "' is not registered",
                  "approver");
  auto signature = crypto::base64_decode(signature_b64);
  if (!signature
      || !crypto::ed25519_verify(key->second, approval_message(upgrade_id, r.payload_hash, approver),
                                 *signature))
    return refuse(refusal_kind::forbidden, "bad_signature",
                  "the signature does not verify for this upgrade and approver", "signature");
  if (r.status == "applied")
    return refuse(refusal_kind::conflict, "already_applied", "upgrade " + upgrade_id + " is applied already");
  if (now_ms >= r.expires_at_ms)
    return refuse(refusal_kind::gone, "expired", "upgrade " + upgrade_id + " expired");
  for (const auto& a : r.approvals)
    if (a.approver == approver)
      return refuse(refusal_kind::conflict, "duplicate_approval", "approver '" + approver + "' approved already",
                    "approver");
  auto position = r.approvals.size();
  if (position >= r.proposal.approvers.size() || r.proposal.approvers[position] != approver) {
    auto expected = position < r.proposal.approvers.size() ? r.proposal.approvers[position] : "";
    return refuse(refusal_kind::conflict, "out_of_order",
                  expected.empty() ? "'" + approver + "' is not a staged approver of this upgrade"
                                   : "the next approval must come from '" + expected + "'",
                  "approver");
  }
  r.approvals.push_back({approver, signature_b64, now_ms});
  out = r;
  return std::nullopt;
}

std::optional<multisig_refusal> upgrade_book::apply(const std::string& upgrade_id,
                                                    const std::string& by, std::int64_t now_ms,
                                                    upgrade_record& out) {
  auto it = upgrades_.find(upgrade_id);
  if (it == upgrades_.end())
    return refuse(refusal_kind::not_found, "not_found", "no upgrade " + upgrade_id);
  auto& r = it->second;
  if (r.status == "applied")
    return refuse(refusal_kind::conflict, "already_applied", "upgrade " + upgrade_id + " is applied already");
  if (now_ms >= r.expires_at_ms)
    return refuse(refusal_kind::gone, "expired", "upgrade " + upgrade_id + " expired");
  if (static_cast<int>(r.approvals.size()) < r.threshold)
    return refuse(refusal_kind::conflict, "insufficient_quorum",
                  std::to_string(r.approvals.size()) + " of " + std::to_string(r.threshold)
                    + " required approvals");
  if (r.proposal.kind == "upgrade" && !applied_version_.empty()
      && compare_semver(r.proposal.version, applied_version_).value_or(-1) <= 0)
    return refuse(refusal_kind::conflict, "version_not_greater",
                  "version " + r.proposal.version + " is not greater than the applied "
                    + applied_version_);
  r.status = "applied";
  r.applied_at_ms = now_ms;
  r.applied_by = by;
  if (r.proposal.kind == "upgrade")
    applied_version_ = r.proposal.version;
  out = r;
  return std::nullopt;
}

const upgrade_record* upgrade_book::find(const std::string& upgrade_id) const {
  auto it = upgrades_.find(upgrade_id);
  return it == upgrades_.end() ? nullptr : &it->second;
}

void upgrade_book::restore(const upgrade_record& r) {
  upgrades_[r.upgrade_id] = r;
  if (r.status == "applied" && r.proposal.kind == "upgrade"
      && (applied_version_.empty()
          || compare_semver(r.proposal.version, applied_version_).value_or(-1) > 0))
    applied_version_ = r.proposal.version;
}

std::string upgrade_json(const upgrade_record& r) {
  std::string out;
  out += "{\"approvals\":[";
  for (std::size_t i = 0; i < r.approvals.size(); ++i) {
    if (i > 0)
      out += ',';
    out += "{\"approvedAt\":";
    json::append_quoted(out, format_rfc3339(r.approvals[i].approved_at_ms));
    out += ",\"approver\":";
    json::append_quoted(out, r.approvals[i].approver);
    out += '}';
  }
  out += ']';
  if (r.status == "applied") {
    out += ",\"appliedAt\":";
    json::append_quoted(out, format_rfc3339(r.applied_at_ms));
  }
  out += ",\"approvers\":";
  json::append_string_array(out, r.proposal.approvers);
  out += ",\"binaryHash\":";
  json::append_quoted(out, r.proposal.binary_hash);
  out += ",\"createdAt\":";
  json::append_quoted(out, format_rfc3339(r.created_at_ms));
  out += ",\"expiresAt\":";
  json::append_quoted(out, format_rfc3339(r.expires_at_ms));
  out += ",\"kind\":";
  json::append_quoted(out, r.proposal.kind);
  out += ",\"notes\":";
  json::append_quoted(out, r.proposal.notes);
  out += ",\"payloadHash\":\"" + r.payload_hash + "\",\"status\":";
  json::append_quoted(out, r.status);
  out += ",\"threshold\":" + std::to_string(r.threshold) + ",\"upgradeId\":";
  json::append_quoted(out, r.upgrade_id);
  out += ",\"version\":";
  json::append_quoted(out, r.proposal.version);
  out += '}';
  return out;
}

std::string oneshot_json(const upgrade_record& r) {
  rapidjson::Document full;
  json::parse_strict(upgrade_json(r), full);
  std::string out = "{";
  if (r.status == "applied") {
    out += "\"appliedAt\":";
    json::append_quoted(out, full["appliedAt"].GetString());
    out += ',';
  }
  out += "\"approvals\":";
  out += json::canonical(full["approvals"]);
  out += ",\"status\":";
  json::append_quoted(out, r.status);
  out += ",\"upgradeId\":";
  json::append_quoted(out, r.upgrade_id);
  out += ",\"version\":";
  json::append_quoted(out, r.proposal.version);
  out += '}';
  return out;
}

} // namespace ap::domain
