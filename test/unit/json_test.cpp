#include <boost/test/unit_test.hpp>

#include "core/json.hpp"

#include <cstdio>

using namespace ap;

namespace {

std::optional<std::string> parse(std::string_view text) {
  rapidjson::Document doc;
  return json::parse_strict(text, doc);
}

std::string nested(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[')
         + std::string(static_cast<std::size_t>(depth), ']');
}

} // namespace

BOOST_AUTO_TEST_SUITE(strict_json)

BOOST_AUTO_TEST_CASE(accepts_ordinary_documents) {
  BOOST_TEST(!parse(R"({"a":1,"b":[true,null,"x"],"c":{"d":-2.5}})"));
  BOOST_TEST(!parse("  [1, 2]\n"));
  BOOST_TEST(!parse(u8R"({"name":"Zoë ✓"})"));
}

BOOST_AUTO_TEST_CASE(nesting_limit_is_32) {
  BOOST_TEST(!parse(nested(32)));
  auto err = parse(nested(33));
  BOOST_REQUIRE(err);
  BOOST_TEST(err->find("nesting") != std::string::npos);
  // Brackets inside strings do not count.
  BOOST_TEST(!parse("[\"" + std::string(100, '[') + "\"]"));
  // A hostile depth is refused before parsing.
  BOOST_TEST(parse(nested(50000)).has_value());
}

BOOST_AUTO_TEST_CASE(refuses_byte_order_mark) {
  auto err = parse("\xEF\xBB\xBF{}");
  BOOST_REQUIRE(err);
  BOOST_TEST(err->find("byte-order mark") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(refuses_duplicate_keys_anywhere) {
  auto top = parse(R"({"a":1,"a":2})");
  BOOST_REQUIRE(top);
  BOOST_TEST(top->find("'a'") != std::string::npos);
  auto deep = parse(R"({"items":[{"sku":"x","sku":"y"}]})");
  BOOST_REQUIRE(deep);
  BOOST_TEST(deep->find("items[0].sku") != std::string::npos);
}

// The problem's message names where it is, the same for small objects
// (compared pairwise) and large ones (sorted), and the least key of several
// duplicated ones.
BOOST_AUTO_TEST_CASE(a_problem_is_named_by_its_path) {
  BOOST_TEST(parse(R"({"b":1,"a":1,"b":2,"a":2})").value_or("")
             == "duplicate object key 'a'");
  std::string large = R"({"x":[0,{)";
  for (int i = 0; i < 20; ++i)
    large += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  std::string twice = large + R"("k7":7,"k3":3}]})";
  BOOST_TEST(parse(twice).value_or("") == "duplicate object key 'x[1].k3'");
  large.pop_back();
  BOOST_TEST(!parse(large + "}]}"));
  BOOST_TEST(parse(R"({"a":{"b":["x","\u0000"]}})").value_or("")
             == "the string at 'a.b[1]' contains \\u0000");
  BOOST_TEST(parse(R"("\u0000")").value_or("") == "the string at '$' contains \\u0000");
  BOOST_TEST(parse(R"([[1],{"k\u0000":1}])").value_or("")
             == "an object key in '[1]' contains \\u0000");
  BOOST_TEST(parse(R"({"k\u0000":1})").value_or("") == "an object key in '$' contains \\u0000");
}

BOOST_AUTO_TEST_CASE(refuses_more_than_one_document) {
  BOOST_TEST(parse("{} {}").has_value());
  BOOST_TEST(parse("{}x").has_value());
}

BOOST_AUTO_TEST_CASE(refuses_invalid_utf8_nul_and_control_characters) {
  BOOST_TEST(parse("{\"a\":\"\xC3\x28\"}").has_value());
  BOOST_TEST(parse("{\"a\":\"\xFF\"}").has_value());
  BOOST_TEST(parse(std::string_view{"{\"a\":1}\0", 8}).has_value());
  BOOST_TEST(parse(std::string_view{"{\"a\":\"x\0y\"}", 11}).has_value());
  BOOST_TEST(parse("{\"a\":\"line\nbreak\"}").has_value());
}

BOOST_AUTO_TEST_CASE(refuses_escaped_nul_and_lone_surrogates) {
  // Found by fuzzing the canonical form: a lone low surrogate escape decoded
  // to bytes that are not UTF-8, and the canonical text did not parse again.
  auto lone_low = parse(R"("\udCC1")");
  BOOST_REQUIRE(lone_low);
  BOOST_TEST(lone_low->find("surrogate") != std::string::npos, *lone_low);
  BOOST_TEST(parse(R"({"notes":"x\uDC00y"})").has_value());
  BOOST_TEST(parse(R"({"a":"\uD800"})").has_value());
  // \u0000 would cut names short: "alice\u0000x" read as "alice".
  auto nul = parse(R"({"approvers":["alice\u0000x"]})");
  BOOST_REQUIRE(nul);
  BOOST_TEST(nul->find("approvers[0]") != std::string::npos, *nul);
  BOOST_TEST(parse(R"({"notes\u0000x":1})").has_value());
  // A proper pair, and characters outside ASCII, are fine.
  BOOST_TEST(!parse(R"({"a":"\uD83D\uDE00 caf\u00e9 â¬"})").has_value());
}

BOOST_AUTO_TEST_CASE(refuses_malformed_text) {
  for (auto text : {"", "{", "{\"a\":}", "[1,]", "{'a':1}", "nul", "01", "1e99999", "{\"a\" 1}"})
    BOOST_TEST(parse(text).has_value(), "should refuse: " << text);
}

BOOST_AUTO_TEST_CASE(quoting_escapes_minimally) {
  std::string out;
  json::append_quoted(out, std::string{"a\"b\\c\n\t\x01/é"});
  BOOST_TEST(out == "\"a\\\"b\\\\c\\n\\t\\u0001/é\"");
}

// Every byte value below 0x80, at every place in and around an 8-byte word
// of plain text, is quoted as a byte-by-byte escaper quotes it: a byte that
// needs an escape is found wherever it sits, and no other byte is touched.
BOOST_AUTO_TEST_CASE(quoting_finds_an_escape_at_every_offset) {
  auto reference = [](const std::string& text) {
    std::string out = "\"";
    for (unsigned char c : text) {
      const char* named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b"
                          : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : nullptr;
      if (named) {
        out += named;
      } else if (c < 0x20) {
        char code[8];
        std::snprintf(code, sizeof code, "\\u%04x", c);
        out += code;
      } else {
        out += static_cast<char>(c);
      }
    }
    return out + "\"";
  };
  std::size_t checked = 0;
  for (int b = 0; b < 0x80; ++b)
    for (std::size_t length = 1; length <= 26; ++length)
      for (std::size_t at = 0; at < length; ++at) {
        // Bytes just beside the ones that need an escape ('#' after the
        // quote, ']' after the backslash, the space after 0x1F) and UTF-8
        // fill the rest: none of them may count.
        std::string text(length, ' ');
        for (std::size_t k = 0; k < length; ++k)
          text[k] = "#] \xc3\xa9z"[k % 6];
        text[at] = static_cast<char>(b);
        std::string out;
        json::append_quoted(out, text);
        BOOST_TEST(out == reference(text), "byte " << b << " at " << at << " of " << length);
        ++checked;
      }
  BOOST_TEST(checked == 128u * 351u);
}

BOOST_AUTO_TEST_CASE(error_body_has_field_only_when_given) {
  BOOST_TEST(json::error_body("not_found", "no such order")
             == R"({"error":"not_found","message":"no such order"})");
  BOOST_TEST(json::error_body("invalid_input", "too many", "items")
             == R"({"error":"invalid_input","message":"too many","field":"items"})");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(canonical_json)

namespace {

std::string canon(std::string_view text) {
  rapidjson::Document doc;
  auto err = json::parse_strict(text, doc);
  BOOST_REQUIRE_MESSAGE(!err, *err);
  return json::canonical(doc);
}

} // namespace

BOOST_AUTO_TEST_CASE(keys_are_sorted_by_utf8_bytes_at_every_level) {
  BOOST_TEST(canon(R"({"b":1,"a":{"d":[3,{"z":0,"y":1}],"c":null}})")
             == R"({"a":{"c":null,"d":[3,{"y":1,"z":0}]},"b":1})");
  // Upper case sorts before lower case, digits before both, and multi-byte
  // UTF-8 after ASCII ("é" is C3 A9, "€" is E2 82 AC).
  BOOST_TEST(canon(u8R"({"é":1,"a":2,"B":3,"1":4,"€":5,"":6})")
             == u8R"({"":6,"1":4,"B":3,"a":2,"é":1,"€":5})");
  // A key that is a prefix of another comes first.
  BOOST_TEST(canon(R"({"ab":1,"a":2})") == R"({"a":2,"ab":1})");
}

BOOST_AUTO_TEST_CASE(whitespace_is_removed_and_arrays_keep_order) {
  BOOST_TEST(canon(" [ 3 , 1 , 2 , true , false , null ] ") == "[3,1,2,true,false,null]");
  BOOST_TEST(canon("{ }") == "{}");
  BOOST_TEST(canon("[ ]") == "[]");
}

BOOST_AUTO_TEST_CASE(strings_are_minimally_escaped) {
  // Escaped input that needs no escaping comes out as the plain character;
  // control characters use the short forms or \u00xx in lower case.
  // (U+0000 itself is refused by the strict parser.)
  BOOST_TEST(canon(R"(["\u0041\/\u00e9\u20ac", "\u0001\u001f\b\f\n\r\t\"\\"])")
             == "[\"A/\xC3\xA9\xE2\x82\xAC\",\"\\u0001\\u001f\\b\\f\\n\\r\\t\\\"\\\\\"]");
  // A surrogate pair becomes the 4-byte UTF-8 character.
  BOOST_TEST(canon(R"(["\ud83d\ude00"])") == "[\"\xF0\x9F\x98\x80\"]");
  // U+007F and U+2028 are not escaped (RFC 8785).
  BOOST_TEST(canon(R"(["\u007f\u2028"])") == "[\"\x7F\xE2\x80\xA8\"]");
}

BOOST_AUTO_TEST_CASE(integers_print_plainly_and_fractions_are_refused) {
  BOOST_TEST(canon("[0,-1,9007199254740993,-9223372036854775808,18446744073709551615]")
             == "[0,-1,9007199254740993,-9223372036854775808,18446744073709551615]");
  rapidjson::Document doc;
  BOOST_REQUIRE(!json::parse_strict("[1.5]", doc));
  BOOST_CHECK_THROW(json::canonical(doc), std::invalid_argument);
  BOOST_REQUIRE(!json::parse_strict("[1e2]", doc));
  BOOST_CHECK_THROW(json::canonical(doc), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(the_canonical_form_of_a_surrogate_pair_parses_again) {
  auto once = canon(R"({"a":"\uD83D\uDE00"})");
  BOOST_TEST(once == "{\"a\":\"\xF0\x9F\x98\x80\"}");
  BOOST_TEST(canon(once) == once);
}

BOOST_AUTO_TEST_CASE(same_content_same_bytes) {
  BOOST_TEST(canon(R"({"x":[1,2],"y":"z"})") == canon("{\n  \"y\" : \"z\",\n  \"x\" : [ 1, 2 ]\n}"));
}

BOOST_AUTO_TEST_SUITE_END()
