// The HTTP edge through real sockets: an in-process server with test routes
// next to the real ones, so each edge rule can be shown in isolation.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <caf/all.hpp>

#include "actors/node.hpp"
#include "core/json.hpp"
#include "actors/ask.hpp"
#include "core/handoff.hpp"
#include "http/routes.hpp"
#include "http/server.hpp"
#include "test/support/http_client.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;
const header_list json_type{{"Content-Type", "application/json"}};

// An actor that never answers, and one that answers at once.
using echo_actor = caf::typed_actor<caf::replies_to<atoms::ping_atom>::with<persistence::db_status>>;

echo_actor::behavior_type silent(echo_actor::pointer self) {
  return {
    [self](atoms::ping_atom) -> caf::result<persistence::db_status> {
      // Keep the promise open forever: the caller's timeout must fire.
      return self->make_response_promise<persistence::db_status>();
    },
  };
}

// Checkout actors for the edge's way of asking (a checkout_reply): one that
// holds every reply unanswered until it dies, and one that answers at once.
using checkout_double =
  caf::typed_actor<caf::reacts_to<atoms::checkout_atom, domain::checkout_request, std::string,
                                  domain::order_ids, checkout_reply>>;

struct holding_state {
  std::vector<checkout_reply> held;
};

checkout_double::behavior_type holding(checkout_double::stateful_pointer<holding_state> self) {
  return {
    [self](atoms::checkout_atom, domain::checkout_request&, std::string&, domain::order_ids&,
           checkout_reply& reply) { self->state.held.push_back(std::move(reply)); },
  };
}

checkout_double::behavior_type answering(checkout_double::pointer) {
  return {
    [](atoms::checkout_atom, domain::checkout_request&, std::string&, domain::order_ids&,
       checkout_reply& reply) { reply(checkout_outcome{}); },
  };
}

// Sends a checkout to `dest` as the gateway does, answered through `reply`.
void ask_checkout(const checkout_double& dest, http::reply_fn reply) {
  caf::anon_send(dest, atoms::checkout_atom::value, domain::checkout_request{}, std::string{},
                 domain::order_ids{},
                 checkout_reply{[reply](caf::expected<checkout_outcome> outcome) {
                   reply(outcome ? http::json_response(200, R"({"answered":true})")
                                 : http::response_for(outcome.error()));
                 }});
}

struct edge {
  metrics::registry registry;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  http::router routes;
  std::unique_ptr<http::server> server;
  std::uint16_t port = 0;
  std::atomic<int> slow_started{0};
  std::atomic<int> smuggled_calls{0};

