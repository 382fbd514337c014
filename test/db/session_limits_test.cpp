// Every database call is bounded: by the server's statement_timeout and
// lock_timeout, and by the connection's own call deadline, after which the
// call is cancelled and, if the server does not answer the cancel, the
// connection dropped (persistence::session_limits).
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "persistence/connection.hpp"
#include "test/support/pg_cluster.hpp"

using namespace ap;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

std::string superuser_url(const std::string& url) {
  auto at = url.find('@');
  return "postgresql://postgres" + url.substr(at);
}

// Runs `sql`, which must fail, and answers its error.
persistence::db_error failure_of(persistence::connection& db, const std::string& sql) {
  try {
    db.exec(sql);
  } catch (const persistence::db_error& e) {
    return e;
  }
  BOOST_FAIL("'" << sql << "' finished within its limits");
  throw std::logic_error("unreachable");
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// A TCP relay between the connection and PostgreSQL that can be frozen:
// while frozen it forwards nothing in either direction and new connections
// (a cancel request is one) reach nothing, as with a server that stopped
// answering, a stalled disk or a network that drops packets.
class freezable_relay {
public:
  explicit freezable_relay(std::uint16_t target) : target_(target) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    BOOST_REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    BOOST_REQUIRE(::listen(listener_, 16) == 0);
    socklen_t len = sizeof addr;
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    threads_.emplace_back([this] { accept_loop(); });
  }
  ~freezable_relay() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    ::close(listener_);
    for (auto& t : threads_)
      t.join();
    for (int fd : sockets_)
      ::close(fd);
  }
  std::uint16_t port() const { return port_; }
  void freeze(bool on) { frozen_ = on; }

private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listener_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      int client = ::accept(listener_, nullptr, nullptr);
      if (client < 0)
        continue;
      int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(target_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(client);
        ::close(server);
        continue;
      }
      {
        std::lock_guard<std::mutex> lock{mutex_};
        sockets_.push_back(client);
        sockets_.push_back(server);
      }
      // Accepted while frozen: held until thawed, like everything else.
      threads_.emplace_back([=] { pump(client, server); });
    }
  }
  void pump(int a, int b) {
    char buf[16384];
    while (!stopping_) {
      if (frozen_) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0 || frozen_)
        continue;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
          continue;
        auto n = ::read(p[i].fd, buf, sizeof buf);
        if (n <= 0) {
          ::shutdown(a, SHUT_RDWR);
          ::shutdown(b, SHUT_RDWR);
          return;
        }
        int to = i == 0 ? b : a;
        for (ssize_t sent = 0; sent < n;) {
          auto w = ::write(to, buf + sent, static_cast<std::size_t>(n - sent));
          if (w <= 0)
            return;
          sent += w;
        }
      }
    }
  }

  std::uint16_t target_;
  std::uint16_t port_ = 0;
  int listener_ = -1;
  std::atomic<bool> frozen_{false};
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<int> sockets_;
  std::vector<std::thread> threads_;
};

// `url` with the relay's port in place of the shared server's.
std::string relayed(std::string url, const freezable_relay& relay) {
  auto port = std::to_string(test::shared_pg_port());
  auto at = url.find(':' + port + '/');
  BOOST_REQUIRE(at != std::string::npos);
  return url.replace(at + 1, port.size(), std::to_string(relay.port()));
}

// Has `holder` create the table `held` and keep it locked until it rolls
// back.
void hold_lock(persistence::connection& holder) {
  holder.exec("CREATE TABLE held (id int)");
  holder.exec("BEGIN");
  holder.exec("LOCK TABLE held IN ACCESS EXCLUSIVE MODE");
}

persistence::session_limits deadline_only(std::chrono::milliseconds deadline) {
  persistence::session_limits limits;
  limits.call_deadline = deadline;
  limits.cancel_grace = 500ms;
  return limits;
}

} // namespace

BOOST_AUTO_TEST_SUITE(session_limits)

