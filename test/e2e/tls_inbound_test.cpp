// Inbound TLS (SPEC §10) through real sockets: the service and the mocks
// started with certificates from a test CA and reached with curl, an
// independent client; an in-process server for the rules that need short
// timeouts or a route of their own; and a small OpenSSL client where a
// connection must outlive a certificate reload.
#include <boost/test/unit_test.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "test/support/pg_cluster.hpp"
#include "test/support/service.hpp"
#include "test/support/test_pki.hpp"

using namespace ap;
using namespace ap::test;
using namespace std::chrono_literals;

namespace {

const std::string bin_dir = AP_BIN_DIR;

// A directory of one test's certificates, removed with it.
struct scratch_dir {
  std::string path;
  scratch_dir() {
    char templ[] = "/tmp/ap-tls-e2e-XXXXXX";
    if (!::mkdtemp(templ))
      throw std::runtime_error("mkdtemp failed");
    path = templ;
  }
  ~scratch_dir() { std::filesystem::remove_all(path); }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
};

// OpenSSL's policy made as lax as a system may make it (TLS 1.0 up, security
// level 0), so that what refuses an old protocol is the server's own
// minimum and not the defaults of this machine's OpenSSL.
std::string write_permissive_openssl_conf(const std::string& dir) {
  auto path = dir + "/permissive-openssl.cnf";
  std::ofstream{path} << "openssl_conf = openssl_init\n"
                         "[openssl_init]\nssl_conf = ssl_sect\n"
                         "[ssl_sect]\nsystem_default = system_default_sect\n"
                         "[system_default_sect]\nMinProtocol = TLSv1\nCipherString = DEFAULT@SECLEVEL=0\n";
  return path;
}

std::string lower(std::string text) {
  for (auto& c : text)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// One curl run: its exit code (0, or e.g. 35 for a failed handshake, 60
// for a certificate that does not verify), the status it read (0 if none),
// the headers (names in lower case) and the body.
struct curl_result {
  int exit_code = -1;
  int status = 0;
  std::string headers;
  std::string body;
};

curl_result curl(const std::string& args, const std::string& env = {}) {
  static std::atomic<int> counter{0};
  auto stem = "/tmp/ap-tls-curl-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  curl_result r;
  r.exit_code = shell(env + (env.empty() ? "" : " ") + "curl -s --max-time 10 -D " + stem + ".h -o "
                      + stem + ".b -w '%{http_code}' " + args + " > " + stem + ".code 2>/dev/null");
  auto code = read_file(stem + ".code");
  r.status = code.empty() ? 0 : std::atoi(code.c_str());
  r.headers = lower(read_file(stem + ".h"));
  r.body = read_file(stem + ".b");
  for (const char* ext : {".h", ".b", ".code"})
    std::remove((stem + ext).c_str());
  return r;
}

bool has_error_body(const std::string& body, const std::string& code) {
  return body.find("\"error\":\"" + code + "\"") != std::string::npos
         && body.find("\"message\":") != std::string::npos;
}

// A blocking TLS client over one connection, verifying the server against
// `ca_file` for the name localhost: enough to keep a connection open across
// a certificate reload, and to see what a client sees when the server
// resets it.
class tls_connection {
public:
  tls_connection(std::uint16_t port, const std::string& ca_file) {
    // OpenSSL writes with send(2) without MSG_NOSIGNAL: a write to a
    // connection the server has closed must fail, not end the test run.
    std::signal(SIGPIPE, SIG_IGN);
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    if (SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr) != 1)
      throw std::runtime_error("cannot load " + ca_file);
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      error_ = "connect failed";
      return;
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    SSL_set_tlsext_host_name(ssl_, "localhost");
    SSL_set1_host(ssl_, "localhost");
    if (SSL_connect(ssl_) != 1) {
      char text[256] = {};
      ERR_error_string_n(ERR_get_error(), text, sizeof text);
      error_ = std::string{"handshake failed: "} + text + " (verify: "
               + X509_verify_cert_error_string(SSL_get_verify_result(ssl_)) + ")";
      ERR_clear_error();
      return;
    }
    connected_ = true;
  }

  ~tls_connection() {
    if (ssl_)
      SSL_free(ssl_);
    if (fd_ >= 0)
      ::close(fd_);
    SSL_CTX_free(ctx_);
  }

  tls_connection(const tls_connection&) = delete;
  tls_connection& operator=(const tls_connection&) = delete;

  bool connected() const { return connected_; }
  const std::string& error() const { return error_; }

  bool send(const std::string& bytes) {
    return connected_ && SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()))
                           == static_cast<int>(bytes.size());
  }

  // One response with a Content-Length; incomplete when the connection ends
  // (or resets) first.
  http_reply read_reply() {
    http_reply reply;
    std::size_t head_end;
    while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos)
      if (!fill())
        return reply;
    std::istringstream head{pending_.substr(0, head_end)};
    std::string line;
    std::getline(head, line);
    if (line.size() >= 12)
      reply.status = std::atoi(line.substr(9, 3).c_str());
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      auto colon = line.find(':');
      if (colon == std::string::npos)
        continue;
      auto value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      reply.headers[lower(line.substr(0, colon))] = value;
    }
    std::size_t length = std::strtoul(reply.header("content-length").c_str(), nullptr, 10);
    while (pending_.size() < head_end + 4 + length)
      if (!fill())
        return reply;
    reply.body = pending_.substr(head_end + 4, length);
    pending_.erase(0, head_end + 4 + length);
    reply.complete = true;
    return reply;
  }

  http_reply get(const std::string& target) {
    if (!send(make_request("GET", target)))
      return {};
    return read_reply();
  }

  // The subject's common name of the certificate the server showed.
  std::string peer_common_name() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (!cert)
      return {};
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }

  // The issuer's common name: which CA the server's certificate comes from.
  std::string peer_issuer() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (!cert)
      return {};
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_issuer_name(cert), NID_commonName, cn, sizeof cn);
    X509_free(cert);
    return cn;
  }