  explicit edge(http::server_limits limits = test_limits()) {
    configure_actor_system(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
    routes.add("POST", "/echo", http::access::open, http::body_kind::json,
               [](http::request& req, http::reply_fn reply) {
                 reply(http::json_response(200, json::to_string(*req.json)));
               });
    routes.add("GET", "/slow", http::access::open, http::body_kind::none,
               [this](http::request&, http::reply_fn reply) {
                 ++slow_started;
                 std::thread([reply] {
                   std::this_thread::sleep_for(300ms);
                   reply(http::json_response(200, R"({"slow":true})"));
                 }).detach();
               });
    // The target a smuggled request names: it must never be reached.
    routes.add("GET", "/smuggled", http::access::open, http::body_kind::none,
               [this](http::request&, http::reply_fn reply) {
                 ++smuggled_calls;
                 reply(http::json_response(200, "{}"));
               });
    routes.add("GET", "/never", http::access::open, http::body_kind::none,
               [](http::request&, http::reply_fn) {});
    routes.add("GET", "/actor/silent", http::access::open, http::body_kind::none,
               [this](http::request&, http::reply_fn reply) {
                 auto target = sys->spawn(silent);
                 ap::ask<persistence::db_status>(
                   *sys, target, 200ms,
                   [reply, target](caf::expected<persistence::db_status> st) {
                     caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
                     reply(st ? http::json_response(200, "{}") : http::response_for(st.error()));
                   },
                   atoms::ping_atom::value);
               });
    routes.add("GET", "/actor/dead", http::access::open, http::body_kind::none,
               [this](http::request&, http::reply_fn reply) {
                 auto target = sys->spawn(silent);
                 caf::scoped_actor self{*sys};
                 self->send_exit(target, caf::exit_reason::kill);
                 self->wait_for(target);
                 ap::ask<persistence::db_status>(
                   *sys, target, 1s,
                   [reply](caf::expected<persistence::db_status> st) {
                     reply(st ? http::json_response(200, "{}") : http::response_for(st.error()));
                   },
                   atoms::ping_atom::value);
               });
    // Without a timer or a waiting actor, a checkout's reply still learns
    // of its destination's death: the reply dropped with it answers.
    routes.add("GET", "/actor/dies-holding", http::access::open, http::body_kind::none,
               [this](http::request&, http::reply_fn reply) {
                 auto target = sys->spawn(holding);
                 ask_checkout(target, std::move(reply));
                 std::thread([target] {
                   std::this_thread::sleep_for(50ms);
                   caf::anon_send_exit(target, caf::exit_reason::kill);
                 }).detach();
               });
    routes.add("GET", "/actor/prompt", http::access::open, http::body_kind::none,
               [this](http::request&, http::reply_fn reply) {
                 ask_checkout(sys->spawn(answering), std::move(reply));
               });
    // Held until three wait; then another thread answers them all inside
    // one hand-off batch (as the checkout actor answers a database batch's
    // checkouts), which it ends when the test says so.
    routes.add("POST", "/together", http::access::open, http::body_kind::json,
               [this](http::request& req, http::reply_fn reply) {
                 std::unique_lock<std::mutex> lock{together_mutex};
                 together.emplace_back(json::to_string(*req.json), std::move(reply));
                 if (together.size() < 3)
                   return;
                 auto all = std::move(together);
                 together.clear();
                 if (!batch_threads.empty()) {  // one batch per edge: later ones answer at once
                   for (const auto& [body, reply] : all)
                     reply(http::json_response(200, body));
                   return;
                 }
                 batch_threads.emplace_back([this, all = std::move(all)] {
                   handoff::batch replies;
                   for (const auto& [body, reply] : all)
                     reply(http::json_response(200, body));
                   replied_in_batch.set_value();
                   end_batch.get_future().wait();
                 });
               });
    server = std::make_unique<http::server>(routes, registry, limits);
    port = server->listen("127.0.0.1", 0);
    server->start(2);
  }

  ~edge() {
    end_batch_once();
    for (auto& t : batch_threads)
      t.join();
    server->stop();
  }

  void end_batch_once() {
    if (!batch_ended.exchange(true))
      end_batch.set_value();
  }

  std::mutex together_mutex;
  std::vector<std::pair<std::string, http::reply_fn>> together;
  std::vector<std::thread> batch_threads;
  std::promise<void> replied_in_batch;
  std::promise<void> end_batch;
  std::atomic<bool> batch_ended{false};

  // A handler's deadline long enough that no answer a test waits for is cut
  // off on a loaded machine (a first request once took over 400 ms there);
  // the test of the deadline itself starts an edge with a short one.
  static http::server_limits test_limits() {
    http::server_limits l;
    l.read_timeout = 500ms;
    l.handler_deadline = 5s;
    l.max_connections = 8;
    l.drain_timeout = 3s;
    return l;
  }
};

bool is_error_body(const http_reply& r, const std::string& code) {
  return r.header("content-type") == "application/json"
         && r.body.find("\"error\":\"" + code + "\"") != std::string::npos
         && r.body.find("\"message\":") != std::string::npos;
}

// Lines of the request metrics in the registry's text: each series is one
// counter line or one histogram's bucket, sum and count lines.
std::size_t request_metric_lines(const metrics::registry& registry) {
  auto text = registry.render();
  std::size_t lines = 0;
  std::size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos)
      end = text.size();
    auto line = std::string_view{text}.substr(start, end - start);
    if (line.rfind("ap_http_requests_total", 0) == 0
        || line.rfind("ap_http_request_duration_seconds", 0) == 0)
      ++lines;
    start = end + 1;
  }
  return lines;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(http_edge, edge)

BOOST_AUTO_TEST_CASE(malformed_json_is_400) {
  auto r = http_call(port, "POST", "/echo", json_type, R"({"a":)");
  BOOST_TEST(r.status == 400);
  BOOST_TEST(is_error_body(r, "invalid_json"));
  auto dup = http_call(port, "POST", "/echo", json_type, R"({"a":1,"a":2})");
  BOOST_TEST(dup.status == 400);
  auto deep = http_call(port, "POST", "/echo", json_type, std::string(40, '[') + std::string(40, ']'));
  BOOST_TEST(deep.status == 400);
  auto ok = http_call(port, "POST", "/echo", json_type, R"({"a":[1,2]})");
  BOOST_TEST(ok.status == 200);
  BOOST_TEST(ok.body == R"({"a":[1,2]})");
}

