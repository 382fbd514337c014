#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <map>

#include <unistd.h>

#include "core/config.hpp"
#include "core/secret_source.hpp"

using namespace ap;

namespace {

env_lookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end())
      return std::nullopt;
    return it->second;
  };
}

bool mentions(const std::vector<std::string>& problems, const std::string& text) {
  for (const auto& p : problems)
    if (p.find(text) != std::string::npos)
      return true;
  return false;
}

// Two valid base64 Ed25519 public keys (32 raw bytes each).
const std::string key_a = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const std::string key_b = "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=";
const std::string strong = "0123456789abcdef0123456789abcdef-strong";

} // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(defaults_apply_when_nothing_is_set) {
  auto r = load_config(env_of({}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->port == 6137);
  BOOST_TEST(r.config->bind == "127.0.0.1");
  BOOST_TEST(r.config->kernel_url == "http://127.0.0.1:6050");
  BOOST_TEST(r.config->multisig_threshold == 2);
  BOOST_TEST(r.config->proof_kid == "v1");
  BOOST_TEST(!r.config->production);
  BOOST_TEST(r.config->api_token.empty());
}

BOOST_AUTO_TEST_CASE(artifact_publisher_wins_over_repowriter_fallback) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_PORT", "7000"},
                               {"REPOWRITER_PORT", "7001"},
                               {"REPOWRITER_BIND", "0.0.0.0"},
                               {"REPOWRITER_LEDGER_ID", "ledger_x"}}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->port == 7000);
  BOOST_TEST(r.config->bind == "0.0.0.0");
  BOOST_TEST(r.config->ledger_id == "ledger_x");
}

BOOST_AUTO_TEST_CASE(empty_value_counts_as_unset) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_PORT", ""}, {"REPOWRITER_PORT", "7002"}}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->port == 7002);
}

BOOST_AUTO_TEST_CASE(invalid_numbers_are_named) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_PORT", "70000"},
                               {"ARTIFACT_PUBLISHER_MULTISIG_THRESHOLD", "1"},
                               {"ARTIFACT_PUBLISHER_DB_POOL_SIZE", "4.5"}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_PORT"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_MULTISIG_THRESHOLD"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_DB_POOL_SIZE"));
}

BOOST_AUTO_TEST_CASE(actor_threads_default_to_one_and_are_bounded) {
  auto r = load_config(env_of({}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->actor_threads == 1u);
  r = load_config(env_of({{"ARTIFACT_PUBLISHER_ACTOR_THREADS", "3"}}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->actor_threads == 3u);
  r = load_config(env_of({{"ARTIFACT_PUBLISHER_ACTOR_THREADS", "0"}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_ACTOR_THREADS"));
}

BOOST_AUTO_TEST_CASE(retention_defaults_and_floors) {
  auto r = load_config(env_of({}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->idempotency_retention.count() == 72);
  BOOST_TEST(r.config->outbox_retention.count() == 168);
  BOOST_TEST(r.config->retention_sweep_interval.count() == 60000);
  auto set = load_config(env_of({{"ARTIFACT_PUBLISHER_IDEMPOTENCY_RETENTION_HOURS", "24"},
                                 {"ARTIFACT_PUBLISHER_OUTBOX_RETENTION_HOURS", "1"},
                                 {"ARTIFACT_PUBLISHER_RETENTION_SWEEP_INTERVAL_MS", "200"}}));
  BOOST_REQUIRE(set.config);
  BOOST_TEST(set.config->idempotency_retention.count() == 24);
  BOOST_TEST(set.config->outbox_retention.count() == 1);
  BOOST_TEST(set.config->retention_sweep_interval.count() == 200);
  // A key purged no longer replays: under a day is refused, by name.
  auto short_keys = load_config(env_of({{"ARTIFACT_PUBLISHER_IDEMPOTENCY_RETENTION_HOURS", "23"},
                                        {"ARTIFACT_PUBLISHER_OUTBOX_RETENTION_HOURS", "0"}}));
  BOOST_TEST(!short_keys.config);
  BOOST_TEST(mentions(short_keys.problems, "ARTIFACT_PUBLISHER_IDEMPOTENCY_RETENTION_HOURS"));
  BOOST_TEST(mentions(short_keys.problems, "ARTIFACT_PUBLISHER_OUTBOX_RETENTION_HOURS"));
}

BOOST_AUTO_TEST_CASE(queue_vacuum_interval_default_zero_and_floor) {
  auto r = load_config(env_of({}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->queue_vacuum_interval.count() == 5000);
  auto off = load_config(env_of({{"ARTIFACT_PUBLISHER_QUEUE_VACUUM_INTERVAL_MS", "0"}}));
  BOOST_REQUIRE(off.config);
  BOOST_TEST(off.config->queue_vacuum_interval.count() == 0);
  auto set = load_config(env_of({{"ARTIFACT_PUBLISHER_QUEUE_VACUUM_INTERVAL_MS", "100"}}));
  BOOST_REQUIRE(set.config);
  BOOST_TEST(set.config->queue_vacuum_interval.count() == 100);
  // Between never and every 100 ms, and not negative: refused, by name.
  for (const char* bad : {"50", "-1", "3600001"}) {
    auto r2 = load_config(env_of({{"ARTIFACT_PUBLISHER_QUEUE_VACUUM_INTERVAL_MS", bad}}));
    BOOST_TEST(!r2.config, bad);
    BOOST_TEST(mentions(r2.problems, "ARTIFACT_PUBLISHER_QUEUE_VACUUM_INTERVAL_MS"), bad);
  }
}

BOOST_AUTO_TEST_CASE(kernel_url_must_be_http_or_https) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_URL", "ftp://x"}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_KERNEL_URL"));
}

BOOST_AUTO_TEST_CASE(approvers_parse_from_json) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_APPROVERS",
                                R"([{"id":"alice","publicKey":")" + key_a
                                  + R"("},{"id":"bob","publicKey":")" + key_b + R"("}])"}}));
  BOOST_REQUIRE(r.config);
  BOOST_REQUIRE(r.config->approvers.size() == 2u);
  BOOST_TEST(r.config->approvers[0].id == "alice");
  BOOST_TEST(r.config->approvers[1].public_key.size() == 32u);
}

BOOST_AUTO_TEST_CASE(approvers_parse_from_file) {
  std::string path = "/tmp/ap-config-test-approvers.json";
  std::ofstream{path} << R"([{"id":"carol","publicKey":")" << key_a << R"("}])";
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_APPROVERS", "@" + path},
                               {"ARTIFACT_PUBLISHER_MULTISIG_THRESHOLD", "2"}}));
  std::remove(path.c_str());
  // One approver cannot meet a threshold of two.
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "MULTISIG_THRESHOLD"));
}

