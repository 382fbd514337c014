// The kernel-mock program's upgrade routes (SPEC §6, §7): the Kernel enforces
// the multisig rules itself.
#include <mutex>
#include <string>

#include "core/time.hpp"
#include "core/json.hpp"
#include "domain/multisig.hpp"
#include "kernel/mock/mock_state.hpp"
#include "kernel/mock/state_file.hpp"

namespace ap::kernel::mock {

namespace {

// The statuses SPEC §7 gives the multisig rules' refusals; the Kernel
// answers them as the service does.
int status_of(domain::refusal_kind kind) {
  switch (kind) {
    case domain::refusal_kind::invalid_input:
      return 400;
    case domain::refusal_kind::forbidden:
      return 403;
    case domain::refusal_kind::not_found:
      return 404;
    case domain::refusal_kind::conflict:
      return 409;
    case domain::refusal_kind::gone:
      return 410;
  }
  return 400;
}

// An upgrade step under the Kernel's faults and, besides, the upgradeResets
// fault: a step that took effect answered with a reset.
http::handler step(mock_state& k, http::handler inner) {
  return faulty(k, [&k, inner = std::move(inner)](http::request& req, http::reply_fn reply) {
    inner(req, [&k, reply](http::response res) {
      if (res.status < 300 && k.f.take_upgrade_reset())
        res.reset = true;
      reply(std::move(res));
    });
  });
}

} // namespace

void add_upgrade_routes(http::router& r, mock_state& k) {
  using http::access;
  using http::body_kind;
  auto now_ms = [] { return unix_ms_now(); };
  auto refusal = [](const domain::multisig_refusal& m) {
    return http::error_response(status_of(m.kind), m.code, m.message, m.field);
  };
  r.add("POST", "/kernel/upgrade", access::open, body_kind::json,
        step(k, [&k, now_ms, refusal](http::request& req, http::reply_fn reply) {
          domain::upgrade_proposal p;
          if (auto bad = domain::parse_proposal(*req.json, p, {"upgradeId", "payloadHash", "threshold"}))
            return reply(refusal(*bad));
          const auto& body = *req.json;
          auto claimed = body.HasMember("upgradeId") && body["upgradeId"].IsString()
                           ? std::string{body["upgradeId"].GetString()}
                           : std::string{};
          if (!claimed.empty() && claimed != domain::upgrade_id_for(domain::upgrade_payload_hash(p)))
            return reply(http::error_response(400, "invalid_input",
                                              "upgradeId does not match the proposal", "upgradeId"));
          std::lock_guard<std::mutex> guard{k.mutex};
          domain::upgrade_record rec;
          if (auto bad = k.upgrades.propose(p, now_ms(), rec))
            return reply(refusal(*bad));
          k.persist(proposed_line(rec));
          reply(http::json_response(201, "{\"upgrade\":" + domain::upgrade_json(rec) + "}"));
        }));
  r.add("POST", "/kernel/upgrade/{id}/approve", access::open, body_kind::json,
        step(k, [&k, now_ms, refusal](http::request& req, http::reply_fn reply) {
          const auto& b = *req.json;
          for (const char* f : {"approverId", "signature"})
            if (!b.IsObject() || !b.HasMember(f) || !b[f].IsString())
              return reply(http::error_response(400, "invalid_input", std::string{f} + " is required", f));
          std::lock_guard<std::mutex> guard{k.mutex};
          domain::upgrade_record rec;
          if (auto bad = k.upgrades.approve(req.params.at("id"), b["approverId"].GetString(),
                                            b["signature"].GetString(), now_ms(), rec))
            return reply(refusal(*bad));
          k.persist(approved_line(rec));
          reply(http::json_response(201, "{\"upgrade\":" + domain::upgrade_json(rec) + "}"));
        }));
  r.add("POST", "/kernel/upgrade/{id}/apply", access::open, body_kind::none,
        step(k, [&k, now_ms, refusal](http::request& req, http::reply_fn reply) {
          std::string by{req.header("x-applied-by")};
          std::lock_guard<std::mutex> guard{k.mutex};
          domain::upgrade_record rec;
          if (auto bad = k.upgrades.apply(req.params.at("id"), by.empty() ? "unknown" : by, now_ms(), rec))
            return reply(refusal(*bad));
          k.persist(applied_line(rec));
          auto full = domain::upgrade_json(rec);
          std::string approvers = "[";
          for (std::size_t i = 0; i < rec.approvals.size(); ++i) {
            if (i > 0)
              approvers += ',';
            json::append_quoted(approvers, rec.approvals[i].approver);
          }
          approvers += "]";
          rapidjson::Document doc;
          json::parse_strict(full, doc);
          std::string out = "{\"quorum\":{\"approvers\":" + approvers + ",\"required\":"
                            + std::to_string(rec.threshold) + "},\"upgrade\":{\"appliedAt\":";
          json::append_quoted(out, doc["appliedAt"].GetString());
          out += ",\"appliedBy\":";
          json::append_quoted(out, rec.applied_by);
          out += ",\"status\":\"applied\",\"upgradeId\":";
          json::append_quoted(out, rec.upgrade_id);
          out += "}}";
          reply(http::json_response(200, std::move(out)));
        }));
  r.add("GET", "/kernel/upgrade/{id}", access::open, body_kind::none,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          std::lock_guard<std::mutex> guard{k.mutex};
          const auto* rec = k.upgrades.find(req.params.at("id"));
          if (!rec)
            return reply(http::error_response(404, "not_found", "no upgrade " + req.params.at("id")));
          reply(http::json_response(200, "{\"upgrade\":" + domain::upgrade_json(*rec) + "}"));
        }));
}

} // namespace ap::kernel::mock
