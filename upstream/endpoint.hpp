#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ap::upstream {

/// Where an upstream is: scheme, host, port and a path prefix (SPEC §10).
struct endpoint {
  /// https:// (certificate and host name verified) or http://.
  bool tls = false;
  std::string host;
  std::uint16_t port = 80;
  /// Prepended to every request target; no trailing slash.
  std::string base_path;

  /// The URL again, for logs: `https://host:port/base`.
  std::string url() const;
  /// The host is this machine (`localhost`, 127.0.0.0/8, ::1): the only
  /// place production accepts plain http://.
  bool loopback() const;
  /// The host is an IP literal (verified against the certificate's IP
  /// addresses, and sent without SNI).
  bool ip_literal() const;
};

/// Parses `http[s]://host[:port][/base]` (an IPv6 host in brackets);
/// nullopt for anything else, including user info, a query or a fragment.
std::optional<endpoint> parse_url(const std::string& url);

} // namespace ap::upstream
