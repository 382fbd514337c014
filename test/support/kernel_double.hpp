#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/actors.hpp"
#include "kernel/mock/audit_log.hpp"

namespace ap {

/// Faults of the in-process Kernel, changed by tests between steps.
struct kernel_faults {
  /// Added before every answer (simulated time under the test scheduler).
  std::chrono::milliseconds latency{0};
  /// Every call fails at once (an audit call as a whole, as when the Kernel
  /// client is down).
  bool outage = false;
  /// Audit events received, answered or not.
  std::uint64_t audit_calls = 0;
  /// The same by event id.
  std::map<std::string, int> submissions;
  /// The HTTP status the Kernel answers an event with instead of storing
  /// it, 0 to store it: the submission fails as the Kernel client fails it
  /// for that status (`audit_submission_error`), a refusal of the event
  /// (413, 422) or a failure that is retried (429, 500). None by default.
  std::function<std::int32_t(const domain::audit_event&)> answer_status;
  /// Rewrites each receipt before it is answered (a Kernel, or something
  /// in between, answering what it should not); none by default.
  std::function<kernel::audit_ack(kernel::audit_ack)> tamper;
  /// When each event's reply arrived (Unix ms), as the Kernel client
  /// reports it with the answer to the whole call; none, or 0: unknown.
  std::function<std::int64_t(const domain::audit_event&)> answered_at;
  /// Audit submissions are taken and never answered (a Kernel client that
  /// died with the calls in hand).
  bool silent = false;
  /// GET /kernel/keys fails (the audit answers do not).
  bool keys_down = false;
  /// Keys published beside the log's own (a Kernel that rotates its signer).
  std::vector<kernel::signer_key> also_published;
  /// Key reads answered so far (GET /kernel/keys, at once: the latency
  /// delays audit answers only).
  int key_reads = 0;
};

/// The in-process Kernel: the Kernel's interface, and the completion of a
/// delayed answer it sends itself.
using kernel_double_actor = interface<
  kernel_handlers, handlers<caf::reacts_to<atoms::kdone_atom, std::uint64_t>>>;

/// State of the in-process Kernel.
struct kernel_double_state {
  static constexpr const char* name = "kernel-double";
  std::shared_ptr<kernel::audit_log> log;
  std::shared_ptr<kernel_faults> faults;
  std::uint64_t next_call = 0;
  std::map<std::uint64_t, std::pair<caf::typed_response_promise<std::vector<kernel::audit_answer>>,
                                    std::vector<kernel::audit_answer>>>
    delayed;
};

/// The Kernel's audit logic as an actor, for actor tests: appends to `log`
/// at once (idempotent by event id) and answers its receipt after
/// `faults->latency`, or fails during an outage; publishes the log's signing
/// key as signer `log->signer_id()`. Upgrade steps are not served in process.
kernel_double_actor::behavior_type
kernel_double(kernel_double_actor::stateful_pointer<kernel_double_state> self,
              std::shared_ptr<kernel::audit_log> log, std::shared_ptr<kernel_faults> faults);

} // namespace ap