BOOST_AUTO_TEST_CASE(wrong_content_type_is_415) {
  auto r = http_call(port, "POST", "/echo", {{"Content-Type", "text/plain"}}, R"({"a":1})");
  BOOST_TEST(r.status == 415);
  BOOST_TEST(is_error_body(r, "unsupported_media_type"));
}

BOOST_AUTO_TEST_CASE(oversized_body_is_413) {
  std::string big(64 * 1024 + 1, 'x');
  auto r = http_call(port, "POST", "/echo", json_type, big);
  BOOST_TEST(r.status == 413);
  BOOST_TEST(is_error_body(r, "payload_too_large"));
  BOOST_TEST(r.header("connection") == "close");
  // Exactly at the limit is read (and then judged as JSON).
  std::string limit = "\"" + std::string(64 * 1024 - 2, 'y') + "\"";
  BOOST_TEST(http_call(port, "POST", "/echo", json_type, limit).status == 200);
}

BOOST_AUTO_TEST_CASE(chunked_body_over_the_limit_is_413) {
  connection c{port};
  std::string chunk(40 * 1024, 'z');
  std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n";
  char size[16];
  std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
  c.send(head + size + chunk + "\r\n" + size + chunk + "\r\n0\r\n\r\n");
  auto r = c.read_reply();
  BOOST_TEST(r.status == 413);
}

BOOST_AUTO_TEST_CASE(unknown_route_is_404_json_and_wrong_method_405_json) {
  auto r = http_call(port, "GET", "/nowhere");
  BOOST_TEST(r.status == 404);
  BOOST_TEST(is_error_body(r, "not_found"));
  auto m = http_call(port, "DELETE", "/echo");
  BOOST_TEST(m.status == 405);
  BOOST_TEST(is_error_body(m, "method_not_allowed"));
  BOOST_TEST(m.header("allow") == "POST");
}

BOOST_AUTO_TEST_CASE(every_response_carries_a_request_id) {
  auto fresh = http_call(port, "GET", "/nowhere");
  BOOST_TEST(fresh.header("x-request-id").rfind("req_", 0) == 0u);
  auto echoed = http_call(port, "GET", "/nowhere", {{"X-Request-Id", "client-42.a"}});
  BOOST_TEST(echoed.header("x-request-id") == "client-42.a");
  auto refused = http_call(port, "GET", "/nowhere", {{"X-Request-Id", "bad id\"<>"}});
  BOOST_TEST(refused.header("x-request-id").rfind("req_", 0) == 0u);
  auto oversized = http_call(port, "POST", "/echo", json_type, std::string(70000, 'x'));
  BOOST_TEST(!oversized.header("x-request-id").empty());
}

BOOST_AUTO_TEST_CASE(malformed_http_is_400) {
  connection c{port};
  c.send("BLAH\x01 / HTTP/1.1\r\n\r\n");
  auto r = c.read_reply();
  BOOST_TEST(r.status == 400);
  BOOST_TEST(is_error_body(r, "bad_request"));
}

BOOST_AUTO_TEST_CASE(keep_alive_serves_several_requests_on_one_connection) {
  connection c{port};
  for (int i = 0; i < 3; ++i) {
    BOOST_REQUIRE(c.send(make_request("POST", "/echo", json_type, "[" + std::to_string(i) + "]")));
    auto r = c.read_reply();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == "[" + std::to_string(i) + "]");
  }
}

BOOST_AUTO_TEST_CASE(pipelined_requests_are_answered_in_order) {
  connection c{port};
  std::string batch;
  for (int i = 0; i < 5; ++i)
    batch += make_request("POST", "/echo", json_type, "[" + std::to_string(i) + "]");
  batch += make_request("GET", "/nowhere");
  BOOST_REQUIRE(c.send(batch));
  for (int i = 0; i < 5; ++i) {
    auto r = c.read_reply();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == "[" + std::to_string(i) + "]");
  }
  BOOST_TEST(c.read_reply().status == 404);
}

