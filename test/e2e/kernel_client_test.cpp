// The Kernel client actor through real sockets against a scripted server.
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/kernel_client.hpp"
#include "actors/node.hpp"
#include "core/crypto.hpp"
#include "http/server.hpp"
#include "test/support/files.hpp"
#include "test/support/http_client.hpp"
#include "test/support/local_server.hpp"

using namespace ap;
using namespace std::chrono_literals;

namespace {

// An AuditEvent as the Kernel answers it (SPEC §6).
const std::string full_receipt =
  R"({"eventType":"ok","hash":"0f","id":"kae_1","metadata":{"eventId":"evt_1","source":"test"},)"
  R"("payload":{},"prevHash":"0e","signature":"c2ln","signerId":"k1","ts":"2026-01-01T00:00:00Z"})";

struct scripted_kernel : test::local_server {
  /// What GET /kernel/keys answers.
  std::string keys_document =
    R"({"signers":[{"algorithm":"ed25519","publicKey":"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",)"
    R"("signerId":"k1"}]})";
  std::atomic<int> audits{0};
  /// The Authorization header of every request, in order ("-" when absent).
  std::mutex seen_mutex;
  std::vector<std::string> authorizations;

  void note(const http::request& req) {
    std::lock_guard<std::mutex> guard{seen_mutex};
    auto auth = req.header("authorization");
    authorizations.push_back(auth.empty() ? std::string{"-"} : std::string{auth});
  }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> guard{seen_mutex};
    return authorizations;
  }

  scripted_kernel() {
    routes.add("POST", "/kernel/audit", http::access::open, http::body_kind::json,
               [this](http::request& req, http::reply_fn reply) {
                 ++audits;
                 note(req);
                 std::string type = (*req.json)["eventType"].GetString();
                 if (type == "fail")
                   return reply(http::error_response(500, "boom", "scripted failure"));
                 if (type == "reject")
                   return reply(http::error_response(400, "invalid_input", "scripted refusal"));
                 // Refusals of the event, with an answer that is long and not
                 // all printable.
                 if (type == "too_large")
                   return reply(http::response{413, "text/plain",
                                               "payload too large\n\x01\xff" + std::string(500, 'z'),
                                               {}, false});
                 if (type == "unprocessable")
                   return reply(http::error_response(422, "invalid_input", "scripted refusal"));
                 // Refusals that say nothing against the event.
                 for (auto [name, status] : {std::pair<const char*, int>{"forbidden", 403},
                                             {"no_route", 404}, {"conflict", 409},
                                             {"too_many", 429}})
                   if (type == name)
                     return reply(http::error_response(status, "scripted", "scripted answer"));
                 if (type == "garbage")
                   return reply(http::json_response(202, "{\"no\":\"id\"}"));
                 if (type == "silent")
                   return;  // never answers (the server's own deadline is long)
                 if (type == "slow") {
                   std::thread([reply] {
                     std::this_thread::sleep_for(300ms);
                     reply(http::json_response(202, full_receipt));
                   }).detach();
                   return;
                 }
                 if (type == "html")
                   return reply(http::response{200, "text/html", "<html>a login page</html>", {}, false});
                 reply(http::json_response(202, full_receipt));
               });
    routes.add("GET", "/kernel/keys", http::access::open, http::body_kind::none,
               [this](http::request& req, http::reply_fn reply) {
                 note(req);
                 reply(http::json_response(200, keys_document));
               });
    routes.add("GET", "/health", http::access::open, http::body_kind::none,
               [this](http::request& req, http::reply_fn reply) {
                 note(req);
                 reply(http::json_response(200, "{}"));
               });
    start();
  }
  // Stops before the members the handlers use are gone.
  ~scripted_kernel() { stop(); }
};

/// A Kernel client actor of `kc` with its actor system. The registry is
/// declared first so that it outlives the system, whose destructor waits
/// for the client, which counts into it until it is gone.
struct client_under_test {
  explicit client_under_test(kernel_client_config kc)
    : sys{configured(cfg)}, self{sys}, k{sys.spawn(kernel_client, std::move(kc), &reg)} {}
  ~client_under_test() { caf::anon_send_exit(k, caf::exit_reason::user_shutdown); }

