#include "actors/kernel_client.hpp"

#include <atomic>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/time.hpp"
#include "domain/receipt.hpp"

namespace ap {

namespace {

/// The HTTP exchange itself may take this long; the caller's request has its
/// own, longer or equal, timeout.
constexpr auto audit_http_timeout = std::chrono::milliseconds{5000};
constexpr auto health_http_timeout = std::chrono::milliseconds{800};
constexpr auto keys_http_timeout = std::chrono::milliseconds{2000};
constexpr auto upgrade_read_timeout = std::chrono::milliseconds{2000};

} // namespace

namespace {

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

// The Kernel's refusal of an upgrade step, as the error of the same kind
// the service's own rules would give, named "kernel_refused".
caf::error kernel_refusal(const upstream::reply& r) {
  std::string why = r.body;
  rapidjson::Document doc;
  if (!json::parse_strict(r.body, doc) && doc.IsObject() && doc.HasMember("message")
      && doc["message"].IsString())
    why = doc["message"].GetString();
  auto code = error_code::upstream_refused;
  switch (r.status) {
    case 400:
    case 422:
      code = error_code::invalid_input;
      break;
    case 403:
      code = error_code::forbidden;
      break;
    case 404:
      code = error_code::not_found;
      break;
    case 409:
      code = error_code::conflict;
      break;
    case 410:
      code = error_code::gone;
      break;
  }
  return make_named_error(code, "kernel_refused", "the Kernel refused: " + why);
}

// The receipt fields of an AuditEvent answer (SPEC §6); what is missing,
// or not a string, stays empty.
kernel::audit_ack audit_ack_of(const std::string& body) {
  kernel::audit_ack ack;
  rapidjson::Document doc;
  if (json::parse_strict(body, doc) || !doc.IsObject())
    return ack;
  ack.kernel_id = json::string_member(doc, "id");
  auto meta = doc.FindMember("metadata");
  if (meta != doc.MemberEnd())
    ack.event_id = json::string_member(meta->value, "eventId");
  ack.hash = json::string_member(doc, "hash");
  ack.prev_hash = json::string_member(doc, "prevHash");
  ack.signature = json::string_member(doc, "signature");
  ack.signer_id = json::string_member(doc, "signerId");
  ack.ts = json::string_member(doc, "ts");
  return ack;
}

// Up to `limit` bytes of `text`, cut at a character boundary, with every
// byte that is not printable ASCII or part of a valid UTF-8 sequence (a
// control character, a NUL, a broken sequence) replaced by '?': the
// excerpt goes into a log line and a text column, which must take it
// whatever the Kernel (or what answers in its place) sent.
std::string printable_excerpt(const std::string& text, std::size_t limit) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && out.size() < limit) {
    auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool valid = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(text[i + k]) & 0xC0) == 0x80;
    if (valid && len == 1 && (c < 0x20 || c == 0x7F))
      valid = false;
    if (!valid) {
      out += '?';
      ++i;
      continue;
    }
    if (out.size() + len > limit)
      break;
    out.append(text, i, len);
    i += len;
  }
  return out;
}

} // namespace

caf::expected<kernel::upgrade_ack> kernel_upgrade_answer(kernel::upgrade_call_kind kind,
                                                         const upstream::reply& r) {
  if (r.status >= 400 && r.status < 500)
    return kernel_refusal(r);
  if (r.status < 200 || r.status >= 300)
    return make_error(error_code::upstream_unavailable,
                      r.status == 0 ? "the Kernel is unreachable: " + r.error
                                    : "the Kernel answered " + std::to_string(r.status));
  kernel::upgrade_ack ack;
  rapidjson::Document doc;
  const rapidjson::Value* record = nullptr;
  if (!json::parse_strict(r.body, doc) && doc.IsObject()) {
    auto m = doc.FindMember("upgrade");
    if (m != doc.MemberEnd() && m->value.IsObject())
      record = &m->value;
  }
  if (record) {
    ack.status = json::string_member(*record, "status");
    ack.payload_hash = json::string_member(*record, "payloadHash");
    auto approvals = record->FindMember("approvals");
    if (approvals != record->MemberEnd() && approvals->value.IsArray())
      for (const auto& a : approvals->value.GetArray())
        if (auto who = json::string_member(a, "approver"); !who.empty())
          ack.approvers.push_back(std::move(who));
    // An appliedAt the service cannot read is the Kernel breaking its
    // protocol: the step's outcome is then unknown, never a time made up.
    auto applied = record->FindMember("appliedAt");
    if (applied != record->MemberEnd()) {
      std::string text = applied->value.IsString() ? applied->value.GetString() : "(not a string)";
      ack.applied_at_ms = parse_rfc3339_ms(text);
      if (ack.applied_at_ms == 0)
        return make_error(error_code::upstream_unavailable,
                          "the Kernel's appliedAt is not an RFC 3339 time: " + text.substr(0, 40));
    }
  }
  switch (kind) {
    case kernel::upgrade_call_kind::propose:
    case kernel::upgrade_call_kind::approve:
      break;  // taken by the status alone
    case kernel::upgrade_call_kind::apply:
      if (ack.applied_at_ms == 0)
        return make_error(error_code::upstream_unavailable,
                          "the Kernel applied without an appliedAt");
      if (ack.status.empty())
        ack.status = "applied";
      break;
    case kernel::upgrade_call_kind::read:
      if (!record)
        return make_error(error_code::upstream_unavailable,
                          "the Kernel's answer holds no upgrade record");
      break;
  }
  return ack;
}

