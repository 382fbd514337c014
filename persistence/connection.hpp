#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

struct pg_conn;
struct pg_result;

namespace ap::persistence {

/// A failed statement or a lost connection.
class db_error : public std::runtime_error {
public:
  db_error(const std::string& what, std::string sqlstate, bool connection_lost,
           bool past_deadline = false)
    : std::runtime_error(what), sqlstate_(std::move(sqlstate)), lost_(connection_lost),
      past_deadline_(past_deadline) {
  }
  /// Five-character SQLSTATE, or empty when the server sent none.
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  /// True when the server is unreachable or the session died.
  bool connection_lost() const noexcept { return lost_; }
  /// True when the call outlived its deadline and was cancelled, or its
  /// connection dropped. A COMMIT (or a statement outside a transaction)
  /// whose connection was dropped may still have committed: its outcome is
  /// unknown, and it must not be sent again as if it had not.
  bool past_deadline() const noexcept { return past_deadline_; }

private:
  std::string sqlstate_;
  bool lost_;
  bool past_deadline_;
};

/// How long one session's calls may take. Zero means no limit (the
/// server's default), as for migrations and the command-line tools; the
/// service's workers set all of them (ARTIFACT_PUBLISHER_DB_*_MS).
struct session_limits {
  /// Server side, per statement (`statement_timeout`).
  std::chrono::milliseconds statement_timeout{0};
  /// Server side, per lock wait (`lock_timeout`).
  std::chrono::milliseconds lock_timeout{0};
  /// Server side: a session idle inside a transaction this long is ended
  /// (`idle_in_transaction_session_timeout`).
  std::chrono::milliseconds idle_in_transaction_timeout{0};
  /// Client side, per call: a call with no answer this long after it was
  /// sent is cancelled (PQcancel). This also bounds what the server-side
  /// limits cannot: a COMMIT waiting for a synchronous standby, a server
  /// that stopped reading.
  std::chrono::milliseconds call_deadline{0};
  /// How long a cancelled call may take to end; after it the connection is
  /// dropped and made again on the next call.
  std::chrono::milliseconds cancel_grace{1000};
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

/// One parameter of a statement: text (nullopt is SQL NULL), or a value
/// in PostgreSQL's binary format with the OID of its type.
class param {
public:
  param(std::nullopt_t) {}
  param(std::string text) : bytes_(std::move(text)) {}
  param(const char* text) : bytes_(std::string(text)) {}
  param(std::optional<std::string> text) : bytes_(std::move(text)) {}
  /// `bytes` as PostgreSQL's `send` function of type `type_oid` writes it.
  static param binary(std::uint32_t type_oid, std::string bytes);
  /// The text or bytes; nullopt for NULL.
  const std::optional<std::string>& bytes() const noexcept { return bytes_; }
  /// The type's OID for a binary value; 0 for text, whose type the
  /// statement decides.
  std::uint32_t binary_type() const noexcept { return binary_type_; }
private:
  std::optional<std::string> bytes_;
  std::uint32_t binary_type_ = 0;
};

/// Parameters of a statement, `$1…`.
using params = std::vector<param>;

/// Parameters made by moving each value in. A braced list `{a, b}` would
/// copy every value (an initializer_list's elements are const), and the
/// arrays of a batch carry kilobytes per order.
template <class... Values>
params params_of(Values&&... values) {
  params out;
  out.reserve(sizeof...(values));
  (out.emplace_back(std::forward<Values>(values)), ...);
  return out;
}

/// A PostgreSQL array literal (`{"a","b"}`) of text values, for `$n::text[]`
/// (or any element type PostgreSQL parses from text, such as `$n::bigint[]`).
std::string to_pg_array(const std::vector<std::string>& items);
/// The same with SQL NULL for nullopt elements.
std::string to_pg_array(const std::vector<std::optional<std::string>>& items);
/// A one-dimensional `text[]` in binary format, for a `$n::text[]`. The
/// server copies each element as it is, where it would parse an array
/// literal character by character (and the client would escape it): the
/// arrays of a store batch carry every order's result and event payloads.
param text_array(const std::vector<std::string>& items);
/// The same with SQL NULL for nullopt elements.
param text_array(const std::vector<std::optional<std::string>>& items);
/// The same of strings held by the caller, which are not copied on the
/// way; SQL NULL for null pointers.
param text_array(const std::vector<const std::string*>& items);
/// A one-dimensional `bytea[]` in binary format, for a `$n::bytea[]`, of
/// strings of bytes held by the caller; SQL NULL for null pointers.
param bytea_array(const std::vector<const std::string*>& items);
/// The elements of a one-dimensional text array as PostgreSQL prints it
/// (`{a,"b c"}`); NULL elements are left out.
std::vector<std::string> from_pg_array(const std::string& text);

/// One libpq connection. Blocking: use only on a database worker thread,
/// never on a CAF scheduler thread or a Beast io thread. A lost connection
/// is re-established on the next call, so a PostgreSQL restart heals without
/// restarting the service.
class connection {
public:
  explicit connection(std::string url, session_limits limits = {});
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Connects, or reconnects after a loss; throws db_error when the server
  /// cannot be reached.
  void ensure();

