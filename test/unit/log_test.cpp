#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fcntl.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "core/log.hpp"
#include "core/reachability.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

using clock_t_ = log::limiter::clock;

/// What a limiter let through over a run: lines written, summaries, and the
/// lines the summaries account for.
struct tally {
  std::size_t written = 0;
  std::vector<log::limiter::summary> summaries;
  std::uint64_t summarised() const {
    std::uint64_t n = 0;
    for (const auto& s : summaries)
      n += s.held;
    return n;
  }
};

/// Captures what this process writes to stderr while it lives.
class stderr_capture {
public:
  stderr_capture() {
    std::fflush(stderr);
    saved_ = ::dup(STDERR_FILENO);
    char name[] = "/tmp/ap-log-test-XXXXXX";
    file_ = ::mkstemp(name);
    ::unlink(name);
    ::dup2(file_, STDERR_FILENO);
  }
  ~stderr_capture() { restore(); }

  /// Restores stderr and answers what was written meanwhile.
  std::string restore() {
    if (saved_ >= 0) {
      ::dup2(saved_, STDERR_FILENO);
      ::close(saved_);
      saved_ = -1;
      ::lseek(file_, 0, SEEK_SET);
      char buf[4096];
      for (ssize_t n; (n = ::read(file_, buf, sizeof buf)) > 0;)
        text_.append(buf, static_cast<std::size_t>(n));
      ::close(file_);
    }
    return text_;
  }

private:
  int saved_ = -1;
  int file_ = -1;
  std::string text_;
};

