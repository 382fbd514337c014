#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

namespace ap::json {

/// Deepest nesting of arrays and objects a request body may have (SPEC §4).
constexpr int max_depth = 32;

/// Parses a request body under the rules of SPEC §4: UTF-8 only without a
/// byte-order mark, exactly one document, no duplicate object keys, nesting
/// at most `max_depth`. Returns the reason on failure, in words a client can
/// act on; `out` is then unspecified.
std::optional<std::string> parse_strict(std::string_view text, rapidjson::Document& out);

/// Appends `text` as a JSON string literal: quotes, `\"`, `\\`, the short
/// escapes `\b \f \n \r \t`, other control characters as `\u00xx`, and every
/// other byte as is (the minimal escaping of RFC 8785).
void append_quoted(std::string& out, std::string_view text);

/// Appends `["a","b",…]`.
void append_string_array(std::string& out, const std::vector<std::string>& items);

/// Returns the SPEC §4 error body `{"error":…,"message":…[,"field":…]}`.
std::string error_body(std::string_view code, std::string_view message,
                       std::string_view field = {});

/// Serialises `value` canonically (SPEC §5): object keys sorted by UTF-8 byte
/// order, no whitespace, arrays in order, strings minimally escaped as
/// `append_quoted` does, integers in plain decimal. Throws
/// std::invalid_argument for a non-integer number, which has no canonical
/// form here.
std::string canonical(const rapidjson::Value& value);

/// Appends the canonical form of `value` to `out`.
void append_canonical(std::string& out, const rapidjson::Value& value);

/// A string value copied into `alloc`.
inline rapidjson::Value string_value(const std::string& s,
                                     rapidjson::Document::AllocatorType& alloc) {
  return rapidjson::Value{s.c_str(), static_cast<rapidjson::SizeType>(s.size()), alloc};
}

/// The string member `name` of `obj`; empty when `obj` is not an object or
/// the member is missing or not a string.
std::string string_member(const rapidjson::Value& obj, const char* name);

/// Serialises a RapidJSON value compactly.
std::string to_string(const rapidjson::Value& value);

} // namespace ap::json
