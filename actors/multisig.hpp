#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "actors/directory.hpp"
#include "core/metrics.hpp"

namespace ap {

/// What the multisig actor works with.
struct multisig_config {
  /// Wall-clock Unix milliseconds.
  std::function<std::int64_t()> now_ms;
  /// Sent to the Kernel as the applier.
  std::string applied_by = "artifact-publisher";
  /// Where the actor's own metrics go (none when null).
  metrics::registry* registry = nullptr;
};

/// State of the multisig actor.
struct multisig_state {
  static constexpr const char* name = "multisig";
};

/// Multisig upgrades (SPEC §7). Each step is checked against the stored
/// state by the service's rules, then submitted to the Kernel (which
/// enforces the same rules itself), then recorded with its audit event in
/// one transaction, re-checked under a lock so concurrent steps are decided
/// one at a time. Apply returns the Kernel's appliedAt. A secret rotation
/// is checked by the proof actor when proposed (against every instance's
/// keys) and, once applied, switches this instance's proof actor at once
/// (the others follow the stored active kid within a poll).
multisig_actor::behavior_type multisig(multisig_actor::stateful_pointer<multisig_state> self,
                                       multisig_config cfg, actor_directory* directory);

} // namespace ap
