// The kernel-mock program's own routes: its health, and the faults it
// injects into the Kernel's routes, changed at run time.
#include "kernel/mock/mock_state.hpp"

namespace ap::kernel::mock {

void add_control_routes(http::router& r, mock_state& k) {
  using http::access;
  using http::body_kind;
  r.add("GET", "/health", access::open, body_kind::none,
        guarded(k, [&k](http::request&, http::reply_fn reply) {
          if (k.f.outage.load())
            return reply(http::error_response(503, "outage", "the Kernel is unavailable (injected)"));
          // A slow Kernel is slow to answer its health too.
          k.answer(reply, http::json_response(200, R"({"service":"kernel-mock","status":"ok"})"));
        }));

  // Open, like /mock/faults: a test reads the counts whatever token is required.
  r.add("GET", "/mock/requests", access::open, body_kind::none,
        [&k](http::request&, http::reply_fn reply) { reply(http::json_response(200, k.token.to_json())); });

  r.add("GET", "/mock/faults", access::open, body_kind::none,
        [&k](http::request&, http::reply_fn reply) { reply(http::json_response(200, k.f.to_json())); });
  r.add("POST", "/mock/faults", access::open, body_kind::json,
        [&k](http::request& req, http::reply_fn reply) {
          const auto& b = *req.json;
          if (!b.IsObject())
            return reply(http::error_response(400, "invalid_input", "send an object"));
          auto non_negative = [&](const char* n) { return b[n].IsInt64() && b[n].GetInt64() >= 0; };
          if (b.HasMember("latencyMs")) {
            if (!non_negative("latencyMs"))
              return reply(http::error_response(400, "invalid_input", "latencyMs >= 0", "latencyMs"));
            k.f.latency_ms = static_cast<long>(b["latencyMs"].GetInt64());
          }
          if (b.HasMember("jitterMs")) {
            if (!non_negative("jitterMs"))
              return reply(http::error_response(400, "invalid_input", "jitterMs >= 0", "jitterMs"));
            k.f.jitter_ms = static_cast<long>(b["jitterMs"].GetInt64());
          }
          if (b.HasMember("errorRate")) {
            if (!b["errorRate"].IsNumber() || b["errorRate"].GetDouble() < 0 || b["errorRate"].GetDouble() > 1)
              return reply(http::error_response(400, "invalid_input", "errorRate in 0..1", "errorRate"));
            k.f.error_rate = b["errorRate"].GetDouble();
          }
          if (b.HasMember("resetRate")) {
            if (!b["resetRate"].IsNumber() || b["resetRate"].GetDouble() < 0 || b["resetRate"].GetDouble() > 1)
              return reply(http::error_response(400, "invalid_input", "resetRate in 0..1", "resetRate"));
            k.f.reset_rate = b["resetRate"].GetDouble();
          }
          if (b.HasMember("upgradeResets")) {
            if (!non_negative("upgradeResets"))
              return reply(http::error_response(400, "invalid_input", "upgradeResets >= 0",
                                                "upgradeResets"));
            k.f.upgrade_resets = static_cast<long>(b["upgradeResets"].GetInt64());
          }
          if (b.HasMember("outage")) {
            if (!b["outage"].IsBool())
              return reply(http::error_response(400, "invalid_input", "outage is a boolean", "outage"));
            k.f.outage = b["outage"].GetBool();
          }
          if (b.HasMember("refuseEventType")) {
            if (!b["refuseEventType"].IsString())
              return reply(http::error_response(400, "invalid_input",
                                                "refuseEventType is a string (empty: none)",
                                                "refuseEventType"));
            k.f.refuse_event_type(b["refuseEventType"].GetString());
          }
          if (b.HasMember("requireToken")) {
            if (!b["requireToken"].IsString())
              return reply(http::error_response(400, "invalid_input",
                                                "requireToken is a string (empty: no token)",
                                                "requireToken"));
            k.token.require(b["requireToken"].GetString());
          }
          reply(http::json_response(200, k.f.to_json()));
        });
}

} // namespace ap::kernel::mock
