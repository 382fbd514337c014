#include "core/config.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include <cryptopp/base64.h>
#include <cryptopp/filters.h>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "core/secret_source.hpp"
#include "domain/delivery.hpp"  // legacy_delivery_kid
#include "domain/multisig.hpp"  // max_approver_id: what an approval may name
#include "upstream/endpoint.hpp"

namespace ap {

std::optional<long long> parse_integer(const std::string& text) {
  if (text.empty() || text.size() > 18)
    return std::nullopt;
  long long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

bool parse_integer_in(const std::string& text, long min, long max, long& out) {
  auto value = parse_integer(text);
  if (!value || *value < min || *value > max)
    return false;
  out = static_cast<long>(*value);
  return true;
}

namespace {

// Strict standard base64 with padding (RFC 4648 §4).
std::optional<std::string> decode_base64(const std::string& text) {
  if (text.empty() || text.size() % 4 != 0)
    return std::nullopt;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '+' || c == '/' || (c == '=' && i >= text.size() - 2);
    if (!ok)
      return std::nullopt;
  }
  if (text[text.size() - 2] == '=' && text.back() != '=')
    return std::nullopt;
  std::string out;
  CryptoPP::StringSource source(
    text, true, new CryptoPP::Base64Decoder(new CryptoPP::StringSink(out)));
  return out;
}

// `JSON` or `@file` (SPEC §3).
std::optional<std::string> read_inline_or_file(const std::string& value, std::string& problem,
                                               const std::string& var) {
  if (value.empty() || value[0] != '@')
    return value;
  std::ifstream in{value.substr(1)};
  if (!in) {
    problem = var + ": cannot read file " + value.substr(1);
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<approver> parse_approvers_impl(const std::string& text, const std::string& var,
                                           std::vector<std::string>& problems) {
  std::vector<approver> out;
  std::string problem;
  auto content = read_inline_or_file(text, problem, var);
  if (!content) {
    problems.push_back(problem);
    return out;
  }
  rapidjson::Document doc;
  if (auto err = json::parse_strict(*content, doc)) {
    problems.push_back(var + ": " + *err);
    return out;
  }
  if (!doc.IsArray()) {
    problems.push_back(var + ": expected a JSON array of {\"id\",\"publicKey\"}");
    return out;
  }
  std::set<std::string> seen;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& entry = doc[i];
    auto where = var + "[" + std::to_string(i) + "]";
    if (!entry.IsObject() || !entry.HasMember("id") || !entry["id"].IsString()
        || !entry.HasMember("publicKey") || !entry["publicKey"].IsString()) {
      problems.push_back(where + ": expected {\"id\": string, \"publicKey\": string}");
      continue;
    }
    approver a;
    a.id = entry["id"].GetString();
    a.public_key_b64 = entry["publicKey"].GetString();
    if (a.id.empty() || a.id.size() > domain::max_approver_id) {
      problems.push_back(where + ".id: must be 1-" + std::to_string(domain::max_approver_id)
                         + " characters");
      continue;
    }
    if (!seen.insert(a.id).second) {
      problems.push_back(where + ".id: duplicate approver id '" + a.id + "'");
      continue;
    }
    auto key = decode_base64(a.public_key_b64);
    if (!key || key->size() != 32) {
      problems.push_back(where + ".publicKey: must be base64 of a raw 32-byte Ed25519 key");
      continue;
    }
    // Under a key of small order anyone can make approvals that verify.
    if (!crypto::ed25519_verifier{*key, false}.usable()) {
      problems.push_back(where + ".publicKey: not an Ed25519 public key (not a curve point, or a "
                         "point of small order, under which any signature can be forged)");
      continue;
    }
    a.public_key = std::move(*key);
    out.push_back(std::move(a));
  }
  return out;
}

} // namespace

bool parse_secret_set(const std::string& text, const std::string& var,
                      std::map<std::string, std::string>& out,
                      std::vector<std::string>& problems) {
  std::string problem;
  auto content = read_inline_or_file(text, problem, var);
  if (!content) {
    problems.push_back(problem);
    return false;
  }
  rapidjson::Document doc;
  if (auto err = json::parse_strict(*content, doc)) {
    problems.push_back(var + ": " + *err);
    return false;
  }
  if (!doc.IsObject()) {
    problems.push_back(var + ": expected a JSON object {\"<kid>\": \"<secret>\"}");
    return false;
  }
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    std::string kid = it->name.GetString();
    if (!it->value.IsString()) {
      problems.push_back(var + "." + kid + ": the secret must be a string");
      continue;
    }
    out[kid] = it->value.GetString();
  }
  return true;
}

namespace {

void parse_proof_secrets(const std::string& text, service_config& cfg,
                         std::vector<std::string>& problems) {
  parse_secret_set(text, "ARTIFACT_PUBLISHER_PROOF_SECRETS", cfg.proof_secrets, problems);
}

// What a kid may be: it is shown in logs, documents and rotation versions
// (`delivery:d2`), so only short, plain names.
bool is_plain_kid(const std::string& kid) {
  if (kid.empty() || kid.size() > 64)
    return false;
  return std::all_of(kid.begin(), kid.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.'
           || c == '_' || c == '-';
  });
}

constexpr std::string_view kid_rule = "1-64 characters of A-Z a-z 0-9 . _ -";

constexpr std::string_view redacted = "<redacted>";

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// A connection URI as libpq reads it: the password may sit in the userinfo
// and again in any `password=` query parameter, which libpq honours too.
std::string redact_db_uri(std::string_view uri) {
  auto scheme_end = uri.find("://") + 3;
  auto query = uri.find('?', scheme_end);
  auto before_query = uri.substr(0, query);
  std::string out{uri.substr(0, scheme_end)};
  // The last '@' rather than the first: a password with an unescaped '@'
  // must not leave its tail in the log, whatever libpq makes of it.
  auto at = before_query.rfind('@');
  if (at != std::string_view::npos && at >= scheme_end) {
    auto userinfo = before_query.substr(scheme_end, at - scheme_end);
    auto colon = userinfo.find(':');
    out += userinfo.substr(0, colon);
    if (colon != std::string_view::npos)
      out += ":" + std::string{redacted};
    out += before_query.substr(at);
  } else {
    out += before_query.substr(scheme_end);
  }
  if (query == std::string_view::npos)
    return out;
  out += '?';
  auto params = uri.substr(query + 1);
  for (std::size_t start = 0; start <= params.size();) {
    auto end = std::min(params.find('&', start), params.size());
    auto param = params.substr(start, end - start);
    auto eq = param.find('=');
    if (start > 0)
      out += '&';
    if (param.substr(0, eq) == "password")
      out += "password=" + std::string{redacted};
    else
      out += param;
    start = end + 1;
  }
  return out;
}

// The keyword=value form: a value is either single-quoted or runs to the next
// white space, and a backslash escapes the next character in both. A string we
// cannot read is not shown at all, since we would not know where its password
// ends.
std::string redact_db_keywords(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < text.size() && is_space(text[i]))
      ++i;
  };
  for (skip_space(); i < text.size(); skip_space()) {
    auto key_start = i;
    while (i < text.size() && text[i] != '=' && !is_space(text[i]))
      ++i;
    auto key = text.substr(key_start, i - key_start);
    skip_space();
    if (key.empty() || i == text.size() || text[i] != '=')
      return "<unreadable>";
    // libpq's keywords are lower-case words; anything else is a URL typed
    // wrong, and what follows its '=' may be a password.
    for (char c : key)
      if (!((c >= 'a' && c <= 'z') || c == '_'))
        return "<unreadable>";
    ++i;
    skip_space();
    std::string value;
    if (i < text.size() && text[i] == '\'') {
      ++i;
      bool closed = false;
      for (; i < text.size(); ++i) {
        if (text[i] == '\\' && i + 1 < text.size()) {
          value += text[++i];
        } else if (text[i] == '\'') {
          closed = true;
          ++i;
          break;
        } else {
          value += text[i];
        }
      }
      if (!closed)
        return "<unreadable>";
    } else {
      for (; i < text.size() && !is_space(text[i]); ++i) {
        if (text[i] == '\\' && i + 1 < text.size())
          ++i;
        value += text[i];
      }
    }
    if (!out.empty())
      out += ' ';
    out += std::string{key} + "=" + (key == "password" ? std::string{redacted} : value);
  }
  return out;
}

