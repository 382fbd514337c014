#include "actors/kernel_client.hpp"

#include <caf/all.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/json.hpp"
#include "core/log.hpp"

namespace ap {

namespace {

/// The HTTP exchange itself may take this long; the caller's request has its
/// own, longer or equal, timeout.
constexpr auto audit_http_timeout = std::chrono::milliseconds{5000};
constexpr auto health_http_timeout = std::chrono::milliseconds{1000};

} // namespace

kernel_actor::behavior_type kernel_client(kernel_actor::stateful_pointer<kernel_client_state> self,
                                          kernel::endpoint where, metrics::registry* registry) {
  self->state.http = std::make_unique<kernel::http_client>(std::move(where));
  auto count = [registry](const char* call, const char* outcome) {
    registry->get_counter("ap_kernel_calls_total", "Calls to the Kernel by outcome",
                          {{"call", call}, {"outcome", outcome}})
      .inc();
  };
  // Completions arrive as messages to this actor (a strong handle keeps it
  // alive until the last one).
  auto completion = [self](std::uint64_t id) {
    return [handle = caf::actor_cast<kernel_actor>(self), id](kernel::kernel_reply reply) {
      caf::anon_send(handle, atoms::kdone_atom::value, id, std::move(reply));
    };
  };
  auto meter_ = actor_meter::make(*registry, "kernel-client");
  return {
    metered(self, meter_, [self, completion](atoms::audit_atom,
                       const kernel::audit_submission& sub) -> caf::result<kernel::audit_ack> {
      auto id = self->state.next_call++;
      std::string body = "{\"eventType\":";
      json::append_quoted(body, sub.event_type);
      body += ",\"metadata\":{\"eventId\":";
      json::append_quoted(body, sub.event_id);
      body += ",\"source\":";
      json::append_quoted(body, sub.source);
      body += "},\"payload\":" + sub.payload + "}";
      auto promise = self->make_response_promise<kernel::audit_ack>();
      self->state.audits.emplace(id, promise);
      self->state.http->request("POST", "/kernel/audit", std::move(body), audit_http_timeout,
                                completion(id));
      return promise;
    }),
    metered(self, meter_, [self, completion](atoms::health_atom) -> caf::result<bool> {
      auto id = self->state.next_call++;
      auto promise = self->make_response_promise<bool>();
      self->state.probes.emplace(id, promise);
      self->state.http->request("GET", "/health", {}, health_http_timeout, completion(id));
      return promise;
    }),
    metered(self, meter_, [self, completion](atoms::kcall_atom, const std::string& method, const std::string& target,
                       const std::string& body,
                       const std::string& applied_by) -> caf::result<kernel::kernel_reply> {
      auto id = self->state.next_call++;
      auto promise = self->make_response_promise<kernel::kernel_reply>();
      self->state.calls.emplace(id, promise);
      std::vector<std::pair<std::string, std::string>> headers;
      if (!applied_by.empty())
        headers.emplace_back("X-Applied-By", applied_by);
      self->state.http->request(method, target, body, audit_http_timeout, completion(id),
                                std::move(headers));
      return promise;
    }),
    metered(self, meter_, [self, count](atoms::kdone_atom, std::uint64_t id, kernel::kernel_reply& reply) {
      auto& st = self->state;
      if (auto it = st.calls.find(id); it != st.calls.end()) {
        count("upgrade", reply.status == 0 ? "unreachable" : reply.status < 500 ? "ok" : "server_error");
        it->second.deliver(std::move(reply));
        st.calls.erase(it);
        return;
      }
      if (auto it = st.probes.find(id); it != st.probes.end()) {
        count("health", reply.status == 200 ? "ok" : "failed");
        it->second.deliver(reply.status == 200);
        st.probes.erase(it);
        return;
      }
      auto it = st.audits.find(id);
      if (it == st.audits.end())
        return;
      auto promise = it->second;
      st.audits.erase(it);
      if (reply.status == 200 || reply.status == 201 || reply.status == 202) {
        rapidjson::Document doc;
        if (!json::parse_strict(reply.body, doc) && doc.IsObject() && doc.HasMember("id")
            && doc["id"].IsString()) {
          count("audit", "ok");
          promise.deliver(kernel::audit_ack{doc["id"].GetString(),
                                            doc.HasMember("hash") && doc["hash"].IsString()
                                              ? doc["hash"].GetString()
                                              : ""});
          return;
        }
        count("audit", "bad_answer");
        promise.deliver(make_error(error_code::upstream_unavailable,
                                   "the Kernel answered without an event id"));
        return;
      }
      if (reply.status >= 400 && reply.status < 500) {
        // The Kernel refused the event itself: a defect on one side; the
        // event stays in the outbox and is retried, and this is logged.
        count("audit", "rejected");
        log::error("the Kernel rejected an audit event",
                   {{"actor", "kernel-client"}, {"status", std::to_string(reply.status)},
                    {"body", reply.body.substr(0, 200)}});
      } else {
        count("audit", reply.status == 0 ? "unreachable" : "server_error");
      }
      promise.deliver(make_error(error_code::upstream_unavailable,
                                 reply.status == 0 ? "the Kernel is unreachable: " + reply.error
                                                   : "the Kernel answered "
                                                       + std::to_string(reply.status)));
    }),
  };
}

} // namespace ap
