#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/fwd.hpp>

namespace ap::domain {
struct multisig_refusal;
}

namespace ap {

/// The service's error codes, carried between actors as `caf::error` in
/// the category `ap`. The HTTP edge maps each to one status, in one table
/// (http/errors.cpp).
enum class error_code : std::uint8_t {
  /// Input that passed parsing but breaks a rule of the contract.
  invalid_input = 1,
  /// The addressed resource does not exist.
  not_found,
  /// The caller may not do this (an unknown approver, a bad signature).
  forbidden,
  /// The addressed resource is no longer valid (an expired upgrade).
  gone,
  /// The request conflicts with the stored state.
  conflict,
  /// An Idempotency-Key was reused with a different body (422).
  idempotency_mismatch,
  /// PostgreSQL is unreachable or failed.
  database_unavailable,
  /// An upstream service (the Kernel, the processor, the ledger) failed or
  /// did not answer: what it did is not known (SPEC §9: in doubt).
  upstream_unavailable,
  /// An upstream service definitely refused the request: it did nothing.
  upstream_refused,
  /// A checkout was not finished within its deadline; it goes on (504).
  timeout,
  /// The order is recorded and not finished yet (202 processing).
  processing,
  /// A defect: something that should not happen did.
  internal,
};

/// The CAF error category of `error_code`.
caf::atom_value error_category();

/// Name of the code, e.g. "database_unavailable".
std::string to_string(error_code code);

/// Builds an error whose context carries a message safe to show a client
/// and, for input errors, the JSON path of the field at fault.
caf::error make_error(error_code code, std::string message, std::string field = {});

/// The same with a specific name for the answer's `error` member in place
/// of the code's (the multisig rules' reasons, such as "insufficient_quorum").
caf::error make_named_error(error_code code, std::string name, std::string message,
                            std::string field = {});

/// The error a step refused by the multisig rules answers: the code of its
/// kind, named by its reason.
caf::error refusal_error(const domain::multisig_refusal& refusal);

/// The same for a checkout whose order id is assigned: the answer names it
/// (SPEC §9), so the client can follow the order it may have paid for.
caf::error make_order_error(error_code code, std::string message, std::string order_id);

/// An upstream's definite refusal of what was sent to it for its content
/// (a 4xx such as 413 or 422): sending it again gets the same answer. Carries
/// the upstream's status and `excerpt`, a bounded and printable excerpt of
/// its answer, for the record of the refusal (never shown to a client).
caf::error make_upstream_refusal(std::int32_t status, std::string excerpt);

/// The upstream status a `make_upstream_refusal` error carries, or 0.
std::int32_t error_upstream_status(const caf::error& err);

/// The excerpt of the upstream's answer a `make_upstream_refusal` error
/// carries, or empty.
std::string error_upstream_excerpt(const caf::error& err);

/// The order id an `ap` error names, or empty.
std::string error_order_id(const caf::error& err);

/// Whether `err` says that the callee definitely did nothing (a refusal
/// or invalid input), as opposed to an outcome that is not known.
bool is_definite_refusal(const caf::error& err);

/// The client-safe message of an `ap` error, or empty.
std::string error_message(const caf::error& err);

/// The field of an `ap` error, or empty.
std::string error_field(const caf::error& err);

/// The specific name of an `ap` error (make_named_error), or empty.
std::string error_name(const caf::error& err);

/// Registers the category with the actor system so errors render by name.
void register_error_category(caf::actor_system_config& cfg);

} // namespace ap