BOOST_AUTO_TEST_CASE(bad_approvers_are_refused) {
  auto short_key = load_config(env_of(
    {{"ARTIFACT_PUBLISHER_APPROVERS", R"([{"id":"a","publicKey":"AAAA"}])"}}));
  BOOST_TEST(!short_key.config);
  BOOST_TEST(mentions(short_key.problems, "publicKey"));
  // 32 bytes, but the identity (small order: any approval would verify
  // under it) and y = 2, which is no curve point.
  for (const char* key : {"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
                          "AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}) {
    auto unusable = load_config(env_of(
      {{"ARTIFACT_PUBLISHER_APPROVERS", R"([{"id":"a","publicKey":")" + key_a
                                          + R"("},{"id":"b","publicKey":")" + key + R"("}])"}}));
    BOOST_TEST(!unusable.config, key);
    BOOST_TEST(mentions(unusable.problems, "APPROVERS[1].publicKey"), key);
    BOOST_TEST(mentions(unusable.problems, "small order"), key);
  }
  auto duplicate = load_config(env_of(
    {{"ARTIFACT_PUBLISHER_APPROVERS", R"([{"id":"a","publicKey":")" + key_a
                                        + R"("},{"id":"a","publicKey":")" + key_b + R"("}])"}}));
  BOOST_TEST(!duplicate.config);
  BOOST_TEST(mentions(duplicate.problems, "duplicate"));
  // An approval names at most 64 characters, so no id can be longer.
  auto id_of = [](std::size_t n) {
    return R"([{"id":")" + std::string(n, 'a') + R"(","publicKey":")" + key_a
           + R"("},{"id":"b","publicKey":")" + key_b + R"("}])";
  };
  BOOST_TEST(load_config(env_of({{"ARTIFACT_PUBLISHER_APPROVERS", id_of(64)}})).config.has_value());
  auto too_long = load_config(env_of({{"ARTIFACT_PUBLISHER_APPROVERS", id_of(65)}}));
  BOOST_TEST(!too_long.config);
  BOOST_TEST(mentions(too_long.problems, "1-64 characters"));
  auto not_json = load_config(env_of({{"ARTIFACT_PUBLISHER_APPROVERS", "[{"}}));
  BOOST_TEST(!not_json.config);
  auto missing_file = load_config(env_of({{"ARTIFACT_PUBLISHER_APPROVERS", "@/nonexistent/x"}}));
  BOOST_TEST(!missing_file.config);
  BOOST_TEST(mentions(missing_file.problems, "cannot read"));
}

BOOST_AUTO_TEST_CASE(production_refuses_development_defaults_and_names_each) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_PROOF_SECRET"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_DELIVERY_KEY"));
  // Tokens that are not set are not required.
  BOOST_TEST(!mentions(r.problems, "API_TOKEN"));
  BOOST_TEST(!mentions(r.problems, "ADMIN_TOKEN"));
}

BOOST_AUTO_TEST_CASE(production_refuses_short_secrets_and_tokens) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"},
                               {"ARTIFACT_PUBLISHER_PROOF_SECRET", strong},
                               {"ARTIFACT_PUBLISHER_DELIVERY_KEY", "tiny-key-value"},
                               {"ARTIFACT_PUBLISHER_PROOF_SECRETS", R"({"v0":"tooshort"})"},
                               {"ARTIFACT_PUBLISHER_API_TOKEN", "abc"},
                               {"REPOWRITER_ADMIN_TOKEN", "def"}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(!mentions(r.problems, "ARTIFACT_PUBLISHER_PROOF_SECRET:"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_DELIVERY_KEY"));
  BOOST_TEST(mentions(r.problems, "PROOF_SECRETS.v0"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_API_TOKEN"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_ADMIN_TOKEN"));
  for (const auto& p : r.problems) {
    BOOST_TEST(p.find("tiny-key-value") == std::string::npos);  // values are never echoed
    BOOST_TEST(p.find("tooshort") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(production_refuses_the_default_even_when_long) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"},
                               {"ARTIFACT_PUBLISHER_PROOF_SECRET", std::string{defaults::proof_secret}},
                               {"ARTIFACT_PUBLISHER_DELIVERY_KEY", strong}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_PROOF_SECRET"));
}

BOOST_AUTO_TEST_CASE(production_starts_with_strong_secrets) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"},
                               {"ARTIFACT_PUBLISHER_PROOF_SECRET", strong},
                               {"ARTIFACT_PUBLISHER_DELIVERY_KEY", strong + "-delivery"},
                               {"ARTIFACT_PUBLISHER_API_TOKEN", strong + "-api"},
                               {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", strong + "-kernel"}}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->production);
  auto summary = r.config->redacted_summary();
  BOOST_TEST(summary.find(strong) == std::string::npos);
}

BOOST_AUTO_TEST_CASE(summary_hides_database_password) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_DB_URL", "postgresql://u:hunter2@db:5432/x"}}));
  BOOST_REQUIRE(r.config);
  auto summary = r.config->redacted_summary();
  BOOST_TEST(summary.find("hunter2") == std::string::npos);
  BOOST_TEST(summary.find("db:5432/x") != std::string::npos);
}

// libpq takes a password in the userinfo, in a query parameter and, in the
// key=value form, as a plain or quoted value that may itself contain '@'.
BOOST_AUTO_TEST_CASE(summary_hides_database_passwords_in_every_libpq_form) {
  struct sample {
    std::string url;
    std::string secret;
    std::vector<std::string> shown;
  };
  const std::vector<sample> samples = {
      {"postgresql://app@db/ap?password=s3cret", "s3cret", {"app@db/ap", "password=<redacted>"}},
      {"postgresql://user:hunter2@db:5432/ap?password=s3cret&sslmode=require", "s3cret",
       {"user:<redacted>@db:5432/ap", "sslmode=require"}},
      {"postgres://u:hunter2@db/ap?sslmode=disable&password=s3cret", "s3cret",
       {"u:<redacted>@db/ap", "sslmode=disable"}},
      {"postgresql://u:p@ss@db/ap", "p@ss", {"@db/ap"}},
      {"password=p@ss host=db", "p@ss", {"host=db"}},
      {"host=db port=5433 password=p@ss dbname=ap user=app", "p@ss",
       {"host=db", "port=5433", "dbname=ap", "user=app", "password=<redacted>"}},
      {"host=db password='a b@c' dbname=ap", "a b@c", {"host=db", "dbname=ap"}},
      {R"(host=db password='se\'cr3t' dbname=ap)", "cr3t", {"host=db", "dbname=ap"}},
      {"host=db password = spaced dbname=ap", "spaced", {"host=db", "dbname=ap"}},
  };
  for (const auto& s : samples) {
    auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_DB_URL", s.url}}));
    BOOST_REQUIRE_MESSAGE(r.config, s.url);
    auto summary = r.config->redacted_summary();
    BOOST_TEST(summary.find(s.secret) == std::string::npos, s.url << " -> " << summary);
    BOOST_TEST(summary.find("hunter2") == std::string::npos, s.url << " -> " << summary);
    for (const auto& part : s.shown)
      BOOST_TEST(summary.find(part) != std::string::npos, s.url << " should show " << part);
  }
}

BOOST_AUTO_TEST_CASE(active_kid_must_agree_with_proof_secret) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_PROOF_KID", "v2"},
                               {"ARTIFACT_PUBLISHER_PROOF_SECRETS", R"({"v2":"other"})"}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "PROOF_SECRETS"));
}

