// Outbound TLS (SPEC §10): the upstream client against TLS servers with
// certificates made in the test, then the service against the kernel-mock
// and payments-mock processes over https:// with the Kernel's token.
#include <boost/test/unit_test.hpp>

#include <cstdio>
#include <future>
#include <thread>

#include "http/server.hpp"
#include "test/support/files.hpp"
#include "test/support/local_server.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"
#include "test/support/test_pki.hpp"
#include "upstream/client.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

/// A private CA trusted by the clients under test, another one that is not,
/// and the certificates the tests present.
struct pki {
  std::string dir = temp_dir("upstream-tls");
  test_ca trusted{dir, "trusted"};
  test_ca stranger{dir, "stranger"};
  pem_pair good = trusted.issue("good", {"localhost"}, {"127.0.0.1"});
  pem_pair expired = trusted.issue("expired", {"localhost"}, {"127.0.0.1"}, -48h, -24h);
  pem_pair other_host = trusted.issue("other-host", {"kernel.example.net"});
  pem_pair unknown_issuer = stranger.issue("unknown-issuer", {"localhost"}, {"127.0.0.1"});
};

/// An HTTPS server presenting `cert`: GET /call answers 200, POST /echo
/// answers the JSON it was sent.
struct tls_upstream : local_server {
  explicit tls_upstream(const pem_pair& cert, const std::string& client_ca = {}) {
    routes.add("GET", "/call", http::access::open, http::body_kind::none,
               [](http::request&, http::reply_fn reply) {
                 reply(http::json_response(200, R"({"ok":true})"));
               });
    routes.add("POST", "/echo", http::access::open, http::body_kind::json,
               [](http::request& req, http::reply_fn reply) {
                 reply(http::json_response(200, req.body));
               });
    start(http::tls_files{cert.cert_file, cert.key_file, client_ca});
  }
};

upstream::reply get(upstream::client& c, const std::string& target = "/call") {
  std::promise<upstream::reply> done;
  auto result = done.get_future();
  upstream::request r;
  r.target = target;
  r.timeout = 5s;
  c.send(std::move(r), [&done](upstream::reply reply) { done.set_value(std::move(reply)); });
  return result.get();
}