BOOST_AUTO_TEST_CASE(a_statement_past_statement_timeout_is_ended_by_the_server) {
  auto url = test::fresh_database("ap_limits_statement");
  persistence::session_limits limits;
  limits.statement_timeout = 200ms;
  persistence::connection db{url, limits};
  auto start = clock_type::now();
  auto e = failure_of(db, "SELECT pg_sleep(5)");
  BOOST_TEST(e.sqlstate() == "57014");
  BOOST_TEST(!e.past_deadline());  // the server's limit, not the client's
  BOOST_TEST(seconds_since(start) < 2.0);
  BOOST_TEST(db.exec("SELECT 1").value(0, 0) == "1");
}

BOOST_AUTO_TEST_CASE(a_lock_held_by_another_session_fails_past_lock_timeout) {
  auto url = test::fresh_database("ap_limits_lock");
  persistence::connection holder{url};
  hold_lock(holder);

  persistence::session_limits limits;
  limits.lock_timeout = 200ms;
  persistence::connection db{url, limits};
  auto start = clock_type::now();
  // 55P03: lock_not_available
  BOOST_TEST(failure_of(db, "INSERT INTO held VALUES (1)").sqlstate() == "55P03");
  BOOST_TEST(seconds_since(start) < 2.0);
  holder.exec("ROLLBACK");
  db.exec("INSERT INTO held VALUES (1)");
}

BOOST_AUTO_TEST_CASE(a_call_past_its_deadline_is_cancelled_and_the_connection_kept) {
  auto url = test::fresh_database("ap_limits_cancel");
  persistence::connection db{url, deadline_only(300ms)};
  db.exec("SELECT 1");
  auto pid_before = db.exec("SELECT pg_backend_pid()").value(0, 0);
  auto start = clock_type::now();
  auto e = failure_of(db, "SELECT pg_sleep(5)");
  BOOST_TEST(e.past_deadline());
  BOOST_TEST(!e.connection_lost());
  BOOST_TEST(e.sqlstate() == "57014");  // canceled by the cancel request
  auto took = seconds_since(start);
  BOOST_TEST(took >= 0.3);
  BOOST_TEST(took < 1.5);
  BOOST_TEST(db.calls_past_deadline() == 1u);
  // The same session goes on.
  BOOST_TEST(db.exec("SELECT pg_backend_pid()").value(0, 0) == pid_before);
  // Inside a transaction the cancelled statement leaves it aborted, and a
  // rollback ends it.
  BOOST_CHECK_THROW(db.transaction([&] { db.exec("SELECT pg_sleep(5)"); }),
                    persistence::db_error);
  BOOST_TEST(db.exec("SELECT 2").value(0, 0) == "2");
  BOOST_TEST(db.calls_past_deadline() == 2u);
}

BOOST_AUTO_TEST_CASE(a_prepared_call_and_its_preparation_share_one_deadline) {
  auto url = test::fresh_database("ap_limits_prepared");
  persistence::connection holder{url};
  // Preparing the statement reads the table's definition, which waits for
  // this lock; running it then sleeps. Each round trip alone is within the
  // deadline, the call as a whole is not.
  hold_lock(holder);
  persistence::connection db{url, deadline_only(1000ms)};
  db.exec("SELECT 1");
  const std::string slow = "SELECT pg_sleep($1::float8) FROM (SELECT count(*) FROM held) c";
  std::thread release{[&] {
    std::this_thread::sleep_for(600ms);
    holder.exec("ROLLBACK");
  }};
  auto start = clock_type::now();
  try {
    db.exec_prepared("slow", slow, {"0.9"});
    BOOST_ERROR("the call outlived its deadline and still answered");
  } catch (const persistence::db_error& e) {
    BOOST_TEST(e.past_deadline());
    BOOST_TEST(e.sqlstate() == "57014");
    BOOST_TEST(!e.connection_lost());
  }
  auto took = seconds_since(start);
  release.join();
  BOOST_TEST(took >= 1.0);
  BOOST_TEST(took < 2.0);  // the one deadline (and the cancel), not one per round trip
  BOOST_TEST(db.calls_past_deadline() == 1u);
  // The statement stays prepared in the kept session and runs again.
  BOOST_TEST(db.exec_prepared("slow", slow, {"0"}).rows() == 1);
}

