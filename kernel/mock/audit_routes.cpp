// The kernel-mock program's audit log routes (SPEC §6).
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/crypto.hpp"
#include "core/time.hpp"
#include "core/json.hpp"
#include "kernel/mock/mock_state.hpp"

namespace ap::kernel::mock {

namespace {

std::string events_json(const std::vector<const kernel::logged_event*>& events) {
  std::string out = "{\"results\":[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0)
      out += ',';
    out += kernel::to_json(*events[i]);
  }
  return out + "]}";
}

} // namespace

void add_audit_routes(http::router& r, mock_state& k) {
  using http::access;
  using http::body_kind;
  r.add("POST", "/kernel/audit", access::open, body_kind::json,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          const auto& body = *req.json;
          auto is_str = [](const rapidjson::Value& o, const char* n) {
            return o.IsObject() && o.HasMember(n) && o[n].IsString() && o[n].GetStringLength() > 0;
          };
          if (!is_str(body, "eventType"))
            return reply(http::error_response(400, "invalid_input", "eventType is required", "eventType"));
          if (!body.HasMember("payload") || !body["payload"].IsObject())
            return reply(http::error_response(400, "invalid_input", "payload must be an object", "payload"));
          if (!body.HasMember("metadata") || !is_str(body["metadata"], "eventId"))
            return reply(http::error_response(400, "invalid_input", "metadata.eventId is required",
                                              "metadata.eventId"));
          if (k.f.refuses(body["eventType"].GetString())) {
            ++k.f.refused;
            return reply(http::error_response(413, "payload_too_large",
                                              "the event is too large to be stored (injected)"));
          }
          const auto& meta = body["metadata"];
          std::string source = is_str(meta, "source") ? meta["source"].GetString() : "";
          std::lock_guard<std::mutex> guard{k.mutex};
          try {
            auto result = k.log.append(body["eventType"].GetString(), body["payload"],
                                       meta["eventId"].GetString(), source, now_rfc3339());
            if (result.created)
              k.persist(kernel::audit_log::to_line(*result.event));
            reply(http::json_response(202, kernel::to_json(*result.event)));
          } catch (const std::invalid_argument& e) {
            reply(http::error_response(400, "invalid_input", e.what(), "payload"));
          }
        }));

  r.add("GET", "/kernel/audit/verify", access::open, body_kind::none,
        faulty(k, [&k](http::request&, http::reply_fn reply) {
          std::lock_guard<std::mutex> guard{k.mutex};
          auto v = k.log.verify();
          reply(http::json_response(200, std::string{"{\"head\":\""} + v.head + "\",\"length\":"
                                           + std::to_string(v.length) + ",\"valid\":"
                                           + (v.valid ? "true" : "false") + "}"));
        }));

  r.add("GET", "/kernel/audit/{id}", access::open, body_kind::none,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          std::lock_guard<std::mutex> guard{k.mutex};
          const auto* e = k.log.find(req.params.at("id"));
          if (!e)
            return reply(http::error_response(404, "not_found", "no audit event " + req.params.at("id")));
          reply(http::json_response(200, kernel::to_json(*e)));
        }));

  r.add("POST", "/kernel/audit/search", access::open, body_kind::json,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          const auto& body = *req.json;
          std::map<std::string, std::string> criteria;
          if (body.IsObject() && body.HasMember("criteria")) {
            if (!body["criteria"].IsObject())
              return reply(http::error_response(400, "invalid_input", "criteria must be an object",
                                                "criteria"));
            for (auto it = body["criteria"].MemberBegin(); it != body["criteria"].MemberEnd(); ++it) {
              try {
                criteria[it->name.GetString()] = json::canonical(it->value);
              } catch (const std::invalid_argument&) {
                return reply(http::error_response(400, "invalid_input", "criteria values must be "
                                                  "strings, integers, booleans or null", "criteria"));
              }
            }
          }
          std::string type = body.IsObject() && body.HasMember("eventType") && body["eventType"].IsString()
                               ? body["eventType"].GetString()
                               : "";
          std::size_t limit = 100;
          if (body.IsObject() && body.HasMember("limit")) {
            if (!body["limit"].IsInt64() || body["limit"].GetInt64() < 1 || body["limit"].GetInt64() > 10000)
              return reply(http::error_response(400, "invalid_input", "limit must be 1-10000", "limit"));
            limit = static_cast<std::size_t>(body["limit"].GetInt64());
          }
          std::lock_guard<std::mutex> guard{k.mutex};
          reply(http::json_response(200, events_json(k.log.search(criteria, type, limit))));
        }));

  r.add("GET", "/kernel/keys", access::open, body_kind::none,
        faulty(k, [&k](http::request&, http::reply_fn reply) {
          reply(http::json_response(200, R"({"signers":[{"algorithm":"ed25519","publicKey":")"
                                           + crypto::base64_encode(k.log.public_key())
                                           + R"(","signerId":")" + k.log.signer_id() + "\"}]}"));
        }));
}

} // namespace ap::kernel::mock
