#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/actors.hpp"
#include "core/metrics.hpp"

namespace ap::persistence {
class connection;
}

namespace ap {

/// How the database facade is set up.
struct database_config {
  std::string url;
  /// Detached workers, one PostgreSQL connection each.
  std::size_t workers = 4;
  /// The approver registry (id → raw Ed25519 key) and threshold of the
  /// multisig rules.
  std::map<std::string, std::string> approvers;
  int multisig_threshold = 2;
  /// Where the actors' own metrics go (none when null).
  metrics::registry* registry = nullptr;
};

/// State of the database facade.
struct database_state {
  static constexpr const char* name = "database";
  std::vector<database_worker_actor> workers;
  std::size_t next = 0;
};

/// The database facade: spawns `workers` detached workers linked to itself
/// (a dying worker takes the facade down and the supervisor restarts both)
/// and delegates each request to the next worker in turn.
database_actor::behavior_type database(database_actor::stateful_pointer<database_state> self,
                                       database_config cfg);

/// State of one database worker.
struct database_worker_state {
  static constexpr const char* name = "database-worker";
  std::unique_ptr<persistence::connection> conn;
  /// `ap_db_pool_busy`: workers inside a database call right now.
  metrics::gauge* busy = nullptr;
};

/// One database worker; spawn it detached, since every handler blocks on libpq.
database_worker_actor::behavior_type
database_worker(database_worker_actor::stateful_pointer<database_worker_state> self,
                database_config cfg);

} // namespace ap