// What the start-up line shows of the database connection string: where it
// connects (host, port, database, user) and options, never the password.
std::string redact_db_url(std::string_view url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0)
    return redact_db_uri(url);
  if (url.find('=') != std::string_view::npos)
    return redact_db_keywords(url);
  // libpq refuses anything else; it may still be a mistyped secret.
  return "<unreadable>";
}

// What a connection string libpq cannot read shows of itself: the host part
// of something URL-like (after the last '@', before the path), never the
// user or password.
std::string malformed_db_url_host(std::string_view url) {
  auto slashes = url.find("//");
  auto at = url.rfind('@');
  std::size_t start;
  if (at != std::string_view::npos)
    start = at + 1;
  else if (slashes != std::string_view::npos)
    start = slashes + 2;
  else
    return "";
  auto end = url.find_first_of("/?", start);
  return std::string{url.substr(start, end == std::string_view::npos ? end : end - start)};
}

// A connection string the service can use: a postgresql:// (or postgres://)
// URI or libpq's keyword=value form. libpq takes anything else as the name
// of a database on the local socket, so a mistyped URL would connect
// somewhere else instead of failing.
std::optional<std::string> db_url_problem(const std::string& url) {
  if (url.rfind("postgresql://", 0) == 0 || url.rfind("postgres://", 0) == 0)
    return std::nullopt;
  if (url.find("://") == std::string::npos && url.find('=') != std::string::npos
      && redact_db_keywords(url) != "<unreadable>")
    return std::nullopt;
  auto host = malformed_db_url_host(url);
  return "ARTIFACT_PUBLISHER_DB_URL: not a PostgreSQL connection string (expected "
         "postgresql://USER:PASSWORD@HOST:PORT/DATABASE or key=value pairs such as "
         "'host=HOST dbname=DATABASE')"
         + (host.empty() ? std::string{"; its value is not shown"}
                         : "; it names host '" + host + "'");
}

