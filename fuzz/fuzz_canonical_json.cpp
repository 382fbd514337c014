// Canonical JSON (SPEC §5) is what proofs and idempotency fingerprints hash,
// so for every body parse_strict accepts, the canonical form must parse
// again and be a fixed point: canonical(parse(canonical(x))) == canonical(x).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/json.hpp"
#include "fuzz/property.hpp"

namespace {

using ap::fuzz::violated;

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  rapidjson::Document doc;
  if (ap::json::parse_strict(text, doc))
    return 0;

  std::string once;
  try {
    once = ap::json::canonical(doc);
  } catch (const std::invalid_argument&) {
    // Documented: non-integer numbers have no canonical form.
    return 0;
  }

  rapidjson::Document again;
  if (auto refused = ap::json::parse_strict(once, again))
    violated("parse_strict refuses the canonical form", *refused);
  // No exception expected here: `again` holds the integers `doc` held.
  if (auto twice = ap::json::canonical(again); twice != once)
    violated("canonical form is not a fixed point", twice);
  return 0;
}
