#include "core/json.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace ap::json {

namespace {

// Nesting is measured on the raw text before parsing, so a hostile body of
// 60,000 brackets is refused without building (or recursing into) anything.
bool nesting_within_limit(std::string_view text) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > max_depth)
          return false;
        break;
      case ']':
      case '}':
        --depth;
        break;
      default:
        break;
    }
  }
  return true;
}

// Why a decoded string or key is refused, or null. Raw input is checked as
// UTF-8 by the parser, but `\u` escapes are not: `\u0000` would cut names
// short wherever they meet C strings, and a lone surrogate (RapidJSON only
// checks that a high one is followed by a low one) decodes to bytes that are
// not UTF-8, so the canonical form of the document would not parse.
const char* bad_string(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == 0)
      return "contains \\u0000";
    // ED A0..BF starts the three-byte form of U+D800..U+DFFF.
    if (c == 0xED && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0xA0)
      return "contains an unpaired surrogate escape";
  }
  return nullptr;
}

// Where a value sits: the steps from the root, on the stack of the walk
// below, made into a path only for a problem to report (a path string per
// member was most of the walk's cost).
struct place {
  const place* parent = nullptr;
  /// A member's key; unused for an element.
  std::string_view key;
  rapidjson::SizeType index = 0;
  bool element = false;
};

// The JSON-pointer-like path of `p`: `a.b[2]`, empty at the root.
std::string path_of(const place* p) {
  if (p == nullptr)
    return {};
  auto up = path_of(p->parent);
  if (p->element)
    return up + "[" + std::to_string(p->index) + "]";
  return up.empty() ? std::string{p->key} : up + "." + std::string{p->key};
}

std::string shown(const place* p) {
  auto path = path_of(p);
  return path.empty() ? std::string{"$"} : path;
}

// The least key that occurs twice in `object`, or none. Objects are
// mostly small: those are compared pairwise, without allocating.
std::optional<std::string_view> least_duplicate(std::vector<std::string_view>& scratch,
                                                const rapidjson::Value& object) {
  constexpr rapidjson::SizeType pairwise_up_to = 16;
  auto name = [](const rapidjson::Value& key) {
    return std::string_view{key.GetString(), key.GetStringLength()};
  };
  std::optional<std::string_view> least;
  if (object.MemberCount() <= pairwise_up_to) {
    for (auto a = object.MemberBegin(); a != object.MemberEnd(); ++a)
      for (auto b = a + 1; b != object.MemberEnd(); ++b)
        if (name(a->name) == name(b->name) && (!least || name(a->name) < *least))
          least = name(a->name);
    return least;
  }
  scratch.clear();
  for (auto it = object.MemberBegin(); it != object.MemberEnd(); ++it)
    scratch.push_back(name(it->name));
  std::sort(scratch.begin(), scratch.end());
  auto dup = std::adjacent_find(scratch.begin(), scratch.end());
  if (dup != scratch.end())
    least = *dup;
  return least;
}

// Returns the first problem past parsing: a duplicated key, or a string or
// key that bad_string refuses, with its JSON-pointer-like path.
std::optional<std::string> find_problem(const rapidjson::Value& value, const place* at,
                                        std::vector<std::string_view>& scratch) {
  if (value.IsString()) {
    if (const char* why = bad_string({value.GetString(), value.GetStringLength()}))
      return "the string at '" + shown(at) + "' " + why;
  } else if (value.IsObject()) {
    for (auto it = value.MemberBegin(); it != value.MemberEnd(); ++it)
      if (const char* why = bad_string({it->name.GetString(), it->name.GetStringLength()}))
        return "an object key in '" + shown(at) + "' " + why;
    if (auto dup = least_duplicate(scratch, value)) {
      place key{at, *dup};
      return "duplicate object key '" + path_of(&key) + "'";
    }
    for (auto it = value.MemberBegin(); it != value.MemberEnd(); ++it) {
      place member{at, {it->name.GetString(), it->name.GetStringLength()}};
      if (auto found = find_problem(it->value, &member, scratch))
        return found;
    }
  } else if (value.IsArray()) {
    for (rapidjson::SizeType i = 0; i < value.Size(); ++i) {
      place element{at, {}, i, true};
      if (auto found = find_problem(value[i], &element, scratch))
        return found;
    }
  }
  return std::nullopt;
}

} // namespace

std::optional<std::string> parse_strict(std::string_view text, rapidjson::Document& out) {
  if (text.size() >= 3 && static_cast<unsigned char>(text[0]) == 0xEF
      && static_cast<unsigned char>(text[1]) == 0xBB && static_cast<unsigned char>(text[2]) == 0xBF)
    return std::string{"body starts with a byte-order mark; send UTF-8 without one"};
  // RapidJSON stops at a NUL after the document; raw NUL is never JSON.
  if (text.find('\0') != std::string_view::npos)
    return std::string{"body contains a NUL byte"};
  if (!nesting_within_limit(text))
    return "JSON nesting is deeper than " + std::to_string(max_depth) + " levels";
  constexpr unsigned flags = rapidjson::kParseValidateEncodingFlag
                             | rapidjson::kParseIterativeFlag;
  out.Parse<flags>(text.data(), text.size());
  if (out.HasParseError())
    return std::string{"malformed JSON at byte "} + std::to_string(out.GetErrorOffset()) + ": "
           + rapidjson::GetParseError_En(out.GetParseError());
  std::vector<std::string_view> scratch;
  if (auto problem = find_problem(out, nullptr, scratch))
    return problem;
  return std::nullopt;
}