// Placeholders of deploy/artifact-publisher.env that must be replaced.
constexpr std::string_view placeholder = "CHANGE_ME";

// Why `value` is no production secret, or nothing when it is one.
std::optional<std::string> weakness(bool set, const std::string& value,
                                    std::string_view dev_default) {
  if (!set || value.empty())
    return std::string{"missing"};
  if (value == dev_default)
    return std::string{"the development default"};
  if (value.size() < min_secret_bytes)
    return "shorter than " + std::to_string(min_secret_bytes) + " bytes (it has "
           + std::to_string(value.size()) + ")";
  return std::nullopt;
}

// The variables one versioned secret set (SPEC §12) is given by, each
// without its ARTIFACT_PUBLISHER_ prefix, and how its messages name a
// version.
struct secret_set_names {
  std::string set;         // DELIVERY_KEYS: `{kid: secret}` JSON or @file
  std::string lone;        // DELIVERY_KEY: the version `legacy_kid`
  std::string kid;         // DELIVERY_KID: the active version
  std::string legacy_kid;  // d1
  std::string what;        // "delivery key"
  std::string unit;        // "key"
};

// A set as read: every version by kid and the active one, if configured.
struct secret_set_read {
  std::map<std::string, std::string> versions;
  std::string active_kid;
  std::optional<std::string> active;
};

// A set's own rule for one version: `variable` is the lone variable's name
// or `<SET>.<kid>` (without the prefix), `set` false when the lone variable
// is missing and its default stands in.
using secret_version_rule =
  std::function<void(const std::string& variable, bool set, const std::string& value)>;

