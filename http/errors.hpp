#pragma once

// The one table from what the actors answer to HTTP statuses.

#include <caf/fwd.hpp>

#include "domain/order.hpp"
#include "http/message.hpp"

namespace ap::http {

/// Maps an error from an actor to its response: the service's
/// `error_code`s to their statuses (with the error's own name, when it has
/// one, as the body's `error`), a request timeout to 504, an unavailable
/// actor to 503, anything else to a 500 without internal text. An error
/// naming an order names it in the body too (SPEC §9).
response response_for(const caf::error& err);

/// The HTTP status of a checkout's outcome (SPEC §4, §9).
int checkout_status(domain::checkout_outcome_kind kind);

} // namespace ap::http
