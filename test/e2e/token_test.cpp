// API_TOKEN and ADMIN_TOKEN on every route they guard, over real sockets:
// the route table is the service's own, so a route added later is covered
// without touching this test.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "http/routes.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"

using namespace ap;
using namespace ap::test;

namespace {

const std::string api_token = "api-token-for-every-route-0123456789";
const std::string admin_token = "admin-token-for-every-route-0123456789";

// A concrete path for a pattern: every `{name}` segment becomes "x".
std::string with_placeholders(const std::string& pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      out += 'x';
      i = pattern.find('}', i);
      if (i == std::string::npos)
        break;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

// The service's routing table, built as the service builds it.
std::vector<http::router::entry> service_routes() {
  service_config cfg;
  http::router r;
  http::add_service_routes(r, {nullptr, nullptr, &cfg});
  return r.table();
}

} // namespace

BOOST_AUTO_TEST_SUITE(tokens)

BOOST_AUTO_TEST_CASE(every_guarded_route_refuses_missing_and_wrong_tokens) {
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_tokens"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_API_TOKEN", api_token},
                       {"ARTIFACT_PUBLISHER_ADMIN_TOKEN", admin_token}}};
  auto routes = service_routes();
  BOOST_REQUIRE(routes.size() >= 10u);
  int api_routes = 0;
  int admin_routes = 0;
  for (const auto& route : routes) {
    auto target = with_placeholders(route.pattern);
    std::string body = route.body == http::body_kind::json ? "{}" : "";
    auto call = [&](const std::string& authorization) {
      std::vector<std::pair<std::string, std::string>> h;
      if (!body.empty())
        h.emplace_back("Content-Type", "application/json");
      if (!authorization.empty())
        h.emplace_back("Authorization", authorization);
      return http_call(svc.port(), route.method, target, h, body);
    };
    auto what = route.method + " " + route.pattern;
    auto expect_refused = [&](const http_reply& r, int status, const std::string& how) {
      BOOST_TEST(r.status == status, what << " " << how << ": " << r.status << " " << r.body);
      BOOST_TEST(parse_json(r.body).HasMember("error"), what);
    };
    switch (route.who) {
      case http::access::open: {
        // Open routes never ask for a token.
        auto r = call("");
        BOOST_TEST((r.status != 401 && r.status != 403), what << ": " << r.status);
        break;
      }
      case http::access::api: {
        ++api_routes;
        // No credentials: 401; credentials that are not valid: 403.
        expect_refused(call(""), 401, "without a token");
        expect_refused(call("Basic " + api_token), 401, "with another scheme");
        expect_refused(call("Bearer wrong"), 403, "with a wrong token");
        expect_refused(call("Bearer " + api_token.substr(0, api_token.size() - 1)), 403,
                       "with a prefix of the token");
        expect_refused(call("Bearer " + api_token + "x"), 403, "with the token and more");
        for (const auto& token : {api_token, admin_token}) {
          auto r = call("Bearer " + token);
          BOOST_TEST((r.status != 401 && r.status != 403), what << " with a valid token: "
                                                            << r.status << " " << r.body);
        }
        break;
      }
      case http::access::admin: {
        ++admin_routes;
        expect_refused(call(""), 401, "without a token");
        expect_refused(call("Bearer wrong"), 403, "with a wrong token");
        expect_refused(call("Bearer " + api_token), 403, "with the API token");
        auto r = call("Bearer " + admin_token);
        BOOST_TEST((r.status != 401 && r.status != 403), what << " with the admin token: "
                                                          << r.status << " " << r.body);
        break;
      }
    }
  }
  BOOST_TEST(api_routes >= 5);
  BOOST_TEST(admin_routes >= 3);
}

BOOST_AUTO_TEST_CASE(the_service_binds_loopback_unless_told_otherwise) {
  service_config defaults;
  BOOST_TEST(defaults.bind == "127.0.0.1");
  service_process svc{fresh_database("ap_e2e_bind")};
  std::ifstream tcp{"/proc/net/tcp"};
  std::string line;
  bool found = false;
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", svc.port());
  while (std::getline(tcp, line)) {
    std::istringstream fields{line};
    std::string slot, local, remote, state;
    fields >> slot >> local >> remote >> state;
    // State 0A is LISTEN; 0100007F is 127.0.0.1.
    if (state == "0A" && local.size() > 5 && local.substr(local.size() - 4) == port_hex) {
      found = true;
      BOOST_TEST(local.substr(0, 8) == "0100007F", "listening on " << local);
    }
  }
  BOOST_TEST(found, "no listening socket on port " << svc.port());
}

BOOST_AUTO_TEST_SUITE_END()
