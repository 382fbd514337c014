#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "actors/directory.hpp"
#include "core/metrics.hpp"
#include "domain/checkout.hpp"
#include "domain/delivery.hpp"
#include "domain/secret_versions.hpp"

namespace ap {

/// What the checkout actor works with.
struct checkout_config {
  /// The delivery master key (DELIVERY_KID of DELIVERY_KEYS): new
  /// deliveries are sealed with it and record its kid, unless `secrets`
  /// holds the delivery set.
  domain::delivery_master delivery;
  /// Every delivery key version and the active one, read at each checkout
  /// so that a rotation applied anywhere takes effect (SPEC §12). Null: only
  /// `delivery`.
  std::shared_ptr<const domain::secret_versions> secrets;
  /// Every checkout is answered within this (REQUEST_TIMEOUT_MS).
  std::chrono::milliseconds deadline{5000};
};

struct checkout_job;

/// Where a checkout is: each phase waits for one step's answer.
enum class checkout_phase {
  /// Validating against the catalog.
  pricing,
  /// Recording the checkout (and claiming its key) before any external call.
  recording,
  /// Waiting for the processor's charge.
  charging,
  /// Waiting for the ledger's entry.
  posting,
  /// Waiting for the proof actor's signature.
  signing,
  /// Waiting for the order's transaction.
  storing,
  /// Undoing a sale refused after its capture: decide, refund, reverse, store.
  undoing,
  /// Ended: answered with its outcome, or left in doubt to the reconciler.
  done,
};

/// Answers to the HTTP edge held for the checkout actor's next flush. Given
/// together when it comes, and as they are should the actor end first: a
/// checkout that finished is answered as finished, not as interrupted.
class held_answers {
public:
  held_answers() = default;
  held_answers(const held_answers&) = delete;
  held_answers& operator=(const held_answers&) = delete;
  ~held_answers() {
    try {
      give();
    } catch (...) {
      // Not given (out of memory): each reply left answers that the
      // checkout was interrupted, naming its order, as it goes.
    }
  }

  void hold(checkout_reply reply, caf::expected<checkout_outcome> answer) {
    items_.emplace_back(std::move(reply), std::move(answer));
  }

  /// Gives every answer held, in one hand-off to each destination.
  void give();

private:
  std::vector<std::pair<checkout_reply, caf::expected<checkout_outcome>>> items_;
};

/// State of the checkout actor.
struct checkout_state {
  static constexpr const char* name = "checkout";
  /// Loaded from PostgreSQL on first use; the catalog changes only by migration.
  std::optional<domain::catalog> catalog;
  /// Checkouts not answered yet, by arrival (which is also deadline order).
  std::map<std::uint64_t, std::shared_ptr<checkout_job>> unanswered;
  std::uint64_t next_job = 0;
  /// Whether a deadline sweep is scheduled.
  bool sweeping = false;
  /// Answers to the HTTP edge's checkouts and the outbox events of orders
  /// stored, held until the messages waiting when the first was held are
  /// handled (the answers of a database batch arrive in a row): then the
  /// answers reach the edge's io thread in one hand-off, waking it once
  /// instead of once each, and the events go to the forwarder in one message
  /// (events held when the actor ends are the forwarder's poll's once their
  /// lease runs out).
  held_answers answers;
  std::vector<domain::audit_event> handover;
  /// Whether a flush is on its way (behind the messages waiting then).
  bool flushing = false;
  /// `ap_checkouts_total` by outcome, looked up in the registry once per
  /// outcome rather than once per checkout.
  std::map<std::string, metrics::counter*, std::less<>> outcomes;
};

/// The checkout pipeline (SPEC §4, §9): prices the request, records the
/// checkout (claiming its Idempotency-Key) before anything external
/// happens, charges the payment under an idempotency key derived from that
/// record, posts the ledger entry, has the proof actor sign the proof, issues the license,
/// seals the delivery, and stores it all with its outbox events in one
/// transaction that also ends the record.
///
/// In doubt, roll forward: a step whose outcome is not known (a timeout, a
/// lost reply, a dropped connection) undoes nothing. The client is answered
/// with the order id, and the checkout stays recorded until the reconciler
/// finishes it with the same ids. Only a definite refusal after the capture
/// undoes the sale, and only once that decision is recorded: refund,
/// reverse, and a settlement_failed order with its audit event.
///
/// Each checkout has one deadline (`checkout_config::deadline`), not one
/// timer per step: a sweep a few times a second answers the overdue ones
/// with a timeout naming the order. The steps go on after that: a late
/// charge is followed by its entry and its order, which the client then
/// finds by its id or its Idempotency-Key.
checkout_actor::behavior_type checkout(checkout_actor::stateful_pointer<checkout_state> self,
                                       checkout_config cfg, actor_directory* directory,
                                       metrics::registry* registry);

} // namespace ap
