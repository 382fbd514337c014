// The retention janitor against a retention store in memory, in simulated
// time: when sweeps start, how batches follow one another, where a sweep
// stops, what it reports.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include "actors/janitor.hpp"
#include "test/support/actor_fixture.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

// Rows past retention per table, and every batch asked for.
struct fake_tables {
  std::array<std::int64_t, 2> purgeable{};
  std::array<std::int64_t, 2> oldest_kept{};
  std::vector<persistence::purge_terms> batches;
  /// Another instance holds the retention lock.
  bool locked = false;
  /// Every batch fails (the database is gone).
  bool failing = false;
  /// Vacuums of the queue tables asked for.
  int vacuums = 0;
  /// Every vacuum fails.
  bool vacuum_failing = false;
};

struct fake_store_state {
  static constexpr const char* name = "fake-retention-store";
};

retention_store_actor::behavior_type
fake_store(retention_store_actor::stateful_pointer<fake_store_state>,
           std::shared_ptr<fake_tables> tables) {
  return {
    [tables](atoms::purge_atom,
             const persistence::purge_terms& terms) -> caf::result<persistence::purge_outcome> {
      tables->batches.push_back(terms);
      if (tables->failing)
        return caf::make_error(caf::sec::runtime_error, "database error");
      persistence::purge_outcome out;
      if (tables->locked) {
        out.locked_out = true;
        return out;
      }
      auto& left = tables->purgeable[static_cast<std::size_t>(terms.table)];
      out.purged = static_cast<std::int32_t>(std::min<std::int64_t>(left, terms.limit));
      left -= out.purged;
      return out;
    },
    [tables](atoms::retained_atom, persistence::retention_table table) -> std::int64_t {
      return tables->oldest_kept[static_cast<std::size_t>(table)];
    },
    [tables](atoms::vacuum_atom) -> caf::result<bool> {
      ++tables->vacuums;
      if (tables->vacuum_failing)
        return caf::make_error(caf::sec::runtime_error, "database error");
      return true;
    },
  };
}

constexpr auto keys = persistence::retention_table::idempotency_keys;
constexpr auto outbox = persistence::retention_table::audit_outbox;

struct sweeping : test::actor_fixture {
  metrics::registry registry;
  std::shared_ptr<fake_tables> tables = std::make_shared<fake_tables>();
  retention_store_actor store = sys.spawn(fake_store, tables);
  janitor_actor janitor_handle;

  void start(janitor_config cfg) {
    cfg.store = [this] { return store; };
    janitor_handle = sys.spawn(janitor, cfg, &registry);
    run();
  }

  static janitor_config config() {
    janitor_config cfg;
    cfg.interval = 1000ms;
    cfg.batch = 10;
    cfg.max_batches = 3;
    cfg.pause = 20ms;
    cfg.idempotency_retention = std::chrono::hours{72};
    cfg.outbox_retention = std::chrono::hours{168};
    cfg.vacuum_interval = 0ms;
    return cfg;
  }

  /// Moves time on 10 ms at a time, so that every pause ends on time.
  void pass(std::chrono::milliseconds total) {
    for (auto t = 0ms; t < total; t += 10ms)
      advance(10ms);
  }

  bool left(std::int64_t keys_left, std::int64_t outbox_left) const {
    return tables->purgeable == std::array<std::int64_t, 2>{keys_left, outbox_left};
  }

  std::size_t batches_of(persistence::retention_table t) const {
    return static_cast<std::size_t>(std::count_if(tables->batches.begin(), tables->batches.end(),
                                                  [t](const auto& b) { return b.table == t; }));
  }

  double purged_total(const char* table) {
    return static_cast<double>(
      registry.get_counter("ap_retention_rows_purged_total", "", {{"table", table}}).value());
  }
  double vacuums(const char* outcome) {
    return static_cast<double>(
      registry.get_counter("ap_queue_vacuums_total", "", {{"outcome", outcome}}).value());
  }
  double oldest_kept(const char* table) {
    return registry.get_gauge("ap_retention_oldest_kept_seconds", "", {{"table", table}}).value();
  }

