#include <boost/test/unit_test.hpp>

#include <set>
#include <sstream>
#include <string>
#include <utility>

#include "core/config.hpp"
#include "http/openapi.hpp"
#include "http/router.hpp"
#include "http/routes.hpp"

using namespace ap;

namespace {

using operation = std::pair<std::string, std::string>; // method, path

// `{id}` and `{orderId}` name the same segment: the router's names are
// internal, the document's are for readers, so only the shape is compared.
std::string path_shape(const std::string& pattern) {
  std::string out;
  bool in_param = false;
  for (char c : pattern) {
    if (c == '{') {
      in_param = true;
      out += "{}";
    } else if (c == '}') {
      in_param = false;
    } else if (!in_param) {
      out += c;
    }
  }
  return out;
}

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(c - 'a' + 'A');
  return s;
}

std::size_t indent_of(const std::string& line) {
  return line.find_first_not_of(' ');
}

// Reads the operations of the document's top-level `paths:` block: path keys
// indented by two spaces, operation keys by four. A deliberately small reader
// of the layout docs/openapi.yaml keeps (and redocly lint checks), not of YAML
// in general.
std::set<operation> documented_operations(std::string_view yaml) {
  static const std::set<std::string> methods = {"get",  "put",     "post",  "delete",
                                                "head", "options", "patch", "trace"};
  std::set<operation> out;
  std::istringstream in{std::string{yaml}};
  std::string line, path;
  bool in_paths = false;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    auto indent = indent_of(line);
    if (indent == std::string::npos || line[indent] == '#')
      continue;
    if (indent == 0) {
      in_paths = line == "paths:";
      continue;
    }
    if (!in_paths || line.back() != ':')
      continue;
    auto key = line.substr(indent, line.size() - indent - 1);
    if (indent == 2) {
      if (key.size() > 2 && key.front() == '\'' && key.back() == '\'')
        key = key.substr(1, key.size() - 2);
      path = key;
    } else if (indent == 4 && methods.count(key)) {
      out.emplace(upper(key), path_shape(path));
    }
  }
  return out;
}

std::set<operation> routed_operations(const http::router& r) {
  std::set<operation> out;
  for (const auto& e : r.table())
    out.emplace(e.method, path_shape(e.pattern));
  return out;
}

// The service's real routing table: registration only reads the
// configuration; the handlers, which would need the actors, never run here.
struct service_router {
  service_config config;
  http::router r;
  service_router() { http::add_service_routes(r, {nullptr, nullptr, &config}); }
};

} // namespace

BOOST_AUTO_TEST_SUITE(openapi)

BOOST_AUTO_TEST_CASE(the_document_is_openapi_3_1) {
  std::string doc{http::openapi_document()};
  BOOST_TEST(doc.substr(0, 15) == "openapi: 3.1.0\n");
}

BOOST_AUTO_TEST_CASE(the_reader_finds_operations_and_only_those) {
  auto ops = documented_operations("openapi: 3.1.0\n"
                                   "paths:\n"
                                   "  /a/{x}:\n"
                                   "    parameters: []\n"
                                   "    get:\n"
                                   "      responses:\n"
                                   "        '200':\n"
                                   "          description: ok\n"
                                   "    post:\n"
                                   "  '/b':\n"
                                   "    # put:\n"
                                   "    delete:\n"
                                   "components:\n"
                                   "  /c:\n"
                                   "    get:\n");
  std::set<operation> expected{{"GET", "/a/{}"}, {"POST", "/a/{}"}, {"DELETE", "/b"}};
  BOOST_TEST((ops == expected));
}

BOOST_AUTO_TEST_CASE(every_route_is_documented_and_every_documented_operation_is_routed) {
  service_router s;
  auto routed = routed_operations(s.r);
  auto documented = documented_operations(http::openapi_document());
  BOOST_TEST(routed.size() >= 17u);
  for (const auto& [method, path] : routed)
    BOOST_TEST(documented.count({method, path}) == 1u,
               method << " " << path << " is routed but not in docs/openapi.yaml");
  for (const auto& [method, path] : documented)
    BOOST_TEST(routed.count({method, path}) == 1u,
               method << " " << path << " is in docs/openapi.yaml but no route serves it");
}

BOOST_AUTO_TEST_CASE(the_document_is_served_as_built) {
  service_router s;
  http::request req;
  req.method = "GET";
  req.path = "/openapi.yaml";
  http::response res;
  bool called = false;
  s.r.dispatch(req, [&](http::response r) {
    called = true;
    res = std::move(r);
  });
  BOOST_REQUIRE(called);
  BOOST_TEST(res.status == 200);
  BOOST_TEST(res.content_type == "application/yaml");
  BOOST_TEST(res.body == std::string{http::openapi_document()});
}

BOOST_AUTO_TEST_SUITE_END()
