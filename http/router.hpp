#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/message.hpp"

namespace ap::http {

/// Who may call a route (SPEC §4).
enum class access {
  /// No token needed (`/health`, `/readyz`, `/metrics`, approvals).
  open,
  /// `Bearer <API_TOKEN>` when one is configured (or the admin token).
  api,
  /// `Bearer <ADMIN_TOKEN>`; 403 when no admin token is configured.
  admin,
};

/// What a route expects as its body.
enum class body_kind { none, json };

/// Handles one matched request; must call `reply` exactly once. `req` lives
/// only for the call: copy what an asynchronous reply needs.
using handler = std::function<void(request&, reply_fn reply)>;

/// The routing table: method and path pattern (`/api/checkout/{id}`) to
/// handler. Matching, 404/405, auth, the JSON content type (415) and strict
/// body parsing (400) happen here, so every handler starts from a valid
/// document.
class router {
public:
  /// Tokens compared against `Authorization: Bearer …`; empty = unset.
  void set_tokens(std::string api_token, std::string admin_token);

  /// Adds a route; later routes never shadow earlier ones.
  void add(std::string method, std::string pattern, access who, body_kind body, handler h);

  /// Routes `req` and calls its handler, or replies with the error: 404 for
  /// a path no route has, 405 for a method its routes do not take or one
  /// the service does not serve at all. Returns the matched pattern (stable
  /// for the router's lifetime) for metrics, or "unmatched" for every
  /// request that reached no handler.
  std::string_view dispatch(request& req, const reply_fn& reply) const;

  /// One row of the table, for tests that must cover every route.
  struct entry {
    std::string method;
    std::string pattern;
    access who;
    body_kind body;
  };
  std::vector<entry> table() const;

private:
  struct route {
    std::string method;
    std::string pattern;
    std::vector<std::string> segments;
    access who;
    body_kind body;
    handler fn;
  };
  static bool match(const route& r, const std::vector<std::string_view>& parts,
                    std::map<std::string, std::string>& params);
  bool authorised(const request& req, access who, response& refusal) const;

  std::vector<route> routes_;
  std::string api_token_;
  std::string admin_token_;
};

/// Whether `method` is one of the methods the service serves anywhere: GET,
/// HEAD, POST, PUT, DELETE, OPTIONS, PATCH. The parser accepts any token as a
/// method, and the method is a metric label: a fixed set keeps a client from
/// adding a series with every token it makes up.
bool is_served_method(std::string_view method);

/// The method as a metric label: the method itself when it is served, else
/// "OTHER".
std::string_view method_label(std::string_view method);

/// Compares two strings in time that depends only on their lengths, never on
/// where they first differ.
bool constant_time_equal(std::string_view a, std::string_view b);

} // namespace ap::http
