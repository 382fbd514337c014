#include <boost/test/unit_test.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/single_flight.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

// A cache over a fetch the test completes by hand, on a clock it sets.
struct fixture {
  using cache_type = single_flight_cache<std::string>;
  cache_type::clock::time_point now{};
  std::vector<std::function<void(std::string)>> pending;
  int fetches = 0;
  cache_type cache{1s, [this] { return now; }};

  cache_type::fetch_fn fetch() {
    return [this](std::function<void(std::string)> arrived) {
      ++fetches;
      pending.push_back(std::move(arrived));
    };
  }

  void complete(std::string value) {
    auto next = std::move(pending.front());
    pending.erase(pending.begin());
    next(std::move(value));
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(single_flight, fixture)

BOOST_AUTO_TEST_CASE(callers_during_a_fetch_share_it) {
  std::vector<std::string> seen;
  for (int i = 0; i < 5; ++i)
    cache.get(fetch(), [&](const std::string& v) { seen.push_back(v); });
  BOOST_TEST(fetches == 1);
  BOOST_TEST(seen.empty());
  complete("up");
  BOOST_TEST(seen == std::vector<std::string>(5, "up"));
}

BOOST_AUTO_TEST_CASE(a_result_is_reused_within_the_period_and_refetched_after) {
  std::string seen;
  cache.get(fetch(), [&](const std::string& v) { seen = v; });
  complete("first");
  now += 999ms;
  cache.get(fetch(), [&](const std::string& v) { seen = v; });
  BOOST_TEST(fetches == 1);
  BOOST_TEST(seen == "first");
  now += 1ms;
  seen.clear();
  cache.get(fetch(), [&](const std::string& v) { seen = v; });
  BOOST_TEST(fetches == 2);
  BOOST_TEST(seen.empty());
  complete("second");
  BOOST_TEST(seen == "second");
}

BOOST_AUTO_TEST_CASE(the_period_starts_when_a_slow_result_arrives) {
  std::string seen;
  cache.get(fetch(), [&](const std::string& v) { seen = v; });
  now += 4s;  // a fetch that ended in its timeout
  complete("timeout");
  now += 500ms;
  cache.get(fetch(), [&](const std::string& v) { seen = v; });
  BOOST_TEST(fetches == 1);
  BOOST_TEST(seen == "timeout");
  now += 500ms;
  cache.get(fetch(), [&](const std::string&) {});
  BOOST_TEST(fetches == 2);
}

BOOST_AUTO_TEST_CASE(a_stale_result_is_not_served_while_its_refresh_is_in_flight) {
  cache.get(fetch(), [](const std::string&) {});
  complete("up");
  now += 2s;
  std::string seen;
  cache.get(fetch(), [&](const std::string& v) { seen = v; });
  cache.get(fetch(), [&](const std::string& v) { seen += "+" + v; });
  BOOST_TEST(fetches == 2);
  BOOST_TEST(seen.empty());
  complete("down");
  BOOST_TEST(seen == "down+down");
}

BOOST_AUTO_TEST_CASE(a_fetch_that_completes_at_once_does_not_deadlock) {
  int answered = 0;
  auto immediate = [this](std::function<void(std::string)> arrived) {
    ++fetches;
    arrived("now");
  };
  cache.get(immediate, [&](const std::string&) { ++answered; });
  cache.get(immediate, [&](const std::string&) { ++answered; });
  BOOST_TEST(answered == 2);
  BOOST_TEST(fetches == 1);
}

BOOST_AUTO_TEST_CASE(many_threads_get_one_fetch_per_period) {
  single_flight_cache<int> real{1s};
  std::atomic<int> calls{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        real.get(
          [&](std::function<void(int)> arrived) {
            ++calls;
            std::thread([arrived] {
              std::this_thread::sleep_for(5ms);
              arrived(42);
            }).detach();
          },
          [&](const int& v) {
            if (v == 42)
              ++answered;
          });
    });
  for (auto& t : threads)
    t.join();
  for (int i = 0; i < 200 && answered.load() < 8000; ++i)
    std::this_thread::sleep_for(10ms);
  BOOST_TEST(answered.load() == 8000);
  // The loop takes well under a second; allow one refresh should it not.
  BOOST_TEST(calls.load() <= 2);
}

BOOST_AUTO_TEST_SUITE_END()
