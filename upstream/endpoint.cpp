#include "upstream/endpoint.hpp"

#include <arpa/inet.h>

namespace ap::upstream {

namespace {

bool is_ipv4(const std::string& host) {
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr a{};
  return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

} // namespace

std::string endpoint::url() const {
  auto shown_host = is_ipv6(host) ? "[" + host + "]" : host;
  return std::string{tls ? "https://" : "http://"} + shown_host + ":" + std::to_string(port)
         + base_path;
}

bool endpoint::loopback() const {
  if (host == "localhost" || host == "::1")
    return true;
  in_addr a{};
  return inet_pton(AF_INET, host.c_str(), &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

bool endpoint::ip_literal() const {
  return is_ipv4(host) || is_ipv6(host);
}

std::optional<endpoint> parse_url(const std::string& url) {
  endpoint e;
  std::string rest;
  if (url.rfind("https://", 0) == 0) {
    e.tls = true;
    e.port = 443;
    rest = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else {
    return std::nullopt;
  }
  if (rest.find_first_of("?#@ \t\r\n") != std::string::npos)
    return std::nullopt;
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  e.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.base_path.empty() && e.base_path.back() == '/')
    e.base_path.pop_back();
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string::npos)
      return std::nullopt;
    e.host = authority.substr(1, close - 1);
    if (!is_ipv6(e.host))
      return std::nullopt;
    auto after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':')
        return std::nullopt;
      port_text = after.substr(1);
      if (port_text.empty())
        return std::nullopt;
    }
  } else {
    auto colon = authority.find(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty())
        return std::nullopt;
    }
  }
  if (e.host.empty())
    return std::nullopt;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
    auto port = std::stol(port_text);
    if (port < 1 || port > 65535)
      return std::nullopt;
    e.port = static_cast<std::uint16_t>(port);
  }
  return e;
}

} // namespace ap::upstream
