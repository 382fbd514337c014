#pragma once

// A running artifact-publisher process on a fresh database, for end-to-end
// tests through real sockets.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "test/support/http_client.hpp"
#include "test/support/process.hpp"
#include "test/support/test_pki.hpp"

namespace ap::test {

/// Starts `artifact-publisher serve` against database `url` (migrated
/// first) on a free port and waits until /readyz answers 200 (over TLS when
/// `env` sets ARTIFACT_PUBLISHER_TLS_CERT_FILE).
class service_process {
public:
  service_process(std::string db_url, std::map<std::string, std::string> env = {});
  ~service_process();

  std::uint16_t port() const { return port_; }
  /// Whether it listens with TLS (its env names a certificate).
  bool tls() const;
  /// `https://localhost:PORT` with TLS (the name a test certificate
  /// carries), `http://127.0.0.1:PORT` without.
  std::string url() const;
  const std::string& db_url() const { return db_url_; }
  const std::string& log() const { return log_; }
  /// Stops (SIGTERM) and starts the process again on the same port.
  void restart();
  /// Kills the process (SIGKILL): a crash. `start` brings it back.
  void kill();
  /// Starts the process (after `kill`) on the same port and waits until ready.
  void start();
  process& proc() { return *proc_; }

private:
  bool ready(std::chrono::milliseconds timeout) const;

  std::string db_url_;
  std::map<std::string, std::string> env_;
  std::uint16_t port_;
  std::string log_;
  std::unique_ptr<process> proc_;
};

/// A kernel-mock process on a free port, its audit log and upgrades kept in
/// a state file so that they survive a stop and start.
class kernel_process {
public:
  /// With `tls`, it serves https only (`--tls-cert`/`--tls-key`).
  explicit kernel_process(std::vector<std::string> extra_args = {},
                          std::optional<pem_pair> tls = std::nullopt);
  ~kernel_process();
  std::uint16_t port() const { return port_; }
  /// `https://localhost:PORT` with TLS, `http://127.0.0.1:PORT` without.
  std::string url() const;
  /// Kills the process (SIGKILL): an outage.
  void stop();
  /// Starts it again on the same port with the same log.
  void start();
  /// The --state file it keeps.
  const std::string& state_file() const { return state_; }

private:
  std::uint16_t port_;
  std::string state_;
  std::string log_;
  std::vector<std::string> extra_;
  std::optional<pem_pair> tls_;
  std::unique_ptr<process> proc_;
};

/// `env` with what production requires besides it: ENV=production, the
/// database and a free port, and a proof secret, delivery key and Kernel
/// token of production strength (each only where `env` has none).
std::map<std::string, std::string> production_env(std::map<std::string, std::string> env,
                                                  const std::string& db_url);

/// A payments-mock process on a free port, its records kept in a state file
/// so that they survive a stop and start.
class payments_process {
public:
  /// The only key the process accepts (`--secret-key`).
  static constexpr const char* secret_key = "sk_test_artifact_publisher_e2e";

  /// With `tls`, it serves https only (`--tls-cert`/`--tls-key`); the
  /// plain-socket helpers below (read_processor_records) then cannot reach it.
  explicit payments_process(std::vector<std::string> extra_args = {},
                            std::optional<pem_pair> tls = std::nullopt);
  ~payments_process();
  payments_process(const payments_process&) = delete;
  payments_process& operator=(const payments_process&) = delete;
  std::uint16_t port() const { return port_; }
  /// `https://localhost:PORT` with TLS, `http://127.0.0.1:PORT` without.
  std::string url() const;
  /// What the process wrote to stderr so far.
  std::string log() const;
  /// Kills the process (SIGKILL): a crash of the processor.
  void stop();
  /// Starts it again on the same port with the same records.
  void start();

private:
  std::uint16_t port_;
  std::string state_;
  std::string log_;
  std::vector<std::string> extra_;
  std::optional<pem_pair> tls_;
  std::unique_ptr<process> proc_;
};

/// Whether `GET https://127.0.0.1:port<path>` answers 2xx, through curl
/// without verifying the certificate: a readiness probe for TLS listeners.
/// With `client`, that certificate is offered to a server that asks for one.
bool https_ok(std::uint16_t port, const std::string& path, const pem_pair* client = nullptr);

/// The processor's own records, read through its list APIs (all pages): the
/// independent account that payment invariants are checked against.
struct processor_records {
  struct intent {
    std::string id;
    std::string status;
    /// `metadata[order_id]`, empty when absent.
    std::string order_id;
    std::string currency;
    std::int64_t amount = 0;
    std::int64_t amount_received = 0;
  };
  struct refund {
    std::string id;
    std::string payment_intent;
    std::string status;
    std::int64_t amount = 0;
  };
  /// Newest first, as the API lists them.
  std::vector<intent> intents;
  std::vector<refund> refunds;

  /// Amount refunded (succeeded refunds) per payment intent id.
  std::map<std::string, std::int64_t> refunded() const;
};

/// Reads every PaymentIntent and Refund of the payments-mock on `port`, 100
/// to a page; throws when a page cannot be read.
processor_records read_processor_records(std::uint16_t port,
                                         const std::string& secret_key = payments_process::secret_key);

/// Runs `artifact-publisher migrate` on `url`; throws when it fails.
void migrate_database(const std::string& url);

/// Runs `artifact-publisher ARGS...` (a command-line tool), with `env`
/// added to its environment, to its end, at most 20 s; returns its exit
/// code and what it printed on both streams.
std::pair<int, std::string> run_cli(const std::vector<std::string>& args,
                                    const std::map<std::string, std::string>& env = {});

/// Parses a response body; fails the current test when it is not JSON.
rapidjson::Document parse_json(const std::string& body);

} // namespace ap::test