std::unique_ptr<upstream::client> client_of(const std::string& url, const std::string& ca_file,
                                            metrics::registry* registry = nullptr,
                                            const pem_pair* identity = nullptr) {
  upstream::client_options o;
  o.name = "kernel";
  o.tls.ca_file = ca_file;
  if (identity) {
    o.tls.client_cert_file = identity->cert_file;
    o.tls.client_key_file = identity->key_file;
  }
  o.registry = registry;
  return std::make_unique<upstream::client>(*upstream::parse_url(url), o);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(upstream_tls, pki)

BOOST_AUTO_TEST_CASE(a_certificate_of_the_configured_ca_is_verified_by_name_and_by_address) {
  tls_upstream up{good};
  auto by_name = client_of("https://localhost:" + std::to_string(up.port), trusted.cert_file());
  for (int i = 0; i < 3; ++i) {
    auto r = get(*by_name);
    BOOST_TEST(r.status == 200, r.error);
  }
  // Kept alive: one handshake for the three.
  BOOST_TEST(up.connections() == 1u);
  auto by_address = client_of("https://127.0.0.1:" + std::to_string(up.port), trusted.cert_file());
  BOOST_TEST(get(*by_address).status == 200);
}

// Both ends write each message as one buffer: a body larger than one TLS
// record (16 KiB) crosses whole, out and back.
BOOST_AUTO_TEST_CASE(bodies_larger_than_a_tls_record_cross_whole_both_ways) {
  tls_upstream up{good};
  auto client = client_of("https://localhost:" + std::to_string(up.port), trusted.cert_file());
  for (std::size_t size : {16u * 1024 - 200, 16u * 1024 + 1, 40u * 1024}) {
    std::string body = R"({"pad":")" + std::string(size, 'x') + R"("})";
    std::promise<upstream::reply> done;
    auto result = done.get_future();
    upstream::request r;
    r.method = "POST";
    r.target = "/echo";
    r.body = body;
    r.timeout = 5s;
    client->send(std::move(r), [&done](upstream::reply reply) { done.set_value(std::move(reply)); });
    auto reply = result.get();
    BOOST_TEST(reply.status == 200, reply.error);
    BOOST_TEST(reply.body.size() == body.size());
    BOOST_TEST((reply.body == body));
  }
}

BOOST_AUTO_TEST_CASE(an_unknown_issuer_an_expired_certificate_and_another_host_are_refused_with_the_reason) {
  struct refusal {
    const pem_pair* cert;
    std::string host;
    std::string reason;
  };
  std::vector<refusal> cases{
    {&unknown_issuer, "localhost", "certificate verify failed: unable to get local issuer certificate"},
    {&expired, "localhost", "certificate verify failed: certificate has expired"},
    {&other_host, "localhost", "certificate verify failed: hostname mismatch"},
    // The address is checked against the certificate's IP addresses.
    {&other_host, "127.0.0.1", "certificate verify failed: IP address mismatch"},
  };
  for (const auto& c : cases) {
    tls_upstream up{*c.cert};
    metrics::registry reg;
    auto client = client_of("https://" + c.host + ":" + std::to_string(up.port),
                            trusted.cert_file(), &reg);
    auto r = get(*client);
    BOOST_TEST(r.status == 0, c.reason);
    BOOST_TEST(r.error == "tls: " + c.reason);
    BOOST_TEST(!r.sent, c.reason);
    BOOST_TEST(contains(reg.render(), R"(ap_upstream_requests_total{upstream="kernel",outcome="tls"} 1)"),
               c.reason);
  }
}

BOOST_AUTO_TEST_CASE(the_system_store_alone_does_not_trust_a_private_ca) {
  tls_upstream up{good};
  auto client = client_of("https://localhost:" + std::to_string(up.port), "");
  auto r = get(*client);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(contains(r.error, "unable to get local issuer certificate"), r.error);
}

BOOST_AUTO_TEST_CASE(a_client_certificate_is_presented_to_an_upstream_that_asks_for_one) {
  // The upstream accepts only clients with a certificate from the trusted CA.
  tls_upstream up{good, trusted.cert_file()};
  auto url = "https://localhost:" + std::to_string(up.port);
  auto with = client_of(url, trusted.cert_file(), nullptr, &good);
  auto r = get(*with);
  BOOST_TEST(r.status == 200, r.error);
  // Without one, or with one from another CA, no answer: with TLS 1.3 the
  // refusal arrives as an alert after the client's side of the handshake.
  auto without = client_of(url, trusted.cert_file());
  auto refused = get(*without);
  BOOST_TEST(refused.status == 0);
  BOOST_TEST_MESSAGE("without a client certificate: " << refused.error);
  auto foreign = client_of(url, trusted.cert_file(), nullptr, &unknown_issuer);
  auto refused_too = get(*foreign);
  BOOST_TEST(refused_too.status == 0);
  BOOST_TEST_MESSAGE("with another CA's certificate: " << refused_too.error);
}

BOOST_AUTO_TEST_CASE(tls_files_that_do_not_load_are_named) {
  auto missing = upstream::tls_problem({"/nonexistent/ca.pem", "", ""});
  BOOST_REQUIRE(missing);
  BOOST_TEST(contains(*missing, "CA_FILE"));
  BOOST_TEST(contains(*missing, "/nonexistent/ca.pem"));
  auto half = upstream::tls_problem({"", good.cert_file, ""});
  BOOST_TEST(half.has_value());
  // A key that is not the certificate's.
  auto mismatched = upstream::tls_problem({"", good.cert_file, expired.key_file});
  BOOST_TEST(mismatched.has_value());
  BOOST_TEST(!upstream::tls_problem({trusted.cert_file(), good.cert_file, good.key_file}));
}

BOOST_AUTO_TEST_SUITE_END()

namespace {

std::string checkout_body(const std::string& customer) {
  return R"({"customerId":")" + customer
         + R"(","email":"t@example.com","currency":"usd","items":[{"sku":"artifact-license","quantity":1}]})";
}

http_reply checkout(std::uint16_t port, const std::string& customer) {
  return http_call(port, "POST", "/api/checkout", {{"Content-Type", "application/json"}},
                   checkout_body(customer));
}