// The server writes each response's head itself (http/wire.hpp): what the
// request asks of the connection, HEAD's length without a body, and the
// status line as Beast wrote it.
BOOST_AUTO_TEST_CASE(responses_are_framed_as_each_request_asks) {
  const std::string answer = R"({"answered":true})";
  auto no_field_twice = [](const http_reply& r) {
    BOOST_TEST(r.repeated_fields.empty(), r.status_line);
  };
  {
    // HEAD: the length a GET would get and no body, so the next answer on
    // the connection is read whole.
    connection c{port};
    BOOST_REQUIRE(c.send(make_request("HEAD", "/actor/prompt")));
    auto head = c.read_reply(10s, true);
    BOOST_TEST(head.status_line == "HTTP/1.1 200 OK");
    BOOST_TEST(head.header("content-length") == std::to_string(answer.size()));
    BOOST_TEST(head.header("content-type") == "application/json");
    BOOST_TEST(!head.header("x-request-id").empty());
    BOOST_TEST(head.header("connection").empty());
    no_field_twice(head);
    BOOST_REQUIRE(c.send(make_request("GET", "/actor/prompt")));
    auto get = c.read_reply();
    BOOST_TEST(get.status_line == "HTTP/1.1 200 OK");
    BOOST_TEST(get.body == answer);
    BOOST_REQUIRE(c.send(make_request("DELETE", "/echo")));
    auto refused = c.read_reply();
    BOOST_TEST(refused.status_line == "HTTP/1.1 405 Method Not Allowed");
    BOOST_TEST(refused.header("allow") == "POST");
    no_field_twice(refused);
    BOOST_TEST(c.is_open());
  }
  {
    // HTTP/1.1 asking to close: told so, and closed.
    connection c{port};
    BOOST_REQUIRE(c.send(make_request("GET", "/actor/prompt", {{"Connection", "close"}})));
    auto r = c.read_reply();
    BOOST_TEST(r.body == answer);
    BOOST_TEST(r.header("connection") == "close");
    no_field_twice(r);
    BOOST_TEST(c.closed_by_peer(2s));
  }
  {
    // HTTP/1.0 closes unless asked to keep the connection.
    connection c{port};
    BOOST_REQUIRE(c.send("GET /actor/prompt HTTP/1.0\r\n\r\n"));
    auto r = c.read_reply();
    BOOST_TEST(r.status_line == "HTTP/1.0 200 OK");
    BOOST_TEST(r.body == answer);
    BOOST_TEST(r.header("connection").empty());
    BOOST_TEST(c.closed_by_peer(2s));
  }
  {
    connection c{port};
    BOOST_REQUIRE(c.send("GET /actor/prompt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto r = c.read_reply();
    BOOST_TEST(r.status_line == "HTTP/1.0 200 OK");
    BOOST_TEST(r.header("connection") == "keep-alive");
    no_field_twice(r);
    BOOST_REQUIRE(c.send("GET /actor/prompt HTTP/1.0\r\n\r\n"));
    BOOST_TEST(c.read_reply().body == answer);
    BOOST_TEST(c.closed_by_peer(2s));
  }
}

BOOST_AUTO_TEST_CASE(slow_headers_are_cut_off) {
  connection c{port};
  auto start = std::chrono::steady_clock::now();
  // One byte every 100 ms never completes the headers within the 500 ms
  // test read timeout.
  std::string request = "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n";
  bool closed = false;
  for (char ch : request) {
    if (!c.send(std::string(1, ch)) || c.closed_by_peer(100ms)) {
      closed = true;
      break;
    }
  }
  BOOST_TEST(closed);
  BOOST_TEST((std::chrono::steady_clock::now() - start < 3s));
}

BOOST_AUTO_TEST_CASE(unfinished_body_is_cut_off) {
  connection c{port};
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Content-Length: 100\r\n\r\n{\"a\":");
  BOOST_TEST(c.closed_by_peer(2s));
}

BOOST_AUTO_TEST_CASE(idle_connection_is_closed) {
  connection c{port};
  BOOST_TEST(c.closed_by_peer(2s));
}

BOOST_AUTO_TEST_CASE(handler_that_never_replies_gets_504) {
  auto limits = test_limits();
  limits.handler_deadline = 400ms;
  edge hurried{limits};
  auto r = http_call(hurried.port, "GET", "/never");
  BOOST_TEST(r.status == 504);
  BOOST_TEST(is_error_body(r, "timeout"));
}

BOOST_AUTO_TEST_CASE(actor_that_does_not_answer_in_time_is_504) {
  auto r = http_call(port, "GET", "/actor/silent");
  BOOST_TEST(r.status == 504);
  BOOST_TEST(is_error_body(r, "timeout"));
}

BOOST_AUTO_TEST_CASE(actor_that_is_down_is_503) {
  auto r = http_call(port, "GET", "/actor/dead");
  BOOST_TEST(r.status == 503);
  BOOST_TEST(is_error_body(r, "unavailable"));
}

BOOST_AUTO_TEST_CASE(a_checkout_reply_gets_its_answer) {
  auto r = http_call(port, "GET", "/actor/prompt");
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == R"({"answered":true})");
}

// Replies given inside a hand-off batch are held until it ends, and then
// each is written to its own connection (three connections, two io threads).
BOOST_AUTO_TEST_CASE(replies_handed_over_together_each_reach_their_connection) {
  std::vector<std::unique_ptr<connection>> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<connection>(port));
    clients.back()->send(make_request("POST", "/together", json_type,
                                      R"({"client":)" + std::to_string(i) + "}"));
  }
  BOOST_REQUIRE(replied_in_batch.get_future().wait_for(5s) == std::future_status::ready);
  // Replied, but the batch is open: nothing is written yet.
  BOOST_TEST(!clients[0]->read_reply(300ms).complete);
  end_batch_once();
  for (int i = 0; i < 3; ++i) {
    auto r = clients[i]->read_reply();
    BOOST_TEST(r.status == 200);
    BOOST_TEST(r.body == R"({"client":)" + std::to_string(i) + "}");
  }
}

