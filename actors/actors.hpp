#pragma once

// Every typed actor interface of the service. Read with atoms.hpp, this is
// the whole message protocol between actors: each handler below names its
// atom, its arguments and its answer, and each message type is included
// here from the domain it belongs to.
//
// The interfaces are composed from small lists of handlers (one per
// concern) without instantiating CAF's typed actor machinery: a unit that
// only names a handle needs nothing heavier than this header. Units that
// define an actor, or hold a handle by value, include <caf/typed_actor.hpp>.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/detail/type_list.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/sec.hpp>
#include <caf/replies_to.hpp>

#include "actors/atoms.hpp"
#include "domain/audit.hpp"          // audit_event, forwarding_outcome, outbox_stats
#include "domain/checkout.hpp"       // checkout_request, catalog_item
#include "domain/multisig.hpp"       // upgrade_proposal, approval, upgrade_record
#include "domain/order.hpp"          // order_record, order_ids, checkout_outcome_kind
#include "domain/payments.hpp"       // charge_request/_result, journal_request/_entry
#include "domain/proof.hpp"          // signed_proof, verification
#include "kernel/messages.hpp"       // audit_ack, signer_key, upgrade_call, upgrade_ack
#include "upstream/reply.hpp"        // reply
#include "persistence/db_status.hpp" // db_status
#include "persistence/multisig_store.hpp" // upgrade_step
#include "persistence/order_store.hpp"    // checkout_begin, claim_result, stored_order, …
#include "persistence/retention_store.hpp" // retention_table, purge_terms, purge_outcome

