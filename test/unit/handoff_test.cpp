#include <boost/test/unit_test.hpp>

#include <string>
#include <thread>
#include <vector>

#include "core/handoff.hpp"

using namespace ap;

namespace {

// A destination that records what it was handed, delivery by delivery.
struct destination {
  std::vector<std::vector<std::string>> deliveries;
  std::vector<std::string> ran;

  static void deliver(void* target, std::vector<handoff::task>&& tasks) {
    auto* d = static_cast<destination*>(target);
    d->deliveries.emplace_back();
    for (auto& t : tasks)
      t();
  }

  handoff::task named(std::string name) {
    return [this, name] {
      ran.push_back(name);
      deliveries.back().push_back(name);
    };
  }
};

} // namespace

BOOST_AUTO_TEST_SUITE(handoff_batches)

BOOST_AUTO_TEST_CASE(outside_a_batch_nothing_is_held) {
  destination d;
  auto t = d.named("a");
  BOOST_TEST(!handoff::holding());
  BOOST_TEST(!handoff::hold(&d, &destination::deliver, t));
  // Left as it was, for the caller to hand over itself.
  BOOST_REQUIRE(static_cast<bool>(t));
  BOOST_TEST(d.deliveries.empty());
}

BOOST_AUTO_TEST_CASE(a_batch_delivers_each_destination_once_in_order_at_its_end) {
  destination first, second;
  {
    handoff::batch together;
    BOOST_TEST(handoff::holding());
    for (const char* name : {"a", "b"}) {
      auto t = first.named(name);
      BOOST_TEST(handoff::hold(&first, &destination::deliver, t));
    }
    auto t = second.named("x");
    BOOST_TEST(handoff::hold(&second, &destination::deliver, t));
    auto c = first.named("c");
    BOOST_TEST(handoff::hold(&first, &destination::deliver, c));
    BOOST_TEST(first.ran.empty());
    BOOST_TEST(second.ran.empty());
  }
  BOOST_TEST(!handoff::holding());
  BOOST_REQUIRE_EQUAL(first.deliveries.size(), 1u);
  BOOST_TEST(first.deliveries[0] == (std::vector<std::string>{"a", "b", "c"}),
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(second.deliveries.size(), 1u);
  BOOST_TEST(second.ran == std::vector<std::string>{"x"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(nested_batches_deliver_when_the_outermost_ends) {
  destination d;
  {
    handoff::batch outer;
    {
      handoff::batch inner;
      auto t = d.named("a");
      BOOST_TEST(handoff::hold(&d, &destination::deliver, t));
    }
    BOOST_TEST(d.deliveries.empty());
    BOOST_TEST(handoff::holding());
    auto t = d.named("b");
    BOOST_TEST(handoff::hold(&d, &destination::deliver, t));
  }
  BOOST_REQUIRE_EQUAL(d.deliveries.size(), 1u);
  BOOST_TEST(d.deliveries[0] == (std::vector<std::string>{"a", "b"}),
             boost::test_tools::per_element());
  // A batch that held nothing delivers nothing.
  { handoff::batch empty; }
  BOOST_TEST(d.deliveries.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_batch_holds_only_its_own_threads_hand_offs) {
  destination d;
  handoff::batch here;
  bool held_there = true;
  std::thread other{[&] {
    auto t = d.named("elsewhere");
    held_there = handoff::hold(&d, &destination::deliver, t);
  }};
  other.join();
  BOOST_TEST(!held_there);
  BOOST_TEST(handoff::holding());
}

BOOST_AUTO_TEST_SUITE_END()
