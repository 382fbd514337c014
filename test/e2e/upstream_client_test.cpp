// The outbound client of every upstream, through real sockets against a
// scripted server: keep-alive, bounds, deadlines, what is sent again.
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "http/server.hpp"
#include "test/support/http_client.hpp"
#include "test/support/local_server.hpp"
#include "upstream/client.hpp"

using namespace ap;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// A server whose answers the test scripts through the X-Script header:
/// "ok", "silent" (never answers), "reset" (carries the request out, then
/// resets the connection instead of answering). While `stalled`, it accepts
/// and reads every request and answers none: a Kernel that hangs.
struct scripted_upstream : test::local_server {
  std::atomic<bool> stalled{false};
  std::mutex mutex;
  /// The X-Seq header of every request read, in order.
  std::vector<std::string> received;

  scripted_upstream() {
    for (const char* method : {"GET", "POST"})
      routes.add(method, "/call", http::access::open, http::body_kind::none,
                 [this](http::request& req, http::reply_fn reply) {
                   {
                     std::lock_guard<std::mutex> guard{mutex};
                     received.emplace_back(req.header("x-seq"));
                   }
                   auto script = std::string{req.header("x-script")};
                   if (stalled || script == "silent")
                     return;  // the server's own deadline is long
                   if (script == "reset") {
                     http::response r;
                     r.reset = true;
                     return reply(std::move(r));
                   }
                   reply(http::json_response(200, R"({"ok":true})"));
                 });
    start();
  }
  // Stops before the members the handlers use are gone.
  ~scripted_upstream() { stop(); }

  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> guard{mutex};
    return received;
  }
  upstream::endpoint where() const {
    return *upstream::parse_url("http://127.0.0.1:" + std::to_string(port));
  }
};

upstream::request make(const std::string& method, const std::string& seq,
                       const std::string& script = "ok",
                       std::chrono::milliseconds timeout = 2s) {
  upstream::request r;
  r.method = method;
  r.target = "/call";
  if (method == "POST")
    r.body = R"({"n":)" + seq + "}";
  r.headers = {{"X-Seq", seq}, {"X-Script", script}};
  r.timeout = timeout;
  return r;
}

upstream::reply call(upstream::client& c, upstream::request r) {
  std::promise<upstream::reply> done;
  auto result = done.get_future();
  c.send(std::move(r), [&done](upstream::reply reply) { done.set_value(std::move(reply)); });
  return result.get();
}

upstream::client_options options(metrics::registry* registry = nullptr,
                                 std::size_t connections = 16, std::size_t queue = 256) {
  upstream::client_options o;
  o.name = "test";
  o.max_connections = connections;
  o.max_queue = queue;
  o.registry = registry;
  return o;
}

double series(metrics::registry& r, const std::string& text) {
  auto all = r.render();
  auto at = all.find(text + " ");
  return at == std::string::npos ? -1 : std::stod(all.substr(at + text.size() + 1));
}

} // namespace

BOOST_AUTO_TEST_SUITE(upstream_urls)

BOOST_AUTO_TEST_CASE(urls_are_parsed_strictly) {
  auto e = upstream::parse_url("http://127.0.0.1:6050/base/");
  BOOST_REQUIRE(e);
  BOOST_TEST(!e->tls);
  BOOST_TEST(e->host == "127.0.0.1");
  BOOST_TEST(e->port == 6050);
  BOOST_TEST(e->base_path == "/base");
  BOOST_TEST(e->loopback());
  BOOST_TEST(e->ip_literal());
  auto s = upstream::parse_url("https://kernel.example.com");
  BOOST_REQUIRE(s);
  BOOST_TEST(s->tls);
  BOOST_TEST(s->port == 443);
  BOOST_TEST(!s->loopback());
  BOOST_TEST(!s->ip_literal());
  BOOST_TEST(s->url() == "https://kernel.example.com:443");
  auto v6 = upstream::parse_url("https://[::1]:8443/k");
  BOOST_REQUIRE(v6);
  BOOST_TEST(v6->host == "::1");
  BOOST_TEST(v6->loopback());
  BOOST_TEST(v6->url() == "https://[::1]:8443/k");
  BOOST_TEST(upstream::parse_url("http://localhost:1")->loopback());
  BOOST_TEST(upstream::parse_url("http://127.9.9.9")->loopback());
  BOOST_TEST(!upstream::parse_url("http://128.0.0.1")->loopback());
  BOOST_TEST(upstream::parse_url("http://kernel")->port == 80);
  for (auto bad : {"ftp://x", "http://:80", "http://x:99999", "http://x:8o", "http://x:",
                   "https://user@x", "http://x/?q", "http://x/#f", "http://[::1", "http://[zz]",
                   "http://x:0", "kernel:6050"})
    BOOST_TEST(!upstream::parse_url(bad), bad);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_FIXTURE_TEST_SUITE(upstream_client, scripted_upstream)

BOOST_AUTO_TEST_CASE(sequential_calls_reuse_one_keep_alive_connection) {
  upstream::client client{where(), options()};
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(call(client, make("POST", std::to_string(i))).status == 200);
  BOOST_TEST(connections() == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_calls_are_capped_at_the_pool_size) {
  upstream::client client{where(), options(nullptr, 3)};
  std::vector<std::future<upstream::reply>> calls;
  for (int i = 0; i < 30; ++i)
    calls.push_back(std::async(std::launch::async,
                               [&, i] { return call(client, make("POST", std::to_string(i))); }));
  for (auto& c : calls)
    BOOST_TEST(c.get().status == 200);
  BOOST_TEST(connections() <= 3u);
}

BOOST_AUTO_TEST_CASE(a_silent_server_times_out_within_the_bound) {
  upstream::client client{where(), options()};
  auto start = steady::now();
  auto r = call(client, make("POST", "1", "silent", 300ms));
  auto took = steady::now() - start;
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.error == "timeout");
  BOOST_TEST(r.sent);
  BOOST_TEST((took < 1s));
  // The client goes on working afterwards.
  BOOST_TEST(call(client, make("POST", "2")).status == 200);
}

BOOST_AUTO_TEST_CASE(a_refused_connection_is_an_error_that_was_never_sent) {
  upstream::client client{*upstream::parse_url("http://127.0.0.1:" + std::to_string(test::free_port())),
                          options()};
  auto r = call(client, make("POST", "1"));
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.error.rfind("connect: ", 0) == 0u, r.error);
  BOOST_TEST(!r.sent);
}