BOOST_AUTO_TEST_CASE(the_processor_is_embedded_unless_stripe_is_chosen) {
  auto r = load_config(env_of({}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->payment_processor == "embedded");
  auto bad = load_config(env_of({{"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "paypal"}}));
  BOOST_TEST(mentions(bad.problems, "ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR"));
  auto dev = load_config(env_of({{"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
                                 {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", "http://127.0.0.1:12111"}}));
  BOOST_REQUIRE(dev.config);
  BOOST_TEST(dev.config->stripe_secret_key.rfind("sk_test_", 0) == 0u);
  BOOST_TEST(dev.config->redacted_summary().find("sk_test") == std::string::npos);
  BOOST_TEST(dev.config->redacted_summary().find("payment_processor=stripe") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(stripe_settings_are_checked) {
  auto publishable = load_config(env_of({{"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
                                         {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", "http://127.0.0.1:1"},
                                         {"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", "pk_test_x"}}));
  BOOST_TEST(mentions(publishable.problems, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY"));
  // Stripe itself, over TLS, is the default.
  auto tls = load_config(env_of({{"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"}}));
  BOOST_REQUIRE(tls.config);
  BOOST_TEST(tls.config->stripe_api_base == "https://api.stripe.com");
  auto plain = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"},
                                   {"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
                                   {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", "http://stripe.example.com"}}));
  BOOST_TEST(mentions(plain.problems, "ARTIFACT_PUBLISHER_STRIPE_API_BASE: must be https:// in production"));
  auto nonsense = load_config(env_of({{"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
                                      {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", "api.stripe.com"}}));
  BOOST_TEST(mentions(nonsense.problems, "ARTIFACT_PUBLISHER_STRIPE_API_BASE"));
  auto production = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"},
                                        {"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
                                        {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", "http://127.0.0.1:1"}}));
  BOOST_TEST(mentions(production.problems,
                      "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY: required in production"));
}

BOOST_AUTO_TEST_CASE(production_reaches_upstreams_over_tls_with_a_kernel_token) {
  std::map<std::string, std::string> base{{"ARTIFACT_PUBLISHER_ENV", "production"},
                                          {"ARTIFACT_PUBLISHER_PROOF_SECRET", strong},
                                          {"ARTIFACT_PUBLISHER_DELIVERY_KEY", strong + "-delivery"}};
  auto with = [&](std::map<std::string, std::string> more) {
    auto env = base;
    for (auto& [k, v] : more)
      env[k] = v;
    return load_config(env_of(env));
  };
  auto missing = with({{"ARTIFACT_PUBLISHER_KERNEL_URL", "https://kernel.example.com"}});
  BOOST_TEST(mentions(missing.problems, "ARTIFACT_PUBLISHER_KERNEL_TOKEN: required in production"));
  auto plain = with({{"ARTIFACT_PUBLISHER_KERNEL_URL", "http://kernel.example.com"},
                     {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "kernel-token"}});
  BOOST_TEST(mentions(plain.problems, "ARTIFACT_PUBLISHER_KERNEL_URL: must be https:// in production"));
  // Plain HTTP stays allowed to this machine (a local sidecar).
  auto local = with({{"ARTIFACT_PUBLISHER_KERNEL_URL", "http://127.0.0.1:6050"},
                     {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "kernel-token"}});
  BOOST_TEST(local.config.has_value());
  auto good = with({{"ARTIFACT_PUBLISHER_KERNEL_URL", "https://kernel.example.com/api"},
                    {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "kernel-token-value"}});
  BOOST_REQUIRE(good.config);
  BOOST_TEST(good.config->redacted_summary().find("kernel-token-value") == std::string::npos);
  BOOST_TEST(good.config->redacted_summary().find("kernel_token=<18 bytes>") != std::string::npos);
  // Outside production plain http:// anywhere is fine (development).
  BOOST_TEST(load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_URL", "http://kernel:6050"}})).config.has_value());
}

BOOST_AUTO_TEST_CASE(a_secret_file_is_read_again_when_it_changes) {
  auto value = secret_source::parse("plain-value");
  BOOST_TEST(value.current() == "plain-value");
  BOOST_TEST(!value.from_file());
  std::string path = "/tmp/ap-config-test-rotating";
  std::ofstream{path} << "first\n";
  auto file = secret_source::parse("@" + path);
  BOOST_TEST(file.from_file());
  BOOST_TEST(file.current() == "first");
  BOOST_TEST(file.current() == "first");
  BOOST_TEST(file.reloads() == 1u);
  std::ofstream{path} << "second-longer\n";
  BOOST_TEST(file.current() == "second-longer");
  // Emptied mid-rotation: the last value holds until the new one is written.
  std::ofstream{path} << "";
  BOOST_TEST(file.current() == "second-longer");
  std::ofstream{path} << "third\n";
  BOOST_TEST(file.current() == "third");
  BOOST_TEST(file.reloads() == 3u);
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(kernel_credentials_and_trust_files_are_checked_at_start) {
  auto unreadable = load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "@/nonexistent/token"}}));
  BOOST_TEST(mentions(unreadable.problems, "ARTIFACT_PUBLISHER_KERNEL_TOKEN: cannot read"));
  std::string path = "/tmp/ap-config-test-token";
  std::ofstream{path} << "  \n";
  auto empty = load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "@" + path}}));
  BOOST_TEST(mentions(empty.problems, "ARTIFACT_PUBLISHER_KERNEL_TOKEN: " + path + " is empty"));
  std::ofstream{path} << "a-token\n";
  auto from_file = load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "@" + path}}));
  BOOST_REQUIRE(from_file.config);
  // The file's name is shown, never its contents.
  BOOST_TEST(from_file.config->redacted_summary().find("kernel_token=@" + path) != std::string::npos);
  BOOST_TEST(from_file.config->redacted_summary().find("a-token") == std::string::npos);
  std::remove(path.c_str());
  auto ca = load_config(env_of({{"ARTIFACT_PUBLISHER_CA_FILE", "/nonexistent/ca.pem"}}));
  BOOST_TEST(mentions(ca.problems, "ARTIFACT_PUBLISHER_CA_FILE: cannot read"));
  auto half = load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_CLIENT_CERT", "/etc/hostname"}}));
  BOOST_TEST(mentions(half.problems, "set both or neither"));
}

// libpq reads a string that is neither a URI nor key=value pairs as the name
// of a database on the local socket: a mistyped URL must stop the start.
BOOST_AUTO_TEST_CASE(a_malformed_database_url_is_refused_naming_the_variable_and_host) {
  struct sample {
    std::string url;
    std::string host;
  };
  const std::vector<sample> samples = {
      {"postgres//app:hunter2@db.internal:5432/ap", "db.internal:5432"},
      {"mysql://app:hunter2@db.internal:3306/ap", "db.internal:3306"},
      {"postgresql:/app:hunter2@db.internal/ap", "db.internal"},
      {"postgres//u:p=hunter2@db.internal/ap", "db.internal"},
  };
  for (const auto& s : samples) {
    auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_DB_URL", s.url}}));
    BOOST_TEST(!r.config, s.url);
    BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_DB_URL: not a PostgreSQL connection string"),
               s.url);
    BOOST_TEST(mentions(r.problems, "host '" + s.host + "'"), s.url);
    for (const auto& p : r.problems) {
      BOOST_TEST(p.find("hunter2") == std::string::npos, p);
      BOOST_TEST(p.find("app:") == std::string::npos, p);
    }
  }
  // Nothing URL-like to show: the value may be a mistyped secret.
  auto bare = load_config(env_of({{"ARTIFACT_PUBLISHER_DB_URL", "hunter2"}}));
  BOOST_TEST(!bare.config);
  BOOST_TEST(mentions(bare.problems, "ARTIFACT_PUBLISHER_DB_URL"));
  for (const auto& p : bare.problems)
    BOOST_TEST(p.find("hunter2") == std::string::npos, p);
  // The forms libpq reads stay accepted.
  for (std::string good : {"postgresql://u:p@db/ap", "postgres://db/ap", "host=db dbname=ap",
                           "host=/var/run/postgresql dbname=ap"})
    BOOST_TEST(load_config(env_of({{"ARTIFACT_PUBLISHER_DB_URL", good}})).config.has_value(), good);
}

BOOST_AUTO_TEST_CASE(a_placeholder_left_in_any_variable_is_refused_naming_it) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"},
                               {"ARTIFACT_PUBLISHER_PROOF_SECRET", strong},
                               {"ARTIFACT_PUBLISHER_DELIVERY_KEY", strong + "-delivery"},
                               {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", strong + "-kernel"},
                               {"ARTIFACT_PUBLISHER_SANDBOX_SEED", "CHANGE_ME"},
                               {"REPOWRITER_LEDGER_ID", "ledger_CHANGE_ME"},
                               {"ARTIFACT_PUBLISHER_API_TOKEN", "CHANGE_ME-but-long-enough-to-pass-32"},
                               {"ARTIFACT_PUBLISHER_DB_URL",
                                "postgresql://ap:CHANGE_ME@127.0.0.1:5432/ap"}}));
  BOOST_TEST(!r.config);
  for (std::string var : {"ARTIFACT_PUBLISHER_SANDBOX_SEED", "REPOWRITER_LEDGER_ID",
                          "ARTIFACT_PUBLISHER_API_TOKEN", "ARTIFACT_PUBLISHER_DB_URL"})
    BOOST_TEST(mentions(r.problems, var + ": still holds the placeholder CHANGE_ME"), var);
  BOOST_TEST(!mentions(r.problems, "ARTIFACT_PUBLISHER_PROOF_SECRET:"));
}

// The refusal says which of its reasons applies.
BOOST_AUTO_TEST_CASE(production_names_why_a_secret_is_refused) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_ENV", "production"},
                               {"ARTIFACT_PUBLISHER_DELIVERY_KEY", std::string{defaults::delivery_key}},
                               {"ARTIFACT_PUBLISHER_API_TOKEN", "short-token"},
                               {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", strong + "-kernel"}}));
  BOOST_TEST(!r.config);
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_PROOF_SECRET: missing;"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_DELIVERY_KEY: the development default;"));
  BOOST_TEST(mentions(r.problems, "ARTIFACT_PUBLISHER_API_TOKEN: shorter than 32 bytes (it has 11);"));
  BOOST_TEST(!mentions(r.problems, "missing, a development default, or shorter"));
}

BOOST_AUTO_TEST_CASE(the_summary_names_the_kids_of_proof_secrets_only) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_PROOF_SECRETS", R"({"v2":"secret-two","v3":"secret-3"})"}}));
  BOOST_REQUIRE(r.config);
  auto summary = r.config->redacted_summary();
  BOOST_TEST(summary.find("proof_secrets=v2,v3") != std::string::npos, summary);
  BOOST_TEST(summary.find("secret-two") == std::string::npos, summary);
}

// SPEC §12: the delivery key set.
const std::string delivery_d1 = "delivery-key-version-one-0123456789abcdef";
const std::string delivery_d2 = "delivery-key-version-two-0123456789abcdef";
const std::string delivery_set = R"({"d1":")" + delivery_d1 + R"(","d2":")" + delivery_d2 + R"("})";

BOOST_AUTO_TEST_CASE(a_lone_delivery_key_is_kid_d1) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEY", delivery_d1}}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->delivery_kid == "d1");
  BOOST_TEST(r.config->delivery_key == delivery_d1);
  BOOST_TEST(r.config->delivery_keys.size() == 1u);
  BOOST_TEST(r.config->delivery_keys.at("d1") == delivery_d1);
  // Nothing set: the development key, as d1.
  auto dev = load_config(env_of({}));
  BOOST_REQUIRE(dev.config);
  BOOST_TEST(dev.config->delivery_kid == "d1");
  BOOST_TEST(dev.config->delivery_key == std::string{defaults::delivery_key});
}

BOOST_AUTO_TEST_CASE(the_delivery_kid_picks_the_active_key_of_the_set) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", delivery_set},
                               {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}}));
  BOOST_REQUIRE(r.config);
  BOOST_TEST(r.config->delivery_kid == "d2");
  BOOST_TEST(r.config->delivery_key == delivery_d2);
  BOOST_TEST(r.config->delivery_keys.size() == 2u);
  // From a file, as PROOF_SECRETS is read; REPOWRITER_ falls back as elsewhere.
  auto path = "/tmp/ap-config-test-delivery-keys-" + std::to_string(::getpid());
  std::ofstream{path} << delivery_set;
  auto from_file = load_config(env_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", "@" + path},
                                       {"REPOWRITER_DELIVERY_KID", "d1"}}));
  std::remove(path.c_str());
  BOOST_REQUIRE(from_file.config);
  BOOST_TEST(from_file.config->delivery_key == delivery_d1);
  BOOST_TEST(from_file.config->delivery_keys.at("d2") == delivery_d2);
  // DELIVERY_KEY beside DELIVERY_KEYS is d1 of the set: adding a new version
  // keeps the key today's deliveries were sealed with.
  auto added = load_config(env_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEY", delivery_d1},
                                   {"ARTIFACT_PUBLISHER_DELIVERY_KEYS",
                                    R"({"d2":")" + delivery_d2 + R"("})"},
                                   {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}}));
  BOOST_REQUIRE(added.config);
  BOOST_TEST(added.config->delivery_keys.at("d1") == delivery_d1);
  BOOST_TEST(added.config->delivery_key == delivery_d2);
}