  /// One event of type `type` (evt_1), alone in its call.
  caf::expected<kernel::audit_ack> submit(const std::string& type) {
    auto answers = submit_all({type});
    if (!answers)
      return answers.error();
    if (answers->size() != 1)
      return caf::make_error(caf::sec::unexpected_response);
    auto& a = answers->front();
    if (a.error)
      return a.error;
    return a.ack;
  }
  /// Events of these types (evt_1, evt_2, ...) in one call.
  caf::expected<std::vector<kernel::audit_answer>> submit_all(const std::vector<std::string>& types) {
    std::vector<domain::audit_event> events;
    for (std::size_t i = 0; i < types.size(); ++i)
      events.push_back({"evt_" + std::to_string(i + 1), types[i], "{}", 0, 1});
    caf::expected<std::vector<kernel::audit_answer>> out{caf::error{}};
    self->request(k, 10s, atoms::audit_atom::value, events)
      .receive([&](std::vector<kernel::audit_answer>& a) { out = std::move(a); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }
  caf::expected<std::vector<kernel::signer_key>> keys() {
    caf::expected<std::vector<kernel::signer_key>> out{caf::error{}};
    self->request(k, 5s, atoms::keys_atom::value)
      .receive([&](std::vector<kernel::signer_key>& ks) { out = std::move(ks); },
               [&](caf::error& e) { out = std::move(e); });
    return out;
  }
  bool healthy() {
    bool up = false;
    self->request(k, 5s, atoms::health_atom::value).receive([&](bool h) { up = h; }, [](caf::error&) {});
    return up;
  }

  static caf::actor_system_config& configured(caf::actor_system_config& c) {
    configure_actor_system(c);
    return c;
  }

  metrics::registry reg;
  caf::actor_system_config cfg;
  caf::actor_system sys;
  caf::scoped_actor self;
  kernel_client_actor k;
};

kernel_client_config kernel_at(std::uint16_t port) {
  kernel_client_config kc;
  kc.where = *upstream::parse_url("http://127.0.0.1:" + std::to_string(port));
  kc.source = "test";
  return kc;
}

} // namespace

BOOST_FIXTURE_TEST_SUITE(kernel_client_actor, scripted_kernel)

BOOST_AUTO_TEST_CASE(the_kernel_actor_maps_answers_to_acks_and_errors) {
  client_under_test t{kernel_at(port)};
  auto ok = t.submit("ok");
  BOOST_REQUIRE(ok);
  BOOST_TEST(ok->kernel_id == "kae_1");
  BOOST_TEST(ok->event_id == "evt_1");
  BOOST_TEST(ok->hash == "0f");
  BOOST_TEST(ok->prev_hash == "0e");
  BOOST_TEST(ok->signature == "c2ln");
  BOOST_TEST(ok->signer_id == "k1");
  BOOST_TEST(ok->ts == "2026-01-01T00:00:00Z");
  // A 2xx that is no receipt is answered as one with nothing in it: the
  // forwarder's check refuses it (SPEC §11).
  for (auto type : {"garbage", "html"}) {
    auto empty = t.submit(type);
    BOOST_REQUIRE_MESSAGE(empty, type);
    BOOST_TEST(empty->kernel_id.empty(), type);
    BOOST_TEST(empty->hash.empty(), type);
    BOOST_TEST(empty->signature.empty(), type);
  }
  // A server error, and a refusal about the credentials, the route or the
  // timing, say nothing against the event: it is sent again.
  for (auto type : {"fail", "forbidden", "no_route", "conflict", "too_many"}) {
    auto r = t.submit(type);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().category() == error_category(), type);
    BOOST_TEST(r.error().code() == static_cast<std::uint8_t>(error_code::upstream_unavailable), type);
    BOOST_TEST(error_upstream_status(r.error()) == 0, type);
  }
  // A refusal of the event itself is definite, with the status and a
  // bounded, printable excerpt of the answer.
  for (auto [type, status] : {std::pair<const char*, int>{"reject", 400}, {"too_large", 413},
                              {"unprocessable", 422}}) {
    auto r = t.submit(type);
    BOOST_REQUIRE(!r);
    BOOST_TEST(r.error().code() == static_cast<std::uint8_t>(error_code::upstream_refused), type);
    BOOST_TEST(is_definite_refusal(r.error()), type);
    BOOST_TEST(error_upstream_status(r.error()) == status, type);
    if (status == 413)
      BOOST_TEST(error_upstream_excerpt(r.error())
                 == "payload too large???" + std::string(refusal_excerpt_limit - 20, 'z'));
    else
      BOOST_TEST(error_upstream_excerpt(r.error()).find("scripted refusal") != std::string::npos);
  }
  BOOST_TEST(t.healthy());
  auto text = t.reg.render();
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="ok"} 3)") != std::string::npos);
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="server_error"} 1)") != std::string::npos);
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="rejected"} 4)") != std::string::npos);
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="refused"} 3)") != std::string::npos);
}