BOOST_AUTO_TEST_CASE(a_connection_closed_by_the_server_while_idle_is_not_reused) {
  upstream::client client{where(), options()};
  BOOST_TEST(call(client, make("POST", "1")).status == 200);
  // Restarting the server closes its idle keep-alive connections at once.
  stop();
  start();
  std::this_thread::sleep_for(50ms);
  auto r = call(client, make("POST", "2"));
  BOOST_TEST(r.status == 200);
  // Each request was read exactly once.
  BOOST_TEST(seen() == (std::vector<std::string>{"1", "2"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_post_written_whole_is_never_sent_again) {
  upstream::client client{where(), options()};
  BOOST_TEST(call(client, make("POST", "1")).status == 200);
  // On the reused connection the server reads the POST, then resets the
  // connection: the reply is lost, so its outcome is in doubt — and it is
  // the caller's to send again under its idempotency key, not the client's.
  auto r = call(client, make("POST", "2", "reset"));
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.sent);
  BOOST_TEST(r.error.rfind("closed before the reply", 0) == 0u, r.error);
  std::this_thread::sleep_for(100ms);
  BOOST_TEST(seen() == (std::vector<std::string>{"1", "2"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_hanging_upstream_bounds_the_queue_and_stale_requests_never_go_out) {
  metrics::registry reg;
  const auto timeout = 400ms;
  // Two connections, three places in the queue.
  upstream::client client{where(), options(&reg, 2, 3)};
  stalled = true;
  struct ending {
    upstream::reply reply;
    steady::duration took;
  };
  std::vector<std::promise<ending>> promises(8);
  std::vector<std::future<ending>> endings;
  for (auto& p : promises)
    endings.push_back(p.get_future());
  // In one hand-over, so that all share one deadline: sent one by one, a
  // waiting request whose deadline falls a moment after the first two's
  // could meet a connection freed by their expiry, and rightly go out.
  std::vector<std::pair<upstream::request, upstream::client::callback>> calls;
  auto sent_at = steady::now();
  for (int i = 0; i < 8; ++i)
    calls.emplace_back(make("POST", std::to_string(i), "ok", timeout),
                       [&promises, i, sent_at](upstream::reply r) {
                         promises[static_cast<std::size_t>(i)].set_value(
                           {std::move(r), steady::now() - sent_at});
                       });
  client.send_all(std::move(calls));
  std::vector<ending> got;
  for (auto& f : endings)
    got.push_back(f.get());
  // Beyond two in flight and three waiting: refused at once, never sent.
  for (int i = 5; i < 8; ++i) {
    BOOST_TEST(got[i].reply.error == "queue_full", i);
    BOOST_TEST(!got[i].reply.sent);
    BOOST_TEST((got[i].took < 200ms), i);
  }
  // Everything else ends at its own deadline, counted from when it was
  // queued: the waiting ones do not wait for a connection first and then
  // for their timeout again.
  for (int i = 0; i < 5; ++i) {
    BOOST_TEST(got[i].reply.error == "timeout", i);
    BOOST_TEST((got[i].took >= timeout - 20ms), i);
    BOOST_TEST((got[i].took < timeout + 300ms), i);
  }
  BOOST_TEST(got[0].reply.sent);
  BOOST_TEST(got[1].reply.sent);
  for (int i = 2; i < 5; ++i)
    BOOST_TEST(!got[i].reply.sent, i);
  BOOST_TEST(series(reg, R"(ap_upstream_requests_total{upstream="test",outcome="queue_full"})") == 3);
  BOOST_TEST(series(reg, R"(ap_upstream_requests_total{upstream="test",outcome="timeout"})") == 5);
  BOOST_TEST(series(reg, R"(ap_upstream_queue_depth{upstream="test"})") == 0);

  // The upstream recovers: a fresh request is answered, and none of the
  // expired ones is ever written behind it.
  stalled = false;
  BOOST_TEST(call(client, make("POST", "fresh")).status == 200);
  std::this_thread::sleep_for(300ms);
  // 0 and 1 went out at once on two connections, so they arrive in either
  // order; then the fresh one, and nothing else.
  auto arrived = seen();
  BOOST_REQUIRE_EQUAL(arrived.size(), 3u);
  std::sort(arrived.begin(), arrived.begin() + 2);
  BOOST_TEST(arrived == (std::vector<std::string>{"0", "1", "fresh"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
