#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/metrics.hpp"
#include "upstream/endpoint.hpp"
#include "upstream/reply.hpp"

namespace ap::upstream {

/// Trust and identity for https:// upstreams (SPEC §10).
struct tls_options {
  /// CA_FILE: PEM roots trusted in addition to the system store.
  std::string ca_file;
  /// Mutual TLS: the client's certificate chain and key (PEM), both or neither.
  std::string client_cert_file;
  std::string client_key_file;
};

/// Loads the files of `tls` as an https:// client would: the problem, naming
/// the file, if one cannot be used (checked at start, before any request).
std::optional<std::string> tls_problem(const tls_options& tls);

/// How one client behaves.
struct client_options {
  /// The upstream's name in metrics and logs (`kernel`, `processor`).
  std::string name = "upstream";
  /// Keep-alive connections open at most; requests beyond wait in the queue.
  std::size_t max_connections = 16;
  /// Requests waiting for a connection at most; beyond, a request fails at
  /// once with "queue_full" (counted), so an upstream that stops answering
  /// cannot grow this process without bound.
  std::size_t max_queue = 256;
  /// An idle connection older than this is closed rather than reused: most
  /// servers drop idle connections, and a request written into one already
  /// dropped is a request in doubt.
  std::chrono::milliseconds max_idle{4000};
  /// Largest response body accepted.
  std::size_t body_limit = 4 * 1024 * 1024;
  tls_options tls;
  /// Where `ap_upstream_*` metrics go; none when null.
  metrics::registry* registry = nullptr;
};

/// One request. The target is appended to the endpoint's base path.
struct request {
  std::string method = "GET";
  std::string target;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  /// Counted from the moment `send` is called — time spent waiting in the
  /// queue included — so a request that has waited out its time is never
  /// written late, behind fresher ones.
  std::chrono::milliseconds timeout{5000};
};

/// The one asynchronous HTTP/1.1 client of the service's upstreams (the
/// Kernel, the payment processor) on Boost.Beast, http:// or https:// (SNI,
/// certificate and host-name verification against the system store plus
/// `tls.ca_file`, TLS 1.2 or later), with its own io thread.
///
/// Every request ends in exactly one callback, on the client's io thread
/// (the callback must not block), by its deadline at the latest. A request
/// is sent at most once, with one exception: one whose write failed on a
/// reused keep-alive connection (so the upstream cannot have read it whole)
/// is written again on a fresh connection, as is a GET whose answer was lost
/// on one. A POST that was written whole is never sent again: the caller
/// decides, under its idempotency key (`reply::sent` tells it).
///
/// Metrics (`upstream` label = options.name): `ap_upstream_requests_total
/// {upstream, outcome}` (answered, queue_full, timeout, connect, tls, closed),
/// `ap_upstream_queue_depth{upstream}`, `ap_upstream_reachable{upstream}`.
/// When a request finds the upstream unreachable (no answer, or a 5xx) after
/// one was answered, or the first time, one warning says so and why; the
/// next answer logs its recovery (see `reachability`).
class client {
public:
  /// Throws std::runtime_error naming the file when a TLS file cannot be
  /// loaded.
  client(endpoint where, client_options options);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  using callback = std::function<void(reply)>;

  /// Queues `r`; thread-safe.
  void send(request r, callback done);

  /// Queues each request with its callback, in one hand-over to the io
  /// thread (which then wakes once for them all); thread-safe.
  void send_all(std::vector<std::pair<request, callback>> calls);

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

/// A client, or null (the reason logged) when its TLS files cannot be used:
/// for actors, which must not die at start over a file an operator can fix
/// (the start-up check refuses such files before any actor runs; this covers
/// one changed since).
std::unique_ptr<client> make_client(endpoint where, client_options options);

} // namespace ap::upstream