BOOST_AUTO_TEST_CASE(a_statement_whose_call_is_past_its_deadline_is_not_sent) {
  auto url = test::fresh_database("ap_limits_not_sent");
  freezable_relay relay{test::shared_pg_port()};
  persistence::connection holder{url};
  hold_lock(holder);
  persistence::connection db{relayed(url, relay), deadline_only(1000ms)};
  db.exec("SELECT 1");
  const std::string insert = "INSERT INTO held SELECT $1::int";

  // The preparation waits for the lock. Meanwhile the relay freezes, the
  // lock is released and the server answers the preparation into the
  // relay, which holds the answer, and the cancel sent at the deadline,
  // until 1.2 s: the preparation succeeded, but only after the deadline.
  auto start = clock_type::now();
  std::thread hold_the_answer{[&] {
    std::this_thread::sleep_until(start + 300ms);
    relay.freeze(true);
    holder.exec("ROLLBACK");
    std::this_thread::sleep_until(start + 1200ms);
    relay.freeze(false);
  }};
  try {
    db.exec_prepared("insert", insert, {"1"});
    BOOST_ERROR("a statement was sent past its call's deadline");
  } catch (const persistence::db_error& e) {
    BOOST_TEST(std::string{e.what()}.find("it was not sent") != std::string::npos,
               e.what());
    BOOST_TEST(e.past_deadline());
    BOOST_TEST(e.sqlstate() == "57014");
    BOOST_TEST(!e.connection_lost());
  }
  hold_the_answer.join();
  BOOST_TEST(seconds_since(start) < 2.0);
  BOOST_TEST(db.calls_past_deadline() == 1u);  // the call, counted once
  // Not sent is certain: nothing was written, and the session is kept,
  // with the statement prepared.
  BOOST_TEST(holder.exec("SELECT count(*) FROM held").value(0, 0) == "0");
  BOOST_TEST(db.exec_prepared("insert", insert, {"2"}).rows() == 0);
  BOOST_TEST(holder.exec("SELECT array_agg(id) FROM held").value(0, 0) == "{2}");
  BOOST_TEST(db.calls_past_deadline() == 1u);
}

BOOST_AUTO_TEST_CASE(a_copy_ends_the_session_instead_of_waiting_for_data,
                     *boost::unit_test::timeout(30)) {
  auto url = test::fresh_database("ap_limits_copy");
  persistence::connection db{url, deadline_only(300ms)};
  db.exec("SELECT 1");
  auto e = failure_of(db, "COPY (SELECT 1) TO STDOUT");
  BOOST_TEST(e.sqlstate() == "0A000");  // feature_not_supported
  BOOST_TEST(e.connection_lost());
  BOOST_TEST(!db.healthy());
  // The next call starts a new session.
  BOOST_TEST(db.exec("SELECT 4").value(0, 0) == "4");
}

BOOST_AUTO_TEST_CASE(a_server_that_stops_answering_costs_the_connection_not_a_hang) {
  auto url = test::fresh_database("ap_limits_frozen");
  freezable_relay relay{test::shared_pg_port()};
  persistence::connection db{relayed(url, relay), deadline_only(300ms)};
  BOOST_TEST(db.exec("SELECT 1").value(0, 0) == "1");

  relay.freeze(true);
  auto start = clock_type::now();
  auto e = failure_of(db, "SELECT 1");
  BOOST_TEST(e.past_deadline());
  BOOST_TEST(e.connection_lost());  // dropped: the cancel got no answer either
  auto took = seconds_since(start);
  BOOST_TEST(took >= 0.3);
  BOOST_TEST(took < 2.0);  // deadline + cancel grace, with room
  BOOST_TEST(!db.healthy());

  // Once the server answers again, the next call reconnects.
  relay.freeze(false);
  BOOST_TEST(db.exec("SELECT 3").value(0, 0) == "3");
}