// Reads one versioned set the same way for every secret: the set variable,
// the lone variable as the legacy kid (so that a deployment with only the
// lone variable keeps working, and one that adds the set keeps what the
// legacy kid protects), the active kid, and `rule` applied to every version.
// `lone_default` stands in for the lone variable when neither it nor the set
// is given; without one, such a set is empty and its active kid is not
// checked unless it was named.
secret_set_read read_secret_set(const env_lookup& env, const secret_set_names& names,
                                const std::optional<std::string>& lone_default,
                                const secret_version_rule& rule,
                                std::vector<std::string>& problems) {
  const std::string prefix = "ARTIFACT_PUBLISHER_";
  const std::string set_var = prefix + names.set;
  const std::string lone_var = prefix + names.lone;
  const std::string kid_var = prefix + names.kid;
  auto lone = lookup_setting(env, names.lone);
  auto set_text = lookup_setting(env, names.set);
  std::map<std::string, std::string> listed;
  bool read = true;
  if (set_text) {
    read = parse_secret_set(*set_text, set_var, listed, problems);
    if (read && listed.empty())
      problems.push_back(set_var + ": names no " + names.unit);
    for (const auto& [kid, value] : listed) {
      if (!is_plain_kid(kid))
        problems.push_back(set_var + ": a kid must be " + std::string{kid_rule});
      else if (value.empty())
        problems.push_back(set_var + "." + kid + ": empty; a " + names.what + " cannot be empty");
      // Inline, the placeholder check of load_config finds it in the
      // variable itself.
      else if ((*set_text)[0] == '@' && value.find(placeholder) != std::string::npos)
        problems.push_back(set_var + "." + kid + ": still holds the placeholder "
                           + std::string{placeholder} + " of deploy/artifact-publisher.env; "
                           "set the real value");
      else
        rule(names.set + "." + kid, true, value);
    }
  }
  secret_set_read out;
  out.versions = listed;
  bool lone_counts = lone || (!set_text && lone_default);
  if (lone || !set_text)
    rule(names.lone, lone.has_value(), lone.value_or(""));
  if (lone_counts) {
    auto value = lone ? *lone : *lone_default;
    auto [at, added] = out.versions.emplace(names.legacy_kid, value);
    if (!added && at->second != value)
      problems.push_back(set_var + ": names kid '" + names.legacy_kid + "' with a " + names.unit
                         + " other than " + lone_var + " (a lone " + names.lone + " is kid "
                         + names.legacy_kid + "); give that " + names.unit + " once");
  }
  auto kid = lookup_setting(env, names.kid);
  out.active_kid = kid.value_or(names.legacy_kid);
  if (!is_plain_kid(out.active_kid)) {
    problems.push_back(kid_var + ": must be " + std::string{kid_rule});
  } else if (auto active = out.versions.find(out.active_kid); active != out.versions.end()) {
    out.active = active->second;
  } else if (read && (set_text || lone_counts || kid)) {
    problems.push_back(kid_var + ": the active kid '" + out.active_kid + "'"
                       + (kid ? "" : " (the default)") + " is not configured; "
                       + (set_text ? "add it to " + set_var
                          : lone_counts ? lone_var + " alone is kid " + names.legacy_kid
                                            + ": give " + set_var
                                        : "give " + set_var));
  }
  return out;
}

} // namespace

std::vector<approver> parse_approver_registry(const std::string& json_or_file,
                                              const std::string& variable,
                                              std::vector<std::string>& problems) {
  return parse_approvers_impl(json_or_file, variable, problems);
}

env_lookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str()))
      return std::string{v};
    return std::nullopt;
  };
}

std::optional<std::string> lookup_setting(const env_lookup& env, const std::string& name) {
  for (const char* prefix : {"ARTIFACT_PUBLISHER_", "REPOWRITER_"}) {
    auto value = env(prefix + name);
    if (value && !value->empty())
      return value;
  }
  return std::nullopt;
}

