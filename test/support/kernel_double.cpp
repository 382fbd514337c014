#include "test/support/kernel_double.hpp"

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/kernel_client.hpp"
#include "core/json.hpp"

namespace ap {

namespace {

// The Kernel's answer to one event: stored in the log and its receipt, or
// the scripted failure.
kernel::audit_answer answer(kernel_double_state& st, const domain::audit_event& sub) {
  if (auto status = st.faults->answer_status ? st.faults->answer_status(sub) : 0; status != 0)
    return {{}, audit_submission_error({status, R"({"error":"scripted","message":"scripted answer"})", {}, true})};
  rapidjson::Document payload;
  if (json::parse_strict(sub.payload, payload) || !payload.IsObject())
    return {{}, make_error(error_code::invalid_input, "payload must be a JSON object")};
  auto appended = st.log->append(sub.event_type, payload, sub.event_id, "artifact-publisher", "simulated");
  const auto& e = *appended.event;
  kernel::audit_ack ack{e.id, e.event_id, e.hash, e.prev_hash, e.signature, e.signer_id, e.ts};
  if (st.faults->tamper)
    ack = st.faults->tamper(std::move(ack));
  return {std::move(ack), {}, st.faults->answered_at ? st.faults->answered_at(sub) : 0};
}

} // namespace

kernel_double_actor::behavior_type
kernel_double(kernel_double_actor::stateful_pointer<kernel_double_state> self,
              std::shared_ptr<kernel::audit_log> log, std::shared_ptr<kernel_faults> faults) {
  self->state.log = std::move(log);
  self->state.faults = std::move(faults);
  return {
    [self](atoms::audit_atom, const std::vector<domain::audit_event>& subs)
      -> caf::result<std::vector<kernel::audit_answer>> {
      auto& st = self->state;
      st.faults->audit_calls += subs.size();
      for (const auto& sub : subs)
        ++st.faults->submissions[sub.event_id];
      if (st.faults->outage)
        return make_error(error_code::upstream_unavailable, "the Kernel is down (simulated)");
      if (st.faults->silent)
        return self->make_response_promise<std::vector<kernel::audit_answer>>();  // never delivered
      std::vector<kernel::audit_answer> answers;
      answers.reserve(subs.size());
      for (const auto& sub : subs)
        answers.push_back(answer(st, sub));
      if (st.faults->latency.count() == 0)
        return answers;
      auto id = st.next_call++;
      auto promise = self->make_response_promise<std::vector<kernel::audit_answer>>();
      st.delayed.emplace(id, std::make_pair(promise, std::move(answers)));
      self->delayed_send(self, st.faults->latency, atoms::kdone_atom::value, id);
      return promise;
    },
    [self](atoms::health_atom) { return !self->state.faults->outage; },
    [self](atoms::keys_atom) -> caf::result<std::vector<kernel::signer_key>> {
      auto& st = self->state;
      if (st.faults->outage || st.faults->keys_down)
        return make_error(error_code::upstream_unavailable, "the Kernel is down (simulated)");
      ++st.faults->key_reads;
      std::vector<kernel::signer_key> keys{{st.log->signer_id(), st.log->public_key()}};
      keys.insert(keys.end(), st.faults->also_published.begin(), st.faults->also_published.end());
      return keys;
    },
    [](atoms::upgrade_atom, const kernel::upgrade_call&) -> caf::result<kernel::upgrade_ack> {
      // Upgrades are served by the kernel-mock process, not in process.
      return make_error(error_code::upstream_unavailable, "no upgrade steps in process");
    },
    [self](atoms::kdone_atom, std::uint64_t id) {
      auto& delayed = self->state.delayed;
      if (auto it = delayed.find(id); it != delayed.end()) {
        it->second.first.deliver(it->second.second);
        delayed.erase(it);
      }
    },
  };
}

} // namespace ap