namespace {

// Whether one of the eight bytes in `w` needs an escape: below 0x20, a quote
// or a backslash. (v - 0x01..01·n) & ~v & 0x80..80 is non-zero exactly when
// some byte of v is below n (n ≤ 0x80); a byte equal to c is a zero byte of
// v ^ 0x01..01·c. Bytes from 0x80 up (UTF-8) never count.
bool any_needs_escape(std::uint64_t w) {
  constexpr std::uint64_t ones = 0x0101010101010101ULL;
  constexpr std::uint64_t highs = 0x8080808080808080ULL;
  auto below = [](std::uint64_t v, std::uint64_t n) { return (v - ones * n) & ~v & highs; };
  return (below(w, 0x20) | below(w ^ (ones * '"'), 1) | below(w ^ (ones * '\\'), 1)) != 0;
}

} // namespace

void append_quoted(std::string& out, std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  out.reserve(out.size() + text.size() + 2);
  out += '"';
  // Runs that need no escape are copied whole, and looked through eight
  // bytes at a time: ids, hashes, signatures and base64 are most of what
  // is quoted, and need none.
  std::size_t from = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    for (std::uint64_t w; i + 8 <= text.size(); i += 8) {
      std::memcpy(&w, text.data() + i, 8);
      if (any_needs_escape(w))
        break;
    }
    if (i == text.size())
      break;
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(text.data() + from, i - from);
    from = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 0x0f];
    }
  }
  out.append(text.data() + from, text.size() - from);
  out += '"';
}

void append_string_array(std::string& out, const std::vector<std::string>& items) {
  out += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i > 0)
      out += ',';
    append_quoted(out, items[i]);
  }
  out += ']';
}

std::string error_body(std::string_view code, std::string_view message, std::string_view field) {
  std::string out;
  out.reserve(48 + code.size() + message.size() + field.size());
  out += "{\"error\":";
  append_quoted(out, code);
  out += ",\"message\":";
  append_quoted(out, message);
  if (!field.empty()) {
    out += ",\"field\":";
    append_quoted(out, field);
  }
  out += '}';
  return out;
}

void append_canonical(std::string& out, const rapidjson::Value& value) {
  switch (value.GetType()) {
    case rapidjson::kNullType:
      out += "null";
      return;
    case rapidjson::kFalseType:
      out += "false";
      return;
    case rapidjson::kTrueType:
      out += "true";
      return;
    case rapidjson::kStringType:
      append_quoted(out, {value.GetString(), value.GetStringLength()});
      return;
    case rapidjson::kNumberType:
      if (value.IsInt64())
        out += std::to_string(value.GetInt64());
      else if (value.IsUint64())
        out += std::to_string(value.GetUint64());
      else
        throw std::invalid_argument("canonical JSON here holds integers only");
      return;
    case rapidjson::kArrayType: {
      out += '[';
      bool first = true;
      for (const auto& element : value.GetArray()) {
        if (!first)
          out += ',';
        first = false;
        append_canonical(out, element);
      }
      out += ']';
      return;
    }
    case rapidjson::kObjectType: {
      std::vector<const rapidjson::Value::Member*> members;
      members.reserve(value.MemberCount());
      for (auto it = value.MemberBegin(); it != value.MemberEnd(); ++it)
        members.push_back(&*it);
      // std::string_view compares as unsigned bytes: UTF-8 byte order.
      std::sort(members.begin(), members.end(), [](const auto* a, const auto* b) {
        return std::string_view{a->name.GetString(), a->name.GetStringLength()}
               < std::string_view{b->name.GetString(), b->name.GetStringLength()};
      });
      out += '{';
      for (std::size_t i = 0; i < members.size(); ++i) {
        if (i > 0)
          out += ',';
        append_quoted(out, {members[i]->name.GetString(), members[i]->name.GetStringLength()});
        out += ':';
        append_canonical(out, members[i]->value);
      }
      out += '}';
      return;
    }
  }
}

std::string canonical(const rapidjson::Value& value) {
  std::string out;
  out.reserve(256);
  append_canonical(out, value);
  return out;
}

std::string to_string(const rapidjson::Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer{buffer};
  value.Accept(writer);
  return {buffer.GetString(), buffer.GetSize()};
}

std::string string_member(const rapidjson::Value& obj, const char* name) {
  if (!obj.IsObject())
    return {};
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || !it->value.IsString())
    return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

} // namespace ap::json