bool refuses_the_event(std::int32_t status) {
  if (status < 400 || status >= 500)
    return false;
  switch (status) {
    case 401:  // credentials
    case 403:
    case 407:
    case 404:  // routing
    case 408:  // timing
    case 409:
    case 425:
    case 429:
      return false;
    default:
      return true;
  }
}

caf::error audit_submission_error(const upstream::reply& reply) {
  if (refuses_the_event(reply.status))
    return make_upstream_refusal(reply.status, printable_excerpt(reply.body, refusal_excerpt_limit));
  return make_error(error_code::upstream_unavailable,
                    reply.status == 0 ? "the Kernel is unreachable: " + reply.error
                                      : "the Kernel answered " + std::to_string(reply.status));
}

kernel_client_actor::behavior_type
kernel_client(kernel_client_actor::stateful_pointer<kernel_client_state> self,
              kernel_client_config cfg, metrics::registry* registry) {
  upstream::client_options options;
  options.name = "kernel";
  options.max_connections = cfg.max_connections;
  options.max_queue = cfg.max_queue;
  options.tls = cfg.tls;
  options.registry = registry;
  self->state.http = upstream::make_client(cfg.where, options);
  self->state.token = std::move(cfg.token);
  auto source = std::move(cfg.source);
  auto count = [registry](const char* call, const char* outcome) {
    registry->get_counter("ap_kernel_calls_total", "Calls to the Kernel by outcome",
                          {{"call", call}, {"outcome", outcome}})
      .inc();
  };
  // Completions arrive as messages to this actor (a strong handle keeps it
  // alive until the last one).
  auto completion = [self](std::uint64_t id) {
    return [handle = caf::actor_cast<kernel_client_actor>(self), id](upstream::reply reply) {
      caf::anon_send(handle, atoms::kdone_atom::value, id, std::move(reply));
    };
  };
  // Every request carries the token as it is now: the active version, and
  // that version's file as it is now.
  auto token_source = [self, secrets = cfg.secrets]() -> secret_source& {
    auto active = secrets ? secrets->active(domain::secret_set::kernel_token) : std::nullopt;
    if (!active)
      return self->state.token;
    auto& tokens = self->state.tokens;
    auto it = tokens.find(active->kid);
    if (it == tokens.end())
      it = tokens.emplace(active->kid, secret_source::parse(active->value)).first;
    return it->second;
  };
  using calls = std::vector<std::pair<upstream::request, upstream::client::callback>>;
  auto send_all = [self, token_source](calls all) {
    const auto& token = token_source().current();
    if (!token.empty())
      for (auto& call : all)
        call.first.headers.emplace_back("Authorization", "Bearer " + token);
    if (!self->state.http) {
      for (auto& call : all)
        call.second(upstream::reply{0, {}, "no client (see the start-up log)", false});
      return;
    }
    self->state.http->send_all(std::move(all));
  };
  auto send = [send_all](upstream::request req, upstream::client::callback done) {
    calls one;
    one.emplace_back(std::move(req), std::move(done));
    send_all(std::move(one));
  };
  // What one audit event's reply comes to: its acknowledgement or why not,
  // counted (and the credentials' refusal logged every few seconds).
  auto answer_of = [self, count](const upstream::reply& reply) -> kernel::audit_answer {
    if (reply.status == 200 || reply.status == 201 || reply.status == 202) {
      // Whatever the answer carries: whether it is a receipt of this event
      // is the forwarder's check (SPEC §11), so that a misrouted endpoint's
      // 2xx is counted as a rejected receipt like any other.
      count("audit", "ok");
      return {audit_ack_of(reply.body), {}};
    }
    if (reply.status == 401) {
      // The token is missing, wrong or expired: every event fails the same
      // way until it is rotated, so this is said every few seconds, not
      // once per event.
      count("audit", "unauthorized");
      auto now = std::chrono::steady_clock::now();
      auto& last = self->state.last_unauthorized_log;
      if (now - last >= std::chrono::seconds{10}) {
        last = now;
        log::error("the Kernel refused the service's credentials; check KERNEL_TOKEN",
                   {{"actor", "kernel-client"}, {"status", "401"}});
      }
    } else if (refuses_the_event(reply.status)) {
      // The Kernel refused the event for what it carries: sending it again
      // gets the same answer. The forwarder dead-letters it and says so.
      count("audit", "refused");
    } else if (reply.status >= 400 && reply.status < 500) {
      // Refused for a reason that is not the event (the route, the timing,
      // a permission): a defect or a passing state on one side; the event
      // stays in the outbox and is retried, and this is logged.
      count("audit", "rejected");
      log::error("the Kernel rejected an audit event",
                 {{"actor", "kernel-client"}, {"status", std::to_string(reply.status)},
                  {"body", printable_excerpt(reply.body, refusal_excerpt_limit)}});
    } else {
      count("audit", reply.status == 0 ? "unreachable" : "server_error");
    }
    return {{}, audit_submission_error(reply)};
  };
  auto meter_ = actor_meter::make(*registry, "kernel-client");
  return {
    metered(self, meter_, [self, source, send_all](atoms::audit_atom,
                                                        const std::vector<domain::audit_event>& subs)
                            -> caf::result<std::vector<kernel::audit_answer>> {
      if (subs.empty())
        return std::vector<kernel::audit_answer>{};
      auto id = self->state.next_call++;
      auto promise = self->make_response_promise<std::vector<kernel::audit_answer>>();
      self->state.audits.emplace(id, promise);
      // Each request's reply goes in its slot; the last to end sends them
      // all, in one message.
      struct gathered {
        std::vector<upstream::reply> replies;
        std::vector<std::int64_t> arrived_ms;
        std::atomic<std::size_t> remaining;
      };
      auto g = std::make_shared<gathered>();
      g->replies.resize(subs.size());
      g->arrived_ms.resize(subs.size());
      g->remaining.store(subs.size());
      auto handle = caf::actor_cast<kernel_client_actor>(self);
      calls batch;
      batch.reserve(subs.size());
      for (std::size_t k = 0; k < subs.size(); ++k) {
        const auto& sub = subs[k];
        std::string body = "{\"eventType\":";
        json::append_quoted(body, sub.event_type);
        body += ",\"metadata\":{\"eventId\":";
        json::append_quoted(body, sub.event_id);
        body += ",\"source\":";
        json::append_quoted(body, source);
        body += "},\"payload\":" + sub.payload + "}";
        upstream::request req{"POST", "/kernel/audit", std::move(body), "application/json", {},
                              audit_http_timeout};
        batch.emplace_back(std::move(req), [g, k, handle, id](upstream::reply reply) {
          g->replies[k] = std::move(reply);
          g->arrived_ms[k] = unix_ms_now();
          if (g->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1)
            caf::anon_send(handle, atoms::kdone_atom::value, id, std::move(g->replies),
                           std::move(g->arrived_ms));
        });
      }
      send_all(std::move(batch));
      return promise;
    }),
    metered(self, meter_, [self, completion, send](atoms::health_atom) -> caf::result<bool> {
      auto id = self->state.next_call++;
      auto promise = self->make_response_promise<bool>();
      self->state.probes.emplace(id, promise);
      send({"GET", "/health", {}, "application/json", {}, health_http_timeout}, completion(id));
      return promise;
    }),
    metered(self, meter_, [self, completion, send](atoms::keys_atom)
                            -> caf::result<std::vector<kernel::signer_key>> {
      auto id = self->state.next_call++;
      auto promise = self->make_response_promise<std::vector<kernel::signer_key>>();
      self->state.key_reads.emplace(id, promise);
      send({"GET", "/kernel/keys", {}, "application/json", {}, keys_http_timeout}, completion(id));
      return promise;
    }),
    metered(self, meter_, [self, completion, send](atoms::upgrade_atom,
                       const kernel::upgrade_call& call) -> caf::result<kernel::upgrade_ack> {
      auto id = self->state.next_call++;
      auto promise = self->make_response_promise<kernel::upgrade_ack>();
      std::string target = "/kernel/upgrade";
      std::string body;
      std::vector<std::pair<std::string, std::string>> headers;
      switch (call.kind) {
        case kernel::upgrade_call_kind::propose:
          body = proposal_body(call.upgrade);
          break;
        case kernel::upgrade_call_kind::approve:
          target += "/" + call.upgrade.upgrade_id + "/approve";
          body = "{\"approverId\":";
          json::append_quoted(body, call.approver);
          body += ",\"signature\":";
          json::append_quoted(body, call.signature);
          body += '}';
          break;
        case kernel::upgrade_call_kind::apply:
          target += "/" + call.upgrade.upgrade_id + "/apply";
          break;
        case kernel::upgrade_call_kind::read:
          target += "/" + call.upgrade.upgrade_id;
          break;
      }
      if (!call.applied_by.empty())
        headers.emplace_back("X-Applied-By", call.applied_by);
      self->state.calls.emplace(id, std::make_pair(promise, call.kind));
      bool read = call.kind == kernel::upgrade_call_kind::read;
      send({read ? "GET" : "POST", std::move(target), std::move(body), "application/json",
            std::move(headers), read ? upgrade_read_timeout : audit_http_timeout},
           completion(id));
      return promise;
    }),
    metered(self, meter_, [self, count](atoms::kdone_atom, std::uint64_t id, upstream::reply& reply) {
      auto& st = self->state;
      if (auto it = st.calls.find(id); it != st.calls.end()) {
        count(it->second.second == kernel::upgrade_call_kind::read ? "upgrade_read" : "upgrade",
              reply.status == 0 ? "unreachable" : reply.status < 500 ? "ok" : "server_error");
        auto answer = kernel_upgrade_answer(it->second.second, reply);
        if (answer)
          it->second.first.deliver(std::move(*answer));
        else
          it->second.first.deliver(std::move(answer.error()));
        st.calls.erase(it);
        return;
      }
      if (auto it = st.probes.find(id); it != st.probes.end()) {
        count("health", reply.status == 200 ? "ok" : "failed");
        it->second.deliver(reply.status == 200);
        st.probes.erase(it);
        return;
      }
      if (auto it = st.key_reads.find(id); it != st.key_reads.end()) {
        auto promise = it->second;
        st.key_reads.erase(it);
        auto keys = reply.status == 200 ? domain::parse_kernel_keys(reply.body) : std::nullopt;
        count("keys", keys ? "ok"
                      : reply.status == 0 ? "unreachable"
                      : reply.status == 200 ? "bad_answer"
                      : reply.status == 401 ? "unauthorized"
                      : reply.status < 500 ? "rejected" : "server_error");
        if (keys)
          promise.deliver(std::move(*keys));
        else
          promise.deliver(make_error(error_code::upstream_unavailable,
                                     reply.status == 0 ? "the Kernel is unreachable: " + reply.error
                                     : reply.status == 200
                                       ? std::string{"the Kernel's keys are not a keys document"}
                                       : "the Kernel answered " + std::to_string(reply.status)));
        return;
      }
    }),
    metered(self, meter_, [self, answer_of](atoms::kdone_atom, std::uint64_t id,
                                            std::vector<upstream::reply>& replies,
                                            std::vector<std::int64_t>& arrived_ms) {
      auto& st = self->state;
      auto it = st.audits.find(id);
      if (it == st.audits.end())
        return;
      auto promise = it->second;
      st.audits.erase(it);
      std::vector<kernel::audit_answer> answers;
      answers.reserve(replies.size());
      for (std::size_t k = 0; k < replies.size(); ++k) {
        answers.push_back(answer_of(replies[k]));
        answers.back().answered_at_ms = k < arrived_ms.size() ? arrived_ms[k] : 0;
      }
      promise.deliver(std::move(answers));
    }),
  };
}

} // namespace ap
