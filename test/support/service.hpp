#pragma once

// A running artifact-publisher process on a fresh database, for end-to-end
// tests through real sockets.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rapidjson/document.h>

#include "test/support/http_client.hpp"
#include "test/support/process.hpp"

namespace ap::test {

/// Starts `artifact-publisher serve` against database `url` (migrated
/// first) on a free port and waits until /readyz answers 200.
class service_process {
public:
  service_process(std::string db_url, std::map<std::string, std::string> env = {});
  ~service_process();

  std::uint16_t port() const { return port_; }
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
  std::string db_url_;
  std::map<std::string, std::string> env_;
  std::uint16_t port_;
  std::string log_;
  std::unique_ptr<process> proc_;
};

/// A kernel-mock process on a free port, its audit log kept in a state file
/// so that it survives a stop and start.
class kernel_process {
public:
  explicit kernel_process(std::vector<std::string> extra_args = {});
  ~kernel_process();
  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Kills the process (SIGKILL): an outage.
  void stop();
  /// Starts it again on the same port with the same log.
  void start();

private:
  std::uint16_t port_;
  std::string state_;
  std::string log_;
  std::vector<std::string> extra_;
  std::unique_ptr<process> proc_;
};

/// Runs `artifact-publisher migrate` on `url`; throws when it fails.
void migrate_database(const std::string& url);

/// Parses a response body; fails the current test when it is not JSON.
rapidjson::Document parse_json(const std::string& body);

} // namespace ap::test