BOOST_AUTO_TEST_CASE(a_commit_stalled_on_a_missing_synchronous_standby_is_cancelled_and_kept) {
  test::pg_cluster cluster;
  persistence::connection admin{superuser_url(cluster.url())};
  persistence::connection db{cluster.url(), deadline_only(300ms)};
  db.exec("CREATE TABLE stalled (id int)");

  // Commits now wait for a standby that does not exist.
  admin.exec("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
  admin.exec("SELECT pg_reload_conf()");
  // The server's processes take the new setting in turn.
  std::this_thread::sleep_for(1s);
  auto start = clock_type::now();
  // The commit is written locally and then waits; cancelling the wait
  // leaves it committed (PostgreSQL warns that it may not be replicated),
  // so the call answers with its result: never report a commit that may
  // have landed as undone.
  db.exec("INSERT INTO stalled VALUES (1)");
  auto took = seconds_since(start);
  BOOST_TEST(took >= 0.3);
  BOOST_TEST(took < 1.5);
  BOOST_TEST(db.calls_past_deadline() == 1u);
  BOOST_TEST(admin.exec("SELECT count(*) FROM stalled").value(0, 0) == "1");

  admin.exec("ALTER SYSTEM RESET synchronous_standby_names");
  admin.exec("SELECT pg_reload_conf()");
  db.exec("INSERT INTO stalled VALUES (2)");
  BOOST_TEST(db.calls_past_deadline() == 1u);
  BOOST_TEST(admin.exec("SELECT count(*) FROM stalled").value(0, 0) == "2");
}

BOOST_AUTO_TEST_CASE(the_server_side_limits_are_set_on_each_session) {
  auto url = test::fresh_database("ap_limits_settings");
  persistence::session_limits limits;
  limits.statement_timeout = 1500ms;
  limits.lock_timeout = 700ms;
  limits.idle_in_transaction_timeout = 4000ms;
  persistence::connection db{url, limits};
  BOOST_TEST(db.exec("SHOW statement_timeout").value(0, 0) == "1500ms");
  BOOST_TEST(db.exec("SHOW lock_timeout").value(0, 0) == "700ms");
  BOOST_TEST(db.exec("SHOW idle_in_transaction_session_timeout").value(0, 0) == "4s");
  // No limits: the server's defaults (none), as for migrations.
  persistence::connection plain{url};
  BOOST_TEST(plain.exec("SHOW statement_timeout").value(0, 0) == "0");
}

BOOST_AUTO_TEST_CASE(no_statement_is_compiled_with_jit) {
  auto url = test::fresh_database("ap_limits_jit");
  persistence::connection db{url};
  BOOST_TEST(db.exec("SHOW jit").value(0, 0) == "off");
  // A plan estimated dear enough to be compiled, where the server can.
  auto plan = [&] {
    std::string text;
    auto rows = db.exec("EXPLAIN SELECT count(*) FROM generate_series(1, 1000) a,"
                        " generate_series(1, 1000) b, generate_series(1, 1000) c");
    for (int i = 0; i < rows.rows(); ++i)
      text += rows.value(i, 0) + "\n";
    return text;
  };
  BOOST_TEST(plan().find("JIT") == std::string::npos, plan());
  // With jit on, PostgreSQL's default, the same session compiles it (where
  // the server has a JIT provider, as Debian's has).
  db.exec("SET jit = on");
  if (db.exec("SELECT pg_jit_available()").value(0, 0) == "t")
    BOOST_TEST(plan().find("JIT") != std::string::npos, plan());
  else
    BOOST_TEST_MESSAGE("this server has no JIT provider");
}

BOOST_AUTO_TEST_SUITE_END()
