#pragma once

// How the server reads a request off the wire, apart from the socket: the
// parser's limits, the judgement of its framing, and the request handlers
// see. It brings Beast in, so only http/server.cpp and the fuzz target over
// raw request bytes (fuzz/fuzz_http.cpp) include it; both then read bytes
// exactly alike.

#include <cstdint>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "core/text.hpp"
#include "http/message.hpp"
#include "http/server.hpp"

namespace ap::http {

/// The parser of one request: a fresh one per request, its body kept as text.
using request_parser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// Puts the server's limits on a fresh parser: the body limit (413 beyond
/// it) and the header limit (431).
inline void limit_parser(request_parser& parser, const server_limits& limits) {
  parser.body_limit(limits.body_limit);
  parser.header_limit(static_cast<std::uint32_t>(limits.header_limit));
}

/// Why a request's framing is refused, or null when it is acceptable
/// (RFC 9112 §6.1-6.3). Beast 1.74 takes a request whose last transfer
/// coding is not chunked for one without a body: `chunked, identity` ends
/// the request at its header, and what a proxy in front read as the body is
/// served as the next request. It also takes a Content-Length after a coding
/// other than chunked. The service decodes no coding but chunked, so
/// anything else, and any mix of the two framings, is refused before the
/// body is read. Beast itself refuses Content-Length values that differ and
/// takes an identical value repeated as one.
inline const char* framing_problem(const boost::beast::http::request_header<>& header) {
  namespace bhttp = boost::beast::http;
  std::size_t codings = 0;
  auto [it, end] = header.equal_range(bhttp::field::transfer_encoding);
  for (; it != end; ++it) {
    std::string_view value{it->value().data(), it->value().size()};
    auto first = value.find_first_not_of(" \t");
    auto last = value.find_last_not_of(" \t");
    value = first == std::string_view::npos ? std::string_view{}
                                            : value.substr(first, last - first + 1);
    if (++codings > 1
        || !equals_ignoring_case(value, "chunked"))
      return "the only Transfer-Encoding accepted is a single chunked";
  }
  if (codings > 0 && header.count(bhttp::field::content_length) > 0)
    return "a request may not carry both Content-Length and Transfer-Encoding";
  return nullptr;
}

/// The request as handlers see it (method, path, query, headers named in
/// lower case, body), taking the body out of `msg`. The request id and the
/// time of arrival are the server's to set.
inline request to_request(boost::beast::http::request<boost::beast::http::string_body>& msg) {
  request req;
  req.method = std::string{msg.method_string()};
  auto target = std::string_view{msg.target().data(), msg.target().size()};
  auto q = target.find('?');
  req.path = std::string{target.substr(0, q)};
  if (q != std::string_view::npos)
    req.query = std::string{target.substr(q + 1)};
  req.headers.reserve(16);
  for (const auto& field : msg) {
    std::string name{field.name_string().data(), field.name_string().size()};
    for (auto& c : name)
      c = ascii_lower(c);
    req.headers.emplace_back(std::move(name), std::string{field.value()});
  }
  req.body = std::move(msg.body());
  return req;
}

} // namespace ap::http