BOOST_AUTO_TEST_CASE(a_wrong_delivery_key_set_is_refused_naming_the_variable_not_the_value) {
  auto problems_of = [](std::map<std::string, std::string> vars) {
    auto r = load_config(env_of(std::move(vars)));
    BOOST_TEST(!r.config);
    for (const auto& p : r.problems) {
      BOOST_TEST(p.find(delivery_d1) == std::string::npos, p);
      BOOST_TEST(p.find(delivery_d2) == std::string::npos, p);
    }
    return r.problems;
  };
  // The active kid is not in the set.
  auto absent = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", delivery_set},
                             {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d3"}});
  BOOST_TEST(mentions(absent, "ARTIFACT_PUBLISHER_DELIVERY_KID: the active kid 'd3' is not configured"));
  auto default_absent = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS",
                                      R"({"d2":")" + delivery_d2 + R"("})"}});
  BOOST_TEST(mentions(default_absent, "'d1' (the default) is not configured"));
  auto lone_absent = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEY", delivery_d1},
                                  {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}});
  BOOST_TEST(mentions(lone_absent, "ARTIFACT_PUBLISHER_DELIVERY_KID"));
  // Both forms, disagreeing about d1.
  auto both = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEY", delivery_d2},
                           {"ARTIFACT_PUBLISHER_DELIVERY_KEYS", delivery_set}});
  BOOST_TEST(mentions(both, "ARTIFACT_PUBLISHER_DELIVERY_KEYS: names kid 'd1' with a key other "
                            "than ARTIFACT_PUBLISHER_DELIVERY_KEY"));
  // Bad JSON, not an object, an empty key, a kid that is no plain name, no key.
  auto bad_json = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", R"({"d1":")" + delivery_d1}});
  BOOST_TEST(mentions(bad_json, "ARTIFACT_PUBLISHER_DELIVERY_KEYS: "));
  auto not_object = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", "[\"" + delivery_d1 + "\"]"}});
  BOOST_TEST(mentions(not_object, "ARTIFACT_PUBLISHER_DELIVERY_KEYS: expected a JSON object"));
  auto empty_key = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", R"({"d1":""})"}});
  BOOST_TEST(mentions(empty_key, "ARTIFACT_PUBLISHER_DELIVERY_KEYS.d1: empty"));
  auto not_string = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", R"({"d1":7})"}});
  BOOST_TEST(mentions(not_string, "ARTIFACT_PUBLISHER_DELIVERY_KEYS.d1: the secret must be a string"));
  auto odd_kid = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", R"({"d 1":")" + delivery_d1 + R"("})"}});
  BOOST_TEST(mentions(odd_kid, "ARTIFACT_PUBLISHER_DELIVERY_KEYS: a kid must be"));
  auto none = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", "{}"}});
  BOOST_TEST(mentions(none, "ARTIFACT_PUBLISHER_DELIVERY_KEYS: names no key"));
  auto unreadable = problems_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", "@/nonexistent/delivery-keys"}});
  BOOST_TEST(mentions(unreadable, "ARTIFACT_PUBLISHER_DELIVERY_KEYS: cannot read file"));
}

