#include "persistence/connection.hpp"

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <system_error>
#include <thread>
#include <utility>

#include <libpq-fe.h>

namespace ap::persistence {

void result::deleter::operator()(pg_result* r) const {
  PQclear(r);
}

result::result(pg_result* res) : res_(res) {
}

int result::rows() const {
  return PQntuples(res_.get());
}

int result::columns() const {
  return PQnfields(res_.get());
}

bool result::is_null(int row, int column) const {
  return PQgetisnull(res_.get(), row, column) != 0;
}

std::string result::value(int row, int column) const {
  return {PQgetvalue(res_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(res_.get(), row, column))};
}

long result::affected() const {
  const char* n = PQcmdTuples(res_.get());
  return n && *n ? std::stol(n) : 0;
}

namespace {

// Appends "item" with `"` and `\` escaped, copying the runs between them
// whole.
void append_array_element(std::string& out, const std::string& item) {
  out += '"';
  std::size_t from = 0;
  for (auto at = item.find_first_of("\"\\"); at != std::string::npos;
       at = item.find_first_of("\"\\", at + 1)) {
    out.append(item, from, at - from);
    out += '\\';
    out += item[at];
    from = at + 1;
  }
  out.append(item, from, std::string::npos);
  out += '"';
}

// Room for the elements, their quotes and separators, and a few escapes.
std::size_t array_size_hint(const std::vector<std::string>& items) {
  std::size_t n = 2;
  for (const auto& item : items)
    n += item.size() + 3;
  return n + n / 64;
}

} // namespace

std::string to_pg_array(const std::vector<std::string>& items) {
  std::string out;
  out.reserve(array_size_hint(items));
  out += '{';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    append_array_element(out, items[i]);
  }
  out += '}';
  return out;
}

std::string to_pg_array(const std::vector<std::optional<std::string>>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    if (items[i])
      append_array_element(out, *items[i]);
    else
      out += "NULL";
  }
  out += '}';
  return out;
}

param param::binary(std::uint32_t type_oid, std::string bytes) {
  param out{std::move(bytes)};
  out.binary_type_ = type_oid;
  return out;
}

namespace {

constexpr std::uint32_t text_oid = 25;
constexpr std::uint32_t text_array_oid = 1009;
constexpr std::uint32_t bytea_oid = 17;
constexpr std::uint32_t bytea_array_oid = 1001;

void append_int32(std::string& out, std::uint32_t v) {
  char be[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                static_cast<char>(v)};
  out.append(be, 4);
}

// array_send's layout: dimensions, whether any element is NULL, the
// element type, then each dimension's length and lower bound (none for an
// empty array), then each element as its length (-1 for NULL) and bytes.
// text and bytea elements are sent as their bytes.
template <class Each>
param binary_array(std::uint32_t element_oid, std::uint32_t array_oid, std::size_t count,
                   bool any_null, std::size_t bytes, Each each) {
  std::string out;
  out.reserve(20 + 4 * count + bytes);
  append_int32(out, count == 0 ? 0 : 1);
  append_int32(out, any_null ? 1 : 0);
  append_int32(out, element_oid);
  if (count > 0) {
    append_int32(out, static_cast<std::uint32_t>(count));
    append_int32(out, 1);
  }
  for (std::size_t i = 0; i < count; ++i) {
    const std::string* item = each(i);
    if (item == nullptr) {
      append_int32(out, 0xffffffffu);
      continue;
    }
    append_int32(out, static_cast<std::uint32_t>(item->size()));
    out += *item;
  }
  return param::binary(array_oid, std::move(out));
}

template <class Each>
param binary_text_array(std::size_t count, bool any_null, std::size_t bytes, Each each) {
  return binary_array(text_oid, text_array_oid, count, any_null, bytes, each);
}

/// The count of bytes and whether any is null, of strings held by the caller.
std::pair<std::size_t, bool> sizes_of(const std::vector<const std::string*>& items) {
  std::size_t bytes = 0;
  bool any_null = false;
  for (const auto* item : items) {
    bytes += item ? item->size() : 0;
    any_null = any_null || !item;
  }
  return {bytes, any_null};
}

} // namespace

param text_array(const std::vector<std::string>& items) {
  std::size_t bytes = 0;
  for (const auto& item : items)
    bytes += item.size();
  return binary_text_array(items.size(), false, bytes, [&](std::size_t i) { return &items[i]; });
}