private:
  bool fill() {
    if (!connected_)
      return false;
    char buf[16384];
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    pending_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool connected_ = false;
  std::string error_;
  std::string pending_;
};

std::size_t occurrences(const std::string& text, const std::string& of) {
  std::size_t n = 0;
  for (auto at = text.find(of); at != std::string::npos; at = text.find(of, at + of.size()))
    ++n;
  return n;
}

// Polls the log of a process until it holds `text` `times` times.
bool log_shows(const std::string& log_file, const std::string& text, std::size_t times = 1) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  do {
    if (occurrences(read_file(log_file), text) >= times)
      return true;
    std::this_thread::sleep_for(50ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

// The suite's TLS service: a certificate for localhost and 127.0.0.1 from
// its own CA, and a lax system OpenSSL policy (see above).
struct tls_stack {
  scratch_dir dir;
  test_ca ca{dir.path, "inbound"};
  pem_pair leaf = ca.issue("service", {"localhost"}, {"127.0.0.1"});
  std::string openssl_conf = write_permissive_openssl_conf(dir.path);
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_tls_inbound"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_TLS_CERT_FILE", leaf.cert_file},
                       {"ARTIFACT_PUBLISHER_TLS_KEY_FILE", leaf.key_file},
                       {"OPENSSL_CONF", openssl_conf}}};

  std::string cacert() const { return "--cacert " + ca.cert_file() + " "; }
};

// One for the whole suite: starting the service costs a migration.
tls_stack& stack() {
  static tls_stack instance;
  return instance;
}

// The value of a counter without labels in a Prometheus scrape, -1 if absent.
double scraped(const std::string& scrape, const std::string& name) {
  auto at = scrape.find("\n" + name + " ");
  if (at == std::string::npos)
    return -1;
  return std::atof(scrape.c_str() + at + name.size() + 2);
}

// An in-process TLS server with short timeouts and routes of its own.
struct tls_edge {
  scratch_dir dir;
  test_ca ca{dir.path, "edge"};
  pem_pair leaf = ca.issue("edge", {"localhost"}, {"127.0.0.1"});
  metrics::registry registry;
  http::router routes;
  std::unique_ptr<http::server> server;
  std::uint16_t port = 0;

  explicit tls_edge(http::server_limits limits) {
    routes.add("GET", "/hello", http::access::open, http::body_kind::none,
               [](http::request&, http::reply_fn reply) { reply(http::json_response(200, R"({"hello":1})")); });
    routes.add("GET", "/reset", http::access::open, http::body_kind::none,
               [](http::request&, http::reply_fn reply) {
                 http::response res;
                 res.reset = true;
                 reply(std::move(res));
               });
    server = std::make_unique<http::server>(routes, registry, limits);
    server->use_tls({leaf.cert_file, leaf.key_file});
    port = server->listen("127.0.0.1", 0);
    server->start(2);
  }
  ~tls_edge() { server->stop(); }

