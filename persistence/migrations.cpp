#include "persistence/migrations.hpp"

#include <map>
#include <stdexcept>

#include <cryptopp/filters.h>
#include <cryptopp/hex.h>
#include <cryptopp/sha.h>

#include "persistence/connection.hpp"

namespace ap::persistence {

namespace {

// pg_advisory_lock key: "artifact-publisher migrate" folded into 63 bits.
constexpr const char* lock_key = "7262706173617031";

std::string sha256_hex(const std::string& text) {
  std::string out;
  CryptoPP::SHA256 hash;
  CryptoPP::StringSource source(
    text, true,
    new CryptoPP::HashFilter(hash, new CryptoPP::HexEncoder(new CryptoPP::StringSink(out), false)));
  return out;
}

std::vector<migration> build() {
  std::vector<migration> out;
  for (const auto& src : embedded_migrations()) {
    std::string file = src.file_name;
    auto underscore = file.find('_');
    if (underscore == std::string::npos || underscore == 0)
      throw std::logic_error("migration file name must be NNNN_name.sql: " + file);
    int version = std::stoi(file.substr(0, underscore));
    if (version != static_cast<int>(out.size()) + 1)
      throw std::logic_error("migration versions must run 1, 2, 3… without gaps: " + file);
    auto name = file;
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".sql") == 0)
      name.resize(name.size() - 4);
    out.push_back({version, name, src.sql, sha256_hex(src.sql)});
  }
  return out;
}

bool has_migrations_table(connection& db) {
  auto res = db.exec("SELECT to_regclass('schema_migrations') IS NOT NULL");
  return res.value(0, 0) == "t";
}

} // namespace

const std::vector<migration>& all_migrations() {
  static const std::vector<migration> all = build();
  return all;
}

int latest_version() {
  return static_cast<int>(all_migrations().size());
}

int current_version(connection& db) {
  if (!has_migrations_table(db))
    return 0;
  auto res = db.exec("SELECT coalesce(max(version), 0) FROM schema_migrations");
  return std::stoi(res.value(0, 0));
}

migrate_report migrate(connection& db) {
  migrate_report report;
  db.exec(std::string{"SELECT pg_advisory_lock("} + lock_key + ")");
  try {
    db.exec("CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY,"
            " name text NOT NULL,"
            " checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())");
    std::map<int, std::string> applied;
    auto rows = db.exec("SELECT version, checksum FROM schema_migrations ORDER BY version");
    for (int i = 0; i < rows.rows(); ++i)
      applied[std::stoi(rows.value(i, 0))] = rows.value(i, 1);
    report.from = applied.empty() ? 0 : applied.rbegin()->first;
    for (const auto& m : all_migrations()) {
      if (auto it = applied.find(m.version); it != applied.end()) {
        if (it->second != m.checksum)
          throw std::runtime_error("migration " + std::to_string(m.version) + " (" + m.name
                                   + ") differs from the one applied to this database");
        continue;
      }
      db.transaction([&] {
        db.exec(m.sql);
        db.exec("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                {std::to_string(m.version), m.name, m.checksum});
      });
      report.applied.push_back(m.name);
    }
    report.to = std::max(report.from, latest_version());
    if (!applied.empty() && applied.rbegin()->first > latest_version())
      report.to = applied.rbegin()->first;
  } catch (...) {
    try {
      db.exec(std::string{"SELECT pg_advisory_unlock("} + lock_key + ")");
    } catch (...) {
      // The lock dies with the session anyway.
    }
    throw;
  }
  db.exec(std::string{"SELECT pg_advisory_unlock("} + lock_key + ")");
  return report;
}

} // namespace ap::persistence
