#pragma once

// Every atom of the message protocol (CAF 0.17: at most 10 characters).

#include <caf/atom.hpp>

namespace ap::atoms {

/// Asks for a liveness/readiness answer.
using ping_atom = caf::atom_constant<caf::atom("ping")>;

/// Tells the supervisor to start a child again after its backoff.
using restart_atom = caf::atom_constant<caf::atom("restart")>;

/// Runs one checkout.
using checkout_atom = caf::atom_constant<caf::atom("checkout")>;

/// Charges a payment / voids a charge that could not be recorded.
using charge_atom = caf::atom_constant<caf::atom("charge")>;
using void_atom = caf::atom_constant<caf::atom("void")>;

/// Posts a journal entry / reverses one that could not be recorded.
using post_atom = caf::atom_constant<caf::atom("post")>;
using reverse_atom = caf::atom_constant<caf::atom("reverse")>;

/// Database requests: the catalog, recording a checkout (and claiming its
/// key), storing and reading orders.
using catalog_atom = caf::atom_constant<caf::atom("catalog")>;
using begin_atom = caf::atom_constant<caf::atom("begin")>;
using store_atom = caf::atom_constant<caf::atom("store")>;
using get_atom = caf::atom_constant<caf::atom("get")>;

/// Unfinished checkouts (SPEC §9): end one without an order, decide to undo
/// one, lease the overdue ones, count them.
using abandon_atom = caf::atom_constant<caf::atom("abandon")>;
using undo_atom = caf::atom_constant<caf::atom("undo")>;
using overdue_atom = caf::atom_constant<caf::atom("overdue")>;
using unfinished_atom = caf::atom_constant<caf::atom("unfinished")>;

/// Finishes a recorded checkout (the reconciler asks the checkout actor).
using resume_atom = caf::atom_constant<caf::atom("resume")>;

/// Outbox requests: lease due rows, settle their outcomes, statistics.
using lease_atom = caf::atom_constant<caf::atom("lease")>;
using settle_atom = caf::atom_constant<caf::atom("settle")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;

/// Kernel requests: submit an audit event, probe health; `kdone` carries
/// the completion of an HTTP exchange back into the client actor.
using audit_atom = caf::atom_constant<caf::atom("audit")>;
using health_atom = caf::atom_constant<caf::atom("health")>;
using kdone_atom = caf::atom_constant<caf::atom("kdone")>;
// The payment processor's connector: an HTTP exchange completed, a retry is due.
using pdone_atom = caf::atom_constant<caf::atom("pdone")>;
using pretry_atom = caf::atom_constant<caf::atom("pretry")>;

/// A raw Kernel call (method, target, body, acting user): the upgrade routes.
using kcall_atom = caf::atom_constant<caf::atom("kcall")>;

/// Multisig steps.
using propose_atom = caf::atom_constant<caf::atom("propose")>;
using approve_atom = caf::atom_constant<caf::atom("approve")>;
using apply_atom = caf::atom_constant<caf::atom("apply")>;
using oneshot_atom = caf::atom_constant<caf::atom("oneshot")>;
using multisig_atom = caf::atom_constant<caf::atom("multisig")>;

/// Audit forwarder: new outbox rows were committed / rows leased to this
/// instance are handed over / the poll timer fired / a gather window ended.
using wake_atom = caf::atom_constant<caf::atom("wake")>;
using handover_atom = caf::atom_constant<caf::atom("handover")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using gather_atom = caf::atom_constant<caf::atom("gather")>;

} // namespace ap::atoms
