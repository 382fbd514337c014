#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ap {

/// A registered multisig approver (SPEC §3 `APPROVERS`).
struct approver {
  std::string id;
  /// Base64 of the raw 32-byte Ed25519 public key, as configured.
  std::string public_key_b64;
  /// The decoded 32 bytes.
  std::string public_key;
};

/// The service's configuration, read once at start (SPEC §3). Actors and
/// handlers receive the parts they need; nothing else reads the environment.
struct service_config {
  bool production = false;
  std::uint16_t port = 6137;
  std::string bind = "127.0.0.1";
  /// TLS_CERT_FILE and TLS_KEY_FILE (SPEC §10): PEM files; when set, the
  /// API listens with TLS only. Both or neither.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string db_url;
  /// KERNEL_URL: https:// (or http:// to this machine; anywhere outside
  /// production).
  std::string kernel_url;
  /// The active Kernel token as given: the bearer token, or `@file` read
  /// again whenever the file changes (`kernel_tokens.at(kernel_token_kid)`).
  /// Required in production.
  std::string kernel_token;
  /// KERNEL_TOKEN_KID (SPEC §12): the version sent to the Kernel until a
  /// rotation says otherwise; `t1` by default.
  std::string kernel_token_kid = "t1";
  /// Every configured Kernel token by kid, each as given (value or
  /// `@file`): KERNEL_TOKENS (`{kid: token}` JSON or `@file`), plus
  /// KERNEL_TOKEN as kid `t1`.
  std::map<std::string, std::string> kernel_tokens;
  /// KERNEL_CLIENT_CERT + KERNEL_CLIENT_KEY: mutual TLS with the Kernel (PEM).
  std::string kernel_client_cert;
  std::string kernel_client_key;
  /// CA_FILE: PEM roots trusted by every outbound client besides the system store.
  std::string ca_file;
  std::string proof_secret;
  /// The active delivery master key: `delivery_keys.at(delivery_kid)`.
  std::string delivery_key;
  /// DELIVERY_KID (SPEC §12): the kid new deliveries are sealed with and
  /// record as `delivery.keyId`; `d1` by default.
  std::string delivery_kid = "d1";
  /// Every configured delivery master key by kid: DELIVERY_KEYS
  /// (`{kid: key}` JSON or `@file`), plus DELIVERY_KEY as kid `d1` (which a
  /// lone DELIVERY_KEY is). The older kids open what they already sealed.
  std::map<std::string, std::string> delivery_keys;
  std::string stripe_key;
  /// PAYMENT_PROCESSOR (SPEC §9): `embedded` (the in-process mock, the
  /// default) or `stripe` (Stripe's REST API at `stripe_api_base`).
  std::string payment_processor = "embedded";
  /// STRIPE_API_BASE.
  std::string stripe_api_base;
  /// The active processor secret key (`sk_test_…`/`sk_live_…`,
  /// `stripe_secret_keys.at(stripe_kid)`); production requires it when the
  /// processor is stripe.
  std::string stripe_secret_key;
  /// STRIPE_KID (SPEC §12): `s1` by default.
  std::string stripe_kid = "s1";
  /// Every configured processor secret key by kid: STRIPE_SECRET_KEYS
  /// (`{kid: key}` JSON or `@file`), plus STRIPE_SECRET_KEY as kid `s1`.
  std::map<std::string, std::string> stripe_secret_keys;
  std::string ledger_id;
  std::string sandbox_seed;
  std::string deterministic_salt;
  /// Empty when unset: `/api/*` is then open.
  std::string api_token;
  /// Empty when unset: admin routes then answer 403.
  std::string admin_token;
  std::vector<approver> approvers;
  int multisig_threshold = 2;
  std::string proof_kid = "v1";
  /// Further `{kid: secret}` kept for verification and rotation.
  std::map<std::string, std::string> proof_secrets;