  /// Runs one statement (no parameters; several statements allowed).
  /// Throws db_error, with `past_deadline()` when the call outlived
  /// `session_limits::call_deadline`.
  result exec(const std::string& sql);

  /// The limits its sessions are made with.
  const session_limits& limits() const noexcept { return limits_; }

  /// Calls that outlived `session_limits::call_deadline` so far, cancelled
  /// or dropped (`ap_db_calls_past_deadline_total`).
  std::uint64_t calls_past_deadline() const noexcept { return calls_past_deadline_; }

  /// Runs one statement with parameters `$1…`.
  result exec(const std::string& sql, const params& values);

  /// Runs one statement with parameters `$1…` as the session's prepared
  /// statement `name`, prepared (with the types of `values`) on its first
  /// use in each session: the server then parses and analyses it once per
  /// session instead of on every call. For statements run again and again
  /// with one text; one name, one text. Not inside a transaction: a
  /// prepared statement the server no longer has, or whose result type
  /// changed, is dropped and prepared again on the next call.
  result exec_prepared(const std::string& name, const std::string& sql, const params& values);

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
  /// What `run` sends: a statement as it is (`values` or none), its
  /// preparation as `name`, or the statement prepared as `name`.
  enum class sending { statement, preparation, prepared };
  /// When a call started now must end: now + `call_deadline`, or never
  /// (time_point::max()) when there is none.
  std::chrono::steady_clock::time_point call_ends() const;
  /// Sends a statement (with `values`, in the extended protocol) and
  /// waits for its result until `until`; past it, cancels the statement,
  /// or drops the connection when the cancel gets no answer either.
  pg_result* run(const char* sql, const params* values,
                 std::chrono::steady_clock::time_point until, sending what = sending::statement,
                 const char* name = nullptr);
  /// The call's result (the last of several statements, or the first
  /// error), or null when `until` came first.
  pg_result* collect(std::chrono::steady_clock::time_point until);
  /// Asks the server to cancel the running call; true once it took the
  /// request, false if it did not by `until`.
  bool send_cancel(std::chrono::steady_clock::time_point until);
  /// Waits until the connection has a whole result to read, or `until`.
  bool wait_for_result(std::chrono::steady_clock::time_point until);

  std::string url_;
  session_limits limits_;
  pg_conn* conn_ = nullptr;
  bool last_call_past_deadline_ = false;
  /// The names prepared in the current session (none after a reconnect).
  std::unordered_set<std::string> prepared_;
  std::uint64_t calls_past_deadline_ = 0;
};

} // namespace ap::persistence