param text_array(const std::vector<std::optional<std::string>>& items) {
  std::size_t bytes = 0;
  bool any_null = false;
  for (const auto& item : items) {
    bytes += item ? item->size() : 0;
    any_null = any_null || !item;
  }
  return binary_text_array(items.size(), any_null, bytes, [&](std::size_t i) {
    return items[i] ? &*items[i] : nullptr;
  });
}

param text_array(const std::vector<const std::string*>& items) {
  auto [bytes, any_null] = sizes_of(items);
  return binary_text_array(items.size(), any_null, bytes, [&](std::size_t i) { return items[i]; });
}

param bytea_array(const std::vector<const std::string*>& items) {
  auto [bytes, any_null] = sizes_of(items);
  return binary_array(bytea_oid, bytea_array_oid, items.size(), any_null, bytes,
                      [&](std::size_t i) { return items[i]; });
}

std::vector<std::string> from_pg_array(const std::string& text) {
  std::vector<std::string> out;
  if (text.size() < 2 || text.front() != '{' || text.back() != '}')
    return out;
  std::size_t i = 1, end = text.size() - 1;
  while (i < end) {
    std::string item;
    bool quoted = text[i] == '"';
    if (quoted) {
      for (++i; i < end && text[i] != '"'; ++i) {
        if (text[i] == '\\' && i + 1 < end)
          ++i;
        item += text[i];
      }
      ++i;  // the closing quote
    } else {
      for (; i < end && text[i] != ','; ++i)
        item += text[i];
    }
    if (quoted || item != "NULL")
      out.push_back(std::move(item));
    ++i;  // the comma
  }
  return out;
}

connection::connection(std::string url, session_limits limits)
  : url_(std::move(url)), limits_(limits) {
}

connection::~connection() {
  if (conn_)
    PQfinish(conn_);
}

bool connection::healthy() const {
  return conn_ && PQstatus(conn_) == CONNECTION_OK;
}

void connection::ensure() {
  if (healthy())
    return;
  if (conn_) {
    PQfinish(conn_);
    conn_ = nullptr;
  }
  // The URL (or key=value string) goes in as "dbname" with expand_dbname,
  // so the settings below apply on top of whatever it names. Keepalives and
  // a user timeout make a vanished server an error within seconds, never a
  // hang of the worker.
  // The session limits go in as options, over anything the URL sets.
  //
  // jit=off: every statement of the service is short and index-driven,
  // and compiling one with LLVM costs more than running it. PostgreSQL
  // compiles a plan whose estimated cost passes jit_above_cost, and on
  // tables that grow thousands of rows a second the estimates (from
  // statistics taken when the table was smaller) pass it: the retention
  // purge of idempotency keys, 0.3 ms of work, was compiled at every sweep
  // (29 ms), and the first compilation in a session loads LLVM as well.
  std::string options = "-c client_min_messages=warning -c jit=off";
  auto limit = [&](const char* name, std::chrono::milliseconds ms) {
    if (ms.count() > 0)
      options += std::string{" -c "} + name + "=" + std::to_string(ms.count());
  };
  limit("statement_timeout", limits_.statement_timeout);
  limit("lock_timeout", limits_.lock_timeout);
  limit("idle_in_transaction_session_timeout", limits_.idle_in_transaction_timeout);
  const char* keys[] = {"dbname",         "connect_timeout",  "application_name",
                        "keepalives",     "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "options",          nullptr};
  const char* values[] = {url_.c_str(), "3", "artifact-publisher", "1", "5", "2", "3",
                          "10000", options.c_str(), nullptr};
  prepared_.clear();  // a new session has none
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    std::string why = conn_ ? PQerrorMessage(conn_) : "out of memory";
    while (!why.empty() && (why.back() == '\n' || why.back() == ' '))
      why.pop_back();
    if (conn_) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
    throw db_error("cannot connect to PostgreSQL: " + why, "", true);
  }
}

result connection::check(pg_result* res, const std::string& sql) {
  auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
    return result{res};
  std::string state;
  std::string message = conn_ ? PQerrorMessage(conn_) : "no connection";
  if (res) {
    if (const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE))
      state = s;
    // The server's own words, without the severity prefix and the
    // CONTEXT lines a function adds.
    if (const char* m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY); m && *m) {
      message = m;
      if (const char* d = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL); d && *d)
        message += std::string{" ("} + d + ")";
    } else if (const char* m = PQresultErrorMessage(res); m && *m) {
      message = m;
    }
    PQclear(res);
  }
  while (!message.empty() && (message.back() == '\n' || message.back() == ' '))
    message.pop_back();
  bool lost = !healthy() || state.rfind("08", 0) == 0 || state == "57P01";
  (void) sql;
  throw db_error(message, state, lost, last_call_past_deadline_);
}

