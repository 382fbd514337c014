#include "http/routes.hpp"

#include <mutex>
#include <optional>

#include "actors/errors.hpp"
#include "actors/gateway.hpp"

#include "core/json.hpp"
#include "core/log.hpp"
#include "domain/checkout.hpp"
#include "domain/multisig.hpp"
#include "domain/order.hpp"
#include "domain/sandbox.hpp"
#include "http/openapi.hpp"
#include "persistence/migrations.hpp"

namespace ap::http {

namespace {

/// How long the open probes wait for the database (whose probe call gives
/// up after `probe_limits().call_deadline`) and for the Kernel: both
/// answer within a second, whatever the upstreams do.
constexpr auto probe_timeout = std::chrono::milliseconds{900};
/// How long reading a stored order may take.
constexpr auto order_read_timeout = std::chrono::milliseconds{3000};
/// The proof actor answers from memory.
constexpr auto proof_timeout = std::chrono::milliseconds{3000};

bool is_order_id(const std::string& id) {
  if (id.size() != 30 || id.compare(0, 6, "order_") != 0)
    return false;
  for (std::size_t i = 6; i < id.size(); ++i)
    if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
      return false;
  return true;
}

// Idempotency-Key: 1-255 visible ASCII characters.
bool is_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 255)
    return false;
  for (char c : key)
    if (c < 0x21 || c > 0x7e)
      return false;
  return true;
}

void add_order_read(router& r, const route_context& ctx, const std::string& suffix,
                    persistence::order_part part) {
  r.add("GET", "/api/checkout/{id}" + suffix, access::api, body_kind::none,
        [ctx, part](request& req, reply_fn reply) {
          auto id = req.params.at("id");
          if (!is_order_id(id)) {
            reply(error_response(404, "not_found", "no order " + id));
            return;
          }
          ctx.actors->order_part(id, part, order_read_timeout,
                                 [reply](caf::expected<std::string> doc) {
                                   reply(doc ? json_response(200, std::move(*doc))
                                             : response_for(doc.error()));
                                 });
        });
}

std::string database_state_name(const caf::expected<persistence::db_status>& st) {
  if (!st || !st->reachable)
    return "unreachable";
  return st->ready() ? "ok" : "migrations_pending";
}

// What keeps the database from serving, for the open probes: no detail of
// the server's own (its address, say) goes to an unauthenticated caller.
std::string database_problem(const caf::expected<persistence::db_status>& st) {
  if (!st)
    return "the database did not answer in time";
  if (st->reachable)
    return "database migrations are pending";
  // The probe's own findings (a commit past its deadline, a read-only
  // server) are the service's words, not the server's.
  if (st->detail.rfind("the database ", 0) == 0)
    return st->detail;
  return "the database is unreachable";
}

} // namespace

void add_service_routes(router& r, route_context ctx) {
  r.set_tokens(ctx.config->api_token, ctx.config->admin_token);
  add_operations_routes(r, ctx);
  add_order_routes(r, ctx);
  add_proof_routes(r, ctx);
  add_multisig_routes(r, ctx);
}

void add_operations_routes(router& r, const route_context& ctx) {
  r.add("GET", "/health", access::open, body_kind::none, [ctx](request&, reply_fn reply) {
    // The database and the Kernel are asked at once; the answer goes out
    // when both are in, so within `probe_timeout`.
    struct both {
      std::mutex mutex;
      std::optional<caf::expected<persistence::db_status>> database;
      std::optional<caf::expected<bool>> kernel;
    };
    auto seen = std::make_shared<both>();
    auto answer = [ctx, reply](const caf::expected<persistence::db_status>& st,
                               const caf::expected<bool>& kernel_up) {
      auto database = database_state_name(st);
      bool kernel_healthy = kernel_up && *kernel_up;
      auto reasons = ctx.degraded_reasons;
      if (database != "ok")
        reasons.push_back(database_problem(st));
      if (!kernel_healthy)
        reasons.push_back(!kernel_up ? "the Kernel did not answer its health check in time"
                                     : "the Kernel is unreachable or reports itself unhealthy");
      std::string body = "{\"service\":\"artifact-publisher\",\"status\":";
      json::append_quoted(body, reasons.empty() ? "ok" : "degraded");
      if (!reasons.empty()) {
        body += ",\"reasons\":[";
        for (std::size_t i = 0; i < reasons.size(); ++i) {
          if (i > 0)
            body += ',';
          json::append_quoted(body, reasons[i]);
        }
        body += ']';
      }
      body += ",\"kernelHealthy\":";
      body += kernel_healthy ? "true" : "false";
      body += ",\"database\":";
      json::append_quoted(body, database);
      body += ",\"port\":" + std::to_string(ctx.config->port) + ",\"version\":";
      json::append_quoted(body, AP_VERSION);
      body += '}';
      reply(json_response(200, std::move(body)));
    };
    ctx.actors->probed_database_status(
      probe_timeout, [seen, answer](const caf::expected<persistence::db_status>& st) {
        std::unique_lock<std::mutex> lock{seen->mutex};
        seen->database = st;
        if (seen->kernel) {
          lock.unlock();
          answer(*seen->database, *seen->kernel);
        }
      });
    ctx.actors->probed_kernel_health(
      probe_timeout, [seen, answer](const caf::expected<bool>& kernel_up) {
        std::unique_lock<std::mutex> lock{seen->mutex};
        seen->kernel = kernel_up;
        if (seen->database) {
          lock.unlock();
          answer(*seen->database, *seen->kernel);
        }
      });
  });

  r.add("GET", "/readyz", access::open, body_kind::none, [ctx](request&, reply_fn reply) {
    ctx.actors->probed_database_status(
      probe_timeout, [reply](const caf::expected<persistence::db_status>& st) {
        if (!st || !st->ready()) {
          reply(error_response(503, "not_ready", database_problem(st)));
        } else {
          reply(json_response(200, "{\"ready\":true,\"database\":\"ok\",\"schemaVersion\":"
                                     + std::to_string(st->schema_version) + "}"));
        }
      });
  });

  r.add("GET", "/metrics", access::open, body_kind::none, [ctx](request&, reply_fn reply) {
    response res;
    res.content_type = "text/plain; version=0.0.4; charset=utf-8";
    res.body = ctx.registry->render();
    reply(std::move(res));
  });

  // The contract itself, open like the probes: clients and their generators
  // read it before they hold a token.
  r.add("GET", "/openapi.yaml", access::open, body_kind::none, [](request&, reply_fn reply) {
    response res;
    res.content_type = "application/yaml";
    res.body = std::string{openapi_document()};
    reply(std::move(res));
  });
}