  ~sweeping() {
    for (const auto& h : {caf::actor_cast<caf::actor>(janitor_handle), caf::actor_cast<caf::actor>(store)})
      caf::anon_send_exit(h, caf::exit_reason::user_shutdown);
    run();
  }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(janitor_tests, sweeping)

BOOST_AUTO_TEST_CASE(a_sweep_starts_each_interval_and_purges_each_table_in_turn) {
  tables->purgeable = {25, 5};
  tables->oldest_kept = {259200, 604800};
  start(config());
  BOOST_TEST(tables->batches.empty());
  advance(999ms);
  BOOST_TEST(tables->batches.empty());
  advance(1ms);
  // The first batch at once, each next one after the pause.
  BOOST_TEST(tables->batches.size() == 1u);
  BOOST_TEST((tables->batches[0].table == keys));
  BOOST_TEST(tables->batches[0].limit == 10);
  BOOST_TEST(tables->batches[0].older_than_s == 72 * 3600);
  advance(19ms);
  BOOST_TEST(tables->batches.size() == 1u);
  advance(1ms);
  BOOST_TEST(tables->batches.size() == 2u);
  advance(20ms);
  // 10 + 10 + 5: the short batch ends the keys; the outbox follows.
  BOOST_TEST(batches_of(keys) == 3u);
  advance(20ms);
  BOOST_TEST(batches_of(outbox) == 1u);
  BOOST_TEST(tables->batches.back().older_than_s == 168 * 3600);
  advance(100ms);
  BOOST_TEST(tables->batches.size() == 4u);
  BOOST_TEST(left(0, 0));
  BOOST_TEST(purged_total("idempotency_keys") == 25.0);
  BOOST_TEST(purged_total("audit_outbox") == 5.0);
  BOOST_TEST(oldest_kept("idempotency_keys") == 259200.0);
  BOOST_TEST(oldest_kept("audit_outbox") == 604800.0);
  // The next sweep finds nothing: one empty batch per table.
  advance(1000ms);
  advance(100ms);
  BOOST_TEST(tables->batches.size() == 6u);
}

BOOST_AUTO_TEST_CASE(a_sweep_stops_after_its_batches_and_the_next_goes_on) {
  tables->purgeable = {100, 100};
  start(config());
  pass(1500ms);
  // At most three batches of each table per sweep.
  BOOST_TEST(batches_of(keys) == 3u);
  BOOST_TEST(batches_of(outbox) == 3u);
  BOOST_TEST(left(70, 70));
  pass(1000ms);
  BOOST_TEST(left(40, 40));
}

BOOST_AUTO_TEST_CASE(a_sweep_that_outlasts_the_interval_is_not_doubled) {
  tables->purgeable = {1000, 0};
  auto cfg = config();
  cfg.max_batches = 100;
  cfg.pause = 300ms;
  start(cfg);
  advance(1000ms);
  // Batches 300 ms apart; the timer fires again meanwhile and starts none.
  for (int i = 0; i < 10; ++i)
    advance(100ms);
  BOOST_TEST(tables->batches.size() == 4u);
}

BOOST_AUTO_TEST_CASE(another_instance_sweeping_ends_this_sweep) {
  tables->purgeable = {100, 100};
  tables->locked = true;
  start(config());
  pass(1500ms);
  // One attempt, nothing purged, the outbox not even tried.
  BOOST_TEST(tables->batches.size() == 1u);
  BOOST_TEST(purged_total("idempotency_keys") == 0.0);
  tables->locked = false;
  pass(1000ms);
  BOOST_TEST(left(70, 70));
}

BOOST_AUTO_TEST_CASE(a_failed_batch_ends_the_sweep_and_the_next_one_tries_again) {
  tables->purgeable = {100, 100};
  tables->failing = true;
  start(config());
  pass(1500ms);
  BOOST_TEST(tables->batches.size() == 1u);
  tables->failing = false;
  pass(1000ms);
  BOOST_TEST(left(70, 70));
}

BOOST_AUTO_TEST_CASE(the_queue_tables_are_vacuumed_each_vacuum_interval_apart_from_sweeps) {
  tables->purgeable = {100, 100};
  auto cfg = config();
  cfg.vacuum_interval = 300ms;
  start(cfg);
  advance(299ms);
  BOOST_TEST(tables->vacuums == 0);
  advance(1ms);
  BOOST_TEST(tables->vacuums == 1);
  BOOST_TEST(vacuums("done") == 1.0);
  // The sweeps go on as before, and the vacuums beside them.
  pass(1500ms);
  BOOST_TEST(tables->vacuums == 6);
  BOOST_TEST(batches_of(keys) == 3u);
  BOOST_TEST(batches_of(outbox) == 3u);
  BOOST_TEST(vacuums("done") == 6.0);
  BOOST_TEST(vacuums("failed") == 0.0);
}

BOOST_AUTO_TEST_CASE(no_vacuum_with_an_interval_of_zero) {
  start(config());
  pass(2500ms);
  BOOST_TEST(tables->vacuums == 0);
  // Two sweeps, each one batch per table.
  BOOST_TEST(tables->batches.size() == 4u);
}

BOOST_AUTO_TEST_CASE(a_failed_vacuum_is_counted_and_the_next_interval_tries_again) {
  tables->vacuum_failing = true;
  auto cfg = config();
  cfg.vacuum_interval = 300ms;
  start(cfg);
  pass(600ms);
  BOOST_TEST(tables->vacuums == 2);
  BOOST_TEST(vacuums("failed") == 2.0);
  tables->vacuum_failing = false;
  pass(300ms);
  BOOST_TEST(tables->vacuums == 3);
  BOOST_TEST(vacuums("done") == 1.0);
}

BOOST_AUTO_TEST_SUITE_END()
