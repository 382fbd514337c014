#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kernel/messages.hpp"

namespace ap::kernel {

/// Host, port and path prefix of an http:// URL.
struct endpoint {
  std::string host;
  std::uint16_t port = 80;
  std::string base_path;
};

/// Parses `http://host[:port][/base]`; nullopt for anything else.
std::optional<endpoint> parse_http_url(const std::string& url);

/// An asynchronous HTTP/1.1 client of one server on Boost.Beast, with its
/// own io thread: keeps up to `max_connections` (16) keep-alive connections and
/// queues requests beyond them. Every request ends, within its timeout, in
/// exactly one callback (on the client's io thread; the callback must not
/// block). A request whose write fails on a reused connection (the server
/// closed it while idle) is sent once more on a fresh one; so is one whose
/// answer is lost after it was written, unless `resend_after_write` is off —
/// for callers that retry themselves under an idempotency key and must know
/// that a reply was lost.
class http_client {
public:
  http_client(endpoint where, std::size_t max_connections = 16, bool resend_after_write = true);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  using callback = std::function<void(http_reply)>;

  /// Sends `method target` (the base path is prepended) with a JSON body.
  void request(std::string method, std::string target, std::string body,
               std::chrono::milliseconds timeout, callback done,
               std::vector<std::pair<std::string, std::string>> headers = {});

  struct impl;

private:
  std::shared_ptr<impl> impl_;
};

} // namespace ap::kernel
