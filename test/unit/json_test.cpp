#include <boost/test/unit_test.hpp>

#include "core/json.hpp"

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

BOOST_AUTO_TEST_CASE(refuses_malformed_text) {
  for (auto text : {"", "{", "{\"a\":}", "[1,]", "{'a':1}", "nul", "01", "1e99999", "{\"a\" 1}"})
    BOOST_TEST(parse(text).has_value(), "should refuse: " << text);
}

BOOST_AUTO_TEST_CASE(quoting_escapes_minimally) {
  std::string out;
  json::append_quoted(out, std::string{"a\"b\\c\n\t\x01/é"});
  BOOST_TEST(out == "\"a\\\"b\\\\c\\n\\t\\u0001/é\"");
}

BOOST_AUTO_TEST_CASE(error_body_has_field_only_when_given) {
  BOOST_TEST(json::error_body("not_found", "no such order")
             == R"({"error":"not_found","message":"no such order"})");
  BOOST_TEST(json::error_body("invalid_input", "too many", "items")
             == R"({"error":"invalid_input","message":"too many","field":"items"})");
}

BOOST_AUTO_TEST_SUITE_END()
