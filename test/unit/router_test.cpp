#include <boost/test/unit_test.hpp>

#include "http/router.hpp"

using namespace ap::http;

namespace {

struct captured {
  bool called = false;
  response res;
  reply_fn fn() {
    return [this](response r) {
      called = true;
      res = std::move(r);
    };
  }
};

request make(std::string method, std::string path,
             std::vector<std::pair<std::string, std::string>> headers = {},
             std::string body = {}) {
  request req;
  req.method = std::move(method);
  req.path = std::move(path);
  req.headers = std::move(headers);
  req.body = std::move(body);
  return req;
}

struct fixture {
  router r;
  std::string last_param;
  int hits = 0;
  fixture() {
    auto ok = [this](request& req, reply_fn reply) {
      ++hits;
      last_param = req.params.count("id") ? req.params.at("id") : "";
      reply(json_response(200, "{}"));
    };
    r.add("GET", "/health", access::open, body_kind::none, ok);
    r.add("GET", "/api/checkout/{id}", access::api, body_kind::none, ok);
    r.add("GET", "/api/checkout/{id}/license", access::api, body_kind::none, ok);
    r.add("POST", "/api/checkout", access::api, body_kind::json, ok);
    r.add("POST", "/api/multisig/upgrades", access::admin, body_kind::json, ok);
  }
  response call(request req) {
    captured c;
    r.dispatch(req, c.fn());
    BOOST_REQUIRE(c.called);
    return c.res;
  }
};

const std::pair<std::string, std::string> json_type{"content-type", "application/json"};

} // namespace

BOOST_FIXTURE_TEST_SUITE(routing, fixture)

BOOST_AUTO_TEST_CASE(unknown_route_is_404_json) {
  auto res = call(make("GET", "/nope"));
  BOOST_TEST(res.status == 404);
  BOOST_TEST(res.content_type == "application/json");
  BOOST_TEST(res.body.find("\"error\":\"not_found\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(wrong_method_is_405_with_allow) {
  auto res = call(make("DELETE", "/api/checkout"));
  BOOST_TEST(res.status == 405);
  BOOST_TEST(res.body.find("method_not_allowed") != std::string::npos);
  BOOST_REQUIRE(res.headers.size() == 1u);
  BOOST_TEST(res.headers[0].first == "Allow");
  BOOST_TEST(res.headers[0].second == "POST");
}

BOOST_AUTO_TEST_CASE(methods_the_service_does_not_serve_are_405_on_every_path) {
  for (const char* path : {"/api/checkout", "/nope"}) {
    auto res = call(make("BREW", path));
    BOOST_TEST(res.status == 405);
    BOOST_TEST(res.body.find("method_not_allowed") != std::string::npos);
    BOOST_TEST(res.body.find("BREW") == std::string::npos);
  }
  BOOST_TEST(method_label("PATCH") == "PATCH");
  BOOST_TEST(method_label("BREW") == "OTHER");
  BOOST_TEST(method_label("get") == "OTHER");
}

BOOST_AUTO_TEST_CASE(path_parameters_are_extracted) {
  BOOST_TEST(call(make("GET", "/api/checkout/order_1")).status == 200);
  BOOST_TEST(last_param == "order_1");
  BOOST_TEST(call(make("GET", "/api/checkout/order_2/license")).status == 200);
  BOOST_TEST(last_param == "order_2");
  BOOST_TEST(call(make("GET", "/api/checkout/a/b")).status == 404);
}

BOOST_AUTO_TEST_CASE(head_is_served_by_get) {
  BOOST_TEST(call(make("HEAD", "/health")).status == 200);
}

BOOST_AUTO_TEST_CASE(json_routes_need_json_content_type) {
  auto none = call(make("POST", "/api/checkout", {}, "{}"));
  BOOST_TEST(none.status == 415);
  BOOST_TEST(call(make("POST", "/api/checkout", {{"content-type", "text/plain"}}, "{}")).status
             == 415);
  BOOST_TEST(call(make("POST", "/api/checkout",
                       {{"content-type", "application/json; charset=latin1"}}, "{}"))
               .status
             == 415);
  BOOST_TEST(call(make("POST", "/api/checkout",
                       {{"content-type", "Application/JSON; charset=UTF-8"}}, "{}"))
               .status
             == 200);
  BOOST_TEST(hits == 1);
}

BOOST_AUTO_TEST_CASE(malformed_json_is_400_before_the_handler) {
  auto res = call(make("POST", "/api/checkout", {json_type}, "{\"a\":"));
  BOOST_TEST(res.status == 400);
  BOOST_TEST(res.body.find("invalid_json") != std::string::npos);
  BOOST_TEST(hits == 0);
}

BOOST_AUTO_TEST_CASE(parsed_body_reaches_the_handler) {
  bool saw = false;
  r.add("POST", "/echo", access::open, body_kind::json, [&](request& req, reply_fn reply) {
    saw = req.json && (*req.json)["x"].GetInt() == 7;
    reply(json_response(200, "{}"));
  });
  BOOST_TEST(call(make("POST", "/echo", {json_type}, R"({"x":7})")).status == 200);
  BOOST_TEST(saw);
}

BOOST_AUTO_TEST_CASE(api_token_guards_api_routes) {
  r.set_tokens("api-secret", "admin-secret");
  BOOST_TEST(call(make("GET", "/api/checkout/x")).status == 401);
  BOOST_TEST(call(make("GET", "/api/checkout/x", {{"authorization", "Bearer wrong"}})).status
             == 403);
  BOOST_TEST(call(make("GET", "/api/checkout/x", {{"authorization", "Bearer api-secret"}})).status
             == 200);
  // The admin token passes the API check too.
  BOOST_TEST(
    call(make("GET", "/api/checkout/x", {{"authorization", "bearer admin-secret"}})).status
    == 200);
  // Open routes need nothing.
  BOOST_TEST(call(make("GET", "/health")).status == 200);
}

BOOST_AUTO_TEST_CASE(without_api_token_api_routes_are_open) {
  BOOST_TEST(call(make("GET", "/api/checkout/x")).status == 200);
}

BOOST_AUTO_TEST_CASE(admin_routes_need_the_admin_token) {
  std::vector<std::pair<std::string, std::string>> api{{"authorization", "Bearer api-secret"},
                                                       json_type};
  std::vector<std::pair<std::string, std::string>> admin{
    {"authorization", "Bearer admin-secret"}, json_type};
  // No admin token configured: 403 even with a token.
  r.set_tokens("api-secret", "");
  BOOST_TEST(call(make("POST", "/api/multisig/upgrades", admin, "{}")).status == 403);
  r.set_tokens("api-secret", "admin-secret");
  BOOST_TEST(call(make("POST", "/api/multisig/upgrades", {json_type}, "{}")).status == 401);
  BOOST_TEST(call(make("POST", "/api/multisig/upgrades", api, "{}")).status == 403);
  BOOST_TEST(call(make("POST", "/api/multisig/upgrades", admin, "{}")).status == 200);
}

BOOST_AUTO_TEST_CASE(constant_time_comparison_is_exact) {
  BOOST_TEST(constant_time_equal("abc", "abc"));
  BOOST_TEST(!constant_time_equal("abc", "abd"));
  BOOST_TEST(!constant_time_equal("abc", "abcd"));
  BOOST_TEST(!constant_time_equal("", "a"));
  BOOST_TEST(constant_time_equal("", ""));
}

BOOST_AUTO_TEST_SUITE_END()