BOOST_AUTO_TEST_CASE(a_checkout_reply_whose_destination_dies_holding_it_is_503) {
  // Long before the server's own deadline (5 s here) would answer 504.
  auto r = http_call(port, "GET", "/actor/dies-holding");
  BOOST_TEST(r.status == 503);
  BOOST_TEST(is_error_body(r, "unavailable"));
}

BOOST_AUTO_TEST_CASE(connections_beyond_the_cap_get_503) {
  std::vector<std::unique_ptr<connection>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<connection>(port));
    // A completed request proves the connection was accepted and counted.
    held.back()->send(make_request("GET", "/nowhere"));
    BOOST_REQUIRE(held.back()->read_reply().status == 404);
  }
  connection extra{port};
  extra.send(make_request("GET", "/nowhere"));
  auto r = extra.read_reply();
  BOOST_TEST(r.status == 503);
  BOOST_TEST(is_error_body(r, "overloaded"));
  held.clear();
  BOOST_TEST(wait_for_status(port, "/nowhere", 404, 3s));
}

BOOST_AUTO_TEST_CASE(stop_finishes_in_flight_requests_then_refuses_new_ones) {
  connection busy{port};
  busy.send(make_request("GET", "/slow"));
  connection idle{port};
  while (slow_started.load() == 0)
    std::this_thread::sleep_for(5ms);
  auto stopped = std::async(std::launch::async, [this] { server->stop(); });
  auto r = busy.read_reply();
  BOOST_TEST(r.status == 200);
  BOOST_TEST(r.body == R"({"slow":true})");
  BOOST_TEST(r.header("connection") == "close");
  BOOST_TEST(idle.closed_by_peer(2s));
  BOOST_TEST((stopped.wait_for(5s) == std::future_status::ready));
  connection after{port};
  BOOST_TEST((!after.is_open() || !after.send(make_request("GET", "/nowhere"))
              || !after.read_reply(1s).complete));
}

