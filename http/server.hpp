#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/metrics.hpp"
#include "http/router.hpp"

namespace ap::http {

/// Limits and timeouts of the HTTP edge (SPEC §4, §8).
struct server_limits {
  std::size_t body_limit = 64 * 1024;
  std::size_t header_limit = 16 * 1024;
  /// A request's headers and body must arrive within this; it also bounds
  /// how long an idle keep-alive connection stays open.
  std::chrono::milliseconds read_timeout{10000};
  std::chrono::milliseconds write_timeout{10000};
  /// A handler that has not replied by then gets a 504 written for it.
  std::chrono::milliseconds handler_deadline{10000};
  /// Connections beyond this are answered 503 and closed.
  std::size_t max_connections = 1024;
  /// On shutdown, in-flight requests get this long to finish.
  std::chrono::milliseconds drain_timeout{10000};
};

/// The certificate and key of a TLS listener (SPEC §10), both PEM files.
struct tls_files {
  /// The server's certificate first, then any intermediate certificates.
  std::string cert_file;
  /// The private key of the first certificate, unencrypted.
  std::string key_file;
  /// When set, mutual TLS: every client must present a certificate issued
  /// by one of these roots (PEM), or its handshake fails. The kernel mock
  /// uses it to stand in for a Kernel that asks for client certificates.
  std::string client_ca_file = {};
};

/// The Boost.Beast HTTP/1.1 server: accepts connections, reads one request at
/// a time per connection (so at most one is in flight per connection and a
/// pipelining client is served in order), routes it, and writes the reply
/// that the handler posts back. Handlers never run blocking work here: they
/// hand it to actors and reply later from any thread. With `use_tls` the
/// same server speaks HTTPS only, under the same limits and timeouts.
class server {
public:
  server(router& routes, metrics::registry& registry, server_limits limits);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Makes the listener speak TLS 1.2 or later only, with the certificate
  /// chain and key of `files`; a client that does not complete a handshake
  /// within `read_timeout` is disconnected without an HTTP answer. Call it
  /// before `listen`. Throws std::runtime_error naming the file that does not
  /// load, or saying that the key does not match the certificate.
  void use_tls(tls_files files);

  /// Binds and listens; returns the bound port (useful with port 0) or
  /// throws std::system_error.
  std::uint16_t listen(const std::string& address, std::uint16_t port);

  /// Runs the io threads until `stop` completes or SIGTERM/SIGINT arrives
  /// (when `handle_signals` is set). Blocks the caller. With TLS and
  /// `handle_signals`, SIGHUP re-reads the certificate and key: connections
  /// accepted afterwards use the new ones, open ones keep theirs, and files
  /// that do not load are logged and leave the current ones in use.
  void run(std::size_t threads, bool handle_signals);

  /// Starts the io threads in the background and returns.
  void start(std::size_t threads);

  /// Graceful stop: close the listener, let in-flight requests finish
  /// (within `drain_timeout`), close idle connections, join the io threads.
  /// Safe to call from any thread, including a signal handler's completion.
  void stop();

  /// The implementation, shared with the connections it owns.
  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace ap::http
