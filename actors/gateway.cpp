#include "actors/gateway.hpp"

#include <caf/send.hpp>

#include "actors/ask.hpp"
#include "actors/directory.hpp"
#include "actors/errors.hpp"

namespace ap {

gateway::gateway(caf::actor_system& system, actor_directory& directory,
                 std::chrono::milliseconds catalog_refresh)
  : system_(&system),
    directory_(&directory),
    database_probe_(probe_freshness),
    kernel_probe_(probe_freshness),
    catalog_cache_(catalog_refresh) {
}

void gateway::database_status(std::chrono::milliseconds timeout,
                              callback<persistence::db_status> done) const {
  ask<persistence::db_status>(*system_, directory_->database(), timeout, std::move(done),
                              atoms::ping_atom::value);
}

void gateway::kernel_health(std::chrono::milliseconds timeout, callback<bool> done) const {
  ask<bool>(*system_, directory_->kernel(), timeout, std::move(done), atoms::health_atom::value);
}

void gateway::probed_database_status(std::chrono::milliseconds timeout,
                                     callback<persistence::db_status> done) const {
  database_probe_.get(
    [this, timeout](std::function<void(caf::expected<persistence::db_status>)> arrived) {
      database_status(timeout, std::move(arrived));
    },
    std::move(done));
}

void gateway::probed_kernel_health(std::chrono::milliseconds timeout, callback<bool> done) const {
  kernel_probe_.get(
    [this, timeout](std::function<void(caf::expected<bool>)> arrived) {
      kernel_health(timeout, std::move(arrived));
    },
    std::move(done));
}

void gateway::verify_proof(std::string proof, std::string payload,
                           std::chrono::milliseconds timeout,
                           callback<domain::verification> done) const {
  ask<domain::verification>(*system_, directory_->proof(), timeout, std::move(done),
                            atoms::verify_atom::value, std::move(proof), std::move(payload));
}

void gateway::proof_keys(std::chrono::milliseconds timeout, callback<std::string> done) const {
  ask<std::string>(*system_, directory_->proof(), timeout, std::move(done),
                   atoms::pubkeys_atom::value);
}

void gateway::catalog(std::chrono::milliseconds timeout,
                      callback<std::vector<domain::catalog_item>> done) const {
  ask<std::vector<domain::catalog_item>>(*system_, directory_->database(), timeout,
                                         std::move(done), atoms::catalog_atom::value);
}

void gateway::cached_catalog(std::chrono::milliseconds timeout,
                             callback<std::vector<domain::catalog_item>> done) const {
  using items = std::vector<domain::catalog_item>;
  catalog_cache_.get(
    [this, timeout](std::function<void(caf::expected<items>)> arrived) {
      catalog(timeout, [last = last_catalog_, arrived](caf::expected<items> read) {
        std::unique_lock<std::mutex> lock{last->mutex};
        if (read)
          last->items = *read;
        else if (last->items)
          read = *last->items;
        lock.unlock();
        arrived(std::move(read));
      });
    },
    std::move(done));
}

void gateway::order_part(std::string order_id, persistence::order_part part,
                         std::chrono::milliseconds timeout, callback<std::string> done) const {
  ask<std::string>(*system_, directory_->database(), timeout, std::move(done),
                   atoms::get_atom::value, std::move(order_id), part);
}

void gateway::checkout(domain::checkout_request request, std::string idempotency_key,
                       domain::order_ids ids, callback<checkout_outcome> done) const {
  auto order_id = ids.order_id;
  // Answered through the reply, not a request: the checkout actor answers
  // every checkout within its own deadline, and a reply it drops unanswered
  // (it died) answers request_receiver_down.
  checkout_reply reply{
    [done = std::move(done), order_id](caf::expected<checkout_outcome> outcome) {
      if (!outcome && outcome.error() == caf::sec::request_receiver_down)
        return done(make_order_error(error_code::database_unavailable,
                                     "the checkout was interrupted; if it was recorded it will "
                                     "be finished: follow order " + order_id,
                                     order_id));
      done(std::move(outcome));
    }};
  auto dest = directory_->checkout();
  if (!dest)
    return reply(make_error(error_code::internal, "actor not started"));
  caf::anon_send(dest, atoms::checkout_atom::value, std::move(request),
                 std::move(idempotency_key), std::move(ids), std::move(reply));
}

void gateway::propose(domain::upgrade_proposal proposal, std::chrono::milliseconds timeout,
                      callback<domain::upgrade_record> done) const {
  ask<domain::upgrade_record>(*system_, directory_->multisig(), timeout, std::move(done),
                              atoms::propose_atom::value, std::move(proposal));
}

void gateway::approve(std::string upgrade_id, std::string approver, std::string signature,
                      std::chrono::milliseconds timeout,
                      callback<domain::upgrade_record> done) const {
  ask<domain::upgrade_record>(*system_, directory_->multisig(), timeout, std::move(done),
                              atoms::approve_atom::value, std::move(upgrade_id),
                              std::move(approver), std::move(signature));
}

void gateway::apply(std::string upgrade_id, std::chrono::milliseconds timeout,
                    callback<domain::upgrade_record> done) const {
  ask<domain::upgrade_record>(*system_, directory_->multisig(), timeout, std::move(done),
                              atoms::apply_atom::value, std::move(upgrade_id));
}

void gateway::upgrade(std::string upgrade_id, std::chrono::milliseconds timeout,
                      callback<domain::upgrade_record> done) const {
  ask<domain::upgrade_record>(*system_, directory_->multisig(), timeout, std::move(done),
                              atoms::get_atom::value, std::move(upgrade_id));
}

void gateway::oneshot(domain::upgrade_proposal proposal, std::vector<domain::approval> approvals,
                      std::chrono::milliseconds timeout,
                      callback<domain::upgrade_record> done) const {
  ask<domain::upgrade_record>(*system_, directory_->multisig(), timeout, std::move(done),
                              atoms::oneshot_atom::value, std::move(proposal),
                              std::move(approvals));
}

} // namespace ap