bool connection::wait_for_result(std::chrono::steady_clock::time_point until) {
  while (PQisBusy(conn_)) {
    int timeout = -1;  // no deadline: as long as it takes
    if (until != std::chrono::steady_clock::time_point::max()) {
      // Rounded up, so a wait never ends just short of `until`.
      auto left = std::chrono::ceil<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return false;
      timeout = static_cast<int>(std::min<std::chrono::milliseconds::rep>(left.count(), 1 << 30));
    }
    pollfd fd{PQsocket(conn_), POLLIN, 0};
    int ready = ::poll(&fd, 1, timeout);
    // A signal, or readable: read what came. A broken socket makes
    // PQconsumeInput fail, and the call then ends with its error.
    if (ready != 0 && PQconsumeInput(conn_) == 0)
      return true;
  }
  return true;
}

pg_result* connection::collect(std::chrono::steady_clock::time_point until) {
  PGresult* kept = nullptr;
  for (;;) {
    if (!wait_for_result(until)) {
      PQclear(kept);
      return nullptr;
    }
    PGresult* res = PQgetResult(conn_);
    if (!res)
      return kept ? kept : PQmakeEmptyPGresult(conn_, PGRES_FATAL_ERROR);
    auto got = PQresultStatus(res);
    if (got == PGRES_COPY_IN || got == PGRES_COPY_OUT || got == PGRES_COPY_BOTH) {
      // No statement here copies; one that did would leave the session
      // waiting for data, so it is ended with the session.
      PQclear(res);
      PQclear(kept);
      PQfinish(conn_);
      conn_ = nullptr;
      throw db_error("COPY is not supported on this connection; the connection was dropped",
                     "0A000", true);
    }
    // As PQexec: the last result, unless one before it failed.
    auto status = PQresultStatus(kept);
    if (kept && status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      PQclear(res);
    } else {
      PQclear(kept);
      kept = res;
    }
  }
}

namespace {

/// Cancel requests still waiting for the server, on threads of their own.
std::atomic<int> cancels_outstanding{0};
constexpr int max_cancels_outstanding = 16;

} // namespace

bool connection::send_cancel(std::chrono::steady_clock::time_point until) {
  // PQcancel waits for the server to close the cancel connection, with no
  // limit of its own: a server that accepts and then never reads (stopped,
  // or its disk stalled under the postmaster) would hold the worker for
  // good. So it runs on a thread of its own, waited for until `until`; a
  // thread still waiting then ends when the server does answer, and
  // there are never more than a few.
  std::shared_ptr<PGcancel> cancel{PQgetCancel(conn_), PQfreeCancel};
  if (!cancel || cancels_outstanding.fetch_add(1) >= max_cancels_outstanding) {
    if (cancel)
      --cancels_outstanding;
    return false;
  }
  auto sent = std::make_shared<std::promise<bool>>();
  auto answer = sent->get_future();
  try {
    std::thread{[cancel, sent] {
      char why[256];
      sent->set_value(PQcancel(cancel.get(), why, sizeof why) == 1);
      --cancels_outstanding;
    }}.detach();
  } catch (const std::system_error&) {
    --cancels_outstanding;
    return false;
  }
  return answer.wait_until(until) == std::future_status::ready && answer.get();
}

std::chrono::steady_clock::time_point connection::call_ends() const {
  if (limits_.call_deadline.count() <= 0)
    return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() + limits_.call_deadline;
}

