#pragma once

// What the Kernel client takes and answers (SPEC §6, §7).

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

#include "domain/multisig.hpp"

namespace ap::kernel {

/// The Kernel's acknowledgement of an audit event.
struct audit_ack {
  /// The Kernel's id of the stored event.
  std::string kernel_id;
  std::string hash;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_ack& x) {
  return f(caf::meta::type_name("audit_ack"), x.kernel_id, x.hash);
}

/// Which step of a multisig upgrade the Kernel is asked to take.
enum class upgrade_call_kind : std::uint8_t { propose, approve, apply };

/// One upgrade step submitted to the Kernel, which enforces the multisig
/// rules itself (`POST /kernel/upgrade[/{id}/approve|/apply]`).
struct upgrade_call {
  upgrade_call_kind kind = upgrade_call_kind::propose;
  /// The upgrade as the service recorded it (for propose: its id and proposal).
  domain::upgrade_record upgrade;
  /// For approve.
  std::string approver;
  std::string signature;
  /// For apply: sent as X-Applied-By.
  std::string applied_by;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upgrade_call& x) {
  return f(caf::meta::type_name("upgrade_call"), x.kind, x.upgrade, x.approver, x.signature,
           x.applied_by);
}

/// The Kernel took the step; for apply, when it applied it.
struct upgrade_ack {
  std::int64_t applied_at_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upgrade_ack& x) {
  return f(caf::meta::type_name("upgrade_ack"), x.applied_at_ms);
}

} // namespace ap::kernel
