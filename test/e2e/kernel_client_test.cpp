// The Kernel client through real sockets against a scripted server.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/kernel_client.hpp"
#include "actors/node.hpp"
#include "http/server.hpp"
#include "kernel/http_client.hpp"
#include "test/support/http_client.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

struct scripted_kernel {
  metrics::registry registry;
  http::router routes;
  std::unique_ptr<http::server> server;
  std::uint16_t port = 0;
  std::atomic<int> audits{0};

  scripted_kernel() {
    routes.add("POST", "/kernel/audit", http::access::open, http::body_kind::json,
               [this](http::request& req, http::reply_fn reply) {
                 ++audits;
                 std::string type = (*req.json)["eventType"].GetString();
                 if (type == "fail")
                   return reply(http::error_response(500, "boom", "scripted failure"));
                 if (type == "reject")
                   return reply(http::error_response(400, "invalid_input", "scripted refusal"));
                 if (type == "garbage")
                   return reply(http::json_response(202, "{\"no\":\"id\"}"));
                 if (type == "silent")
                   return;  // never answers (the server's own deadline is long)
                 reply(http::json_response(202, R"({"id":"kae_1","hash":"ab"})"));
               });
    routes.add("GET", "/health", http::access::open, http::body_kind::none,
               [](http::request&, http::reply_fn reply) { reply(http::json_response(200, "{}")); });
    http::server_limits limits;
    limits.handler_deadline = 30s;
    limits.drain_timeout = 500ms;
    server = std::make_unique<http::server>(routes, registry, limits);
    port = server->listen("127.0.0.1", 0);
    server->start(1);
  }
  ~scripted_kernel() { server->stop(); }

  std::uint64_t connections() {
    return registry.get_counter("ap_http_connections_accepted_total", "").value();
  }
};

kernel::http_reply call(kernel::http_client& client, const std::string& type,
                          std::chrono::milliseconds timeout = 2s) {
  std::promise<kernel::http_reply> done;
  auto result = done.get_future();
  client.request("POST", "/kernel/audit",
                 R"({"eventType":")" + type + R"(","payload":{},"metadata":{"eventId":"e"}})",
                 timeout, [&done](kernel::http_reply r) { done.set_value(std::move(r)); });
  return result.get();
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(kernel_http_client, scripted_kernel)

BOOST_AUTO_TEST_CASE(urls_are_parsed_strictly) {
  auto e = kernel::parse_http_url("http://127.0.0.1:6050/base/");
  BOOST_REQUIRE(e);
  BOOST_TEST(e->host == "127.0.0.1");
  BOOST_TEST(e->port == 6050);
  BOOST_TEST(e->base_path == "/base");
  BOOST_TEST(kernel::parse_http_url("http://kernel")->port == 80);
  BOOST_TEST(!kernel::parse_http_url("https://x"));
  BOOST_TEST(!kernel::parse_http_url("http://:80"));
  BOOST_TEST(!kernel::parse_http_url("http://x:99999"));
  BOOST_TEST(!kernel::parse_http_url("http://x:8o"));
}

BOOST_AUTO_TEST_CASE(sequential_calls_reuse_one_keep_alive_connection) {
  kernel::http_client client{{"127.0.0.1", port, ""}};
  for (int i = 0; i < 20; ++i)
    BOOST_TEST(call(client, "ok").status == 202);
  BOOST_TEST(connections() == 1u);
}

BOOST_AUTO_TEST_CASE(concurrent_calls_are_capped_at_the_pool_size) {
  kernel::http_client client{{"127.0.0.1", port, ""}, 3};
  std::vector<std::future<kernel::http_reply>> calls;
  for (int i = 0; i < 30; ++i)
    calls.push_back(std::async(std::launch::async, [&] { return call(client, "ok"); }));
  for (auto& c : calls)
    BOOST_TEST(c.get().status == 202);
  BOOST_TEST(connections() <= 3u);
}

BOOST_AUTO_TEST_CASE(a_silent_server_times_out_within_the_bound) {
  kernel::http_client client{{"127.0.0.1", port, ""}};
  auto start = std::chrono::steady_clock::now();
  auto r = call(client, "silent", 300ms);
  auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST(r.status == 0);
  BOOST_TEST(r.error == "timeout");
  BOOST_TEST((took < 2s));
  // The client goes on working afterwards.
  BOOST_TEST(call(client, "ok").status == 202);
}

BOOST_AUTO_TEST_CASE(a_refused_connection_is_an_error_not_a_hang) {
  kernel::http_client client{{"127.0.0.1", test::free_port(), ""}};
  auto r = call(client, "ok");
  BOOST_TEST(r.status == 0);
  BOOST_TEST(!r.error.empty());
}

BOOST_AUTO_TEST_CASE(a_connection_closed_by_the_server_while_idle_is_replaced) {
  kernel::http_client client{{"127.0.0.1", port, ""}};
  BOOST_TEST(call(client, "ok").status == 202);
  // The server closes idle keep-alive connections after its read timeout;
  // restarting it closes them at once.
  server->stop();
  server = std::make_unique<http::server>(routes, registry, http::server_limits{});
  port = server->listen("127.0.0.1", port);
  server->start(1);
  BOOST_TEST(call(client, "ok").status == 202);
}

BOOST_AUTO_TEST_CASE(the_kernel_actor_maps_answers_to_acks_and_errors) {
  // The registry outlives the actor system: the system's destructor waits
  // for the kernel client, which counts into it until it is gone.
  metrics::registry reg;
  caf::actor_system_config cfg;
  configure_actor_system(cfg);
  caf::actor_system sys{cfg};
  auto k = sys.spawn(kernel_client, kernel::endpoint{"127.0.0.1", port, ""}, std::string{"test"}, &reg);
  caf::scoped_actor self{sys};
  auto submit = [&](const std::string& type) -> caf::expected<kernel::audit_ack> {
    caf::expected<kernel::audit_ack> out{caf::error{}};
    self->request(k, 10s, atoms::audit_atom::value,
                  domain::audit_event{"evt_1", type, "{}", 0, 1})
      .receive([&](kernel::audit_ack& ack) { out = ack; },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  };
  auto ok = submit("ok");
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->kernel_id == "kae_1");
  for (auto type : {"fail", "reject", "garbage"}) {
    auto r = submit(type);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().category() == error_category(), type);
    BOOST_TEST(r.error().code() == static_cast<std::uint8_t>(error_code::upstream_unavailable), type);
  }
  bool healthy = false;
  self->request(k, 5s, atoms::health_atom::value)
    .receive([&](bool h) { healthy = h; }, [](caf::error&) {});
  BOOST_TEST(healthy);
  auto text = reg.render();
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="ok"} 1)") != std::string::npos);
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="server_error"} 1)") != std::string::npos);
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="rejected"} 1)") != std::string::npos);
  caf::anon_send_exit(k, caf::exit_reason::user_shutdown);
}

BOOST_AUTO_TEST_SUITE_END()