std::size_t count_of(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(log_limiter)

BOOST_AUTO_TEST_CASE(an_hour_of_errors_at_2000_a_second_writes_a_few_hundred_lines) {
  log::limiter limiter;  // 10 s intervals
  tally t;
  auto start = clock_t_::time_point{} + 1h;
  constexpr std::uint64_t per_second = 2000;
  constexpr std::uint64_t seconds = 3600;
  for (std::uint64_t i = 0; i < per_second * seconds; ++i) {
    auto now = start + std::chrono::microseconds{i * 1000000 / per_second};
    // Every line carries its own request id and error text: neither makes a
    // new kind.
    auto id = std::to_string(i);
    if (limiter.admit(log::level::error, "database request failed",
                      {{"actor", "database-worker"}, {"requestId", id}, {"error", id}}, now,
                      t.summaries))
      ++t.written;
  }
  limiter.sweep(start + std::chrono::seconds{seconds} + 11s, t.summaries);
  auto lines = t.written + t.summaries.size();
  BOOST_TEST_MESSAGE(lines << " lines for " << per_second * seconds << " errors");
  BOOST_TEST(lines <= 400u);
  BOOST_TEST(t.written == 3u);
  // Nothing vanished: every line held back is counted by a summary.
  BOOST_TEST(t.written + t.summarised() == per_second * seconds);
  BOOST_TEST(limiter.kinds() <= 1u);
  BOOST_REQUIRE(!t.summaries.empty());
  const auto& s = t.summaries.front();
  BOOST_TEST((s.lvl == log::level::error));
  BOOST_TEST(s.like == "database request failed");
  BOOST_REQUIRE(s.fields.size() == 1u);
  BOOST_TEST(s.fields[0].first == "actor");
  BOOST_TEST(s.fields[0].second == "database-worker");
  BOOST_TEST(s.seconds == 10);
  BOOST_TEST(log::summary_message(s) == std::to_string(s.held) + " more like this in the last 10 s");
}

BOOST_AUTO_TEST_CASE(kinds_are_told_apart_by_level_message_and_component) {
  log::limiter limiter;
  std::vector<log::limiter::summary> due;
  auto now = clock_t_::time_point{} + 1h;
  auto admit = [&](log::level lvl, const char* msg, std::initializer_list<log::field> f) {
    return limiter.admit(lvl, msg, f, now, due);
  };
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(admit(log::level::warn, "an upstream is unreachable", {{"upstream", "kernel"}}));
  BOOST_TEST(!admit(log::level::warn, "an upstream is unreachable", {{"upstream", "kernel"}}));
  // Another upstream, another level, another message: their first lines.
  BOOST_TEST(admit(log::level::warn, "an upstream is unreachable", {{"upstream", "database"}}));
  BOOST_TEST(admit(log::level::error, "an upstream is unreachable", {{"upstream", "kernel"}}));
  BOOST_TEST(admit(log::level::warn, "something else", {{"upstream", "kernel"}}));
  BOOST_TEST(limiter.kinds() == 4u);
}

BOOST_AUTO_TEST_CASE(every_configuration_problem_is_written) {
  // A refused start names every variable to fix, however many there are.
  log::limiter limiter;
  std::vector<log::limiter::summary> due;
  auto now = clock_t_::time_point{} + 1h;
  for (int i = 0; i < 8; ++i) {
    auto problem = "ARTIFACT_PUBLISHER_VAR" + std::to_string(i) + ": missing";
    BOOST_TEST(limiter.admit(log::level::error, "invalid configuration", {{"problem", problem}},
                             now, due));
  }
  BOOST_TEST(due.empty());
}

BOOST_AUTO_TEST_CASE(a_kind_quiet_for_an_interval_starts_afresh) {
  log::limiter limiter;
  std::vector<log::limiter::summary> due;
  auto t0 = clock_t_::time_point{} + 1h;
  auto admit = [&](clock_t_::time_point at) {
    return limiter.admit(log::level::error, "x", {}, at, due);
  };
  for (int i = 0; i < 10; ++i)
    admit(t0 + std::chrono::milliseconds{i});
  BOOST_TEST(due.empty());
  // Past the interval: the 7 held back are summarised, and the kind still
  // repeating writes no line of its own in the next interval.
  BOOST_TEST(!admit(t0 + 10s));
  BOOST_REQUIRE(due.size() == 1u);
  BOOST_TEST(due[0].held == 7u);
  BOOST_TEST(!admit(t0 + 15s));
  // That interval ends with its summary; then a quiet interval.
  limiter.sweep(t0 + 20s, due);
  BOOST_REQUIRE(due.size() == 2u);
  BOOST_TEST(due[1].held == 2u);
  limiter.sweep(t0 + 30s, due);
  BOOST_TEST(due.size() == 2u);
  BOOST_TEST(limiter.kinds() == 0u);
  BOOST_TEST(admit(t0 + 31s));
}

BOOST_AUTO_TEST_CASE(the_kinds_followed_are_bounded_whatever_the_messages) {
  log::limiter::settings s;
  s.max_kinds = 16;
  log::limiter limiter{s};
  std::vector<log::limiter::summary> due;
  auto now = clock_t_::time_point{} + 1h;
  std::size_t written = 0;
  for (int i = 0; i < 10000; ++i) {
    auto msg = "message " + std::to_string(i);
    auto actor = "actor " + std::to_string(i);
    if (limiter.admit(log::level::warn, msg, {{"actor", actor}}, now, due))
      ++written;
  }
  BOOST_TEST(limiter.kinds() <= 17u);
  // 16 kinds of their own, then the first lines of the shared one.
  BOOST_TEST(written == 16u + 3u);
  limiter.sweep(now + 10s, due);
  BOOST_REQUIRE(due.size() == 1u);
  BOOST_TEST(due[0].held == 10000u - written);
}

BOOST_AUTO_TEST_CASE(log_lines_pass_the_limiter_but_debug_lines_do_not) {
  log::set_level(log::level::debug);
  stderr_capture capture;
  for (int i = 0; i < 10000; ++i)
    log::error("a repeated failure in the log test", {{"requestId", std::to_string(i)}});
  for (int i = 0; i < 5; ++i)
    log::debug("a debug line in the log test");
  auto text = capture.restore();
  log::set_level(log::level::info);
  BOOST_TEST(count_of(text, "\"msg\":\"a repeated failure in the log test\"") == 3u, text);
  BOOST_TEST(count_of(text, "\"requestId\":\"0\"") == 1u);
  BOOST_TEST(count_of(text, "a debug line in the log test") == 5u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(upstream_reachability)

BOOST_AUTO_TEST_CASE(each_change_is_logged_once_with_its_reason) {
  stderr_capture capture;
  reachability kernel{"kernel-in-a-test"};
  BOOST_TEST(kernel.reachable());
  BOOST_TEST(!kernel.answered());
  BOOST_TEST(kernel.unreachable("connect: Connection refused"));
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(!kernel.unreachable("timeout"));
  BOOST_TEST(!kernel.reachable());
  BOOST_TEST(kernel.answered());
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(!kernel.answered());
  BOOST_TEST(kernel.reachable());
  auto text = capture.restore();
  BOOST_TEST(count_of(text, "\"upstream\":\"kernel-in-a-test\"") == 2u, text);
  auto down = text.find("\"level\":\"warn\",\"msg\":\"an upstream is unreachable\"");
  auto up = text.find("\"level\":\"info\",\"msg\":\"an upstream is reachable again\"");
  BOOST_TEST(down != std::string::npos, text);
  BOOST_TEST(up != std::string::npos, text);
  BOOST_TEST(down < up);
  BOOST_TEST(text.find("\"reason\":\"connect: Connection refused\"") != std::string::npos, text);
}

BOOST_AUTO_TEST_CASE(a_reason_is_its_first_line) {
  stderr_capture capture;
  reachability db{"database-in-a-test"};
  db.unreachable("cannot connect: Connection refused\n\tIs the server running on that host?");
  auto text = capture.restore();
  BOOST_TEST(text.find("\"reason\":\"cannot connect: Connection refused\"}") != std::string::npos,
             text);
}

BOOST_AUTO_TEST_CASE(with_a_settle_period_answers_between_failures_do_not_end_an_outage) {
  stderr_capture capture;
  reachability db{"database-settling-in-a-test", std::chrono::milliseconds{1000}};
  BOOST_TEST(db.unreachable("the database did not commit within 600 ms"));
  // Reads answered while commits keep failing: still down.
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    BOOST_TEST(!db.answered());
    BOOST_TEST(!db.unreachable("timeout"));
  }
  BOOST_TEST(!db.reachable());
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  BOOST_TEST(!db.answered());  // 100 ms since the last failure
  std::this_thread::sleep_for(std::chrono::milliseconds{1000});
  BOOST_TEST(db.answered());
  BOOST_TEST(db.reachable());
  auto text = capture.restore();
  BOOST_TEST(count_of(text, "database-settling-in-a-test") == 2u, text);
}

BOOST_AUTO_TEST_CASE(racing_calls_change_it_once) {
  stderr_capture capture;
  reachability db{"database-raced-in-a-test"};
  std::vector<std::thread> threads;
  std::atomic<int> changes{0};
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (db.unreachable("timeout"))
          ++changes;
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(changes.load() == 1);
  threads.clear();
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i)
        if (db.answered())
          ++changes;
    });
  for (auto& t : threads)
    t.join();
  BOOST_TEST(changes.load() == 2);
  auto text = capture.restore();
  BOOST_TEST(count_of(text, "database-raced-in-a-test") == 2u, text);
}

BOOST_AUTO_TEST_SUITE_END()
