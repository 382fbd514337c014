#pragma once

// An in-process HTTP(S) server on 127.0.0.1 standing in for an upstream:
// the test adds its routes, then starts it.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "core/metrics.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace ap::test {

struct local_server {
  metrics::registry registry;
  http::router routes;
  std::unique_ptr<http::server> server;
  std::uint16_t port = 0;

  /// Listens (on a free port the first time, on the same port again after a
  /// `stop`) with a long handler deadline, so scripted routes may stay silent.
  void start(std::optional<http::tls_files> tls = std::nullopt) {
    http::server_limits limits;
    limits.handler_deadline = std::chrono::seconds(30);
    limits.drain_timeout = std::chrono::milliseconds(300);
    server = std::make_unique<http::server>(routes, registry, limits);
    if (tls)
      server->use_tls(*tls);
    port = server->listen("127.0.0.1", port);
    server->start(1);
  }
  /// Closes every connection, idle keep-alive ones included.
  void stop() {
    if (server)
      server->stop();
  }
  ~local_server() { stop(); }

  /// Connections accepted so far.
  std::uint64_t connections() {
    return registry.get_counter("ap_http_connections_accepted_total", "").value();
  }
};

} // namespace ap::test
