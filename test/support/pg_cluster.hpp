#pragma once

#include <cstdint>
#include <string>

namespace ap::test {

/// The shared test cluster started by run-tests.sh: `AP_TEST_PG_PORT`.
/// Throws when it is not set, so a misconfigured run fails loudly.
std::uint16_t shared_pg_port();

/// Creates (or re-creates, empty) database `name` on the shared cluster and
/// returns its URL.
std::string fresh_database(const std::string& name);

/// Every audit event written, pending or delivered, as a table expression
/// (event_id, event_type, order_id): a delivered event leaves the outbox in
/// the commit that keeps its receipt (migration 0016), so each event is in
/// exactly one of the two in any snapshot.
inline constexpr const char* audit_events_sql =
  "(SELECT event_id, event_type, order_id FROM audit_outbox"
  " UNION ALL SELECT event_id, event_type, order_id FROM audit_receipts)";

/// A private PostgreSQL cluster of one test, for tests that stop and start
/// the server (scripts/pg.sh underneath).
class pg_cluster {
public:
  /// Initialises and starts a cluster in a new temporary directory.
  pg_cluster();
  ~pg_cluster();
  pg_cluster(const pg_cluster&) = delete;
  pg_cluster& operator=(const pg_cluster&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const;
  void stop();
  void start();

private:
  std::string dir_;
  std::uint16_t port_;
};

} // namespace ap::test