pg_result* connection::run(const char* sql, const params* values,
                           std::chrono::steady_clock::time_point until, sending what,
                           const char* name) {
  if (until != std::chrono::steady_clock::time_point::max()
      && std::chrono::steady_clock::now() >= until) {
    // A later round trip of a call whose deadline has passed (a prepared
    // statement after a slow preparation, a retry) is not sent at all:
    // not sent is an outcome known for certain. The call is counted once.
    if (!last_call_past_deadline_)
      ++calls_past_deadline_;
    last_call_past_deadline_ = true;
    throw db_error("the call's deadline of " + std::to_string(limits_.call_deadline.count())
                     + " ms passed before its next statement was sent; it was not sent",
                   "57014", false, true);
  }
  last_call_past_deadline_ = false;
  // Text values go as C strings; binary ones with their length, format
  // and type.
  std::vector<const char*> bytes;
  std::vector<int> lengths, formats;
  std::vector<unsigned int> types;
  if (values) {
    bytes.reserve(values->size());
    lengths.reserve(values->size());
    formats.reserve(values->size());
    types.reserve(values->size());
    for (const auto& v : *values) {
      bytes.push_back(v.bytes() ? v.bytes()->data() : nullptr);
      lengths.push_back(v.bytes() ? static_cast<int>(v.bytes()->size()) : 0);
      formats.push_back(v.binary_type() != 0 ? 1 : 0);
      types.push_back(v.binary_type());
    }
  }
  auto n = static_cast<int>(bytes.size());
  int sent = 0;
  switch (what) {
  case sending::preparation:
    sent = PQsendPrepare(conn_, name, sql, n, types.data());
    break;
  case sending::prepared:
    sent = PQsendQueryPrepared(conn_, name, n, bytes.data(), lengths.data(), formats.data(), 0);
    break;
  case sending::statement:
    sent = values ? PQsendQueryParams(conn_, sql, n, types.data(), bytes.data(), lengths.data(),
                                      formats.data(), 0)
                  : PQsendQuery(conn_, sql);
    break;
  }
  if (sent == 0)
    return nullptr;  // check() reports PQerrorMessage
  if (PGresult* res = collect(until))
    return res;

  // Past the deadline: the server is asked to end the statement (or its
  // wait for a synchronous standby), which then answers as usual: with an
  // error (57014, and a transaction left aborted, which the caller rolls
  // back) or, if it finished meanwhile, with its result, which is the
  // truth and is handed out. No answer within the grace period: the
  // connection is dropped, and the call's outcome is unknown.
  last_call_past_deadline_ = true;
  ++calls_past_deadline_;
  auto grace_ends = std::chrono::steady_clock::now() + limits_.cancel_grace;
  if (send_cancel(grace_ends)) {
    if (PGresult* res = collect(grace_ends))
      return res;
  }
  PQfinish(conn_);
  conn_ = nullptr;
  throw db_error("the database did not answer within "
                   + std::to_string(limits_.call_deadline.count())
                   + " ms, nor to the cancel; the connection was dropped",
                 "57014", true, true);
}

result connection::exec(const std::string& sql) {
  ensure();
  return check(run(sql.c_str(), nullptr, call_ends()), sql);
}

result connection::exec(const std::string& sql, const params& values) {
  ensure();
  return check(run(sql.c_str(), &values, call_ends()), sql);
}

result connection::exec_prepared(const std::string& name, const std::string& sql,
                                 const params& values) {
  // One deadline for the whole call: the preparation, the statement, and
  // the one retry all fit within it.
  auto until = call_ends();
  for (bool again = false;; again = true) {
    ensure();
    if (prepared_.count(name) == 0) {
      check(run(sql.c_str(), &values, until, sending::preparation, name.c_str()), sql);
      prepared_.insert(name);
    }
    try {
      return check(run(sql.c_str(), &values, until, sending::prepared, name.c_str()), sql);
    } catch (const db_error& e) {
      // 26000: the session no longer has it (a pooler's DISCARD ALL, say);
      // 0A000: its result type changed under it (a migration replaced what
      // it calls). The server says either before it runs anything, so
      // outside a transaction the statement is prepared again and sent once
      // more; inside one, the caller's rollback comes first.
      if (e.sqlstate() == "26000") {
        prepared_.erase(name);
      } else if (e.sqlstate() == "0A000" && healthy()
                 && PQtransactionStatus(conn_) == PQTRANS_IDLE) {
        try {
          auto* res = run(("DEALLOCATE " + name).c_str(), nullptr, until);
          if (res && PQresultStatus(res) == PGRES_COMMAND_OK)
            prepared_.erase(name);
          PQclear(res);
        } catch (const db_error&) {
          // Past its deadline: the session was dropped, and with it the
          // statement (ensure() starts the next one with none).
        }
      }
      if (again || prepared_.count(name) == 1 || !healthy()
          || PQtransactionStatus(conn_) != PQTRANS_IDLE)
        throw;
    }
  }
}

void connection::rollback_quietly() {
  if (!healthy())
    return;
  try {
    if (auto* res = run("ROLLBACK", nullptr, call_ends()))
      PQclear(res);
  } catch (const db_error&) {
    // Past its deadline: the connection is cancelled or dropped, and a
    // dropped session's transaction ends with it.
  }
}

} // namespace ap::persistence
