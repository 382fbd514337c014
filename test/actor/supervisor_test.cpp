#include <boost/test/unit_test.hpp>

#include <caf/actor_system_config.hpp>

#include "actors/node.hpp"
#include "actors/supervisor.hpp"
#include "core/metrics.hpp"
#include "test/support/actor_fixture.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

// A supervised child that answers a ping with the generation it was started
// as, so a test can tell instances apart.
using probe_actor = caf::typed_actor<caf::replies_to<atoms::ping_atom>::with<int>>;

probe_actor::behavior_type probe(probe_actor::pointer, int generation) {
  return {
    [generation](atoms::ping_atom) { return generation; },
  };
}

struct supervised : test::actor_fixture {
  metrics::registry registry;
  probe_actor current;
  int starts = 0;
  supervisor_config policy;
  supervisor_actor sup;

  supervised() {
    policy.initial_backoff = 100ms;
    policy.max_backoff = 400ms;
    policy.stable_after = 10s;
    std::vector<child_spec> children;
    children.push_back({"database", [this](caf::actor_system& s) {
                          current = s.spawn(probe, ++starts);
                          return caf::actor_cast<caf::actor>(current);
                        }});
    sup = spawn_supervisor(sys, std::move(children), policy, &registry);
    run();
  }

  // Stop the actors while the registry they count into still exists.
  ~supervised() {
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    run();
  }

  std::uint64_t restarts() {
    return registry.get_counter("ap_actor_restarts_total", "", {{"actor", "database"}}).value();
  }

  int generation_answering() {
    auto reply = ask<int>(current, atoms::ping_atom::value);
    if (!reply || !*reply)
      return -1;
    return **reply;
  }

  void kill_database() {
    caf::anon_send_exit(current, caf::exit_reason::kill);
    run();
  }
};

} // namespace

// The service's actor system: its scheduler's idle workers go straight
// from their quick polls to waiting for the next message.
BOOST_AUTO_TEST_CASE(the_service_s_idle_workers_wait_without_timed_polls) {
  caf::actor_system_config cfg;
  configure_actor_system(cfg, 1);
  BOOST_TEST(caf::get_or(cfg, "work-stealing.moderate-poll-attempts", std::size_t{500}) == 0u);
  BOOST_TEST(caf::get_or(cfg, "scheduler.max-threads", std::size_t{0}) == 1u);
}

BOOST_FIXTURE_TEST_SUITE(supervision, supervised)

BOOST_AUTO_TEST_CASE(children_start_and_answer) {
  BOOST_TEST(starts == 1);
  BOOST_TEST(generation_answering() == 1);
  BOOST_TEST(restarts() == 0u);
}

BOOST_AUTO_TEST_CASE(killed_child_is_replaced_after_backoff_and_counted) {
  auto first = current;
  kill_database();
  // Down, and not back before the backoff has passed.
  BOOST_TEST(starts == 1);
  BOOST_TEST(restarts() == 0u);
  auto dead = ask<int>(first, atoms::ping_atom::value);
  BOOST_REQUIRE(dead.has_value());
  BOOST_TEST(!*dead);
  advance(99ms);
  BOOST_TEST(starts == 1);
  advance(1ms);
  BOOST_TEST(starts == 2);
  BOOST_TEST(restarts() == 1u);
  BOOST_TEST((current != first));
  BOOST_TEST(generation_answering() == 2);
}

BOOST_AUTO_TEST_CASE(backoff_doubles_for_repeated_crashes_and_is_capped) {
  kill_database();
  advance(100ms);
  BOOST_TEST(starts == 2);
  kill_database();
  advance(100ms);
  BOOST_TEST(starts == 2);  // second crash in a row waits 200 ms
  advance(100ms);
  BOOST_TEST(starts == 3);
  kill_database();
  advance(399ms);
  BOOST_TEST(starts == 3);  // third waits 400 ms
  advance(1ms);
  BOOST_TEST(starts == 4);
  kill_database();
  advance(400ms);
  BOOST_TEST(starts == 5);  // capped at 400 ms
  BOOST_TEST(restarts() == 4u);
}

BOOST_AUTO_TEST_CASE(a_child_that_ran_long_enough_starts_from_the_initial_delay) {
  kill_database();
  advance(100ms);
  kill_database();
  advance(200ms);
  BOOST_TEST(starts == 3);
  advance(10s);  // stable now
  kill_database();
  advance(100ms);
  BOOST_TEST(starts == 4);
}

BOOST_AUTO_TEST_CASE(shutdown_stops_children_without_restarting_them) {
  auto child = current;
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  run();
  advance(1s);
  BOOST_TEST(starts == 1);
  BOOST_TEST(restarts() == 0u);
  auto reply = ask<int>(child, atoms::ping_atom::value);
  BOOST_REQUIRE(reply.has_value());
  BOOST_TEST(!*reply);  // the child is gone too
}

BOOST_AUTO_TEST_CASE(children_are_published_before_spawn_returns) {
  // The HTTP edge listens as soon as the node is built, so every handle is
  // in place when spawn_supervisor returns, not when the supervisor is
  // first scheduled: here no message has run yet.
  probe_actor ledger;
  int ledger_starts = 0;
  std::vector<child_spec> children;
  children.push_back({"ledger", [&](caf::actor_system& s) {
                        ledger = s.spawn(probe, ++ledger_starts);
                        return caf::actor_cast<caf::actor>(ledger);
                      }});
  auto second = spawn_supervisor(sys, std::move(children), policy, &registry);
  BOOST_TEST(ledger_starts == 1);
  BOOST_REQUIRE(static_cast<bool>(ledger));
  // A child that goes down before the supervisor first runs is still
  // restarted: monitoring a dead actor reports it down at once.
  auto first = ledger;
  caf::anon_send_exit(ledger, caf::exit_reason::kill);
  run();
  advance(100ms);
  BOOST_TEST(ledger_starts == 2);
  BOOST_TEST((ledger != first));
  auto reply = ask<int>(ledger, atoms::ping_atom::value);
  BOOST_REQUIRE(reply.has_value());
  BOOST_REQUIRE(static_cast<bool>(*reply));
  BOOST_TEST(**reply == 2);
  caf::anon_send_exit(second, caf::exit_reason::user_shutdown);
  run();
}

BOOST_AUTO_TEST_CASE(backoff_policy_values) {
  supervisor_config c;
  c.initial_backoff = 100ms;
  c.max_backoff = 5s;
  BOOST_TEST(c.backoff(0).count() == 100);
  BOOST_TEST(c.backoff(1).count() == 200);
  BOOST_TEST(c.backoff(5).count() == 3200);
  BOOST_TEST(c.backoff(6).count() == 5000);
  BOOST_TEST(c.backoff(100).count() == 5000);
}

BOOST_AUTO_TEST_SUITE_END()