BOOST_AUTO_TEST_CASE(request_metrics_are_recorded_per_route) {
  http_call(port, "POST", "/echo", json_type, "[1]");
  http_call(port, "GET", "/nowhere");
  auto text = registry.render();
  BOOST_TEST(text.find(R"(ap_http_requests_total{route="/echo",method="POST",status="200"} 1)")
             != std::string::npos);
  BOOST_TEST(
    text.find(R"(ap_http_requests_total{route="unmatched",method="GET",status="404"} 1)")
    != std::string::npos);
  BOOST_TEST(text.find(R"(ap_http_request_duration_seconds_count{route="/echo",method="POST"} 1)")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(client_chosen_methods_and_paths_do_not_mint_metric_series) {
  // Warm up every label the flood below may use, so the difference counts
  // only what the flood adds.
  http_call(port, "GET", "/nowhere");
  {
    connection c{port};
    c.send("BREW /nowhere HTTP/1.1\r\nHost: x\r\n\r\n");
    c.read_reply();
  }
  auto before = request_metric_lines(registry);
  int refused = 0;
  for (int i = 0; i < 500; ++i) {
    connection c{port};
    BOOST_REQUIRE(c.send("X" + std::to_string(i) + "Y /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto r = c.read_reply();
    if (r.status == 405 && is_error_body(r, "method_not_allowed"))
      ++refused;
  }
  for (int i = 0; i < 500; ++i)
    BOOST_REQUIRE(http_call(port, "GET", "/nowhere/" + std::to_string(i)).status == 404);
  auto after = request_metric_lines(registry);
  BOOST_TEST(refused == 500);
  // At most the series of one new (route, method, status) combination:
  // unknown methods on /echo.
  BOOST_TEST(after - before <= 20u);
  auto text = registry.render();
  BOOST_TEST(text.find(R"(ap_http_requests_total{route="unmatched",method="OTHER",status="405"} 501)")
             != std::string::npos);
  BOOST_TEST(text.find(R"(ap_http_requests_total{route="unmatched",method="GET",status="404"} 501)")
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(smuggled_request_behind_a_transfer_coding_list_is_never_routed) {
  connection c{port};
  // A proxy that honours the last coding would see one request here; Beast
  // 1.74 by itself saw a bodiless POST and then the GET.
  c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
         "Transfer-Encoding: chunked, identity\r\n\r\n"
         "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read_reply();
  BOOST_TEST(r.status == 400);
  BOOST_TEST(is_error_body(r, "bad_request"));
  BOOST_TEST(r.header("connection") == "close");
  BOOST_TEST(!c.read_reply(1s).complete);
  BOOST_TEST(smuggled_calls.load() == 0);
}

BOOST_AUTO_TEST_CASE(framing_the_service_cannot_read_unambiguously_is_400_and_closed) {
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  const std::vector<std::string> refused{
    head + "Transfer-Encoding: gzip\r\n\r\n[1]",
    head + "Transfer-Encoding: gzip, chunked\r\n\r\n3\r\n[1]\r\n0\r\n\r\n",
    head + "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1]\r\n0\r\n\r\n",
    head + "Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\n[1]",
    head + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1]\r\n0\r\n\r\n",
    head + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\n[1]\r\n0\r\n\r\n",
    head + "Content-Length: 5\r\nContent-Length: 3\r\n\r\n[1]",
    head + "Content-Length: 5, 3\r\n\r\n[1]",
  };
  for (const auto& bytes : refused) {
    BOOST_TEST_CONTEXT("request: " << bytes) {
      connection c{port};
      c.send(bytes + "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n");
      auto r = c.read_reply();
      BOOST_TEST(r.status == 400);
      BOOST_TEST(is_error_body(r, "bad_request"));
      BOOST_TEST(r.header("connection") == "close");
      BOOST_TEST(!c.read_reply(1s).complete);
    }
  }
  BOOST_TEST(smuggled_calls.load() == 0);
}

BOOST_AUTO_TEST_CASE(chunked_and_repeated_equal_lengths_still_frame_requests_on_one_connection) {
  connection c{port};
  const std::string head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
  BOOST_REQUIRE(c.send(head + "Transfer-Encoding: chunked\r\n\r\n3\r\n[1]\r\n0\r\n\r\n"));
  auto chunked = c.read_reply();
  BOOST_TEST(chunked.status == 200);
  BOOST_TEST(chunked.body == "[1]");
  // The coding name is case-insensitive, and whitespace around it is no
  // part of it.
  BOOST_REQUIRE(c.send(head + "Transfer-Encoding:  Chunked \t\r\n\r\n3\r\n[2]\r\n0\r\n\r\n"));
  auto spaced = c.read_reply();
  BOOST_TEST(spaced.status == 200);
  BOOST_TEST(spaced.body == "[2]");
  // The same length twice says one thing, so it is accepted.
  BOOST_REQUIRE(c.send(head + "Content-Length: 3\r\nContent-Length: 3\r\n\r\n[3]"));
  auto repeated = c.read_reply();
  BOOST_TEST(repeated.status == 200);
  BOOST_TEST(repeated.body == "[3]");
  BOOST_REQUIRE(c.send(make_request("POST", "/echo", json_type, "[4]")));
  auto plain = c.read_reply();
  BOOST_TEST(plain.status == 200);
  BOOST_TEST(plain.body == "[4]");
  BOOST_REQUIRE(c.send(make_request("GET", "/smuggled")));
  BOOST_TEST(c.read_reply().status == 200);
  BOOST_TEST(smuggled_calls.load() == 1);
}

BOOST_AUTO_TEST_SUITE_END()
