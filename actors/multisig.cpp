#include "actors/multisig.hpp"

#include <ctime>

#include <caf/all.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/crypto.hpp"
#include "core/json.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

namespace ap {

namespace {

/// Each database step and each Kernel call has its own bound.
constexpr auto multisig_db_timeout = std::chrono::seconds{3};
constexpr auto multisig_kernel_timeout = std::chrono::seconds{6};

using self_ptr = multisig_actor::stateful_pointer<multisig_state>;
using promise_t = caf::typed_response_promise<http_answer>;
using next_fn = std::function<void(domain::upgrade_record)>;

struct context {
  self_ptr self;
  std::shared_ptr<multisig_config> cfg;
  actor_directory* directory;
};

http_answer error_answer(int status, const std::string& code, const std::string& message,
                         const std::string& field = {}) {
  return {status, json::error_body(code, message, field)};
}

void fail(promise_t promise, const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return (void) promise.deliver(error_answer(504, "timeout", "a step of the upgrade timed out"));
  if (err.category() == error_category()
      && err.code() == static_cast<std::uint8_t>(error_code::database_unavailable))
    return (void) promise.deliver(error_answer(503, "database_unavailable", "the database is unavailable"));
  log::error("multisig step failed", {{"actor", "multisig"}, {"error", caf::to_string(err)}});
  promise.deliver(error_answer(502, "upstream_unavailable", "the step could not be completed"));
}

// Runs one step in the database; refusals answer the client, success
// continues with `next`.
void db_step(const context& ctx, persistence::multisig_command cmd, promise_t promise,
             next_fn next) {
  cmd.now_ms = cmd.now_ms ? cmd.now_ms : ctx.cfg->now_ms();
  ctx.self->request(ctx.directory->database(), multisig_db_timeout, atoms::multisig_atom::value, cmd)
    .then(
      [promise, next](persistence::multisig_outcome& out) mutable {
        if (out.status != 0)
          return (void) promise.deliver(error_answer(out.status, out.code, out.message, out.field));
        next(std::move(out.record));
      },
      [promise](caf::error& e) mutable { fail(promise, e); });
}

// Calls the Kernel; a refusal is passed on with the Kernel's status.
void kernel_step(const context& ctx, const std::string& method, const std::string& target,
                 const std::string& body, promise_t promise,
                 std::function<void(kernel::kernel_reply)> next) {
  ctx.self
    ->request(ctx.directory->kernel(), multisig_kernel_timeout, atoms::kcall_atom::value, method,
              target, body, ctx.cfg->applied_by)
    .then(
      [promise, next](kernel::kernel_reply& r) mutable {
        if (r.status >= 200 && r.status < 300)
          return next(std::move(r));
        if (r.status >= 400 && r.status < 500) {
          std::string why = r.body;
          rapidjson::Document doc;
          if (!json::parse_strict(r.body, doc) && doc.IsObject() && doc.HasMember("message")
              && doc["message"].IsString())
            why = doc["message"].GetString();
          return (void) promise.deliver(error_answer(r.status, "kernel_refused", "the Kernel refused: " + why));
        }
        promise.deliver(error_answer(502, "upstream_unavailable",
                                     r.status == 0 ? "the Kernel is unreachable"
                                                   : "the Kernel answered " + std::to_string(r.status)));
      },
      [promise](caf::error& e) mutable { fail(promise, e); });
}

std::int64_t parse_rfc3339_ms(const std::string& text) {
  std::tm tm{};
  if (!strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return 0;
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  auto dot = text.find('.');
  if (dot != std::string::npos && dot + 3 < text.size())
    ms += std::stoi(text.substr(dot + 1, 3));
  return ms;
}

std::string proposal_body(const domain::upgrade_record& r) {
  std::string out = "{\"approvers\":";
  json::append_string_array(out, r.proposal.approvers);
  out += ",\"binaryHash\":";
  json::append_quoted(out, r.proposal.binary_hash);
  out += ",\"kind\":";
  json::append_quoted(out, r.proposal.kind);
  out += ",\"notes\":";
  json::append_quoted(out, r.proposal.notes);
  out += ",\"upgradeId\":";
  json::append_quoted(out, r.upgrade_id);
  out += ",\"version\":";
  json::append_quoted(out, r.proposal.version);
  return out + "}";
}

void propose(const context& ctx, domain::upgrade_proposal p, promise_t promise, next_fn done) {
  if (p.kind == "secret-rotation") {
    // The approvers sign exactly which key: binaryHash names its public key.
    const auto* key = ctx.cfg->keys->find(p.version);
    if (!key)
      return (void) promise.deliver(error_answer(400, "invalid_input",
                                          "no proof secret is configured for kid '" + p.version + "'",
                                          "version"));
    if (crypto::sha256_hex(key->public_key) != p.binary_hash)
      return (void) promise.deliver(error_answer(400, "invalid_input",
                                          "binaryHash must be the SHA-256 of kid '" + p.version
                                            + "''s Ed25519 public key",
                                          "binaryHash"));
  }
  persistence::multisig_command check;
  check.op = "propose";
  check.proposal = p;
  db_step(ctx, check, promise, [ctx, check, promise, done](domain::upgrade_record r) mutable {
    kernel_step(ctx, "POST", "/kernel/upgrade", proposal_body(r), promise,
                [ctx, check, promise, done](kernel::kernel_reply) mutable {
                  check.write = true;
                  db_step(ctx, check, promise, done);
                });
  });
}

void approve(const context& ctx, const std::string& id, const std::string& approver,
             const std::string& signature, promise_t promise, next_fn done) {
  persistence::multisig_command check;
  check.op = "approve";
  check.upgrade_id = id;
  check.approver = approver;
  check.signature = signature;
  auto write = check;
  write.write = true;
  db_step(ctx, check, promise, [ctx, write, promise, done](domain::upgrade_record) mutable {
    std::string body = "{\"approverId\":";
    json::append_quoted(body, write.approver);
    body += ",\"signature\":";
    json::append_quoted(body, write.signature);
    body += '}';
    kernel_step(ctx, "POST", "/kernel/upgrade/" + write.upgrade_id + "/approve", body, promise,
                [ctx, write, promise, done](kernel::kernel_reply) mutable {
                  db_step(ctx, write, promise, done);
                });
  });
}

void apply(const context& ctx, const std::string& id, promise_t promise, next_fn done) {
  persistence::multisig_command check;
  check.op = "apply";
  check.upgrade_id = id;
  check.applied_by = ctx.cfg->applied_by;
  db_step(ctx, check, promise, [ctx, check, promise, done](domain::upgrade_record) mutable {
    kernel_step(ctx, "POST", "/kernel/upgrade/" + check.upgrade_id + "/apply", "", promise,
                [ctx, check, promise, done](kernel::kernel_reply reply) mutable {
                  // appliedAt comes from the Kernel.
                  rapidjson::Document doc;
                  auto write = check;
                  write.write = true;
                  if (!json::parse_strict(reply.body, doc) && doc.IsObject()
                      && doc.HasMember("upgrade") && doc["upgrade"].IsObject()
                      && doc["upgrade"].HasMember("appliedAt") && doc["upgrade"]["appliedAt"].IsString())
                    write.applied_at_ms = parse_rfc3339_ms(doc["upgrade"]["appliedAt"].GetString());
                  if (write.applied_at_ms == 0)
                    return (void) promise.deliver(error_answer(502, "upstream_unavailable",
                                                        "the Kernel applied without an appliedAt"));
                  db_step(ctx, write, promise, [ctx, done](domain::upgrade_record r) mutable {
                    if (r.proposal.kind == "secret-rotation") {
                      ctx.cfg->keys->activate(r.proposal.version);
                      log::info("proof key activated", {{"actor", "multisig"}, {"kid", r.proposal.version}});
                    }
                    done(std::move(r));
                  });
                });
  });
}

// Answers with the record and a status.
next_fn answer_with(promise_t promise, int status) {
  return [promise, status](domain::upgrade_record r) mutable {
    promise.deliver(http_answer{status, domain::upgrade_json(r)});
  };
}

// The one-shot route: approvals one after another, stopping at the first
// refusal; applies once the threshold is met.
void oneshot_approvals(const context& ctx, std::shared_ptr<std::vector<domain::approval>> approvals,
                       std::size_t index, domain::upgrade_record record, promise_t promise) {
  auto finish = [ctx, promise](domain::upgrade_record r) mutable {
    std::string out = "{";
    if (r.status == "applied") {
      auto full = domain::upgrade_json(r);
      rapidjson::Document doc;
      json::parse_strict(full, doc);
      out += "\"appliedAt\":";
      json::append_quoted(out, doc["appliedAt"].GetString());
      out += ',';
    }
    out += "\"approvals\":";
    {
      auto full = domain::upgrade_json(r);
      rapidjson::Document doc;
      json::parse_strict(full, doc);
      out += json::canonical(doc["approvals"]);
    }
    out += ",\"status\":";
    json::append_quoted(out, r.status);
    out += ",\"upgradeId\":";
    json::append_quoted(out, r.upgrade_id);
    out += ",\"version\":";
    json::append_quoted(out, r.proposal.version);
    out += '}';
    promise.deliver(http_answer{r.status == "applied" ? 200 : 202, out});
  };
  if (static_cast<int>(record.approvals.size()) >= record.threshold && record.status != "applied")
    return apply(ctx, record.upgrade_id, promise, finish);
  if (index >= approvals->size() || record.status == "applied")
    return finish(record);
  const auto& a = (*approvals)[index];
  approve(ctx, record.upgrade_id, a.approver, a.signature, promise,
          [ctx, approvals, index, promise](domain::upgrade_record r) mutable {
            oneshot_approvals(ctx, approvals, index + 1, std::move(r), promise);
          });
}

} // namespace

multisig_actor::behavior_type multisig(multisig_actor::stateful_pointer<multisig_state> self,
                                       multisig_config cfg, actor_directory* directory) {
  if (!cfg.now_ms)
    cfg.now_ms = [] { return unix_ms_now(); };
  context ctx{self, std::make_shared<multisig_config>(std::move(cfg)), directory};
  auto* registry = ctx.cfg->registry ? ctx.cfg->registry : &unobserved_registry();
  auto meter_ = actor_meter::make(*registry, "multisig");
  return {
    metered(ctx.self, meter_, [ctx](atoms::propose_atom, domain::upgrade_proposal& p) -> caf::result<http_answer> {
      auto promise = ctx.self->make_response_promise<http_answer>();
      propose(ctx, std::move(p), promise, answer_with(promise, 201));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::approve_atom, const std::string& id, const std::string& approver,
          const std::string& signature) -> caf::result<http_answer> {
      auto promise = ctx.self->make_response_promise<http_answer>();
      approve(ctx, id, approver, signature, promise, answer_with(promise, 201));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::apply_atom, const std::string& id) -> caf::result<http_answer> {
      auto promise = ctx.self->make_response_promise<http_answer>();
      apply(ctx, id, promise, answer_with(promise, 200));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::get_atom, const std::string& id) -> caf::result<http_answer> {
      auto promise = ctx.self->make_response_promise<http_answer>();
      persistence::multisig_command cmd;
      cmd.op = "get";
      cmd.upgrade_id = id;
      db_step(ctx, cmd, promise, answer_with(promise, 200));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::oneshot_atom, domain::upgrade_proposal& p,
          std::vector<domain::approval>& approvals) -> caf::result<http_answer> {
      auto promise = ctx.self->make_response_promise<http_answer>();
      auto list = std::make_shared<std::vector<domain::approval>>(std::move(approvals));
      auto id = domain::upgrade_id_for(domain::upgrade_payload_hash(p));
      auto continue_with = [ctx, list, promise](domain::upgrade_record r) mutable {
        auto already = r.approvals.size();
        oneshot_approvals(ctx, list, already, std::move(r), promise);
      };
      // An upgrade proposed before is continued rather than refused.
      persistence::multisig_command get;
      get.op = "get";
      get.upgrade_id = id;
      get.now_ms = ctx.cfg->now_ms();
      ctx.self->request(ctx.directory->database(), multisig_db_timeout, atoms::multisig_atom::value, get)
        .then(
          [ctx, p, promise, continue_with](persistence::multisig_outcome& out) mutable {
            if (out.status == 0)
              return continue_with(std::move(out.record));
            propose(ctx, p, promise, continue_with);
          },
          [promise](caf::error& e) mutable { fail(promise, e); });
      return promise;
    }),
  };
}

} // namespace ap