  static http::server_limits limits(std::chrono::milliseconds read_timeout, std::size_t max_connections) {
    http::server_limits l;
    l.read_timeout = read_timeout;
    l.max_connections = max_connections;
    l.drain_timeout = 10s;
    return l;
  }
};

const std::string checkout_body =
  R"({"customerId":"cust-tls","email":"buyer@example.com","currency":"usd",)"
  R"("items":[{"sku":"creator-basic","quantity":1}]})";

} // namespace

BOOST_AUTO_TEST_SUITE(inbound_tls)

BOOST_AUTO_TEST_CASE(health_and_a_checkout_answer_over_verified_tls) {
  auto& s = stack();
  auto url = "https://localhost:" + std::to_string(s.svc.port());
  BOOST_TEST(s.svc.url() == url);
  auto health = curl(s.cacert() + url + "/health");
  BOOST_TEST_REQUIRE(health.exit_code == 0, "curl exit " << health.exit_code);
  BOOST_TEST(health.status == 200);
  // The certificate names 127.0.0.1 too.
  BOOST_TEST(curl(s.cacert() + "https://127.0.0.1:" + std::to_string(s.svc.port()) + "/health").status
             == 200);

  auto checkout = curl(s.cacert() + "-X POST -H 'Content-Type: application/json' --data-binary '"
                       + checkout_body + "' " + url + "/api/checkout");
  BOOST_TEST_REQUIRE(checkout.status == 201, checkout.body);
  auto doc = parse_json(checkout.body);
  BOOST_TEST(std::string{doc["status"].GetString()} == "completed");
  BOOST_TEST(std::string{doc["orderId"].GetString()}.rfind("order_", 0) == 0u);
  // The order reads back over another TLS connection.
  auto back = curl(s.cacert() + url + "/api/checkout/" + doc["orderId"].GetString());
  BOOST_TEST(back.status == 200);

  // Without the CA, curl refuses the certificate.
  BOOST_TEST(curl(url + "/health").exit_code == 60);
  BOOST_TEST(read_file(s.svc.log()).find("\"url\":\"https://127.0.0.1:" + std::to_string(s.svc.port()))
             != std::string::npos);
}

BOOST_AUTO_TEST_CASE(plain_http_to_the_tls_port_gets_no_answer) {
  auto& s = stack();
  auto metrics_url = s.cacert() + s.svc.url() + "/metrics";
  double failures_before = scraped(curl(metrics_url).body, "ap_http_tls_handshake_failures_total");
  // The series is exported (scraped answers -1 for a missing one).
  BOOST_TEST(failures_before >= 0);

  connection c{s.svc.port()};
  BOOST_REQUIRE(c.is_open());
  BOOST_REQUIRE(c.send(make_request("GET", "/health")));
  auto r = c.read_reply(3s);
  BOOST_TEST(!r.complete);
  BOOST_TEST(r.status == 0);
  BOOST_TEST(c.closed_by_peer(3s));
  // curl sees an empty reply, not an HTTP answer.
  auto plain = curl("http://127.0.0.1:" + std::to_string(s.svc.port()) + "/health");
  BOOST_TEST(plain.status == 0);
  BOOST_TEST(plain.exit_code != 0);

  double failures_after = scraped(curl(metrics_url).body, "ap_http_tls_handshake_failures_total");
  BOOST_TEST(failures_after >= failures_before + 2);
}

BOOST_AUTO_TEST_CASE(tls_1_1_is_refused_and_1_2_accepted) {
  auto& s = stack();
  auto url = s.svc.url() + "/health";
  // The client offers TLS 1.1 (its own policy relaxed as the server's is):
  // only the server's minimum refuses it.
  auto old = curl(s.cacert() + "--tls-max 1.1 --ciphers DEFAULT@SECLEVEL=0 " + url,
                  "OPENSSL_CONF=" + s.openssl_conf);
  BOOST_TEST(old.exit_code == 35);
  BOOST_TEST(old.status == 0);
  auto v12 = curl(s.cacert() + "--tlsv1.2 --tls-max 1.2 " + url);
  BOOST_TEST(v12.exit_code == 0);
  BOOST_TEST(v12.status == 200);
  auto v13 = curl(s.cacert() + "--tlsv1.3 " + url);
  BOOST_TEST(v13.status == 200);
}

