#include <boost/test/unit_test.hpp>

#include <caf/all.hpp>

#include "actors/database.hpp"
#include "actors/node.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "test/support/pg_cluster.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

// The database actor runs detached workers on threads of their own, so
// these tests use a real scheduler and wait on replies with a timeout.
struct live_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  live_system() {
    configure_actor_system(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }

  persistence::db_status ping(const database_actor& db) {
    caf::scoped_actor self{*sys};
    persistence::db_status out;
    self->request(db, 10s, atoms::ping_atom::value)
      .receive([&](persistence::db_status& st) { out = std::move(st); },
               [&](caf::error& err) { BOOST_FAIL("ping failed: " << caf::to_string(err)); });
    return out;
  }
};

database_config db_config(const std::string& url, std::size_t workers) {
  database_config cfg;
  cfg.url = url;
  cfg.workers = workers;
  return cfg;
}

} // namespace

BOOST_AUTO_TEST_SUITE(database_actor_tests)

BOOST_AUTO_TEST_CASE(readiness_follows_migrations) {
  live_system live;
  auto url = test::fresh_database("ap_database_ready");
  auto db = live.sys->spawn(database, db_config(url, 2));
  auto before = live.ping(db);
  BOOST_TEST(before.reachable);
  BOOST_TEST(!before.ready());
  BOOST_TEST(before.schema_version == 0);
  BOOST_TEST(before.detail.find("migrate") != std::string::npos);
  persistence::connection c{url};
  persistence::migrate(c);
  // Every worker sees the new schema (requests go round-robin).
  for (int i = 0; i < 4; ++i) {
    auto after = live.ping(db);
    BOOST_TEST(after.ready());
    BOOST_TEST(after.schema_version == persistence::latest_version());
  }
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(unreachable_server_is_reported_not_thrown) {
  live_system live;
  auto db = live.sys->spawn(
    database, db_config("postgresql://artifact_publisher@127.0.0.1:1/none", 1));
  auto st = live.ping(db);
  BOOST_TEST(!st.reachable);
  BOOST_TEST(!st.ready());
  BOOST_TEST(st.detail.find("cannot connect") != std::string::npos);
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_CASE(connections_heal_after_a_server_restart) {
  test::pg_cluster cluster;
  persistence::connection c{cluster.url()};
  persistence::migrate(c);
  live_system live;
  auto db = live.sys->spawn(database, db_config(cluster.url(), 1));
  BOOST_TEST(live.ping(db).ready());
  BOOST_TEST(c.exec("SELECT 1").value(0, 0) == "1");

  cluster.stop();
  BOOST_CHECK_THROW(c.exec("SELECT 1"), persistence::db_error);
  auto down = live.ping(db);
  BOOST_TEST(!down.reachable);

  cluster.start();
  // The same connection object and the same actor recover on their own.
  BOOST_TEST(c.exec("SELECT 1").value(0, 0) == "1");
  BOOST_TEST(live.ping(db).ready());
  caf::anon_send_exit(db, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
