#include <boost/test/unit_test.hpp>

#include "core/time.hpp"

using namespace ap;

BOOST_AUTO_TEST_SUITE(time_functions)

BOOST_AUTO_TEST_CASE(rfc3339_round_trips_to_the_millisecond) {
  std::int64_t ms = 1767225600123;  // 2026-01-01T00:00:00.123Z
  BOOST_TEST(format_rfc3339(ms) == "2026-01-01T00:00:00.123Z");
  BOOST_TEST(format_rfc3339(ms, false) == "2026-01-01T00:00:00Z");
  BOOST_TEST(parse_rfc3339_ms(format_rfc3339(ms)) == ms);
  BOOST_TEST(parse_rfc3339_ms("2026-01-01T00:00:00Z") == 1767225600000);
}

BOOST_AUTO_TEST_CASE(a_fraction_counts_its_first_three_digits) {
  BOOST_TEST(parse_rfc3339_ms("1970-01-01T00:00:01.5Z") == 1500);
  BOOST_TEST(parse_rfc3339_ms("1970-01-01T00:00:01.25Z") == 1250);
  BOOST_TEST(parse_rfc3339_ms("1970-01-01T00:00:01.123456Z") == 1123);
}

BOOST_AUTO_TEST_CASE(what_is_not_a_time_reads_as_zero) {
  BOOST_TEST(parse_rfc3339_ms("") == 0);
  BOOST_TEST(parse_rfc3339_ms("yesterday") == 0);
  BOOST_TEST(parse_rfc3339_ms("2026-13-45") == 0);
}

BOOST_AUTO_TEST_CASE(an_offset_is_taken_into_account) {
  BOOST_TEST(parse_rfc3339_ms("2026-01-01T01:30:00+01:30") == 1767225600000);
  BOOST_TEST(parse_rfc3339_ms("2025-12-31T23:00:00.250-01:00") == 1767225600250);
}

// What a Kernel could send as appliedAt and the service must not take for
// a time (each once read as one, or thrown on).
BOOST_AUTO_TEST_CASE(a_time_with_anything_wrong_or_extra_reads_as_zero) {
  for (const char* bad : {"2026-01-01T00:00:00.abcZ", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00",
                          "2026-01-01T00:00:00Zjunk", "2026-01-01T00:00:00+0100", "2026-02-30T00:00:00Z",
                          "2026-01-01T24:00:00Z", " 2026-01-01T00:00:00Z", "2026-1-01T00:00:00Z",
                          "2026-01-01 00:00:00Z", "2026-01-01T00:00:00+25:00"})
    BOOST_TEST(parse_rfc3339_ms(bad) == 0, bad);
}

BOOST_AUTO_TEST_SUITE_END()