// Events sent in one call go out as a request each, at once, and are
// answered together, each as it would be alone, in the order sent.
BOOST_AUTO_TEST_CASE(events_sent_together_are_answered_together_in_order) {
  client_under_test t{kernel_at(port)};
  const std::vector<std::string> types{"ok", "fail", "reject", "garbage", "ok", "too_many"};
  auto answers = t.submit_all(types);
  BOOST_REQUIRE(answers);
  BOOST_REQUIRE(answers->size() == types.size());
  BOOST_TEST(audits.load() == static_cast<int>(types.size()));
  const auto& a = *answers;
  BOOST_TEST(!a[0].error);
  BOOST_TEST(a[0].ack.kernel_id == "kae_1");
  BOOST_TEST(a[1].error.code() == static_cast<std::uint8_t>(error_code::upstream_unavailable));
  BOOST_TEST(error_upstream_status(a[1].error) == 0);
  BOOST_TEST(is_definite_refusal(a[2].error));
  BOOST_TEST(error_upstream_status(a[2].error) == 400);
  BOOST_TEST(!a[3].error);
  BOOST_TEST(a[3].ack.kernel_id.empty());
  BOOST_TEST(!a[4].error);
  BOOST_TEST(a[4].ack.signature == "c2ln");
  BOOST_TEST(a[5].error.code() == static_cast<std::uint8_t>(error_code::upstream_unavailable));
  for (const auto& answer : a)
    BOOST_TEST(answer.answered_at_ms > 0);
  // No events: answered at once, with nothing sent.
  auto none = t.submit_all({});
  BOOST_REQUIRE(none);
  BOOST_TEST(none->empty());
  BOOST_TEST(audits.load() == static_cast<int>(types.size()));
  auto text = t.reg.render();
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="ok"} 3)") != std::string::npos);
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="audit",outcome="refused"} 1)") != std::string::npos);
}

// The answer to a call waits for its slowest request, and says when each
// reply arrived: the fast one's time is its own.
BOOST_AUTO_TEST_CASE(each_answer_says_when_its_reply_arrived) {
  client_under_test t{kernel_at(port)};
  auto answers = t.submit_all({"ok", "slow"});
  BOOST_REQUIRE(answers);
  BOOST_REQUIRE(answers->size() == 2u);
  const auto& a = *answers;
  BOOST_TEST(!a[0].error);
  BOOST_TEST(!a[1].error);
  BOOST_TEST(a[0].answered_at_ms > 0);
  BOOST_TEST(a[1].answered_at_ms >= a[0].answered_at_ms + 250);
}

BOOST_AUTO_TEST_CASE(every_request_carries_the_token_and_a_rotated_token_file_is_used_at_once) {
  auto file = test::temp_dir("kernel-token") + "/token";
  test::write_file(file, "token-one\n");
  auto kc = kernel_at(port);
  kc.token = secret_source::parse("@" + file);
  client_under_test t{kc};
  BOOST_TEST(bool{t.submit("ok")});
  BOOST_TEST(t.healthy());
  // A rotation writes the new token; the very next request carries it.
  test::write_file(file, "token-two\n");
  BOOST_TEST(bool{t.submit("ok")});
  BOOST_TEST(t.healthy());
  std::vector<std::string> expected{"Bearer token-one", "Bearer token-one", "Bearer token-two",
                                    "Bearer token-two"};
  BOOST_TEST(seen() == expected, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(the_signing_keys_are_read_with_the_token) {
  auto kc = kernel_at(port);
  kc.token = secret_source::parse("token-keys");
  client_under_test t{kc};
  auto keys = t.keys();
  BOOST_REQUIRE(keys);
  BOOST_REQUIRE(keys->size() == 1u);
  BOOST_TEST((*keys)[0].signer_id == "k1");
  BOOST_TEST(crypto::hex_encode((*keys)[0].public_key)
             == "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
  BOOST_TEST(seen() == std::vector<std::string>{"Bearer token-keys"}, boost::test_tools::per_element());
  // A document that is not one is an error, not an empty key set.
  keys_document = R"({"keys":[]})";
  auto bad = t.keys();
  BOOST_REQUIRE(!bad);
  BOOST_TEST(bad.error().code() == static_cast<std::uint8_t>(error_code::upstream_unavailable));
  auto text = t.reg.render();
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="keys",outcome="ok"} 1)") != std::string::npos, text);
  BOOST_TEST(text.find(R"(ap_kernel_calls_total{call="keys",outcome="bad_answer"} 1)") != std::string::npos,
             text);
}

BOOST_AUTO_TEST_CASE(without_a_token_no_authorization_header_is_sent) {
  client_under_test t{kernel_at(port)};
  BOOST_TEST(t.healthy());
  BOOST_TEST(seen() == std::vector<std::string>{"-"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
