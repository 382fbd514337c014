// Protocol names and tokens compared without regard to case (core/text.hpp).
#include <boost/test/unit_test.hpp>

#include "core/text.hpp"

using namespace ap;

BOOST_AUTO_TEST_SUITE(text)

BOOST_AUTO_TEST_CASE(names_are_equal_whatever_the_case_of_their_ascii_letters) {
  BOOST_TEST(equals_ignoring_case("Content-Length", "content-length"));
  BOOST_TEST(equals_ignoring_case("CHUNKED", "chunked"));
  BOOST_TEST(equals_ignoring_case("", ""));
  BOOST_TEST(!equals_ignoring_case("chunked", "chunke"));
  BOOST_TEST(!equals_ignoring_case("chunked", "chunkeD "));
  // Only A–Z fold: '@' and '`' sit next to them, and bytes past ASCII are
  // compared as they are.
  BOOST_TEST(!equals_ignoring_case("@", "`"));
  BOOST_TEST(!equals_ignoring_case("[", "{"));
  BOOST_TEST(!equals_ignoring_case("\xC3\x89", "\xC3\xA9"));
  static_assert(equals_ignoring_case("Bearer", "bEARER"));
}

BOOST_AUTO_TEST_CASE(a_prefix_matches_whatever_the_case) {
  BOOST_TEST(starts_with_ignoring_case("BEARER abc", "Bearer "));
  BOOST_TEST(starts_with_ignoring_case("bearer ", "Bearer "));
  BOOST_TEST(!starts_with_ignoring_case("Bearer", "Bearer "));
  BOOST_TEST(!starts_with_ignoring_case("Basic abc", "Bearer "));
  BOOST_TEST(starts_with_ignoring_case("anything", ""));
}

BOOST_AUTO_TEST_SUITE_END()