config_result load_config(const env_lookup& process) {
  config_result result;
  auto& problems = result.problems;
  // Every variable read, so that a placeholder left in any of them is found.
  std::vector<std::pair<std::string, std::string>> read;
  env_lookup env = [&](const std::string& name) {
    auto value = process(name);
    if (value)
      read.emplace_back(name, *value);
    return value;
  };
  service_config cfg;
  auto get = [&](const std::string& name, std::string_view fallback) {
    return lookup_setting(env, name).value_or(std::string{fallback});
  };
  auto get_count = [&](const std::string& name, long long min, long long max,
                       long long fallback) -> long long {
    auto text = lookup_setting(env, name);
    if (!text)
      return fallback;
    auto value = parse_integer(*text);
    if (!value || *value < min || *value > max) {
      problems.push_back("ARTIFACT_PUBLISHER_" + name + ": must be an integer from "
                         + std::to_string(min) + " to " + std::to_string(max));
      return fallback;
    }
    return *value;
  };

  auto env_name = get("ENV", "development");
  if (env_name != "production" && env_name != "development" && env_name != "test")
    problems.push_back("ARTIFACT_PUBLISHER_ENV: must be production, development or test");
  cfg.production = env_name == "production";
  // The production strength rule of a secret (nothing outside production).
  auto refuse = [&](const std::string& var, bool set, const std::string& value,
                    std::string_view dev_default) {
    if (!cfg.production)
      return;
    if (auto why = weakness(set, value, dev_default))
      problems.push_back("ARTIFACT_PUBLISHER_" + var + ": " + *why + "; production needs a "
                         + "secret of at least " + std::to_string(min_secret_bytes) + " bytes");
  };

  cfg.port = static_cast<std::uint16_t>(get_count("PORT", 1, 65535, 6137));
  cfg.bind = get("BIND", "127.0.0.1");
  cfg.tls_cert_file = get("TLS_CERT_FILE", "");
  cfg.tls_key_file = get("TLS_KEY_FILE", "");
  if (cfg.tls_cert_file.empty() != cfg.tls_key_file.empty())
    problems.push_back("ARTIFACT_PUBLISHER_TLS_CERT_FILE and ARTIFACT_PUBLISHER_TLS_KEY_FILE: set both "
                       "or neither");
  cfg.db_url = get("DB_URL", defaults::db_url);
  if (auto why = db_url_problem(cfg.db_url))
    problems.push_back(*why);
  // SPEC §10: outside this machine, only TLS in production.
  auto check_upstream_url = [&](const std::string& var, const std::string& url) {
    auto where = upstream::parse_url(url);
    if (!where)
      problems.push_back("ARTIFACT_PUBLISHER_" + var
                         + ": must be an https:// or http:// URL (scheme://host[:port][/path])");
    else if (cfg.production && !where->tls && !where->loopback())
      problems.push_back("ARTIFACT_PUBLISHER_" + var
                         + ": must be https:// in production (plain http:// only to this machine)");
  };
  auto check_readable = [&](const std::string& var, const std::string& file) {
    if (!file.empty() && !std::ifstream{file})
      problems.push_back("ARTIFACT_PUBLISHER_" + var + ": cannot read '" + file + "'");
  };
  cfg.kernel_url = get("KERNEL_URL", defaults::kernel_url);
  check_upstream_url("KERNEL_URL", cfg.kernel_url);
  // The Kernel token set (SPEC §12), each version as given: its user reads
  // an `@file` version again whenever the file changes, so here each file
  // only has to be readable and non-empty.
  auto kernel_tokens = read_secret_set(
    env, {"KERNEL_TOKENS", "KERNEL_TOKEN", "KERNEL_TOKEN_KID", "t1", "Kernel token", "token"},
    std::nullopt,
    [&](const std::string& var, bool set, const std::string& token) {
      if (set)
        if (auto why = secret_source::parse(token).check())
          problems.push_back("ARTIFACT_PUBLISHER_" + var + ": " + *why);
    },
    problems);
  cfg.kernel_tokens = kernel_tokens.versions;
  cfg.kernel_token_kid = kernel_tokens.active_kid;
  cfg.kernel_token = kernel_tokens.active.value_or("");
  if (cfg.kernel_tokens.empty() && cfg.production)
    problems.push_back("ARTIFACT_PUBLISHER_KERNEL_TOKEN: required in production (the bearer "
                       "token, or @file); give it or ARTIFACT_PUBLISHER_KERNEL_TOKENS");
  cfg.kernel_client_cert = get("KERNEL_CLIENT_CERT", "");
  cfg.kernel_client_key = get("KERNEL_CLIENT_KEY", "");
  if (cfg.kernel_client_cert.empty() != cfg.kernel_client_key.empty())
    problems.push_back("ARTIFACT_PUBLISHER_KERNEL_CLIENT_CERT and "
                       "ARTIFACT_PUBLISHER_KERNEL_CLIENT_KEY: set both or neither");
  check_readable("KERNEL_CLIENT_CERT", cfg.kernel_client_cert);
  check_readable("KERNEL_CLIENT_KEY", cfg.kernel_client_key);
  cfg.ca_file = get("CA_FILE", "");
  check_readable("CA_FILE", cfg.ca_file);
  cfg.proof_secret = get("PROOF_SECRET", defaults::proof_secret);
  cfg.stripe_key = get("STRIPE_KEY", defaults::stripe_key);
  cfg.payment_processor = get("PAYMENT_PROCESSOR", "embedded");
  cfg.stripe_api_base = get("STRIPE_API_BASE", defaults::stripe_api_base);
  if (cfg.payment_processor != "embedded" && cfg.payment_processor != "stripe")
    problems.push_back("ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR: must be embedded or stripe");
  const bool stripe = cfg.payment_processor == "stripe";
  if (stripe)
    check_upstream_url("STRIPE_API_BASE", cfg.stripe_api_base);
  // The processor's secret key set (SPEC §12). The embedded processor needs
  // none; Stripe in development gets a test key as s1 when none is given.
  auto stripe_keys = read_secret_set(
    env, {"STRIPE_SECRET_KEYS", "STRIPE_SECRET_KEY", "STRIPE_KID", "s1", "Stripe secret key", "key"},
    stripe && !cfg.production ? std::optional<std::string>{defaults::stripe_secret_key}
                              : std::nullopt,
    [&](const std::string& var, bool set, const std::string& key) {
      if (stripe && set && key.rfind("sk_test_", 0) != 0 && key.rfind("sk_live_", 0) != 0)
        problems.push_back("ARTIFACT_PUBLISHER_" + var + ": must be a secret key "
                           "(sk_test_… or sk_live_…)");
    },
    problems);
  cfg.stripe_secret_keys = stripe_keys.versions;
  cfg.stripe_kid = stripe_keys.active_kid;
  cfg.stripe_secret_key = stripe_keys.active.value_or("");
  if (stripe && cfg.stripe_secret_keys.empty() && cfg.production)
    problems.push_back("ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY: required in production when "
                       "ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR is stripe; give it or "
                       "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS");
  cfg.ledger_id = get("LEDGER_ID", defaults::ledger_id);
  cfg.sandbox_seed = get("SANDBOX_SEED", defaults::sandbox_seed);
  cfg.deterministic_salt = get("DETERMINISTIC_SALT", defaults::deterministic_salt);
  cfg.api_token = get("API_TOKEN", "");
  cfg.admin_token = get("ADMIN_TOKEN", "");
  cfg.multisig_threshold = static_cast<int>(get_count("MULTISIG_THRESHOLD", 2, 10, 2));
  cfg.proof_kid = get("PROOF_KID", "v1");
  if (auto approvers = lookup_setting(env, "APPROVERS"))
    cfg.approvers = parse_approvers_impl(*approvers, "ARTIFACT_PUBLISHER_APPROVERS", problems);
  if (!cfg.approvers.empty()
      && cfg.approvers.size() < static_cast<std::size_t>(cfg.multisig_threshold))
    problems.push_back("ARTIFACT_PUBLISHER_MULTISIG_THRESHOLD: larger than the number of "
                       "registered approvers");
  if (auto secrets = lookup_setting(env, "PROOF_SECRETS"))
    parse_proof_secrets(*secrets, cfg, problems);
  if (auto it = cfg.proof_secrets.find(cfg.proof_kid);
      it != cfg.proof_secrets.end() && it->second != cfg.proof_secret)
    problems.push_back("ARTIFACT_PUBLISHER_PROOF_SECRETS: names the active kid '" + cfg.proof_kid
                       + "' with a secret other than ARTIFACT_PUBLISHER_PROOF_SECRET");

  // The delivery key set (SPEC §12): DELIVERY_KEY alone is d1, so that
  // the older kids keep opening what they sealed. Production applies the
  // strength rule to every version, DELIVERY_KEY as before (required unless
  // DELIVERY_KEYS is given).
  auto delivery_keys = read_secret_set(
    env,
    {"DELIVERY_KEYS", "DELIVERY_KEY", "DELIVERY_KID", std::string{domain::legacy_delivery_kid},
     "delivery key", "key"},
    std::string{defaults::delivery_key},
    [&](const std::string& var, bool set, const std::string& key) {
      refuse(var, set, key, defaults::delivery_key);
    },
    problems);
  cfg.delivery_keys = delivery_keys.versions;
  cfg.delivery_kid = delivery_keys.active_kid;
  cfg.delivery_key = delivery_keys.active.value_or("");

  cfg.db_pool_size = static_cast<std::size_t>(get_count("DB_POOL_SIZE", 1, 64, 4));
  cfg.max_connections = static_cast<std::size_t>(get_count("MAX_CONNECTIONS", 1, 100000, 1024));
  cfg.io_threads = static_cast<std::size_t>(get_count("IO_THREADS", 1, 64, 1));
  cfg.actor_threads = static_cast<std::size_t>(get_count("ACTOR_THREADS", 1, 64, 1));
  cfg.request_timeout =
    std::chrono::milliseconds{get_count("REQUEST_TIMEOUT_MS", 10, 60000, 5000)};
  // Defaults: half the request timeout for a whole call, at most 2.5 s; a
  // statement 2 s, a lock wait 1 s, never more than the call may take.
  cfg.db_call_deadline = std::chrono::milliseconds{get_count(
    "DB_CALL_DEADLINE_MS", 10, 600000, std::min<long>(2500, cfg.request_timeout.count() / 2))};
  if (cfg.db_call_deadline >= cfg.request_timeout)
    problems.push_back("ARTIFACT_PUBLISHER_DB_CALL_DEADLINE_MS: must be shorter than "
                       "ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS, or a stalled database call "
                       "outlasts the request it serves");
  cfg.db_statement_timeout = std::chrono::milliseconds{get_count(
    "DB_STATEMENT_TIMEOUT_MS", 0, 600000, std::min<long>(2000, cfg.db_call_deadline.count()))};
  cfg.db_lock_timeout = std::chrono::milliseconds{get_count(
    "DB_LOCK_TIMEOUT_MS", 0, 600000, std::min<long>(1000, cfg.db_call_deadline.count()))};
  cfg.db_idle_in_transaction_timeout = std::chrono::milliseconds{
    get_count("DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", 0, 600000, 5000)};
  cfg.reconcile_after =
    std::chrono::milliseconds{get_count("RECONCILE_AFTER_MS", 100, 86400000, 30000)};
  if (cfg.reconcile_after <= cfg.request_timeout)
    problems.push_back("ARTIFACT_PUBLISHER_RECONCILE_AFTER_MS: must be longer than "
                       "ARTIFACT_PUBLISHER_REQUEST_TIMEOUT_MS, or running checkouts are taken over");
  cfg.catalog_refresh =
    std::chrono::milliseconds{get_count("CATALOG_REFRESH_MS", 100, 86400000, 30000)};
  // A key purged is a key that no longer replays: a retry after that
  // charges again. Clients retry within minutes; a day is the floor.
  cfg.idempotency_retention =
    std::chrono::hours{get_count("IDEMPOTENCY_RETENTION_HOURS", 24, 87600, 72)};
  cfg.outbox_retention = std::chrono::hours{get_count("OUTBOX_RETENTION_HOURS", 1, 87600, 168)};
  cfg.retention_sweep_interval =
    std::chrono::milliseconds{get_count("RETENTION_SWEEP_INTERVAL_MS", 100, 86400000, 60000)};
  cfg.queue_vacuum_interval =
    std::chrono::milliseconds{get_count("QUEUE_VACUUM_INTERVAL_MS", 0, 3600000, 5000)};
  if (cfg.queue_vacuum_interval.count() > 0 && cfg.queue_vacuum_interval.count() < 100)
    problems.push_back("ARTIFACT_PUBLISHER_QUEUE_VACUUM_INTERVAL_MS: must be 0 (never) or from 100"
                       " to 3600000");
  cfg.log_level = get("LOG_LEVEL", "info");
  if (cfg.log_level != "debug" && cfg.log_level != "info" && cfg.log_level != "warn"
      && cfg.log_level != "error")
    problems.push_back("ARTIFACT_PUBLISHER_LOG_LEVEL: must be debug, info, warn or error");

  if (cfg.production) {
    refuse("PROOF_SECRET", lookup_setting(env, "PROOF_SECRET").has_value(), cfg.proof_secret,
           defaults::proof_secret);
    for (const auto& [kid, secret] : cfg.proof_secrets)
      refuse("PROOF_SECRETS." + kid, true, secret, defaults::proof_secret);
    if (!cfg.api_token.empty())
      refuse("API_TOKEN", true, cfg.api_token, "");
    if (!cfg.admin_token.empty())
      refuse("ADMIN_TOKEN", true, cfg.admin_token, "");
  }
  // A value still holding the template's placeholder was never filled in;
  // whatever it is for, it is wrong (and a secret so named is public).
  std::set<std::string> unfilled;
  for (const auto& [name, value] : read)
    if (value.find(placeholder) != std::string::npos && unfilled.insert(name).second)
      problems.push_back(name + ": still holds the placeholder " + std::string{placeholder}
                         + " of deploy/artifact-publisher.env; set the real value");

  if (problems.empty())
    result.config = std::move(cfg);
  return result;
}