namespace ap {

namespace detail {

template <class... Lists>
struct compose;

template <class... Sigs>
struct compose<caf::detail::type_list<Sigs...>> {
  using type = caf::typed_actor<Sigs...>;
};

template <class... As, class... Bs, class... Rest>
struct compose<caf::detail::type_list<As...>, caf::detail::type_list<Bs...>, Rest...>
  : compose<caf::detail::type_list<As..., Bs...>, Rest...> {};

} // namespace detail

/// The handlers of one concern, to compose interfaces from.
template <class... Sigs>
using handlers = caf::detail::type_list<Sigs...>;

/// A typed actor interface made of the handlers of several concerns.
template <class... Handlers>
using interface = typename detail::compose<Handlers...>::type;

template <class... Ts>
using replies = caf::replies_to<Ts...>;

// --- the database --------------------------------------------------------------

/// Readiness.
using db_status_handlers = handlers<
  // A round trip to PostgreSQL and the schema version.
  replies<atoms::ping_atom>::with<persistence::db_status>>;

/// Unfinished checkouts and reads of orders: what the facade passes to a
/// worker as it comes.
using order_record_handlers = handlers<
  // The catalog, sorted by SKU.
  replies<atoms::catalog_atom>::with<std::vector<domain::catalog_item>>,
  // Ends an unfinished checkout without an order (order id, the body its
  // key answers from now on); false if it was not unfinished.
  replies<atoms::abandon_atom, std::string, std::string>::with<bool>,
  // Decides to undo a captured checkout (order id, reason).
  replies<atoms::undo_atom, std::string, std::string>::with<persistence::undo_decision>,
  // Leases checkouts unfinished for longer than the given milliseconds.
  replies<atoms::overdue_atom, persistence::lease_terms,
          std::int32_t>::with<std::vector<persistence::unfinished_checkout>>,
  // Unfinished checkouts: count and oldest age, for metrics.
  replies<atoms::unfinished_atom>::with<persistence::unfinished_stats>,
  // Reads one document of an order (order id, which part). Errors:
  // not_found; processing (recorded, not finished yet).
  replies<atoms::get_atom, std::string, persistence::order_part>::with<std::string>>;

/// The order store as the checkout sees it: one checkout at a time (the
/// facade gathers them into batches).
using order_store_handlers = handlers<
  // Records a checkout before its first external call, claiming its
  // Idempotency-Key if it has one (or finding the key bound already).
  replies<atoms::begin_atom, persistence::checkout_begin>::with<persistence::claim_result>,
  // Stores an order with its items, audit events and idempotency record,
  // and ends its unfinished checkout, in one transaction; idempotent.
  replies<atoms::store_atom, domain::order_record>::with<persistence::stored_order>>;

/// The transactional outbox of audit events (SPEC §6).
using outbox_handlers = handlers<
  // Leases due events (oldest first).
  replies<atoms::lease_atom, persistence::lease_terms>::with<std::vector<domain::audit_event>>,
  // Extends this instance's leases on events still on their way to the
  // Kernel (lease terms, event ids); answers how many it extended.
  replies<atoms::renew_atom, persistence::lease_terms,
          std::vector<std::string>>::with<std::int32_t>,
  // Records how forwarding leased events ended.
  replies<atoms::settle_atom, std::vector<domain::forwarding_outcome>>::with<bool>,
  // Pending count and ages, for metrics.
  replies<atoms::stats_atom>::with<domain::outbox_stats>>;

/// Retention: completed idempotency keys and delivered outbox rows past
/// their retention period, purged in batches (the janitor's calls).
using retention_handlers = handlers<
  // Deletes one batch in a short transaction of its own; `locked_out` when
  // another instance holds the retention lock (nothing deleted).
  replies<atoms::purge_atom, persistence::purge_terms>::with<persistence::purge_outcome>,
  // Age in seconds of the oldest row of the purgeable kind kept (0: none).
  replies<atoms::retained_atom, persistence::retention_table>::with<std::int64_t>,
  // Vacuums the two queue tables, whose rows are inserted and deleted
  // thousands of times a second (persistence::vacuum_queues).
  replies<atoms::vacuum_atom>::with<bool>>;

/// The stored multisig upgrades (SPEC §7).
using upgrade_store_handlers = handlers<
  // Checks (or checks and records) one step under the rules; a refusal is
  // an error whose name is the rule's reason.
  replies<atoms::multisig_atom, persistence::upgrade_step>::with<domain::upgrade_record>>;

/// Every instance's key set and the active version of each secret set (SPEC
/// §11, §12), so that a rotation applied anywhere reaches every instance.
using proof_key_handlers = handlers<
  // Records this instance's key set (instance id, canonical `{kid:
  // commitment}`) and answers the latest applied rotation of each set as
  // its version (`v2`, `delivery:d2`); empty before any.
  replies<atoms::keyset_atom, std::string, std::string>::with<std::vector<std::string>>,
  // What stands against a rotation to a kid on the instances seen within the
  // given milliseconds (kid, commitment): one line per instance without that
  // kid or with another key for it; empty when every one has it.
  replies<atoms::rotation_atom, std::string, std::string,
          std::int32_t>::with<std::vector<std::string>>>;

/// The key sets, as the proof actor uses them. A database_actor converts to it.
using proof_store_actor = interface<proof_key_handlers>;

/// Retention, as the janitor uses it. A database_actor converts to it.
using retention_store_actor = interface<retention_handlers>;

/// The outbox, as the audit forwarder uses it. A database_actor converts to it.
using outbox_actor = interface<outbox_handlers>;

/// The upgrade store, as the multisig actor uses it.
using upgrade_store_actor = interface<upgrade_store_handlers>;

/// The database facade: the one handle through which actors reach
/// PostgreSQL. It spreads requests over detached workers, each owning one
/// connection, so no libpq call ever runs on a scheduler thread.
using database_actor = interface<db_status_handlers, order_record_handlers, order_store_handlers,
                                 outbox_handlers, upgrade_store_handlers, proof_key_handlers,
                                 retention_handlers,
                                 // Its own timer: the wait for a batch's stores ended.
                                 handlers<caf::reacts_to<atoms::gather_atom>>>;

/// What storing a batch of orders came to: one entry per order, in order:
/// an error, or what storing it came to.
struct store_batch_outcome {
  std::vector<caf::error> errors;
  std::vector<persistence::stored_order> stored;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_batch_outcome& x) {
  return f(caf::meta::type_name("store_batch_outcome"), x.errors, x.stored);
}

/// What a batch of checkout records and a batch of stores sent together
/// came to: the records' results in order (or one error for all of them)
/// and the stores' outcome.
struct checkout_batch_outcome {
  caf::error begin_error;
  std::vector<persistence::claim_result> claims;
  store_batch_outcome stores;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_batch_outcome& x) {
  return f(caf::meta::type_name("checkout_batch_outcome"), x.begin_error, x.claims, x.stores);
}

/// One database worker: a detached actor that owns one connection. It
/// answers what the facade passes on as it comes, and the batches into
/// which the facade gathers concurrent checkouts' records and stores.
using database_worker_actor = interface<
  db_status_handlers, order_record_handlers, outbox_handlers, upgrade_store_handlers,
  proof_key_handlers, retention_handlers,
  handlers<
    // Records several checkouts with one statement; one result each, in order.
    replies<atoms::begin_atom, std::vector<persistence::checkout_begin>>::with<
      std::vector<persistence::claim_result>>,
    // Stores several orders in one transaction (group commit).
    replies<atoms::store_atom, std::vector<domain::order_record>>::with<store_batch_outcome>,
    // Both at once, in one transaction when both can be written.
    replies<atoms::begin_atom, std::vector<persistence::checkout_begin>,
            std::vector<domain::order_record>>::with<checkout_batch_outcome>>>;

// --- upstreams -------------------------------------------------------------------

/// The upstream Kernel (SPEC §6, §7): the HTTP client actor in production,
/// an in-process double in tests.
using kernel_handlers = handlers<
  // Submits audit events, each in its own request, all at once; the Kernel
  // is idempotent by event id. Answers once every request has ended, one
  // answer per event in their order (one message for the lot, so a batch
  // of events wakes its sender once). Any 2xx answer is an ack, with what
  // it carries: checking that it is a receipt of the event is the caller's
  // part (SPEC §11).
  replies<atoms::audit_atom, std::vector<domain::audit_event>>::with<
    std::vector<kernel::audit_answer>>,
  // Whether GET /health answers 200.
  replies<atoms::health_atom>::with<bool>,
  // The Kernel's published signing keys (GET /kernel/keys), the usable
  // Ed25519 ones.
  replies<atoms::keys_atom>::with<std::vector<kernel::signer_key>>,
  // Takes one upgrade step. A refusal is an error named "kernel_refused".
  replies<atoms::upgrade_atom, kernel::upgrade_call>::with<kernel::upgrade_ack>>;

using kernel_actor = interface<kernel_handlers>;

/// The Kernel client: the Kernel's interface over HTTP.
using kernel_client_actor = interface<
  kernel_handlers,
  handlers<
    // Internal: an exchange started by this actor completed (call id, reply).
    caf::reacts_to<atoms::kdone_atom, std::uint64_t, upstream::reply>,
    // Internal: every exchange of a call of several ended (replies in order,
    // and when each arrived, in wall-clock Unix ms).
    caf::reacts_to<atoms::kdone_atom, std::uint64_t, std::vector<upstream::reply>,
                   std::vector<std::int64_t>>>>;

/// The payment processor (Stripe-like). Errors are `upstream_refused` when
/// it definitely did nothing, and otherwise leave the outcome in doubt
/// (SPEC §9).
using payment_handlers = handlers<
  // Charges an order under its idempotency key; a decline is an answer
  // (status "declined"), not an error.
  replies<atoms::charge_atom, domain::charge_request>::with<domain::charge_result>,
  // Refunds a captured charge whose sale was refused (payment id).
  replies<atoms::void_atom, std::string>::with<bool>>;

using payment_actor = interface<payment_handlers>;

/// The Stripe connector (SPEC §9): the payment actor over the processor's
/// REST API. Every exchange runs on its HTTP client's io thread and comes
/// back as a message; answers in doubt are retried under the same key.
using stripe_connector_actor = interface<
  payment_handlers,
  handlers<
    // Internal: an exchange completed (exchange id, the HTTP reply).
    caf::reacts_to<atoms::pdone_atom, std::uint64_t, upstream::reply>,
    // Internal: the backoff before the next attempt of an exchange is over.
    caf::reacts_to<atoms::pretry_atom, std::uint64_t>>>;

/// The finance ledger. Today the embedded mock. Idempotent by order id;
/// `upstream_refused` is a definite refusal.
using ledger_actor = interface<handlers<
  // Posts a balanced journal entry for a captured payment.
  replies<atoms::post_atom, domain::journal_request>::with<domain::journal_entry>,
  // Reverses an entry whose sale was refused.
  replies<atoms::reverse_atom, std::string>::with<bool>>>;

// --- the domain actors -------------------------------------------------------------

/// A checkout's answer: how it ended, whether it replays an earlier request
/// with the same Idempotency-Key, its order (empty for a replay) and the
/// exact body. The HTTP edge picks the status from the kind.
struct checkout_outcome {
  domain::checkout_outcome_kind kind = domain::checkout_outcome_kind::completed;
  bool replayed = false;
  std::string order_id;
  std::string body;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, checkout_outcome& x) {
  return f(caf::meta::type_name("checkout_outcome"), x.kind, x.replayed, x.order_id, x.body);
}

/// Where a checkout sent from outside the actor system (the HTTP edge) is
/// answered, instead of a response to a request: nothing has to be spawned
/// to wait for the answer (an actor per checkout, whose end also woke CAF's
/// clock thread). Copies share one answer, given once; later ones are
/// dropped. A reply dropped unanswered (the checkout actor died with it, or
/// the message never reached it) answers `sec::request_receiver_down` as
/// its last copy goes, so a caller is never left waiting. The callback runs
/// on whichever thread answers or drops it, and must not block.
class checkout_reply {
public:
  using callback = std::function<void(caf::expected<checkout_outcome>)>;