BOOST_AUTO_TEST_CASE(the_http_limits_hold_over_tls) {
  auto& s = stack();
  auto big = s.dir.path + "/big.json";
  std::ofstream{big} << std::string(64 * 1024 + 1, 'x');
  auto url = s.svc.url() + "/api/checkout";
  auto oversized = curl(s.cacert() + "-H 'Content-Type: application/json' --data-binary @" + big + " " + url);
  BOOST_TEST(oversized.status == 413);
  BOOST_TEST(has_error_body(oversized.body, "payload_too_large"));
  BOOST_TEST(oversized.headers.find("connection: close") != std::string::npos);
  auto malformed = curl(s.cacert() + "-H 'Content-Type: application/json' --data-binary '{\"a\":' " + url);
  BOOST_TEST(malformed.status == 400);
  BOOST_TEST(has_error_body(malformed.body, "invalid_json"));
  auto huge_header = curl(s.cacert() + "-H 'X-Big: " + std::string(17 * 1024, 'h') + "' " + s.svc.url()
                          + "/health");
  BOOST_TEST(huge_header.status == 431);
  BOOST_TEST(has_error_body(huge_header.body, "headers_too_large"));
  auto missing = curl(s.cacert() + s.svc.url() + "/nowhere");
  BOOST_TEST(missing.status == 404);
  BOOST_TEST(missing.headers.find("x-request-id: req_") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(sighup_reloads_the_certificate_for_new_connections_only) {
  scratch_dir dir;
  test_ca first{dir.path, "first"};
  test_ca second{dir.path, "second"};
  auto old_leaf = first.issue("old", {"localhost"}, {"127.0.0.1"});
  auto new_leaf = second.issue("new", {"localhost"}, {"127.0.0.1"});
  // The service reads the files at a fixed place; a renewal replaces them.
  pem_pair live{dir.path + "/live.pem", dir.path + "/live.key"};
  auto install = [&](const pem_pair& p) {
    std::filesystem::copy_file(p.cert_file, live.cert_file, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::copy_file(p.key_file, live.key_file, std::filesystem::copy_options::overwrite_existing);
  };
  install(old_leaf);
  kernel_process kernel;
  service_process svc{fresh_database("ap_e2e_tls_reload"),
                      {{"ARTIFACT_PUBLISHER_KERNEL_URL", kernel.url()},
                       {"ARTIFACT_PUBLISHER_TLS_CERT_FILE", live.cert_file},
                       {"ARTIFACT_PUBLISHER_TLS_KEY_FILE", live.key_file}}};
  auto health = svc.url() + "/health";
  auto with = [&](const test_ca& ca) { return curl("--cacert " + ca.cert_file() + " " + health); };
  BOOST_TEST(with(first).status == 200);
  BOOST_TEST(with(second).exit_code == 60);

  // A connection opened before the reload.
  tls_connection before{svc.port(), first.cert_file()};
  BOOST_REQUIRE_MESSAGE(before.connected(), before.error());
  BOOST_TEST(before.get("/health").status == 200);

  // Half a renewal (the new certificate, the old key) is refused whole.
  std::filesystem::copy_file(new_leaf.cert_file, live.cert_file,
                             std::filesystem::copy_options::overwrite_existing);
  svc.proc().signal(SIGHUP);
  BOOST_REQUIRE(log_shows(svc.log(), "TLS certificate reload failed"));
  BOOST_TEST(read_file(svc.log()).find("does not match the certificate") != std::string::npos);
  BOOST_TEST(with(first).status == 200);

  install(new_leaf);
  svc.proc().signal(SIGHUP);
  BOOST_REQUIRE(log_shows(svc.log(), "TLS certificate reloaded"));
  // New connections verify only against the second CA.
  BOOST_TEST(with(first).exit_code == 60);
  BOOST_TEST(with(second).status == 200);
  tls_connection after{svc.port(), second.cert_file()};
  BOOST_REQUIRE_MESSAGE(after.connected(), after.error());
  BOOST_TEST(after.peer_issuer() == "second");
  // The one opened before keeps its connection and its certificate.
  auto again = before.get("/health");
  BOOST_TEST(again.complete);
  BOOST_TEST(again.status == 200);
  BOOST_TEST(before.peer_issuer() == "first");

  // Files that do not load leave the current certificate in use.
  std::ofstream{live.cert_file, std::ios::trunc} << "not a certificate\n";
  svc.proc().signal(SIGHUP);
  BOOST_REQUIRE(log_shows(svc.log(), "TLS certificate reload failed", 2));
  BOOST_TEST(with(second).status == 200);
  BOOST_TEST(svc.proc().running());

  // SIGTERM still drains and exits cleanly with TLS connections open, and
  // the service starts again on the renewed files.
  install(new_leaf);
  BOOST_CHECK_NO_THROW(svc.restart());
  BOOST_TEST(with(second).status == 200);
  BOOST_TEST(!before.get("/health").complete);
}

BOOST_AUTO_TEST_CASE(one_tls_setting_without_the_other_or_an_unreadable_file_stops_the_start) {
  auto& s = stack();
  auto log = s.dir.path + "/refused.log";
  auto run = [&](std::map<std::string, std::string> env) {
    env["ARTIFACT_PUBLISHER_DB_URL"] = s.svc.db_url();
    env["ARTIFACT_PUBLISHER_PORT"] = std::to_string(free_port());
    std::remove(log.c_str());
    process p{bin_dir + "/artifact-publisher", {"serve"}, env, log};
    return p.wait(15s);
  };
  BOOST_TEST(run({{"ARTIFACT_PUBLISHER_TLS_CERT_FILE", s.leaf.cert_file}}) != 0);
  BOOST_TEST(read_file(log).find("ARTIFACT_PUBLISHER_TLS_CERT_FILE and ARTIFACT_PUBLISHER_TLS_KEY_FILE: "
                                 "set both or neither")
             != std::string::npos);
  BOOST_TEST(run({{"ARTIFACT_PUBLISHER_TLS_CERT_FILE", s.dir.path + "/missing.pem"},
                  {"ARTIFACT_PUBLISHER_TLS_KEY_FILE", s.leaf.key_file}})
             != 0);
  BOOST_TEST(read_file(log).find("missing.pem' cannot be read") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_stalled_handshake_is_cut_off_by_the_read_timeout) {
  tls_edge edge{tls_edge::limits(500ms, 16)};
  connection idle{edge.port};
  BOOST_REQUIRE(idle.is_open());
  auto started = std::chrono::steady_clock::now();
  BOOST_TEST(idle.closed_by_peer(3s));
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  BOOST_TEST(waited.count() >= 400);
  // A client that completes it is served.
  tls_connection client{edge.port, edge.ca.cert_file()};
  BOOST_REQUIRE_MESSAGE(client.connected(), client.error());
  BOOST_TEST(client.get("/hello").body == R"({"hello":1})");
  BOOST_TEST(client.peer_common_name() == "localhost");
}

BOOST_AUTO_TEST_CASE(over_the_connection_cap_a_tls_client_reads_503) {
  tls_edge edge{tls_edge::limits(5s, 1)};
  tls_connection first{edge.port, edge.ca.cert_file()};
  BOOST_REQUIRE_MESSAGE(first.connected(), first.error());
  BOOST_TEST(first.get("/hello").status == 200);
  tls_connection second{edge.port, edge.ca.cert_file()};
  BOOST_REQUIRE_MESSAGE(second.connected(), second.error());
  auto refused = second.read_reply();
  BOOST_TEST(refused.status == 503);
  BOOST_TEST(has_error_body(refused.body, "overloaded"));
}

BOOST_AUTO_TEST_CASE(a_reset_answer_resets_the_tls_connection) {
  tls_edge edge{tls_edge::limits(5s, 16)};
  tls_connection client{edge.port, edge.ca.cert_file()};
  BOOST_REQUIRE_MESSAGE(client.connected(), client.error());
  auto r = client.get("/reset");
  BOOST_TEST(!r.complete);
  BOOST_TEST(r.status == 0);
  auto seen = curl("--cacert " + edge.ca.cert_file() + " https://localhost:" + std::to_string(edge.port)
                   + "/reset");
  BOOST_TEST(seen.status == 0);
  BOOST_TEST(seen.exit_code == 56);  // "Failure in receiving network data": the reset
  BOOST_TEST(curl("--cacert " + edge.ca.cert_file() + " https://localhost:" + std::to_string(edge.port)
                  + "/hello")
               .status
             == 200);
}

BOOST_AUTO_TEST_CASE(stop_closes_a_connection_still_in_its_handshake) {
  tls_edge edge{tls_edge::limits(8s, 16)};
  connection idle{edge.port};
  BOOST_REQUIRE(idle.is_open());
  std::this_thread::sleep_for(100ms);  // accepted, handshake under way
  auto started = std::chrono::steady_clock::now();
  edge.server->stop();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  BOOST_TEST(took.count() < 2000);
  BOOST_TEST(idle.closed_by_peer(1s));
}

BOOST_AUTO_TEST_CASE(the_mocks_serve_https_with_their_tls_flags) {
  scratch_dir dir;
  test_ca ca{dir.path, "mocks"};
  auto leaf = ca.issue("mock", {"localhost"}, {"127.0.0.1"});
  auto cacert = "--cacert " + ca.cert_file() + " ";

  kernel_process kernel{{}, leaf};
  BOOST_TEST(kernel.url() == "https://localhost:" + std::to_string(kernel.port()));
  auto health = curl(cacert + kernel.url() + "/health");
  BOOST_TEST(health.status == 200);
  BOOST_TEST(health.body.find("kernel-mock") != std::string::npos);
  BOOST_TEST(curl(cacert + kernel.url() + "/kernel/keys").status == 200);
  BOOST_TEST(curl(cacert + "http://127.0.0.1:" + std::to_string(kernel.port()) + "/health").status == 0);

  payments_process payments{{}, leaf};
  BOOST_TEST(payments.url() == "https://localhost:" + std::to_string(payments.port()));
  BOOST_TEST(curl(cacert + payments.url() + "/health").status == 200);
  auto listed = curl(cacert + "-H 'Authorization: Bearer " + std::string{payments_process::secret_key} + "' "
                     + payments.url() + "/v1/payment_intents");
  BOOST_TEST(listed.status == 200);
  BOOST_TEST(payments.log().find("\"url\":\"https://") != std::string::npos);

  // One flag without the other is refused.
  auto log = dir.path + "/refused.log";
  process half{bin_dir + "/kernel-mock", {"--port", "0", "--tls-cert", leaf.cert_file}, {}, log};
  BOOST_TEST(half.wait(10s) == 2);
  BOOST_TEST(read_file(log).find("both or neither") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(kernel_mock_requires_its_token_and_takes_a_new_one_at_run_time) {
  kernel_process kernel{{"--require-token", "token-one"}};
  auto get = [&](const std::string& path, const std::string& token) {
    std::vector<std::pair<std::string, std::string>> headers;
    if (!token.empty())
      headers.emplace_back("Authorization", "Bearer " + token);
    return http_call(kernel.port(), "GET", path, headers);
  };
  auto counts = [&] {
    auto doc = parse_json(http_call(kernel.port(), "GET", "/mock/requests").body);
    return std::make_pair(doc["authorized"].GetInt64(), doc["unauthorized"].GetInt64());
  };
  BOOST_TEST((counts() == std::make_pair(std::int64_t{0}, std::int64_t{0})));

  auto missing = get("/health", "");
  BOOST_TEST(missing.status == 401);
  BOOST_TEST(has_error_body(missing.body, "unauthorized"));
  BOOST_TEST(missing.header("www-authenticate") == "Bearer");
  BOOST_TEST(get("/kernel/keys", "token-two").status == 401);
  BOOST_TEST(get("/kernel/keys", "token-on").status == 401);  // exact match only
  BOOST_TEST(get("/kernel/keys", "token-one").status == 200);
  BOOST_TEST(get("/health", "token-one").status == 200);
  // /mock/* needs no token and is not counted.
  BOOST_TEST(http_call(kernel.port(), "GET", "/mock/faults").status == 200);
  BOOST_TEST((counts() == std::make_pair(std::int64_t{2}, std::int64_t{3})));

  auto rotate = [&](const std::string& token) {
    return http_call(kernel.port(), "POST", "/mock/faults", {{"Content-Type", "application/json"}},
                     R"({"requireToken":")" + token + "\"}")
      .status;
  };
  BOOST_TEST(rotate("token-two") == 200);
  BOOST_TEST(get("/kernel/keys", "token-one").status == 401);
  BOOST_TEST(get("/kernel/keys", "token-two").status == 200);
  BOOST_TEST((counts() == std::make_pair(std::int64_t{3}, std::int64_t{4})));
  BOOST_TEST(http_call(kernel.port(), "POST", "/mock/faults", {{"Content-Type", "application/json"}},
                       R"({"requireToken":7})")
               .status
             == 400);

  // An empty token lifts the requirement; nothing is counted meanwhile.
  BOOST_TEST(rotate("") == 200);
  BOOST_TEST(get("/kernel/keys", "").status == 200);
  BOOST_TEST(get("/kernel/keys", "anything").status == 200);
  auto shown = parse_json(http_call(kernel.port(), "GET", "/mock/requests").body);
  BOOST_TEST(shown["tokenRequired"].GetBool() == false);
  BOOST_TEST((counts() == std::make_pair(std::int64_t{3}, std::int64_t{4})));
}

BOOST_AUTO_TEST_SUITE_END()
