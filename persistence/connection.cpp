#include "persistence/connection.hpp"

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
// whole: the arrays of a store batch carry every order's result.
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

connection::connection(std::string url) : url_(std::move(url)) {
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
  const char* keys[] = {"dbname",         "connect_timeout",  "application_name",
                        "keepalives",     "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "options",          nullptr};
  const char* values[] = {url_.c_str(), "3", "artifact-publisher", "1", "5", "2", "3",
                          "10000", "-c client_min_messages=warning", nullptr};
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
  throw db_error(message, state, lost);
}

result connection::exec(const std::string& sql) {
  ensure();
  return check(PQexec(conn_, sql.c_str()), sql);
}

result connection::exec(const std::string& sql, const params& values) {
  ensure();
  std::vector<const char*> ptrs;
  ptrs.reserve(values.size());
  for (const auto& v : values)
    ptrs.push_back(v ? v->c_str() : nullptr);
  return check(PQexecParams(conn_, sql.c_str(), static_cast<int>(ptrs.size()), nullptr,
                            ptrs.data(), nullptr, nullptr, 0),
               sql);
}

void connection::rollback_quietly() {
  if (!healthy())
    return;
  if (auto* res = PQexec(conn_, "ROLLBACK"))
    PQclear(res);
}

} // namespace ap::persistence
