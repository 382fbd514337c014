#pragma once

// Every atom of the message protocol (CAF 0.17: at most 10 characters),
// grouped by the interface in actors/actors.hpp that uses it.

#include <caf/atom.hpp>

namespace ap::atoms {

// --- the database: status, order store, outbox, upgrade store ----------------

/// Asks for a readiness answer (a round trip and the schema version).
using ping_atom = caf::atom_constant<caf::atom("ping")>;
/// Reads the catalog.
using catalog_atom = caf::atom_constant<caf::atom("catalog")>;
/// Records a checkout before its first external call (claiming its key).
using begin_atom = caf::atom_constant<caf::atom("begin")>;
/// Stores an order with everything it writes.
using store_atom = caf::atom_constant<caf::atom("store")>;
/// Reads one document of an order (an upgrade, at the multisig actor).
using get_atom = caf::atom_constant<caf::atom("get")>;
/// Unfinished checkouts (SPEC §9): end one without an order, decide to undo
/// one, lease the overdue ones, count them.
using abandon_atom = caf::atom_constant<caf::atom("abandon")>;
using undo_atom = caf::atom_constant<caf::atom("undo")>;
using overdue_atom = caf::atom_constant<caf::atom("overdue")>;
using unfinished_atom = caf::atom_constant<caf::atom("unfinished")>;
/// The outbox: lease due events, settle their outcomes, statistics. Alone,
/// `settle_atom` is the audit forwarder's to itself: a settle window ended.
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using settle_atom = caf::atom_constant<caf::atom("settle")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// Retention: purge one batch past retention (at the database; at the
/// janitor, its own "the pause is over, purge the next batch") / the age of
/// the oldest row kept.
using purge_atom = caf::atom_constant<caf::atom("purge")>;
using retained_atom = caf::atom_constant<caf::atom("retained")>;
/// The queue tables vacuumed (at the database; at the janitor, its own
/// "time to vacuum them").
using vacuum_atom = caf::atom_constant<caf::atom("vacuum")>;
/// One multisig step checked (and recorded) against the stored upgrades.
using multisig_atom = caf::atom_constant<caf::atom("multisig")>;

// --- the payment processor and the ledger ------------------------------------

/// Charges a payment / refunds a charge whose sale was refused.
using charge_atom = caf::atom_constant<caf::atom("charge")>;
using void_atom = caf::atom_constant<caf::atom("void")>;
/// Posts a journal entry / reverses one whose sale was refused.
using post_atom = caf::atom_constant<caf::atom("post")>;
using reverse_atom = caf::atom_constant<caf::atom("reverse")>;
/// The Stripe connector to itself: an HTTP exchange completed / the backoff
/// before a retry is over.
using pdone_atom = caf::atom_constant<caf::atom("pdone")>;
using pretry_atom = caf::atom_constant<caf::atom("pretry")>;

// --- the Kernel ---------------------------------------------------------------

/// Submits an audit event / probes health / takes an upgrade step / reads
/// the signing keys that audit receipts are checked with.
using audit_atom = caf::atom_constant<caf::atom("audit")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using upgrade_atom = caf::atom_constant<caf::atom("upgrade")>;
using keys_atom = caf::atom_constant<caf::atom("keys")>;
/// The Kernel client to itself: an HTTP exchange completed.
using kdone_atom = caf::atom_constant<caf::atom("kdone")>;

// --- the audit forwarder, the reconciler and the retention janitor -------------

/// New outbox rows were committed / rows leased to this instance are handed
/// over / a gather window ended (the forwarder's, or the database facade's
/// wait for the stores of the records it just answered).
using wake_atom = caf::atom_constant<caf::atom("wake")>;
using handover_atom = caf::atom_constant<caf::atom("handover")>;
using gather_atom = caf::atom_constant<caf::atom("gather")>;
/// A timed actor's poll timer fired (the forwarder's, the reconciler's, the
/// janitor's).
using poll_atom = caf::atom_constant<caf::atom("poll")>;
/// Extends the outbox leases of events whose Kernel call is still running.
using renew_atom = caf::atom_constant<caf::atom("renew")>;

// --- checkout, multisig, supervision ------------------------------------------

/// Runs one checkout / finishes a recorded one (the reconciler's call).
using checkout_atom = caf::atom_constant<caf::atom("checkout")>;
using resume_atom = caf::atom_constant<caf::atom("resume")>;
/// The checkout actor to itself: answer the checkouts past their deadline.
using sweep_atom = caf::atom_constant<caf::atom("sweep")>;
/// The checkout actor to itself: give the answers and hand-overs held since
/// the messages before this one.
using flush_atom = caf::atom_constant<caf::atom("flush")>;
/// Multisig steps at the multisig actor.
using propose_atom = caf::atom_constant<caf::atom("propose")>;
using approve_atom = caf::atom_constant<caf::atom("approve")>;
using apply_atom = caf::atom_constant<caf::atom("apply")>;
using oneshot_atom = caf::atom_constant<caf::atom("oneshot")>;
/// The proof actor: sign a proof / verify one / the public keys document /
/// check a proposed rotation against every instance / switch the active kid.
using sign_atom = caf::atom_constant<caf::atom("sign")>;
using verify_atom = caf::atom_constant<caf::atom("verify")>;
using pubkeys_atom = caf::atom_constant<caf::atom("pubkeys")>;
using rotation_atom = caf::atom_constant<caf::atom("rotation")>;
using activate_atom = caf::atom_constant<caf::atom("activate")>;
/// An instance's proof key set, reported to the database (which answers the
/// active kid).
using keyset_atom = caf::atom_constant<caf::atom("keyset")>;
/// Tells the supervisor to start a child again after its backoff.
using restart_atom = caf::atom_constant<caf::atom("restart")>;
/// Never sent: the behavior of an actor that only waits for a response.
using wait_atom = caf::atom_constant<caf::atom("wait")>;

} // namespace ap::atoms
