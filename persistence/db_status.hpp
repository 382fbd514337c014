#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace ap::persistence {

/// The database's answer to a readiness probe.
struct db_status {
  /// A statement round trip succeeded.
  bool reachable = false;
  /// Highest applied migration (0 when unreachable or empty).
  std::int32_t schema_version = 0;
  /// Highest migration this binary carries.
  std::int32_t expected_version = 0;
  /// Why it is not ready, for operators; never contains credentials.
  std::string detail;

  bool ready() const { return reachable && schema_version >= expected_version; }
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, db_status& x) {
  return f(caf::meta::type_name("db_status"), x.reachable, x.schema_version,
           x.expected_version, x.detail);
}

} // namespace ap::persistence