  // Operational settings beyond SPEC §3, each with the same fallbacks.
  std::size_t db_pool_size = 4;
  std::size_t max_connections = 1024;
  std::size_t io_threads = 1;
  /// Threads of the actor scheduler. One is the fastest on a small machine
  /// the service shares with PostgreSQL: each more one mostly adds idle
  /// polling and context switches (docs/performance.md).
  std::size_t actor_threads = 1;
  std::chrono::milliseconds request_timeout{5000};
  /// Every database call is bounded (docs/reliability.md "A database that
  /// stops answering"): server-side per statement, per lock wait and per
  /// idle transaction (0: no limit), and client-side per call, after which
  /// the call is cancelled and, without an answer, its connection dropped.
  /// The call deadline is below request_timeout, so a stalled database is
  /// an error the client hears before its own timeout.
  std::chrono::milliseconds db_statement_timeout{2000};
  std::chrono::milliseconds db_lock_timeout{1000};
  std::chrono::milliseconds db_idle_in_transaction_timeout{5000};
  std::chrono::milliseconds db_call_deadline{2500};
  /// SPEC §9: a checkout unfinished this long is taken over by a reconciler.
  std::chrono::milliseconds reconcile_after{30000};
  /// How long `GET /api/catalog` answers from the catalog it last read
  /// before reading it again (CATALOG_REFRESH_MS); a failed read keeps the
  /// last good catalog (docs/api.md).
  std::chrono::milliseconds catalog_refresh{30000};
  /// Retention (docs/architecture.md): a completed Idempotency-Key is kept
  /// this long (IDEMPOTENCY_RETENTION_HOURS, at least 24, SPEC §4's 72 by
  /// default), an outbox row marked delivered (by a release before
  /// migration 0016, which deletes delivered rows at once) this long after
  /// its delivery (OUTBOX_RETENTION_HOURS, at least 1), and the janitor sweeps every
  /// RETENTION_SWEEP_INTERVAL_MS.
  std::chrono::hours idempotency_retention{72};
  std::chrono::hours outbox_retention{168};
  std::chrono::milliseconds retention_sweep_interval{60000};
  /// How often the janitor vacuums the queue tables, unfinished checkouts
  /// and the audit outbox (QUEUE_VACUUM_INTERVAL_MS; 0: never, autovacuum
  /// alone; docs/architecture.md).
  std::chrono::milliseconds queue_vacuum_interval{5000};
  std::string log_level = "info";

  /// A one-line description with every secret replaced by its length, for
  /// the start-up log line.
  std::string redacted_summary() const;
};

/// Reads one variable; returns nullopt when it is not set.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// A non-negative decimal integer of at most 18 digits, nothing else; nullopt
/// otherwise.
std::optional<long long> parse_integer(const std::string& text);

/// The same, within [min, max], into `out`; false otherwise (command-line flags).
bool parse_integer_in(const std::string& text, long min, long max, long& out);

/// The process environment.
env_lookup process_env();

/// Looks `ARTIFACT_PUBLISHER_<name>` up, then `REPOWRITER_<name>`; an empty
/// value counts as unset.
std::optional<std::string> lookup_setting(const env_lookup& env, const std::string& name);

/// Outcome of `load_config`: either a configuration or every problem found,
/// each naming the variable at fault.
struct config_result {
  std::optional<service_config> config;
  std::vector<std::string> problems;
};

/// Builds the configuration from the environment, with the development
/// defaults of SPEC §3. With `ARTIFACT_PUBLISHER_ENV=production` it refuses
/// missing, default or short (< 32 bytes) secrets. The delivery, Stripe and
/// Kernel-token sets (SPEC §12) are read alike: a lone variable is the
/// set's first kid (d1, s1, t1), each version obeys the set's rules, and the
/// active kid must name a configured version.
config_result load_config(const env_lookup& env);

/// Parses an approver registry (SPEC §3: JSON `[{"id","publicKey"}]` or
/// `@file`), appending each problem (naming `variable`) to `problems`.
std::vector<approver> parse_approver_registry(const std::string& json_or_file,
                                              const std::string& variable,
                                              std::vector<std::string>& problems);

/// Parses a versioned secret set (SPEC §12: `{"<kid>": "<secret>"}` JSON or
/// `@file`, as PROOF_SECRETS, DELIVERY_KEYS, STRIPE_SECRET_KEYS and
/// KERNEL_TOKENS) into `out`, appending each
/// problem (naming `variable` and the kid, never a secret) to `problems`;
/// false when the set could not be read at all.
bool parse_secret_set(const std::string& json_or_file, const std::string& variable,
                      std::map<std::string, std::string>& out,
                      std::vector<std::string>& problems);

/// Development defaults, exposed so tests and the production check agree.
namespace defaults {
constexpr std::string_view db_url =
  "postgresql://artifact_publisher:artifact_publisher@127.0.0.1:5432/artifact_publisher";
constexpr std::string_view kernel_url = "http://127.0.0.1:6050";
constexpr std::string_view proof_secret = "dev-proof-secret-do-not-use-in-production";
constexpr std::string_view delivery_key = "dev-delivery-key-do-not-use-in-production";
constexpr std::string_view stripe_key = "pk_test_artifact_publisher_dev";
constexpr std::string_view stripe_api_base = "https://api.stripe.com";
/// The processor secret key (kid `s1`) of PAYMENT_PROCESSOR=stripe outside
/// production when none is given.
constexpr std::string_view stripe_secret_key = "sk_test_artifact_publisher_dev";
constexpr std::string_view ledger_id = "ledger_dev";
constexpr std::string_view sandbox_seed = "dev-sandbox-seed";
constexpr std::string_view deterministic_salt = "dev-deterministic-salt";
} // namespace defaults

/// Minimum length of a production secret in bytes.
constexpr std::size_t min_secret_bytes = 32;

} // namespace ap