  checkout_reply() = default;
  explicit checkout_reply(callback done) : once_{std::make_shared<once>(std::move(done))} {}

  explicit operator bool() const { return once_ != nullptr; }

  void operator()(caf::expected<checkout_outcome> x) const {
    if (once_)
      once_->answer(std::move(x));
  }

private:
  struct once {
    explicit once(callback f) : done(std::move(f)) {}
    once(const once&) = delete;
    once& operator=(const once&) = delete;
    ~once() { answer(caf::make_error(caf::sec::request_receiver_down)); }
    void answer(caf::expected<checkout_outcome> x) {
      auto f = std::move(done);
      done = nullptr;
      if (f)
        f(std::move(x));
    }
    callback done;
  };
  std::shared_ptr<once> once_;
};

/// The checkout pipeline (SPEC §4, §9): price, record, payment, ledger,
/// proof, license, delivery, and the one transaction that stores it all.
using checkout_actor = interface<handlers<
  // A validated request, its Idempotency-Key ("" for none) and the ids its
  // order gets (drawn by the caller, so even a lost answer can name it).
  replies<atoms::checkout_atom, domain::checkout_request, std::string,
          domain::order_ids>::with<checkout_outcome>,
  // The same, answered through `checkout_reply` (the HTTP edge's call).
  caf::reacts_to<atoms::checkout_atom, domain::checkout_request, std::string, domain::order_ids,
                 checkout_reply>,
  // Finishes a recorded checkout left unfinished (the reconciler's call).
  replies<atoms::resume_atom, persistence::unfinished_checkout>::with<checkout_outcome>,
  // Internal: answers the checkouts past their deadline / gives the
  // answers held since the messages before.
  caf::reacts_to<atoms::sweep_atom>, caf::reacts_to<atoms::flush_atom>>>;

/// The proof actor (SPEC §5, §11): owns the proof keyring. It signs the
/// checkout's proofs with the active key, verifies proofs for the API,
/// serves the public keys, and follows the active kid stored in PostgreSQL,
/// so a rotation applied on any instance reaches it within a poll.
using proof_actor = interface<handlers<
  // Signs a proof payload (its canonical JSON, the issue time).
  replies<atoms::sign_atom, std::string, std::string>::with<domain::signed_proof>,
  // Verifies a proof record against a payload (each as JSON text).
  replies<atoms::verify_atom, std::string, std::string>::with<domain::verification>,
  // `{"keys":[{kid, algorithm, publicKey, active}]}`.
  replies<atoms::pubkeys_atom>::with<std::string>,
  // Checks a rotation (version `<set>:<kid>` or a bare proof kid,
  // binaryHash) against this instance's versions of that set and every live
  // instance's; a refusal is an invalid_input error.
  replies<atoms::rotation_atom, std::string, std::string>::with<bool>,
  // Makes a rotation's version active at once (an applied rotation); false
  // if unconfigured.
  replies<atoms::activate_atom, std::string>::with<bool>,
  // Internal: the poll timer (report the key set, read the active versions).
  caf::reacts_to<atoms::poll_atom>>>;

/// The timed audit forwarder: moves outbox events into the Kernel's audit
/// log within the freshness budget, never dropping one.
using audit_forwarder_actor = interface<handlers<
  // New events were committed: lease and forward them (after the gather window).
  caf::reacts_to<atoms::wake_atom>,
  // Events committed already leased to this instance: forward them (after
  // the gather window) without leasing them.
  caf::reacts_to<atoms::handover_atom, std::vector<domain::audit_event>>,
  // Internal: the poll timer.
  caf::reacts_to<atoms::poll_atom>,
  // Internal: the end of a gather window.
  caf::reacts_to<atoms::gather_atom>,
  // Internal: the end of a settle window.
  caf::reacts_to<atoms::settle_atom>,
  // Internal: the Kernel's keys may be read again (receipts wait for them).
  caf::reacts_to<atoms::keys_atom>>>;

/// The reconciler (SPEC §9): a timed actor that leases checkouts left
/// unfinished for RECONCILE_AFTER_MS on any instance and has each finished.
using reconciler_actor = interface<handlers<
  // Internal: the poll timer.
  caf::reacts_to<atoms::poll_atom>>>;

/// The retention janitor: a timed actor that, every sweep interval, purges
/// completed idempotency keys and delivered outbox rows past retention, in
/// batches with a pause between them, at most a bounded number per sweep;
/// and every vacuum interval has the queue tables vacuumed.
using janitor_actor = interface<handlers<
  // Internal: the sweep timer.
  caf::reacts_to<atoms::poll_atom>,
  // Internal: the pause after a batch is over; purge the next one.
  caf::reacts_to<atoms::purge_atom>,
  // Internal: the queue tables' vacuum timer.
  caf::reacts_to<atoms::vacuum_atom>>>;

/// Multisig upgrades (SPEC §7): every step checked by the service's rules,
/// then by the Kernel's, then recorded with its audit event. Refusals are
/// errors named by the rule's reason (or "kernel_refused").
using multisig_actor = interface<handlers<
  // Proposes an upgrade; answers its record.
  replies<atoms::propose_atom, domain::upgrade_proposal>::with<domain::upgrade_record>,
  // Adds an approval (upgrade id, approver, base64 signature).
  replies<atoms::approve_atom, std::string, std::string, std::string>::with<domain::upgrade_record>,
  // Applies an upgrade whose quorum is met (upgrade id).
  replies<atoms::apply_atom, std::string>::with<domain::upgrade_record>,
  // Reads an upgrade (upgrade id).
  replies<atoms::get_atom, std::string>::with<domain::upgrade_record>,
  // The older one-shot shape: propose, approve in order, apply at quorum.
  replies<atoms::oneshot_atom, domain::upgrade_proposal,
          std::vector<domain::approval>>::with<domain::upgrade_record>>>;

/// The supervisor: spawns the domain actors, monitors them, and starts a
/// crashed one again after a backoff, counting each restart.
using supervisor_actor = interface<handlers<
  // Internal: starts the named child again once its backoff has passed.
  caf::reacts_to<atoms::restart_atom, std::string>>>;

} // namespace ap

// Carried in a message as it is (a callback, not data): never serialised.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(ap::checkout_reply)
