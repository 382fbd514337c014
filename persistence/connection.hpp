#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <vector>

struct pg_conn;
struct pg_result;

namespace ap::persistence {

/// A failed statement or a lost connection.
class db_error : public std::runtime_error {
public:
  db_error(const std::string& what, std::string sqlstate, bool connection_lost)
    : std::runtime_error(what), sqlstate_(std::move(sqlstate)), lost_(connection_lost) {
  }
  /// Five-character SQLSTATE, or empty when the server sent none.
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// True when the server is unreachable or the session died.
  bool connection_lost() const noexcept { return lost_; }

private:
  std::string sqlstate_;
  bool lost_;
};

/// The rows of one successful statement.
class result {
public:
  explicit result(pg_result* res);
  result(result&&) noexcept = default;
  result& operator=(result&&) noexcept = default;
  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  /// The text value of a cell ("" for NULL).
  std::string value(int row, int column) const;
  /// Rows touched by INSERT/UPDATE/DELETE.
  long affected() const;

private:
  struct deleter {
    void operator()(pg_result* r) const;
  };
  std::unique_ptr<pg_result, deleter> res_;
};

/// Parameters of a statement; nullopt is SQL NULL.
using params = std::vector<std::optional<std::string>>;

/// A PostgreSQL array literal (`{"a","b"}`) of text values, for `$n::text[]`
/// (or any element type PostgreSQL parses from text, such as `$n::bigint[]`).
std::string to_pg_array(const std::vector<std::string>& items);
/// The same with SQL NULL for nullopt elements.
std::string to_pg_array(const std::vector<std::optional<std::string>>& items);
/// The elements of a one-dimensional text array as PostgreSQL prints it
/// (`{a,"b c"}`); NULL elements are left out.
std::vector<std::string> from_pg_array(const std::string& text);

/// One libpq connection. Blocking: use only on a database worker thread,
/// never on a CAF scheduler thread or a Beast io thread. A lost connection
/// is re-established on the next call, so a PostgreSQL restart heals without
/// restarting the service.
class connection {
public:
  explicit connection(std::string url);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Connects, or reconnects after a loss; throws db_error when the server
  /// cannot be reached.
  void ensure();

  /// Runs one statement (no parameters; several statements allowed).
  result exec(const std::string& sql);

  /// Runs one statement with text parameters `$1…`.
  result exec(const std::string& sql, const params& values);

  /// Runs `work` inside BEGIN … COMMIT, rolling back if it throws.
  template <class F>
  auto transaction(F&& work) -> decltype(work()) {
    exec("BEGIN");
    try {
      if constexpr (std::is_void_v<decltype(work())>) {
        work();
        exec("COMMIT");
      } else {
        auto out = work();
        exec("COMMIT");
        return out;
      }
    } catch (...) {
      rollback_quietly();
      throw;
    }
  }

  /// Whether the last call left a usable session.
  bool healthy() const;

private:
  result check(pg_result* res, const std::string& sql);
  void rollback_quietly();

  std::string url_;
  pg_conn* conn_ = nullptr;
};

} // namespace ap::persistence
