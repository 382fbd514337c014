#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include "core/ids.hpp"
#include "core/time.hpp"
#include "domain/order.hpp"

using namespace ap;

namespace {

bool lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The 8 hex a record id made at unix_ms starts with.
std::string second_hex(std::int64_t unix_ms) {
  return record_id_hex(unix_ms).substr(0, 8);
}

} // namespace

BOOST_AUTO_TEST_SUITE(record_ids)

BOOST_AUTO_TEST_CASE(a_record_id_is_its_second_then_64_random_bits) {
  // 2026-01-01T00:00:00.123Z is second 1767225600 = 0x6955b900.
  auto id = record_id_hex(1767225600123);
  BOOST_TEST(id.size() == 24u);
  BOOST_TEST(lower_hex(id));
  BOOST_TEST(id.substr(0, 8) == "6955b900");
  BOOST_TEST(second_hex(0) == "00000000");
  BOOST_TEST(second_hex(4294967295999) == "ffffffff");

  std::set<std::string> tails;
  for (int i = 0; i < 2000; ++i)
    tails.insert(record_id_hex(1767225600123).substr(8));
  BOOST_TEST(tails.size() == 2000u);
}

BOOST_AUTO_TEST_CASE(a_record_id_takes_the_random_bytes_it_is_given) {
  std::string bytes{"\x00\x01\xab\xcd\xef\x10\x7f\xff", 8};
  BOOST_TEST(record_id_hex(1767225600123, bytes) == "6955b900" "0001abcdef107fff");
  BOOST_TEST(hex_of(bytes) == "0001abcdef107fff");
  BOOST_TEST(hex_of("") == "");
  BOOST_CHECK_THROW(record_id_hex(1767225600123, bytes.substr(0, 7)), std::invalid_argument);
  BOOST_CHECK_THROW(record_id_hex(1767225600123, bytes + "x"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(a_later_second_sorts_after_every_id_of_an_earlier_one) {
  auto earliest_later = record_id_hex(1767225601000);
  for (int i = 0; i < 500; ++i) {
    BOOST_TEST(record_id_hex(1767225600999) < earliest_later);
    BOOST_TEST(record_id_hex(1767225600000) < record_id_hex(1767225601000));
  }
  // And by second, not by the digits of the milliseconds.
  BOOST_TEST(second_hex(1767225600000) == second_hex(1767225600999));
  BOOST_TEST(second_hex(1767225599999) < second_hex(1767225600000));
}

BOOST_AUTO_TEST_CASE(a_derived_id_takes_its_parents_second_and_the_digests_digits) {
  auto parent = record_id_hex(1767225600123);
  std::string digest = "0123456789abcdef0123456789abcdef";
  auto id = derived_record_id_hex(parent, digest);
  BOOST_TEST(id == "6955b900" + digest.substr(0, 16));
  BOOST_TEST(derived_record_id_hex(parent, digest) == id);
  BOOST_CHECK_THROW(derived_record_id_hex("6955b9", digest), std::invalid_argument);
  BOOST_CHECK_THROW(derived_record_id_hex(parent, "0123"), std::invalid_argument);
}

BOOST_AUTO_TEST_CASE(an_orders_indexed_ids_are_placed_by_its_creation_second) {
  auto before = unix_ms_now();
  auto ids = domain::new_order_ids();
  auto after = unix_ms_now();
  auto created = parse_rfc3339_ms(ids.created_at);
  BOOST_TEST(created >= before - before % 1000);
  BOOST_TEST(created <= after);
  auto second = second_hex(created);
  BOOST_TEST(ids.order_id.size() == 30u);
  BOOST_TEST(ids.order_id.substr(0, 14) == "order_" + second);
  BOOST_TEST(ids.completed_event_id.substr(0, 12) == "evt_" + second);
  BOOST_TEST(ids.delivery_event_id.substr(0, 12) == "evt_" + second);
  BOOST_TEST(ids.completed_event_id != ids.delivery_event_id);
  // The ids no index is keyed by stay wholly random.
  BOOST_TEST(ids.license_id.size() == 28u);
  BOOST_TEST(ids.delivery_id.size() == 28u);
}

BOOST_AUTO_TEST_CASE(an_orders_ids_each_have_random_bytes_of_their_own) {
  // One draw serves all five ids. Every run of 6 bytes (12 hex, at a byte
  // boundary) of their random parts, in one order and across orders, must
  // be unique: two ids sharing 6 or more of the draw's bytes would repeat
  // one (by chance about once in a million runs of this test).
  std::set<std::string> windows;
  std::size_t count = 0;
  auto add = [&](const std::string& random_part) {
    BOOST_TEST(lower_hex(random_part));
    for (std::size_t at = 0; at + 12 <= random_part.size(); at += 2, ++count)
      windows.insert(random_part.substr(at, 12));
  };
  for (int i = 0; i < 1000; ++i) {
    auto ids = domain::new_order_ids();
    add(ids.order_id.substr(14));
    add(ids.completed_event_id.substr(12));
    add(ids.delivery_event_id.substr(12));
    add(ids.license_id.substr(4));
    add(ids.delivery_id.substr(4));
  }
  BOOST_TEST(count == 1000u * (3 * 3 + 2 * 7));
  BOOST_TEST(windows.size() == count);
}

BOOST_AUTO_TEST_SUITE_END()
