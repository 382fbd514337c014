// Statements a session runs again and again are prepared once per session
// (persistence::connection::exec_prepared), and prepared again whenever the
// session no longer has them.
#include <boost/test/unit_test.hpp>

#include <string>
#include <utility>
#include <vector>

#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"

using namespace ap;

namespace {

// Calls `name` as "SELECT $1::text[]…" and answers the first value.
std::string call_echo(persistence::connection& db, const std::string& item) {
  return db
    .exec_prepared("echo", "SELECT ($1::text[])[1] || '!'", {persistence::text_array(
                                                                std::vector<std::string>{item})})
    .value(0, 0);
}

// How often this session ran `name` as a prepared statement (planned
// generically or for its values), or -1 when the session does not have it.
long long runs_of(persistence::connection& db, const std::string& name) {
  auto rows = db.exec("SELECT generic_plans + custom_plans FROM pg_prepared_statements"
                      " WHERE name = $1",
                      {name});
  return rows.rows() == 0 ? -1 : std::stoll(rows.value(0, 0));
}

} // namespace

BOOST_AUTO_TEST_SUITE(prepared_statements)

BOOST_AUTO_TEST_CASE(a_statement_is_prepared_once_and_run_with_each_calls_values) {
  persistence::connection db{test::fresh_database("ap_prepared_once")};
  BOOST_TEST(runs_of(db, "echo") == -1);
  BOOST_TEST(call_echo(db, "a") == "a!");
  BOOST_TEST(call_echo(db, "b\"c") == "b\"c!");
  BOOST_TEST(call_echo(db, "d") == "d!");
  // One statement in the session, run three times.
  BOOST_TEST(db.exec("SELECT count(*) FROM pg_prepared_statements").value(0, 0) == "1");
  BOOST_TEST(runs_of(db, "echo") == 3);
}

BOOST_AUTO_TEST_CASE(a_statement_the_session_lost_is_prepared_again) {
  persistence::connection db{test::fresh_database("ap_prepared_lost")};
  BOOST_TEST(call_echo(db, "a") == "a!");
  // As a pooler's DISCARD ALL would: the server forgets it, the connection
  // does not know.
  db.exec("DEALLOCATE ALL");
  BOOST_TEST(call_echo(db, "b") == "b!");
  BOOST_TEST(runs_of(db, "echo") == 1);
}

BOOST_AUTO_TEST_CASE(a_statement_whose_result_type_changed_is_prepared_again) {
  auto url = test::fresh_database("ap_prepared_changed");
  persistence::connection db{url};
  persistence::connection other{url};
  other.exec("CREATE FUNCTION answer(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n + 1'");
  auto call = [&] {
    return db.exec_prepared("answer", "SELECT answer($1::integer)", {"41"}).value(0, 0);
  };
  BOOST_TEST(call() == "42");
  // A migration replaces it with one of another result type: the prepared
  // statement can no longer run (0A000).
  other.exec("DROP FUNCTION answer(integer)");
  other.exec("CREATE FUNCTION answer(n integer) RETURNS text LANGUAGE sql AS"
             " 'SELECT ''answer '' || n'");
  BOOST_TEST(call() == "answer 41");
  BOOST_TEST(runs_of(db, "answer") == 1);
}

BOOST_AUTO_TEST_CASE(a_new_session_prepares_its_statements_anew) {
  auto url = test::fresh_database("ap_prepared_reconnect");
  persistence::connection db{url};
  persistence::connection other{url};
  BOOST_TEST(call_echo(db, "a") == "a!");
  auto pid = db.exec("SELECT pg_backend_pid()").value(0, 0);
  other.exec("SELECT pg_terminate_backend($1::integer)", {pid});
  // The call that finds the session gone fails, as every call does; the
  // next one connects and prepares the statement in the new session.
  BOOST_CHECK_THROW(call_echo(db, "b"), persistence::db_error);
  BOOST_TEST(call_echo(db, "c") == "c!");
  BOOST_TEST(db.exec("SELECT pg_backend_pid()").value(0, 0) != pid);
  BOOST_TEST(runs_of(db, "echo") == 1);
}

// Inside a transaction the failed call has aborted it: nothing is sent
// again until the caller rolls back.
BOOST_AUTO_TEST_CASE(inside_a_transaction_a_lost_statement_fails_the_call) {
  persistence::connection db{test::fresh_database("ap_prepared_transaction")};
  BOOST_TEST(call_echo(db, "a") == "a!");
  db.exec("DEALLOCATE ALL");
  BOOST_CHECK_THROW(db.transaction([&] { call_echo(db, "b"); }), persistence::db_error);
  BOOST_TEST(call_echo(db, "c") == "c!");
}

BOOST_AUTO_TEST_CASE(a_batchs_arrays_are_moved_into_its_parameters_not_copied) {
  std::vector<std::string> results(8, std::string(2048, 'r'));
  auto arrays = persistence::text_array(results);
  auto counts = persistence::text_array(std::vector<std::string>{"1", "2"});
  const char* held = arrays.bytes()->data();
  auto values = persistence::params_of(std::move(arrays), std::move(counts), "last");
  BOOST_TEST(values.size() == 3u);
  // The same buffer: the kilobytes were not copied on the way.
  BOOST_TEST(static_cast<const void*>(values[0].bytes()->data()) == static_cast<const void*>(held));
  BOOST_TEST(*values[2].bytes() == "last");
  // And they reach the server whole.
  persistence::connection db{test::fresh_database("ap_prepared_moved")};
  auto rows = db.exec_prepared("sizes",
                               "SELECT cardinality($1::text[]), sum(length(x)),"
                               " ($2::text[])[2], $3::text FROM unnest($1::text[]) AS x",
                               values);
  BOOST_TEST(rows.value(0, 0) == "8");
  BOOST_TEST(rows.value(0, 1) == "16384");
  BOOST_TEST(rows.value(0, 2) == "2");
  BOOST_TEST(rows.value(0, 3) == "last");
}

BOOST_AUTO_TEST_SUITE_END()