BOOST_AUTO_TEST_CASE(production_applies_the_delivery_key_rules_to_every_version) {
  std::map<std::string, std::string> base{{"ARTIFACT_PUBLISHER_ENV", "production"},
                                          {"ARTIFACT_PUBLISHER_PROOF_SECRET", strong},
                                          {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", strong + "-kernel"}};
  auto with = [&](std::map<std::string, std::string> more) {
    auto vars = base;
    vars.insert(more.begin(), more.end());
    return load_config(env_of(vars));
  };
  auto good = with({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", delivery_set},
                    {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}});
  BOOST_TEST(good.config.has_value(), (good.problems.empty() ? "" : good.problems.front()));
  // An older version that is short, or the development default, is refused by its kid.
  auto weak = with({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS",
                     R"({"d1":"short-old-key","d2":")" + delivery_d2 + R"(","d0":")"
                       + std::string{defaults::delivery_key} + R"("})"},
                    {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}});
  BOOST_TEST(!weak.config);
  BOOST_TEST(mentions(weak.problems, "ARTIFACT_PUBLISHER_DELIVERY_KEYS.d1: shorter than 32 bytes"));
  BOOST_TEST(mentions(weak.problems, "ARTIFACT_PUBLISHER_DELIVERY_KEYS.d0: the development default"));
  BOOST_TEST(!mentions(weak.problems, "DELIVERY_KEYS.d2"));
  for (const auto& p : weak.problems)
    BOOST_TEST(p.find("short-old-key") == std::string::npos, p);
  // DELIVERY_KEY beside the set is checked as today.
  auto weak_lone = with({{"ARTIFACT_PUBLISHER_DELIVERY_KEY", "tiny"},
                         {"ARTIFACT_PUBLISHER_DELIVERY_KEYS", R"({"d2":")" + delivery_d2 + R"("})"},
                         {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}});
  BOOST_TEST(mentions(weak_lone.problems, "ARTIFACT_PUBLISHER_DELIVERY_KEY: shorter than 32 bytes"));
  // The template's placeholder in a version read from a file.
  auto path = "/tmp/ap-config-test-delivery-placeholder-" + std::to_string(::getpid());
  std::ofstream{path} << R"({"d1":")" << delivery_d1 << R"(","d2":"CHANGE_ME-0123456789abcdef0123456789"})";
  auto unfilled = with({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", "@" + path}});
  std::remove(path.c_str());
  BOOST_TEST(!unfilled.config);
  BOOST_TEST(mentions(unfilled.problems,
                      "ARTIFACT_PUBLISHER_DELIVERY_KEYS.d2: still holds the placeholder CHANGE_ME"));
}

BOOST_AUTO_TEST_CASE(the_summary_shows_delivery_kids_and_lengths_only) {
  auto r = load_config(env_of({{"ARTIFACT_PUBLISHER_DELIVERY_KEYS", delivery_set},
                               {"ARTIFACT_PUBLISHER_DELIVERY_KID", "d2"}}));
  BOOST_REQUIRE(r.config);
  auto summary = r.config->redacted_summary();
  BOOST_TEST(summary.find("delivery_kid=d2") != std::string::npos, summary);
  BOOST_TEST(summary.find("delivery_keys=d1:<41 bytes>,d2:<41 bytes>") != std::string::npos, summary);
  BOOST_TEST(summary.find(delivery_d1) == std::string::npos, summary);
  BOOST_TEST(summary.find(delivery_d2) == std::string::npos, summary);
}

// SPEC §12: the processor's secret key set.
const std::string stripe_s1 = "sk_test_version_one_0123456789";
const std::string stripe_s2 = "sk_live_version_two_0123456789abc";
const std::string stripe_set = R"({"s1":")" + stripe_s1 + R"(","s2":")" + stripe_s2 + R"("})";
const std::map<std::string, std::string> with_stripe{
    {"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
    {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", "http://127.0.0.1:12111"}};

config_result load_with(std::map<std::string, std::string> base,
                        const std::map<std::string, std::string>& more) {
  for (const auto& [k, v] : more)
    base[k] = v;
  return load_config(env_of(base));
}

BOOST_AUTO_TEST_CASE(a_lone_stripe_secret_key_is_kid_s1_and_the_stripe_kid_picks_the_active_one) {
  auto lone = load_with(with_stripe, {{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", stripe_s1}});
  BOOST_REQUIRE(lone.config);
  BOOST_TEST(lone.config->stripe_kid == "s1");
  BOOST_TEST(lone.config->stripe_secret_key == stripe_s1);
  BOOST_TEST(lone.config->stripe_secret_keys.size() == 1u);
  BOOST_TEST(lone.config->stripe_secret_keys.at("s1") == stripe_s1);
  auto set = load_with(with_stripe, {{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", stripe_set},
                                     {"ARTIFACT_PUBLISHER_STRIPE_KID", "s2"}});
  BOOST_REQUIRE(set.config);
  BOOST_TEST(set.config->stripe_kid == "s2");
  BOOST_TEST(set.config->stripe_secret_key == stripe_s2);
  BOOST_TEST(set.config->stripe_secret_keys.at("s1") == stripe_s1);
  // From a file; STRIPE_SECRET_KEY beside the set is its s1.
  auto path = "/tmp/ap-config-test-stripe-keys-" + std::to_string(::getpid());
  std::ofstream{path} << R"({"s2":")" << stripe_s2 << R"("})";
  auto added = load_with(with_stripe, {{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", stripe_s1},
                                       {"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", "@" + path},
                                       {"REPOWRITER_STRIPE_KID", "s2"}});
  std::remove(path.c_str());
  BOOST_REQUIRE(added.config);
  BOOST_TEST(added.config->stripe_secret_keys.size() == 2u);
  BOOST_TEST(added.config->stripe_secret_key == stripe_s2);
  // Development defaults: Stripe without a key gets the test key as s1; the
  // embedded processor needs none.
  auto dev = load_config(env_of(with_stripe));
  BOOST_REQUIRE(dev.config);
  BOOST_TEST(dev.config->stripe_secret_keys.size() == 1u);
  BOOST_TEST(dev.config->stripe_secret_keys.at("s1") == std::string{defaults::stripe_secret_key});
  auto embedded = load_config(env_of({}));
  BOOST_REQUIRE(embedded.config);
  BOOST_TEST(embedded.config->stripe_secret_keys.empty());
  BOOST_TEST(embedded.config->stripe_secret_key.empty());
}

BOOST_AUTO_TEST_CASE(a_wrong_stripe_key_set_is_refused_naming_the_variable_not_the_value) {
  auto problems_of = [](const std::map<std::string, std::string>& more) {
    auto r = load_with(with_stripe, more);
    BOOST_TEST(!r.config);
    for (const auto& p : r.problems) {
      BOOST_TEST(p.find(stripe_s1) == std::string::npos, p);
      BOOST_TEST(p.find(stripe_s2) == std::string::npos, p);
    }
    return r.problems;
  };
  auto absent = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", stripe_set},
                             {"ARTIFACT_PUBLISHER_STRIPE_KID", "s3"}});
  BOOST_TEST(mentions(absent, "ARTIFACT_PUBLISHER_STRIPE_KID: the active kid 's3' is not configured; "
                              "add it to ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS"));
  auto default_absent = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS",
                                      R"({"s2":")" + stripe_s2 + R"("})"}});
  BOOST_TEST(mentions(default_absent, "ARTIFACT_PUBLISHER_STRIPE_KID: the active kid 's1' (the default) "
                                      "is not configured"));
  auto lone_absent = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", stripe_s1},
                                  {"ARTIFACT_PUBLISHER_STRIPE_KID", "s2"}});
  BOOST_TEST(mentions(lone_absent, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY alone is kid s1: give "
                                   "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS"));
  auto both = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", stripe_s2},
                           {"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", stripe_set}});
  BOOST_TEST(mentions(both, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS: names kid 's1' with a key other "
                            "than ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY"));
  auto empty_key = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", R"({"s1":""})"}});
  BOOST_TEST(mentions(empty_key, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS.s1: empty; a Stripe secret key "
                                 "cannot be empty"));
  auto odd_kid = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", R"({"s/1":")" + stripe_s1 + R"("})"}});
  BOOST_TEST(mentions(odd_kid, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS: a kid must be"));
  auto odd_active = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", stripe_set},
                                 {"ARTIFACT_PUBLISHER_STRIPE_KID", "s 2"}});
  BOOST_TEST(mentions(odd_active, "ARTIFACT_PUBLISHER_STRIPE_KID: must be 1-64 characters"));
  // Every version must be a secret key, not only the active one.
  auto publishable = problems_of({{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS",
                                   R"({"s1":"pk_test_old","s2":")" + stripe_s2 + R"("})"},
                                  {"ARTIFACT_PUBLISHER_STRIPE_KID", "s2"}});
  BOOST_TEST(mentions(publishable, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS.s1: must be a secret key"));
  BOOST_TEST(!mentions(publishable, "STRIPE_SECRET_KEYS.s2"));
}

BOOST_AUTO_TEST_CASE(production_requires_a_stripe_key_in_either_form) {
  std::map<std::string, std::string> base{{"ARTIFACT_PUBLISHER_ENV", "production"},
                                          {"ARTIFACT_PUBLISHER_PROOF_SECRET", strong},
                                          {"ARTIFACT_PUBLISHER_DELIVERY_KEY", strong + "-delivery"},
                                          {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", strong + "-kernel"},
                                          {"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
                                          {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", "http://127.0.0.1:1"}};
  auto none = load_with(base, {});
  BOOST_TEST(mentions(none.problems, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY: required in production"));
  // Production gets no development key.
  auto set_only = load_with(base, {{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", stripe_set},
                                   {"ARTIFACT_PUBLISHER_STRIPE_KID", "s2"}});
  BOOST_TEST(set_only.config.has_value(), (set_only.problems.empty() ? "" : set_only.problems.front()));
  auto old_publishable = load_with(base, {{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", "pk_live_x"},
                                          {"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS",
                                           R"({"s2":")" + stripe_s2 + R"("})"},
                                          {"ARTIFACT_PUBLISHER_STRIPE_KID", "s2"}});
  BOOST_TEST(mentions(old_publishable.problems, "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY: must be a secret key"));
}

// SPEC §12: the Kernel token set, each version as given (a value or @file).
const std::string kernel_t1 = "kernel-token-version-one-0123456789";
const std::string kernel_t2 = "kernel-token-version-two-0123456789";

BOOST_AUTO_TEST_CASE(a_lone_kernel_token_is_kid_t1_and_the_token_kid_picks_the_active_one) {
  auto lone = load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKEN", kernel_t1}}));
  BOOST_REQUIRE(lone.config);
  BOOST_TEST(lone.config->kernel_token_kid == "t1");
  BOOST_TEST(lone.config->kernel_token == kernel_t1);
  BOOST_TEST(lone.config->kernel_tokens.size() == 1u);
  // Nothing set in development: no token, and none is made up.
  auto dev = load_config(env_of({}));
  BOOST_REQUIRE(dev.config);
  BOOST_TEST(dev.config->kernel_tokens.empty());
  BOOST_TEST(dev.config->kernel_token.empty());
  // A file version stays as given: its user reads it again when it changes.
  auto path = "/tmp/ap-config-test-kernel-token-" + std::to_string(::getpid());
  std::ofstream{path} << kernel_t2 << "\n";
  auto set = load_config(env_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKEN", kernel_t1},
                                 {"ARTIFACT_PUBLISHER_KERNEL_TOKENS", R"({"t2":"@)" + path + R"("})"},
                                 {"ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID", "t2"}}));
  std::remove(path.c_str());
  BOOST_REQUIRE(set.config);
  BOOST_TEST(set.config->kernel_token_kid == "t2");
  BOOST_TEST(set.config->kernel_token == "@" + path);
  BOOST_TEST(set.config->kernel_tokens.at("t1") == kernel_t1);
}

BOOST_AUTO_TEST_CASE(a_wrong_kernel_token_set_is_refused_naming_the_variable_not_the_value) {
  auto problems_of = [](std::map<std::string, std::string> vars) {
    auto r = load_config(env_of(std::move(vars)));
    BOOST_TEST(!r.config);
    for (const auto& p : r.problems) {
      BOOST_TEST(p.find(kernel_t1) == std::string::npos, p);
      BOOST_TEST(p.find(kernel_t2) == std::string::npos, p);
    }
    return r.problems;
  };
  const std::string set = R"({"t1":")" + kernel_t1 + R"(","t2":")" + kernel_t2 + R"("})";
  auto absent = problems_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKENS", set},
                             {"ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID", "t3"}});
  BOOST_TEST(mentions(absent, "ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID: the active kid 't3' is not "
                              "configured; add it to ARTIFACT_PUBLISHER_KERNEL_TOKENS"));
  // Naming a kid with no token at all is a mistake too.
  auto nothing = problems_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID", "t2"}});
  BOOST_TEST(mentions(nothing, "ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID: the active kid 't2' is not "
                               "configured; give ARTIFACT_PUBLISHER_KERNEL_TOKENS"));
  auto both = problems_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKEN", kernel_t2},
                           {"ARTIFACT_PUBLISHER_KERNEL_TOKENS", set}});
  BOOST_TEST(mentions(both, "ARTIFACT_PUBLISHER_KERNEL_TOKENS: names kid 't1' with a token other "
                            "than ARTIFACT_PUBLISHER_KERNEL_TOKEN"));
  auto empty = problems_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKENS", R"({"t1":""})"}});
  BOOST_TEST(mentions(empty, "ARTIFACT_PUBLISHER_KERNEL_TOKENS.t1: empty; a Kernel token cannot be empty"));
  auto none = problems_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKENS", "{}"}});
  BOOST_TEST(mentions(none, "ARTIFACT_PUBLISHER_KERNEL_TOKENS: names no token"));
  auto odd_kid = problems_of({{"ARTIFACT_PUBLISHER_KERNEL_TOKENS", R"({"":")" + kernel_t1 + R"("})"}});
  BOOST_TEST(mentions(odd_kid, "ARTIFACT_PUBLISHER_KERNEL_TOKENS: a kid must be"));
  // Every file version is checked, not only the active one.
  auto path = "/tmp/ap-config-test-kernel-empty-" + std::to_string(::getpid());
  std::ofstream{path} << " \n";
  auto unreadable = problems_of(
    {{"ARTIFACT_PUBLISHER_KERNEL_TOKEN", kernel_t1},
     {"ARTIFACT_PUBLISHER_KERNEL_TOKENS",
      R"({"t2":"@/nonexistent/kernel-token","t3":"@)" + path + R"("})"}});
  std::remove(path.c_str());
  BOOST_TEST(mentions(unreadable, "ARTIFACT_PUBLISHER_KERNEL_TOKENS.t2: cannot read /nonexistent/kernel-token"));
  BOOST_TEST(mentions(unreadable, "ARTIFACT_PUBLISHER_KERNEL_TOKENS.t3: " + path + " is empty"));
}

BOOST_AUTO_TEST_CASE(production_requires_a_kernel_token_in_either_form) {
  std::map<std::string, std::string> base{{"ARTIFACT_PUBLISHER_ENV", "production"},
                                          {"ARTIFACT_PUBLISHER_PROOF_SECRET", strong},
                                          {"ARTIFACT_PUBLISHER_DELIVERY_KEY", strong + "-delivery"}};
  auto none = load_with(base, {});
  BOOST_TEST(mentions(none.problems, "ARTIFACT_PUBLISHER_KERNEL_TOKEN: required in production"));
  auto set_only = load_with(base, {{"ARTIFACT_PUBLISHER_KERNEL_TOKENS", R"({"t2":")" + kernel_t2 + R"("})"},
                                   {"ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID", "t2"}});
  BOOST_TEST(set_only.config.has_value(), (set_only.problems.empty() ? "" : set_only.problems.front()));
  BOOST_TEST((set_only.config && set_only.config->kernel_token == kernel_t2));
}

BOOST_AUTO_TEST_CASE(the_summary_shows_stripe_and_kernel_versions_as_kid_and_length_only) {
  auto path = "/tmp/ap-config-test-kernel-summary-" + std::to_string(::getpid());
  std::ofstream{path} << kernel_t2 << "\n";
  auto r = load_with(with_stripe, {{"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS", stripe_set},
                                   {"ARTIFACT_PUBLISHER_STRIPE_KID", "s2"},
                                   {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", kernel_t1},
                                   {"ARTIFACT_PUBLISHER_KERNEL_TOKENS", R"({"t2":"@)" + path + R"("})"},
                                   {"ARTIFACT_PUBLISHER_KERNEL_TOKEN_KID", "t2"}});
  std::remove(path.c_str());
  BOOST_REQUIRE(r.config);
  auto summary = r.config->redacted_summary();
  BOOST_TEST(summary.find("stripe_kid=s2") != std::string::npos, summary);
  BOOST_TEST(summary.find("stripe_secret_keys=s1:<30 bytes>,s2:<33 bytes>") != std::string::npos, summary);
  BOOST_TEST(summary.find("kernel_token_kid=t2") != std::string::npos, summary);
  BOOST_TEST(summary.find("kernel_tokens=t1:<35 bytes>,t2:@" + path) != std::string::npos, summary);
  for (const auto& value : {stripe_s1, stripe_s2, kernel_t1, kernel_t2})
    BOOST_TEST(summary.find(value) == std::string::npos, summary);
}

BOOST_AUTO_TEST_SUITE_END()