void add_order_routes(router& r, const route_context& ctx) {
  r.add("POST", "/api/checkout", access::api, body_kind::json, [ctx](request& req, reply_fn reply) {
    auto parsed = domain::parse_checkout(*req.json);
    if (auto* err = std::get_if<domain::input_error>(&parsed)) {
      reply(error_response(400, "invalid_input", err->message, err->field));
      return;
    }
    std::string key{req.header("idempotency-key")};
    if (!key.empty() && !is_idempotency_key(key)) {
      reply(error_response(400, "invalid_input",
                           "Idempotency-Key must be 1-255 visible ASCII characters",
                           "Idempotency-Key"));
      return;
    }
    // The ids are drawn here, so that even an answer lost with a crashed
    // checkout actor names the order the client may have paid for.
    auto ids = domain::new_order_ids();
    ctx.actors->checkout(
      std::get<domain::checkout_request>(std::move(parsed)), key, std::move(ids),
      [reply](caf::expected<checkout_outcome> outcome) {
        if (!outcome)
          return reply(response_for(outcome.error()));
        reply(json_response(checkout_status(outcome->kind), std::move(outcome->body)));
      });
  });
  add_order_read(r, ctx, "", persistence::order_part::result);
  add_order_read(r, ctx, "/license", persistence::order_part::license);
  add_order_read(r, ctx, "/delivery", persistence::order_part::delivery);
  add_order_read(r, ctx, "/proof", persistence::order_part::proof);

  // From the gateway's cache: a flood of catalog reads costs the database
  // one read per CATALOG_REFRESH_MS, and the catalog still answers while
  // the database is away.
  r.add("GET", "/api/catalog", access::api, body_kind::none, [ctx](request&, reply_fn reply) {
    ctx.actors->cached_catalog(
      order_read_timeout, [reply](caf::expected<std::vector<domain::catalog_item>> items) {
        reply(items ? json_response(200, domain::catalog_json(std::move(*items)))
                    : response_for(items.error()));
      });
  });

  r.add("POST", "/api/sandbox/run", access::api, body_kind::json,
        [ctx](request& req, reply_fn reply) {
          if (auto err = domain::validate_sandbox(*req.json)) {
            reply(error_response(400, "invalid_input", err->message, err->field));
            return;
          }
          // The catalog comes from PostgreSQL; the run itself reads and
          // writes nothing.
          auto body = req.json;
          ctx.actors->catalog(
            order_read_timeout,
            [ctx, body, reply](caf::expected<std::vector<domain::catalog_item>> items) {
              if (!items) {
                reply(response_for(items.error()));
                return;
              }
              domain::catalog cat;
              for (auto& item : *items)
                cat.emplace(item.sku, std::move(item));
              reply(json_response(200, domain::run_sandbox(*body, ctx.config->sandbox_seed, cat)));
            });
        });
}

