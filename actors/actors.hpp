#pragma once

// Every typed actor interface of the service. Read with atoms.hpp, this is
// the whole message protocol between actors.

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "actors/atoms.hpp"
#include "domain/checkout.hpp"
#include "domain/order.hpp"
#include "domain/payments.hpp"
#include "kernel/messages.hpp"
#include "domain/multisig.hpp"
#include "persistence/db_status.hpp"
#include "persistence/multisig_store.hpp"
#include "persistence/order_store.hpp"

namespace ap {

/// An HTTP-ready answer: the status and the exact body. Checkouts answer
/// with it so an idempotent replay returns the stored bytes unchanged.
struct http_answer {
  std::int32_t status = 0;
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_answer& x) {
  return f(caf::meta::type_name("http_answer"), x.status, x.body);
}

/// The database facade: the one handle through which actors reach
/// PostgreSQL. It spreads requests over detached workers, each owning one
/// connection, so no libpq call ever runs on a scheduler thread.
using database_actor = caf::typed_actor<
  // Round trip to PostgreSQL plus the schema version: readiness.
  caf::replies_to<atoms::ping_atom>::with<persistence::db_status>,
  // The catalog, sorted by SKU.
  caf::replies_to<atoms::catalog_atom>::with<std::vector<domain::catalog_item>>,
  // Records a checkout before its first external call, claiming its
  // Idempotency-Key if it has one (or finding the key bound already).
  caf::replies_to<atoms::begin_atom, persistence::checkout_begin>::with<persistence::claim_result>,
  // Stores an order with its items, outbox events and idempotency record,
  // and ends its unfinished checkout, in one transaction; idempotent:
  // answers true if this stored it, false if it was stored before.
  caf::replies_to<atoms::store_atom, domain::order_record>::with<bool>,
  // Ends an unfinished checkout without an order (order id, status, body
  // its key answers from now on); false if it was not unfinished.
  caf::replies_to<atoms::abandon_atom, std::string, std::int32_t, std::string>::with<bool>,
  // Decides to undo a captured checkout (order id, reason): "undo", "stored", "gone".
  caf::replies_to<atoms::undo_atom, std::string, std::string>::with<std::string>,
  // Leases overdue unfinished checkouts (instance id, older than ms, at most
  // n, lease in ms).
  caf::replies_to<atoms::overdue_atom, std::string, std::int32_t, std::int32_t,
                  std::int32_t>::with<std::vector<persistence::unfinished_checkout>>,
  // Unfinished checkouts: count and oldest age, for metrics.
  caf::replies_to<atoms::unfinished_atom>::with<persistence::unfinished_stats>,
  // Reads one document of an order (order id, "result"|"proof"|"license"|"delivery").
  caf::replies_to<atoms::get_atom, std::string, std::string>::with<std::string>,
  // Leases due outbox rows (instance id, at most n rows, lease in ms).
  caf::replies_to<atoms::lease_atom, std::string, std::int32_t,
                  std::int32_t>::with<std::vector<kernel::outbox_row>>,
  // Records delivery outcomes of leased rows.
  caf::replies_to<atoms::settle_atom, std::vector<kernel::delivery_outcome>>::with<bool>,
  // Pending count and ages, for metrics.
  caf::replies_to<atoms::stats_atom>::with<kernel::outbox_stats>,
  // Checks (or checks and records) one multisig step under the rules.
  caf::replies_to<atoms::multisig_atom, persistence::multisig_command>::with<persistence::multisig_outcome>>;

/// The part of the database the audit forwarder uses: the outbox. A
/// database_actor handle converts to it.
using outbox_actor = caf::typed_actor<
  caf::replies_to<atoms::lease_atom, std::string, std::int32_t,
                  std::int32_t>::with<std::vector<kernel::outbox_row>>,
  caf::replies_to<atoms::settle_atom, std::vector<kernel::delivery_outcome>>::with<bool>,
  caf::replies_to<atoms::stats_atom>::with<kernel::outbox_stats>>;

/// The upstream Kernel (SPEC §6): the HTTP client actor in production, the
/// in-process kernel actor with simulated latency and faults in tests.
using kernel_actor = caf::typed_actor<
  // Submits one audit event; the Kernel is idempotent by its event id.
  caf::replies_to<atoms::audit_atom, kernel::audit_submission>::with<kernel::audit_ack>,
  // Whether GET /health answers 200.
  caf::replies_to<atoms::health_atom>::with<bool>,
  // A raw call (method, target, JSON body, X-Applied-By): the upgrade routes.
  caf::replies_to<atoms::kcall_atom, std::string, std::string, std::string,
                  std::string>::with<kernel::kernel_reply>,
  // Internal: an exchange started by this actor completed (call id, reply).
  caf::reacts_to<atoms::kdone_atom, std::uint64_t, kernel::kernel_reply>>;

/// The timed audit forwarder: moves outbox rows into the Kernel's audit log
/// within the freshness budget, never dropping one.
using audit_forwarder_actor = caf::typed_actor<
  // New rows were committed: lease and forward them (after the gather window).
  caf::reacts_to<atoms::wake_atom>,
  // Rows committed already leased to this instance: forward them (after the
  // gather window) without leasing them.
  caf::reacts_to<atoms::handover_atom, std::vector<kernel::outbox_row>>,
  // The poll timer and the end of a gather window (the forwarder sends
  // both to itself).
  caf::reacts_to<atoms::tick_atom>, caf::reacts_to<atoms::gather_atom>>;

/// What storing a batch of orders came to: one outcome per order, in order
/// (no error: stored, now or before), and the ids of those stored before.
struct store_batch_outcome {
  std::vector<caf::error> errors;
  std::vector<std::string> stored_before;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_batch_outcome& x) {
  return f(caf::meta::type_name("store_batch_outcome"), x.errors, x.stored_before);
}

/// One database worker: a detached actor that owns one connection. The
/// facade's interface, to which the facade delegates, plus the batches into
/// which the facade gathers concurrent checkouts' records and stores.
using database_worker_actor = database_actor::extend<
  // Records several checkouts with one statement; one result each, in order.
  caf::replies_to<atoms::begin_atom, std::vector<persistence::checkout_begin>>::with<
    std::vector<persistence::claim_result>>,
  // Stores several orders in one transaction (group commit).
  caf::replies_to<atoms::store_atom, std::vector<domain::order_record>>::with<
    store_batch_outcome>>;

/// The payment processor (Stripe-like). Today the embedded mock. Errors
/// are `upstream_refused` when it definitely did nothing, and otherwise
/// leave the outcome in doubt (SPEC §9).
using payment_actor = caf::typed_actor<
  // Charges an order under its idempotency key; a decline is an answer
  // (status "declined"), not an error.
  caf::replies_to<atoms::charge_atom, domain::charge_request>::with<domain::charge_result>,
  // Refunds a captured charge whose sale was refused (payment id).
  caf::replies_to<atoms::void_atom, std::string>::with<bool>>;

/// The Stripe connector (SPEC §9): the payment actor over the processor's
/// REST API. Every exchange runs on its HTTP client's io thread and comes
/// back as a message; answers in doubt are retried under the same key.
using stripe_connector_actor = payment_actor::extend<
  // Internal: an exchange completed (exchange id, the HTTP reply).
  caf::reacts_to<atoms::pdone_atom, std::uint64_t, kernel::kernel_reply>,
  // Internal: the backoff before the next attempt of an exchange is over.
  caf::reacts_to<atoms::pretry_atom, std::uint64_t>>;

/// The finance ledger. Today the embedded mock. Idempotent by order id;
/// `upstream_refused` is a definite refusal.
using ledger_actor = caf::typed_actor<
  // Posts a balanced journal entry for a captured payment.
  caf::replies_to<atoms::post_atom, domain::journal_request>::with<domain::journal_entry>,
  // Reverses an entry whose sale was refused.
  caf::replies_to<atoms::reverse_atom, std::string>::with<bool>>;

/// How a checkout ended, for the client: the HTTP edge picks the status.
enum class checkout_outcome_kind : std::uint8_t {
  /// Completed now (201).
  completed,
  /// The payment was declined; the order is kept as payment_failed (402).
  payment_failed,
  /// Refused after the capture: refunded, kept as settlement_failed (502).
  settlement_failed,
  /// A definite refusal before any charge: no order (502).
  refused,
  /// The stored answer of an earlier request with the same Idempotency-Key.
  replayed,
};

/// A checkout's answer: its kind, its order, and the exact body (a replay
/// carries the status it was first answered with).
struct checkout_outcome {
  checkout_outcome_kind kind = checkout_outcome_kind::completed;
  std::string order_id;
  std::int32_t replay_status = 0;
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_outcome& x) {
  return f(caf::meta::type_name("checkout_outcome"), x.kind, x.order_id, x.replay_status,
           x.body);
}

/// The checkout pipeline (SPEC §4, §9): price, record, payment, ledger,
/// proof, license, delivery, and the one transaction that stores it all.
using checkout_actor = caf::typed_actor<
  // A validated request, its Idempotency-Key ("" for none) and the ids its
  // order gets (drawn by the caller, so even a lost answer can name it).
  caf::replies_to<atoms::checkout_atom, domain::checkout_request, std::string,
                  domain::order_ids>::with<checkout_outcome>,
  // Finishes a recorded checkout left unfinished (the reconciler's call).
  caf::replies_to<atoms::resume_atom, persistence::unfinished_checkout>::with<checkout_outcome>,
  // Internal: answers the checkouts past their deadline (it sends this to itself).
  caf::reacts_to<atoms::tick_atom>>;

/// The reconciler (SPEC §9): a timed actor that leases checkouts left
/// unfinished for RECONCILE_AFTER_MS on any instance and has each finished.
using reconciler_actor = caf::typed_actor<
  // The poll timer (it sends this to itself).
  caf::reacts_to<atoms::tick_atom>>;

/// Multisig upgrades (SPEC §7): every step checked by the service's rules,
/// then by the Kernel's, then recorded with its audit event.
using multisig_actor = caf::typed_actor<
  caf::replies_to<atoms::propose_atom, domain::upgrade_proposal>::with<http_answer>,
  // (upgrade id, approver, base64 signature)
  caf::replies_to<atoms::approve_atom, std::string, std::string, std::string>::with<http_answer>,
  caf::replies_to<atoms::apply_atom, std::string>::with<http_answer>,
  caf::replies_to<atoms::get_atom, std::string>::with<http_answer>,
  // The older one-shot shape: propose, approve in order, apply at quorum.
  caf::replies_to<atoms::oneshot_atom, domain::upgrade_proposal,
                  std::vector<domain::approval>>::with<http_answer>>;

/// The supervisor: spawns the domain actors, monitors them, and starts a
/// crashed one again after a backoff, counting each restart.
using supervisor_actor = caf::typed_actor<
  // Starts the named child again (the supervisor sends it to itself once
  // the backoff delay has passed).
  caf::reacts_to<atoms::restart_atom, std::string>>;

} // namespace ap
