#pragma once

// How Boost.Test prints the protocol's enums in a failed assertion.

#include <ostream>

#include "domain/multisig.hpp"
#include "domain/order.hpp"
#include "persistence/order_store.hpp"

namespace ap::domain {

inline std::ostream& operator<<(std::ostream& out, checkout_outcome_kind k) {
  return out << to_string(k);
}

inline std::ostream& operator<<(std::ostream& out, order_status s) {
  return out << to_string(s);
}

inline std::ostream& operator<<(std::ostream& out, refusal_kind k) {
  return out << "refusal_kind(" << static_cast<int>(k) << ")";
}

} // namespace ap::domain

namespace ap::persistence {

inline std::ostream& operator<<(std::ostream& out, claim_state s) {
  return out << to_string(s);
}

inline std::ostream& operator<<(std::ostream& out, undo_decision d) {
  return out << to_string(d);
}

} // namespace ap::persistence
