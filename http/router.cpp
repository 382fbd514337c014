#include "http/router.hpp"

#include <algorithm>

#include "core/json.hpp"
#include "core/text.hpp"

namespace ap::http {

std::string_view request::header(std::string_view name) const {
  for (const auto& [key, value] : headers)
    if (key == name)
      return value;
  return {};
}

response error_response(int status, std::string_view code, std::string_view message,
                        std::string_view field) {
  response res;
  res.status = status;
  res.body = json::error_body(code, message, field);
  return res;
}

response json_response(int status, std::string body) {
  response res;
  res.status = status;
  res.body = std::move(body);
  return res;
}

std::vector<router::entry> router::table() const {
  std::vector<entry> out;
  out.reserve(routes_.size());
  for (const auto& r : routes_)
    out.push_back({r.method, r.pattern, r.who, r.body});
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the longer input fully so the time reveals only the lengths.
  std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

namespace {

constexpr std::string_view served_methods[] = {"GET", "HEAD", "POST", "PUT",
                                               "DELETE", "OPTIONS", "PATCH"};

} // namespace

bool is_served_method(std::string_view method) {
  return std::find(std::begin(served_methods), std::end(served_methods), method)
         != std::end(served_methods);
}

std::string_view method_label(std::string_view method) {
  return is_served_method(method) ? method : "OTHER";
}

namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto slash = path.find('/', start);
    auto end = slash == std::string_view::npos ? path.size() : slash;
    if (end > start)
      parts.push_back(path.substr(start, end - start));
    if (slash == std::string_view::npos)
      break;
    start = slash + 1;
  }
  return parts;
}

std::string_view bearer_token(const request& req) {
  auto value = req.header("authorization");
  constexpr std::string_view prefix = "Bearer ";
  if (value.size() <= prefix.size() || !starts_with_ignoring_case(value, prefix))
    return {};
  return value.substr(prefix.size());
}

bool is_json_content_type(std::string_view value) {
  auto semi = value.find(';');
  auto media = value.substr(0, semi);
  while (!media.empty() && media.back() == ' ')
    media.remove_suffix(1);
  if (!equals_ignoring_case(media, "application/json"))
    return false;
  if (semi == std::string_view::npos)
    return true;
  // Only UTF-8 is accepted (SPEC §4); a missing charset means UTF-8.
  std::string params;
  for (char c : value.substr(semi + 1))
    if (c != ' ')
      params += c;
  return params.empty() || equals_ignoring_case(params, "charset=utf-8");
}

} // namespace

void router::set_tokens(std::string api_token, std::string admin_token) {
  api_token_ = std::move(api_token);
  admin_token_ = std::move(admin_token);
}

void router::add(std::string method, std::string pattern, access who, body_kind body,
                 handler h) {
  route r{std::move(method), std::move(pattern), {}, who, body, std::move(h)};
  for (auto part : split_path(r.pattern))
    r.segments.emplace_back(part);
  routes_.push_back(std::move(r));
}

bool router::match(const route& r, const std::vector<std::string_view>& parts,
                   std::map<std::string, std::string>& params) {
  if (r.segments.size() != parts.size())
    return false;
  std::map<std::string, std::string> found;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& seg = r.segments[i];
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}')
      found[seg.substr(1, seg.size() - 2)] = std::string{parts[i]};
    else if (seg != parts[i])
      return false;
  }
  params = std::move(found);
  return true;
}

bool router::authorised(const request& req, access who, response& refusal) const {
  if (who == access::open)
    return true;
  auto token = bearer_token(req);
  bool is_admin = !admin_token_.empty() && constant_time_equal(token, admin_token_);
  if (who == access::admin) {
    if (admin_token_.empty()) {
      refusal = error_response(403, "forbidden", "administration is disabled: no admin token "
                                                 "is configured");
      return false;
    }
    if (token.empty()) {
      refusal = error_response(401, "unauthorized", "this route requires Bearer <admin token>");
      return false;
    }
    if (!is_admin) {
      refusal = error_response(403, "forbidden", "the token is not the admin token");
      return false;
    }
    return true;
  }
  if (api_token_.empty() || is_admin)
    return true;
  if (token.empty()) {
    refusal = error_response(401, "unauthorized", "this route requires Bearer <API token>");
    return false;
  }
  if (!constant_time_equal(token, api_token_)) {
    refusal = error_response(403, "forbidden", "the token is not valid for this route");
    return false;
  }
  return true;
}

std::string_view router::dispatch(request& req, const reply_fn& reply) const {
  auto parts = split_path(req.path);
  std::string allowed;
  for (const auto& r : routes_) {
    std::map<std::string, std::string> params;
    if (!match(r, parts, params))
      continue;
    if (r.method != req.method && !(req.method == "HEAD" && r.method == "GET")) {
      if (allowed.find(r.method) == std::string::npos)
        allowed += allowed.empty() ? r.method : ", " + r.method;
      continue;
    }
    req.params = std::move(params);
    response refusal;
    if (!authorised(req, r.who, refusal)) {
      reply(std::move(refusal));
      return r.pattern;
    }
    if (r.body == body_kind::json) {
      if (!is_json_content_type(req.header("content-type"))) {
        reply(error_response(415, "unsupported_media_type",
                             "send the body as Content-Type: application/json (UTF-8)"));
        return r.pattern;
      }
      auto doc = std::make_shared<rapidjson::Document>();
      if (auto problem = json::parse_strict(req.body, *doc)) {
        reply(error_response(400, "invalid_json", *problem));
        return r.pattern;
      }
      req.json = std::move(doc);
    }
    r.fn(req, reply);
    return r.pattern;
  }
  if (!is_served_method(req.method)) {
    // Refused the same on every path, and without echoing the token: it is
    // whatever the client chose to send.
    auto res = error_response(405, "method_not_allowed",
                              "the service serves only GET, HEAD, POST, PUT, DELETE, OPTIONS "
                              "and PATCH");
    res.headers.emplace_back("Allow", allowed);
    reply(std::move(res));
    return "unmatched";
  }
  if (!allowed.empty()) {
    auto res = error_response(405, "method_not_allowed",
                              "method " + req.method + " is not allowed here; use " + allowed);
    res.headers.emplace_back("Allow", allowed);
    reply(std::move(res));
    return "unmatched";
  }
  reply(error_response(404, "not_found", "no route for " + req.method + " " + req.path));
  return "unmatched";
}

} // namespace ap::http
