// Raw bytes as a connection delivers them, read the way http/server.cpp
// reads them: a fresh Beast parser per request under the server's limits,
// the framing judged once the header is in, then the body, then the router
// (with the service's route table) and on to the next request of a
// keep-alive connection. Properties: nothing crashes; a request whose
// framing is ambiguous is never accepted, nor is a body over the limit;
// what is accepted and routed has a served method or is answered 405.

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "fuzz/property.hpp"
#include "http/request_reading.hpp"
#include "http/router.hpp"

namespace {

namespace bhttp = boost::beast::http;
using ap::fuzz::require;
using ap::fuzz::violated;

// The limits the service runs with (it changes none of the defaults that
// bear on reading a request).
const ap::http::server_limits limits{};

// The service's route table (http/routes.cpp), each handler replaced by one
// that answers 200: what is checked here is which requests reach a handler.
const ap::http::router& service_router() {
  static const ap::http::router r = [] {
    using ap::http::access;
    using ap::http::body_kind;
    ap::http::router table;
    table.set_tokens("fuzz-api-token", "fuzz-admin-token");
    auto ok = [](ap::http::request&, ap::http::reply_fn reply) {
      reply(ap::http::json_response(200, "{}"));
    };
    table.add("GET", "/health", access::open, body_kind::none, ok);
    table.add("GET", "/readyz", access::open, body_kind::none, ok);
    table.add("GET", "/metrics", access::open, body_kind::none, ok);
    table.add("POST", "/api/checkout", access::api, body_kind::json, ok);
    for (const char* part : {"", "/license", "/delivery", "/proof"})
      table.add("GET", std::string{"/api/checkout/{id}"} + part, access::api, body_kind::none, ok);
    table.add("GET", "/api/catalog", access::api, body_kind::none, ok);
    table.add("POST", "/api/sandbox/run", access::api, body_kind::json, ok);
    table.add("POST", "/api/proof/verify", access::api, body_kind::json, ok);
    table.add("GET", "/api/proof/keys", access::api, body_kind::none, ok);
    table.add("POST", "/api/multisig/upgrades", access::admin, body_kind::json, ok);
    table.add("GET", "/api/multisig/upgrades/{id}", access::api, body_kind::none, ok);
    table.add("POST", "/api/multisig/upgrades/{id}/approvals", access::open, body_kind::json, ok);
    table.add("POST", "/api/multisig/upgrades/{id}/apply", access::admin, body_kind::none, ok);
    table.add("POST", "/api/multisig/upgrade", access::admin, body_kind::json, ok);
    return table;
  }();
  return r;
}

bool starts_with_field(std::string_view line, std::string_view name) {
  if (line.size() <= name.size())
    return false;
  for (std::size_t i = 0; i < name.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i])
      return false;
  auto rest = line.substr(name.size());
  auto colon = rest.find_first_not_of(" \t");
  return colon != std::string_view::npos && rest[colon] == ':';
}

// Counts the header lines of `head` (the bytes the parser took for the
// header) that name each framing field, from the raw bytes rather than from
// Beast's reading of them: an independent witness of what was sent.
struct raw_framing {
  std::size_t transfer_encodings = 0;
  std::size_t content_lengths = 0;
};

raw_framing count_framing_lines(std::string_view head) {
  raw_framing f;
  std::size_t start = 0;
  while (start < head.size()) {
    auto end = head.find('\n', start);
    if (end == std::string_view::npos)
      end = head.size();
    auto line = head.substr(start, end - start);
    if (starts_with_field(line, "transfer-encoding"))
      ++f.transfer_encodings;
    if (starts_with_field(line, "content-length"))
      ++f.content_lengths;
    start = end + 1;
  }
  return f;
}

enum class outcome { accepted, refused, incomplete };

// Reads one request from the front of `bytes` as the server does and
// answers what the server would do with it; on acceptance, `bytes` is left
// at the next request.
outcome read_one(std::string_view& bytes) {
  ap::http::request_parser parser;
  ap::http::limit_parser(parser, limits);
  boost::beast::error_code ec;

  // async_read_header: the parser is fed until its header is done.
  std::size_t used = 0;
  while (!parser.is_header_done()) {
    auto n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == bhttp::error::need_more)
      return outcome::incomplete;  // the server waits for more, then times out
    if (ec)
      return outcome::refused;  // 400, 413 or 431, and the connection closes
    if (n == 0)
      return outcome::incomplete;
  }
  auto head = bytes.substr(0, used);
  if (ap::http::framing_problem(parser.get()))
    return outcome::refused;

  // Accepted framing is unambiguous by the raw bytes too: at most one
  // Transfer-Encoding line, never beside a Content-Length, and chunked is
  // then how Beast reads the body.
  auto raw = count_framing_lines(head);
  require(raw.transfer_encodings <= 1, "a request with several Transfer-Encoding lines is read");
  require(raw.transfer_encodings == 0 || raw.content_lengths == 0,
          "a request with both Transfer-Encoding and Content-Length is read");
  require(raw.transfer_encodings == 0 || parser.chunked(),
          "a Transfer-Encoding other than chunked is read");

  // async_read: the rest of the message.
  while (!parser.is_done()) {
    auto n = parser.put(boost::asio::buffer(bytes.data() + used, bytes.size() - used), ec);
    used += n;
    if (ec == bhttp::error::need_more)
      return outcome::incomplete;
    if (ec)
      return outcome::refused;
    if (n == 0)
      return outcome::incomplete;
  }
  bytes.remove_prefix(used);

  auto msg = parser.release();
  require(msg.body().size() <= limits.body_limit, "a body over the limit is read");
  bool keep_alive = msg.keep_alive();
  auto req = ap::http::to_request(msg);
  req.request_id = "req_fuzz";
  int replies = 0;
  int status = 0;
  service_router().dispatch(req, [&](ap::http::response res) {
    ++replies;
    status = res.status;
  });
  require(replies == 1, "a request is answered exactly once");
  if (!ap::http::is_served_method(req.method) && status != 405)
    violated("a method outside the served set is not answered 405", req.method);
  return keep_alive ? outcome::accepted : outcome::refused;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes{reinterpret_cast<const char*>(data), size};
  // A connection serves requests one after another until one is refused,
  // asks to close, or the bytes run out; a few are enough to reach what a
  // smuggled request would be.
  for (int i = 0; i < 8 && !bytes.empty(); ++i)
    if (read_one(bytes) != outcome::accepted)
      break;
  return 0;
}
