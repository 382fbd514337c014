#pragma once

#include <string>
#include <vector>

namespace ap::persistence {

class connection;

/// One SQL file as embedded at build time.
struct migration_source {
  const char* file_name;
  const char* sql;
};

/// Every file of persistence/migrations/, in file-name order (generated).
const std::vector<migration_source>& embedded_migrations();

/// A versioned migration: `NNNN_name.sql` has version NNNN.
struct migration {
  int version;
  /// The file name without `.sql`, e.g. `0001_catalog`.
  std::string name;
  std::string sql;
  /// Hex SHA-256 of the SQL, recorded when applied so an edited file is caught.
  std::string checksum;
};

/// The embedded migrations, validated: versions start at 1 and have no gaps.
/// Throws std::logic_error on a malformed set (a build defect).
const std::vector<migration>& all_migrations();

/// The highest embedded version: the schema this binary needs.
int latest_version();

/// The highest applied version, 0 for an empty database.
int current_version(connection& db);

/// What `migrate` did.
struct migrate_report {
  int from = 0;
  int to = 0;
  std::vector<std::string> applied;
};

/// Applies every missing migration, each in its own transaction, under an
/// advisory lock so that concurrent instances never apply one twice. A
/// second run changes nothing. Throws db_error, or std::runtime_error when an
/// applied migration differs from the embedded one.
migrate_report migrate(connection& db);

} // namespace ap::persistence
