#include "actors/multisig.hpp"

#include <algorithm>

#include <caf/actor_cast.hpp>
#include <caf/send.hpp>

#include "actors/metering.hpp"

#include "actors/errors.hpp"
#include "core/crypto.hpp"
#include "core/time.hpp"
#include "core/log.hpp"

namespace ap {

namespace {

/// Each database step and each Kernel call has its own bound.
constexpr auto multisig_db_timeout = std::chrono::seconds{3};
constexpr auto multisig_kernel_timeout = std::chrono::seconds{6};

using self_ptr = multisig_actor::stateful_pointer<multisig_state>;
using promise_t = caf::typed_response_promise<domain::upgrade_record>;
using next_fn = std::function<void(domain::upgrade_record)>;

struct context {
  self_ptr self;
  std::shared_ptr<multisig_config> cfg;
  actor_directory* directory;
};

// Refusals (the service's rules, the Kernel's) and a database that is
// unavailable reach the client as they are; a step that timed out is a
// timeout; anything else is logged and answered as an upstream failure.
void fail(promise_t promise, const caf::error& err) {
  if (err == caf::sec::request_timeout)
    return (void) promise.deliver(make_error(error_code::timeout, "a step of the upgrade timed out"));
  if (err.category() == error_category()
      && err.code() != static_cast<std::uint8_t>(error_code::internal))
    return (void) promise.deliver(err);
  log::error("multisig step failed", {{"actor", "multisig"}, {"error", caf::to_string(err)}});
  promise.deliver(make_error(error_code::upstream_unavailable, "the step could not be completed"));
}

// Runs one step in the upgrade store; refusals answer the client, success
// continues with `next`.
void db_step(const context& ctx, persistence::upgrade_step step, promise_t promise,
             next_fn next) {
  step.now_ms = step.now_ms ? step.now_ms : ctx.cfg->now_ms();
  upgrade_store_actor store = ctx.directory->database();
  ctx.self->request(store, multisig_db_timeout, atoms::multisig_atom::value, std::move(step))
    .then([next](domain::upgrade_record& r) mutable { next(std::move(r)); },
          [promise](caf::error& e) mutable { fail(promise, e); });
}

// Whether a Kernel step that failed with `e` may have been taken all the
// same: its reply lost or unreadable (the request was sent), or a 409 from a
// Kernel that holds the step already (an earlier attempt whose reply, or
// whose local write, was lost).
bool outcome_unknown(const caf::error& e) {
  if (e == caf::sec::request_timeout)
    return true;
  if (e.category() != error_category())
    return false;
  auto code = static_cast<error_code>(e.code());
  return code == error_code::upstream_unavailable || code == error_code::timeout
         || code == error_code::conflict;
}

// Whether the Kernel's record shows `call` taken.
bool taken(const kernel::upgrade_call& call, const kernel::upgrade_ack& held) {
  switch (call.kind) {
    case kernel::upgrade_call_kind::propose:
      return held.payload_hash == call.upgrade.payload_hash;
    case kernel::upgrade_call_kind::approve:
      return std::find(held.approvers.begin(), held.approvers.end(), call.approver)
             != held.approvers.end();
    case kernel::upgrade_call_kind::apply:
      return held.status == "applied" && held.applied_at_ms > 0;
    case kernel::upgrade_call_kind::read:
      return true;
  }
  return false;
}

const char* step_name(kernel::upgrade_call_kind kind) {
  switch (kind) {
    case kernel::upgrade_call_kind::propose:
      return "propose";
    case kernel::upgrade_call_kind::approve:
      return "approve";
    case kernel::upgrade_call_kind::apply:
      return "apply";
    case kernel::upgrade_call_kind::read:
      return "read";
  }
  return "?";
}

// Has the Kernel take the step; its refusal is passed on. When the outcome
// is unknown, the Kernel's record decides (SPEC §9: in doubt, find out and
// roll forward): a step the Kernel holds is recorded here as taken, with
// the Kernel's appliedAt; one it does not hold fails as it failed, to be
// sent again.
void kernel_step(const context& ctx, kernel::upgrade_call call, promise_t promise,
                 std::function<void(kernel::upgrade_ack)> next) {
  auto sent = call;
  ctx.self->request(ctx.directory->kernel(), multisig_kernel_timeout, atoms::upgrade_atom::value,
                    std::move(call))
    .then([next](kernel::upgrade_ack& ack) mutable { next(ack); },
          [ctx, sent, promise, next](caf::error& e) mutable {
            if (!outcome_unknown(e))
              return fail(promise, e);
            kernel::upgrade_call read;
            read.kind = kernel::upgrade_call_kind::read;
            read.upgrade.upgrade_id = sent.upgrade.upgrade_id;
            ctx.self->request(ctx.directory->kernel(), multisig_kernel_timeout,
                              atoms::upgrade_atom::value, std::move(read))
              .then(
                [sent, promise, next, e](kernel::upgrade_ack& held) mutable {
                  if (!taken(sent, held))
                    return fail(promise, e);
                  log::warn("the Kernel had taken an upgrade step whose outcome was unknown;"
                            " recorded as taken",
                            {{"actor", "multisig"}, {"upgradeId", sent.upgrade.upgrade_id},
                             {"step", step_name(sent.kind)}, {"error", caf::to_string(e)}});
                  next(held);
                },
                [promise, e](caf::error&) mutable { fail(promise, e); });
          });
}

void propose(const context& ctx, domain::upgrade_proposal p, promise_t promise, next_fn done) {
  persistence::upgrade_step check;
  check.op = persistence::upgrade_op::propose;
  check.proposal = p;
  auto run = [ctx, check, promise, done]() mutable {
    db_step(ctx, check, promise, [ctx, check, promise, done](domain::upgrade_record r) mutable {
      kernel::upgrade_call call;
      call.kind = kernel::upgrade_call_kind::propose;
      call.upgrade = std::move(r);
      kernel_step(ctx, std::move(call), promise,
                  [ctx, check, promise, done](kernel::upgrade_ack) mutable {
                    check.record = true;
                    db_step(ctx, check, promise, done);
                  });
    });
  };
  if (p.kind != "secret-rotation")
    return run();
  // The approvers sign exactly which key (binaryHash names its public key),
  // and every instance must be able to sign with it once applied.
  ctx.self->request(ctx.directory->proof(), multisig_db_timeout, atoms::rotation_atom::value,
                    p.version, p.binary_hash)
    .then([run](bool) mutable { run(); },
          [promise](caf::error& e) mutable { fail(promise, e); });
}

void approve(const context& ctx, const std::string& id, const std::string& approver,
             const std::string& signature, promise_t promise, next_fn done) {
  persistence::upgrade_step check;
  check.op = persistence::upgrade_op::approve;
  check.upgrade_id = id;
  check.approver = approver;
  check.signature = signature;
  auto write = check;
  write.record = true;
  db_step(ctx, check, promise, [ctx, write, promise, done](domain::upgrade_record r) mutable {
    kernel::upgrade_call call;
    call.kind = kernel::upgrade_call_kind::approve;
    call.upgrade = std::move(r);
    call.approver = write.approver;
    call.signature = write.signature;
    kernel_step(ctx, std::move(call), promise,
                [ctx, write, promise, done](kernel::upgrade_ack) mutable {
                  db_step(ctx, write, promise, done);
                });
  });
}

// Applies in the Kernel, which answers appliedAt, then records it.
void apply_in_kernel(const context& ctx, const persistence::upgrade_step& check,
                     kernel::upgrade_call call, promise_t promise, next_fn done) {
  kernel_step(ctx, std::move(call), promise,
              [ctx, check, promise, done](kernel::upgrade_ack ack) mutable {
                // appliedAt comes from the Kernel.
                auto write = check;
                write.record = true;
                write.applied_at_ms = ack.applied_at_ms;
                db_step(ctx, write, promise, [ctx, done](domain::upgrade_record r) mutable {
                  // Stored as the active kid already: this instance
                  // switches now, the others within a poll.
                  if (r.proposal.kind == "secret-rotation")
                    caf::anon_send(ctx.directory->proof(), atoms::activate_atom::value,
                                   r.proposal.version);
                  done(std::move(r));
                });
              });
}

void apply(const context& ctx, const std::string& id, promise_t promise, next_fn done) {
  persistence::upgrade_step check;
  check.op = persistence::upgrade_op::apply;
  check.upgrade_id = id;
  check.applied_by = ctx.cfg->applied_by;
  db_step(ctx, check, promise, [ctx, check, promise, done](domain::upgrade_record r) mutable {
    kernel::upgrade_call call;
    call.kind = kernel::upgrade_call_kind::apply;
    call.applied_by = check.applied_by;
    if (r.proposal.kind == "secret-rotation") {
      // Checked again: an instance may have started or changed its
      // secrets since the proposal, and none may be left without the
      // version it is about to use.
      auto version = r.proposal.version;
      auto commitment = r.proposal.binary_hash;
      call.upgrade = std::move(r);
      ctx.self->request(ctx.directory->proof(), multisig_db_timeout, atoms::rotation_atom::value,
                        std::move(version), std::move(commitment))
        .then(
          [ctx, check, promise, done, call](bool) mutable {
            apply_in_kernel(ctx, check, std::move(call), promise, done);
          },
          [promise](caf::error& e) mutable { fail(promise, e); });
      return;
    }
    call.upgrade = std::move(r);
    apply_in_kernel(ctx, check, std::move(call), promise, done);
  });
}

// Answers with the record.
next_fn answer_with(promise_t promise) {
  return [promise](domain::upgrade_record r) mutable { promise.deliver(std::move(r)); };
}

// The one-shot route: approvals one after another, stopping at the first
// refusal; applies once the threshold is met.
void oneshot_approvals(const context& ctx, std::shared_ptr<std::vector<domain::approval>> approvals,
                       std::size_t index, domain::upgrade_record record, promise_t promise) {
  auto finish = answer_with(promise);
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
    metered(ctx.self, meter_, [ctx](atoms::propose_atom, domain::upgrade_proposal& p) -> caf::result<domain::upgrade_record> {
      auto promise = ctx.self->make_response_promise<domain::upgrade_record>();
      propose(ctx, std::move(p), promise, answer_with(promise));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::approve_atom, const std::string& id, const std::string& approver,
          const std::string& signature) -> caf::result<domain::upgrade_record> {
      auto promise = ctx.self->make_response_promise<domain::upgrade_record>();
      approve(ctx, id, approver, signature, promise, answer_with(promise));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::apply_atom, const std::string& id) -> caf::result<domain::upgrade_record> {
      auto promise = ctx.self->make_response_promise<domain::upgrade_record>();
      apply(ctx, id, promise, answer_with(promise));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::get_atom, const std::string& id) -> caf::result<domain::upgrade_record> {
      auto promise = ctx.self->make_response_promise<domain::upgrade_record>();
      persistence::upgrade_step cmd;
      cmd.op = persistence::upgrade_op::get;
      cmd.upgrade_id = id;
      db_step(ctx, cmd, promise, answer_with(promise));
      return promise;
    }),
    metered(ctx.self, meter_, [ctx](atoms::oneshot_atom, domain::upgrade_proposal& p,
          std::vector<domain::approval>& approvals) -> caf::result<domain::upgrade_record> {
      auto promise = ctx.self->make_response_promise<domain::upgrade_record>();
      auto list = std::make_shared<std::vector<domain::approval>>(std::move(approvals));
      auto id = domain::upgrade_id_for(domain::upgrade_payload_hash(p));
      auto continue_with = [ctx, list, promise](domain::upgrade_record r) mutable {
        auto already = r.approvals.size();
        oneshot_approvals(ctx, list, already, std::move(r), promise);
      };
      // An upgrade proposed before is continued rather than refused.
      persistence::upgrade_step get;
      get.op = persistence::upgrade_op::get;
      get.upgrade_id = id;
      get.now_ms = ctx.cfg->now_ms();
      upgrade_store_actor store = ctx.directory->database();
      ctx.self->request(store, multisig_db_timeout, atoms::multisig_atom::value, get)
        .then(
          [continue_with](domain::upgrade_record& r) mutable { continue_with(std::move(r)); },
          [ctx, p, promise, continue_with](caf::error& e) mutable {
            if (e.category() == error_category()
                && e.code() == static_cast<std::uint8_t>(error_code::not_found))
              return propose(ctx, p, promise, continue_with);
            fail(promise, e);
          });
      return promise;
    }),
  };
}

} // namespace ap