double metric(std::uint16_t port, const std::string& series) {
  auto text = http_call(port, "GET", "/metrics").body;
  auto at = text.find("\n" + series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

bool kernel_healthy(std::uint16_t port) {
  return contains(http_call(port, "GET", "/health").body, R"("kernelHealthy":true)");
}

/// The Kernel's events of `order_id`, searched over TLS with `token` (and
/// a client certificate, for a Kernel that asks for one).
std::string kernel_events(const std::string& kernel_url, const std::string& ca_file,
                          const std::string& token, const std::string& order_id,
                          const pem_pair* identity = nullptr) {
  auto client = client_of(kernel_url, ca_file, nullptr, identity);
  std::promise<upstream::reply> done;
  auto result = done.get_future();
  upstream::request r;
  r.method = "POST";
  r.target = "/kernel/audit/search";
  r.body = R"({"criteria":{"orderId":")" + order_id + R"("},"limit":10})";
  r.headers = {{"Authorization", "Bearer " + token}};
  client->send(std::move(r), [&done](upstream::reply reply) { done.set_value(std::move(reply)); });
  auto got = result.get();
  BOOST_TEST(got.status == 200, got.error << got.body);
  return got.body;
}

/// Polls the Kernel until it holds an event of `order_id`.
bool reaches_kernel(const std::string& kernel_url, const std::string& ca_file,
                    const std::string& token, const std::string& order_id,
                    std::chrono::milliseconds within = 6s, const pem_pair* identity = nullptr) {
  auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (contains(kernel_events(kernel_url, ca_file, token, order_id, identity), order_id))
      return true;
    std::this_thread::sleep_for(200ms);
  }
  return false;
}

std::string mock_requests(const std::string& kernel_url, const std::string& ca_file) {
  auto client = client_of(kernel_url, ca_file);
  return get(*client, "/mock/requests").body;
}

std::string order_of(const http_reply& r) {
  auto doc = parse_json(r.body);
  return doc.HasMember("orderId") ? doc["orderId"].GetString() : "";
}

/// Replaces a file the way a rotation should: a new file moved over the old.
void rotate(const std::string& path, const std::string& contents) {
  write_file(path + ".new", contents);
  BOOST_REQUIRE(std::rename((path + ".new").c_str(), path.c_str()) == 0);
}

/// Runs a service on `db` with `env` whose Kernel cannot be reached: a
/// checkout still answers 201, `/health` says the Kernel is unreachable and
/// the events wait in the outbox. Returns the order and the service's log.
std::pair<std::string, std::string> checkout_with_kernel_unreachable(
  const std::string& db, const std::map<std::string, std::string>& env, const std::string& what) {
  service_process svc{db, env};
  auto r = checkout(svc.port(), "unreachable");
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  std::this_thread::sleep_for(1500ms);
  BOOST_TEST(!kernel_healthy(svc.port()), what);
  BOOST_TEST(metric(svc.port(), "ap_audit_outbox_pending") > 0, what);
  return {order_of(r), read_file(svc.log())};
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(tls_end_to_end, pki)

BOOST_AUTO_TEST_CASE(checkouts_and_audit_events_travel_over_tls_with_the_kernel_token_rotated_live) {
  auto token_file = dir + "/kernel-token";
  write_file(token_file, "token-one\n");
  kernel_process kernel{{"--require-token", "token-one"}, good};
  payments_process payments{{}, good};
  service_process svc{fresh_database("ap_e2e_tls"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_CA_FILE", trusted.cert_file()},
                       {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "@" + token_file},
                       {"ARTIFACT_PUBLISHER_PAYMENT_PROCESSOR", "stripe"},
                       {"ARTIFACT_PUBLISHER_STRIPE_API_BASE", payments.url()},
                       {"ARTIFACT_PUBLISHER_STRIPE_SECRET_KEY", payments_process::secret_key}}};
  BOOST_TEST(kernel.url().rfind("https://", 0) == 0u);
  BOOST_TEST(payments.url().rfind("https://", 0) == 0u);
  std::vector<std::string> orders;
  for (int i = 0; i < 3; ++i) {
    auto r = checkout(svc.port(), "tls-" + std::to_string(i));
    BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
    auto doc = parse_json(r.body);
    // Charged through the processor over TLS.
    BOOST_TEST(std::string{doc["payment"]["paymentId"].GetString()}.rfind("pi_", 0) == 0u);
    orders.push_back(order_of(r));
  }
  for (const auto& id : orders)
    BOOST_TEST(reaches_kernel(kernel.url(), trusted.cert_file(), "token-one", id));
  BOOST_TEST(kernel_healthy(svc.port()));
  // Every Kernel request carried the token.
  auto counts = parse_json(mock_requests(kernel.url(), trusted.cert_file()));
  BOOST_TEST(counts["unauthorized"].GetInt() == 0);
  BOOST_TEST(counts["authorized"].GetInt() >= 3);

  // The token is rotated: the Kernel takes only the new one, the file is
  // replaced, and the service carries on without a restart.
  {
    auto client = client_of(kernel.url(), trusted.cert_file());
    std::promise<upstream::reply> done;
    auto result = done.get_future();
    upstream::request r;
    r.method = "POST";
    r.target = "/mock/faults";
    r.body = R"({"requireToken":"token-two"})";
    client->send(std::move(r), [&done](upstream::reply reply) { done.set_value(std::move(reply)); });
    BOOST_REQUIRE(result.get().status == 200);
  }
  rotate(token_file, "token-two\n");
  auto after = checkout(svc.port(), "tls-after-rotation");
  BOOST_REQUIRE_MESSAGE(after.status == 201, after.body);
  BOOST_TEST(reaches_kernel(kernel.url(), trusted.cert_file(), "token-two", order_of(after)));
  BOOST_TEST(kernel_healthy(svc.port()));
  BOOST_TEST(contains(read_file(svc.log()), "a secret file changed; using its new value"));
  BOOST_TEST(!contains(read_file(svc.log()), "token-two"));
}

BOOST_AUTO_TEST_CASE(an_untrusted_kernel_is_refused_with_the_reason_and_its_events_wait) {
  struct refusal {
    const pem_pair* cert;
    std::string reason;
  };
  std::vector<refusal> cases{{&unknown_issuer, "unable to get local issuer certificate"},
                             {&expired, "certificate has expired"},
                             {&other_host, "hostname mismatch"}};
  int n = 0;
  for (const auto& c : cases) {
    kernel_process kernel{{}, *c.cert};
    auto db = fresh_database("ap_e2e_tls_refused_" + std::to_string(n++));
    std::map<std::string, std::string> env{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                                           {"ARTIFACT_PUBLISHER_CA_FILE", trusted.cert_file()}};
    // The sale goes on; its audit events wait in the outbox.
    auto [order, log] = checkout_with_kernel_unreachable(db, env, c.reason);
    BOOST_TEST(contains(log, "the TLS handshake with an upstream failed"), c.reason);
    BOOST_TEST(contains(log, c.reason), c.reason);
    if (c.cert == &unknown_issuer) {
      // Nothing was lost: with the Kernel's CA configured and the service
      // restarted, the waiting events reach the Kernel.
      env["ARTIFACT_PUBLISHER_CA_FILE"] = stranger.cert_file();
      service_process svc{db, env};
      BOOST_TEST(reaches_kernel(kernel.url(), stranger.cert_file(), "", order));
      BOOST_TEST(kernel_healthy(svc.port()));
    }
  }
}

BOOST_AUTO_TEST_CASE(a_kernel_without_the_token_refuses_and_the_service_says_why) {
  auto token_file = dir + "/wrong-token";
  write_file(token_file, "not-the-token\n");
  kernel_process kernel{{"--require-token", "the-token"}, good};
  service_process svc{fresh_database("ap_e2e_tls_token"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_CA_FILE", trusted.cert_file()},
                       {"ARTIFACT_PUBLISHER_KERNEL_TOKEN", "@" + token_file}}};
  auto r = checkout(svc.port(), "wrong-token");
  BOOST_REQUIRE_MESSAGE(r.status == 201, r.body);
  std::this_thread::sleep_for(1500ms);
  BOOST_TEST(metric(svc.port(), "ap_audit_outbox_pending") > 0);
  BOOST_TEST(metric(svc.port(), R"(ap_kernel_calls_total{call="audit",outcome="unauthorized"})") > 0);
  BOOST_TEST(contains(read_file(svc.log()), "check KERNEL_TOKEN"));
  // The right token, written over the file, lets the waiting events through.
  rotate(token_file, "the-token\n");
  BOOST_TEST(reaches_kernel(kernel.url(), trusted.cert_file(), "the-token", order_of(r)));
}

BOOST_AUTO_TEST_CASE(a_kernel_that_wants_mutual_tls_gets_the_configured_client_certificate) {
  kernel_process kernel{{"--client-ca", trusted.cert_file()}, good};
  std::map<std::string, std::string> env{{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                                         {"ARTIFACT_PUBLISHER_CA_FILE", trusted.cert_file()}};
  auto db = fresh_database("ap_e2e_tls_mutual");
  // Without a client certificate the Kernel cannot be reached.
  auto order = checkout_with_kernel_unreachable(db, env, "no client certificate").first;
  env["ARTIFACT_PUBLISHER_KERNEL_CLIENT_CERT"] = good.cert_file;
  env["ARTIFACT_PUBLISHER_KERNEL_CLIENT_KEY"] = good.key_file;
  service_process svc{db, env};
  BOOST_TEST(reaches_kernel(kernel.url(), trusted.cert_file(), "", order, 6s, &good));
  BOOST_TEST(kernel_healthy(svc.port()));
}

BOOST_AUTO_TEST_SUITE_END()
