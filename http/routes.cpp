#include "http/routes.hpp"

#include <caf/all.hpp>

#include "core/json.hpp"
#include "core/log.hpp"
#include "http/ask.hpp"
#include "persistence/migrations.hpp"

namespace ap::http {

namespace {

/// How long a readiness probe may wait for the database.
constexpr auto readiness_timeout = std::chrono::milliseconds{4000};

std::string database_state_name(const caf::expected<persistence::db_status>& st) {
  if (!st || !st->reachable)
    return "unreachable";
  return st->ready() ? "ok" : "migrations_pending";
}

} // namespace

response response_for(const caf::error& err) {
  if (err.category() == error_category()) {
    auto message = error_message(err);
    switch (static_cast<error_code>(err.code())) {
      case error_code::invalid_input:
        return error_response(400, "invalid_input", message);
      case error_code::not_found:
        return error_response(404, "not_found", message);
      case error_code::conflict:
        return error_response(409, "conflict", message);
      case error_code::database_unavailable:
        return error_response(503, "database_unavailable", "the database is unavailable");
      case error_code::upstream_unavailable:
        return error_response(502, "upstream_unavailable", message);
      case error_code::internal:
        break;
    }
  } else if (err == caf::sec::request_timeout) {
    return error_response(504, "timeout", "the request timed out inside the service");
  } else if (err == caf::sec::request_receiver_down) {
    return error_response(503, "unavailable", "a component is restarting; retry shortly");
  }
  log::error("unexpected error from an actor", {{"error", caf::to_string(err)}});
  return error_response(500, "internal", "internal error");
}

void add_service_routes(router& r, route_context ctx) {
  r.set_tokens(ctx.config->api_token, ctx.config->admin_token);

  r.add("GET", "/health", access::open, body_kind::none, [ctx](request&, reply_fn reply) {
    ask<persistence::db_status>(
      *ctx.system, ctx.directory->database(), readiness_timeout,
      [ctx, reply](caf::expected<persistence::db_status> st) {
        auto database = database_state_name(st);
        std::string body = "{\"service\":\"artifact-publisher\",\"status\":";
        json::append_quoted(body, database == "ok" ? "ok" : "degraded");
        // The Kernel client is not wired yet: its health is unknown, not false.
        body += ",\"kernelHealthy\":null,\"database\":";
        json::append_quoted(body, database);
        body += ",\"port\":" + std::to_string(ctx.config->port) + ",\"version\":";
        json::append_quoted(body, AP_VERSION);
        body += '}';
        reply(json_response(200, std::move(body)));
      },
      atoms::ping_atom::value);
  });

  r.add("GET", "/readyz", access::open, body_kind::none, [ctx](request&, reply_fn reply) {
    ask<persistence::db_status>(
      *ctx.system, ctx.directory->database(), readiness_timeout,
      [reply](caf::expected<persistence::db_status> st) {
        if (!st) {
          reply(error_response(503, "not_ready", "the database did not answer in time"));
        } else if (!st->ready()) {
          reply(error_response(503, "not_ready",
                               st->reachable ? "database migrations are pending"
                                             : "the database is unreachable"));
        } else {
          reply(json_response(200, "{\"ready\":true,\"database\":\"ok\",\"schemaVersion\":"
                                     + std::to_string(st->schema_version) + "}"));
        }
      },
      atoms::ping_atom::value);
  });

  r.add("GET", "/metrics", access::open, body_kind::none, [ctx](request&, reply_fn reply) {
    response res;
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = ctx.registry->render();
    reply(std::move(res));
  });
}

} // namespace ap::http