std::string service_config::redacted_summary() const {
  auto secret = [](const std::string& s) {
    return s.empty() ? std::string{"unset"} : "<" + std::to_string(s.size()) + " bytes>";
  };
  auto db_shown = redact_db_url(db_url);
  // The kids only: what PROOF_SECRETS gave, none of the secrets.
  std::string proof_secret_kids;
  for (const auto& entry : proof_secrets)
    proof_secret_kids += (proof_secret_kids.empty() ? "" : ",") + entry.first;
  if (proof_secret_kids.empty())
    proof_secret_kids = "none";
  // A token file shows as its name: it is where the token is, not the token.
  auto token = [&](const std::string& t) {
    return !t.empty() && t.front() == '@' ? t : secret(t);
  };
  // Each version of a set as its kid and length (or file), never its value.
  auto versions = [](const std::map<std::string, std::string>& set, const auto& shown) {
    std::string out;
    for (const auto& [kid, value] : set)
      out += (out.empty() ? "" : ",") + kid + ":" + shown(value);
    return out.empty() ? std::string{"none"} : out;
  };
  std::ostringstream out;
  out << "env=" << (production ? "production" : "development") << " bind=" << bind
      << " port=" << port << " db=" << db_shown << " kernel=" << kernel_url
      << " kernel_token=" << token(kernel_token) << " kernel_token_kid=" << kernel_token_kid
      << " kernel_tokens=" << versions(kernel_tokens, token)
      << " kernel_client_cert=" << (kernel_client_cert.empty() ? "unset" : kernel_client_cert)
      << " ca_file=" << (ca_file.empty() ? "system" : "system+" + ca_file)
      << " tls=" << (tls_cert_file.empty() ? "off" : tls_cert_file)
      << " proof_kid=" << proof_kid << " proof_secret=" << secret(proof_secret)
      << " proof_secrets=" << proof_secret_kids
      << " delivery_kid=" << delivery_kid << " delivery_keys=" << versions(delivery_keys, secret)
      << " api_token=" << secret(api_token)
      << " admin_token=" << secret(admin_token) << " approvers=" << approvers.size()
      << " threshold=" << multisig_threshold << " db_pool=" << db_pool_size
      << " max_connections=" << max_connections << " io_threads=" << io_threads
      << " actor_threads=" << actor_threads << " payment_processor=" << payment_processor;
  if (payment_processor == "stripe")
    out << " stripe_api_base=" << stripe_api_base
        << " stripe_kid=" << stripe_kid
        << " stripe_secret_keys=" << versions(stripe_secret_keys, secret);
  return out.str();
}

} // namespace ap