void add_proof_routes(router& r, const route_context& ctx) {
  r.add("POST", "/api/proof/verify", access::api, body_kind::json,
        [ctx](request& req, reply_fn reply) {
          const auto& body = *req.json;
          if (!body.IsObject()) {
            reply(error_response(400, "invalid_input", "the body must be {proof, payload}"));
            return;
          }
          for (const char* name : {"proof", "payload"}) {
            auto it = body.FindMember(name);
            if (it == body.MemberEnd() || !it->value.IsObject()) {
              reply(error_response(400, "invalid_input",
                                   std::string{name} + " is required and must be an object",
                                   name));
              return;
            }
          }
          // The proof actor owns the keys; the parts travel as JSON text.
          ctx.actors->verify_proof(
            json::to_string(body["proof"]), json::to_string(body["payload"]), proof_timeout,
            [reply](caf::expected<domain::verification> result) {
              if (!result)
                return reply(response_for(result.error()));
              std::string out = result->valid ? "{\"valid\":true}" : "{\"reason\":";
              if (!result->valid) {
                json::append_quoted(out, result->reason);
                out += ",\"valid\":false}";
              }
              reply(json_response(200, std::move(out)));
            });
        });
  r.add("GET", "/api/proof/keys", access::api, body_kind::none,
        [ctx](request&, reply_fn reply) {
          ctx.actors->proof_keys(proof_timeout, [reply](caf::expected<std::string> doc) {
            reply(doc ? json_response(200, std::move(*doc)) : response_for(doc.error()));
          });
        });
}

void add_multisig_routes(router& r, const route_context& ctx) {
  // Each step answers the upgrade's record, with the status of the step.
  auto to_reply = [](reply_fn reply, int status) {
    return [reply, status](caf::expected<domain::upgrade_record> r) {
      reply(r ? json_response(status, domain::upgrade_json(*r)) : response_for(r.error()));
    };
  };
  auto refused = [](const domain::multisig_refusal& bad) {
    return response_for(refusal_error(bad));
  };
  r.add("POST", "/api/multisig/upgrades", access::admin, body_kind::json,
        [ctx, to_reply, refused](request& req, reply_fn reply) {
          domain::upgrade_proposal p;
          if (auto bad = domain::parse_proposal(*req.json, p))
            return reply(refused(*bad));
          ctx.actors->propose(p, multisig_timeout, to_reply(reply, 201));
        });
  r.add("GET", "/api/multisig/upgrades/{id}", access::api, body_kind::none,
        [ctx, to_reply](request& req, reply_fn reply) {
          ctx.actors->upgrade(req.params.at("id"), multisig_timeout, to_reply(reply, 200));
        });
  r.add("POST", "/api/multisig/upgrades/{id}/approvals", access::open, body_kind::json,
        [ctx, to_reply, refused](request& req, reply_fn reply) {
          const auto& b = *req.json;
          for (const char* f : {"approver", "signature"})
            if (!b.IsObject() || !b.HasMember(f) || !b[f].IsString() || b[f].GetStringLength() == 0)
              return reply(error_response(400, "invalid_input", std::string{f} + " is required", f));
          std::string approver = b["approver"].GetString();
          std::string signature = b["signature"].GetString();
          if (auto bad = domain::check_approval_fields(approver, signature))
            return reply(refused(*bad));
          ctx.actors->approve(req.params.at("id"), std::move(approver), std::move(signature),
                              multisig_timeout, to_reply(reply, 201));
        });
  r.add("POST", "/api/multisig/upgrades/{id}/apply", access::admin, body_kind::none,
        [ctx, to_reply](request& req, reply_fn reply) {
          ctx.actors->apply(req.params.at("id"), multisig_timeout, to_reply(reply, 200));
        });
  r.add("POST", "/api/multisig/upgrade", access::admin, body_kind::json,
        [ctx, refused](request& req, reply_fn reply) {
          domain::upgrade_proposal p;
          if (auto bad = domain::parse_proposal(*req.json, p, {"approvals"}))
            return reply(refused(*bad));
          std::vector<domain::approval> approvals;
          const auto& b = *req.json;
          if (b.HasMember("approvals") && !b["approvals"].IsNull()) {
            if (!b["approvals"].IsArray())
              return reply(error_response(400, "invalid_input", "approvals must be an array", "approvals"));
            for (rapidjson::SizeType i = 0; i < b["approvals"].Size(); ++i) {
              const auto& a = b["approvals"][i];
              auto field = "approvals[" + std::to_string(i) + "]";
              if (!a.IsObject() || !a.HasMember("approver") || !a["approver"].IsString()
                  || !a.HasMember("signature") || !a["signature"].IsString())
                return reply(error_response(400, "invalid_input", "each approval is {approver, signature}", field));
              domain::approval one{a["approver"].GetString(), a["signature"].GetString(), 0};
              if (auto bad = domain::check_approval_fields(one.approver, one.signature, field + "."))
                return reply(refused(*bad));
              approvals.push_back(std::move(one));
            }
          }
          // 200 once applied, 202 while approvals are missing.
          ctx.actors->oneshot(p, approvals, multisig_timeout,
                              [reply](caf::expected<domain::upgrade_record> r) {
                                if (!r)
                                  return reply(response_for(r.error()));
                                reply(json_response(r->status == "applied" ? 200 : 202,
                                                    domain::oneshot_json(*r)));
                              });
        });
}

} // namespace ap::http
