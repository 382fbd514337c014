#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ap::test {

/// A response as read off the wire.
struct http_reply {
  int status = 0;
  /// As sent, e.g. `HTTP/1.1 404 Not Found`.
  std::string status_line;
  /// Header names in lower case.
  std::map<std::string, std::string> headers;
  /// Names (lower case) of fields sent more than once, which `headers`
  /// keeps once.
  std::vector<std::string> repeated_fields;
  std::string body;
  /// False when the server closed or the read timed out before a whole
  /// response arrived.
  bool complete = false;

  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string{} : it->second;
  }
};

/// A plain blocking TCP connection to 127.0.0.1 for end-to-end tests: real
/// sockets, no HTTP library, so tests control every byte (slow clients,
/// pipelining, malformed requests).
class connection {
public:
  explicit connection(std::uint16_t port);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  bool is_open() const { return fd_ >= 0; }
  /// Writes all bytes; false if the peer closed.
  bool send(const std::string& bytes);
  /// Reads one response (Content-Length framing; the answer to a HEAD
  /// request, `to_head`, has no body whatever its Content-Length says).
  http_reply read_reply(std::chrono::milliseconds timeout = std::chrono::seconds(10),
                        bool to_head = false);
  /// Whether the server closed the connection within `timeout`.
  bool closed_by_peer(std::chrono::milliseconds timeout);

private:
  int fd_ = -1;
  std::string pending_;
};

/// Builds a request: `Host`, `Content-Length` (with a body) and the headers given.
std::string make_request(const std::string& method, const std::string& target,
                         const std::vector<std::pair<std::string, std::string>>& headers = {},
                         const std::string& body = {});

/// One request on a fresh connection.
http_reply http_call(std::uint16_t port, const std::string& method, const std::string& target,
                     const std::vector<std::pair<std::string, std::string>>& headers = {},
                     const std::string& body = {});

/// Polls `GET path` until it answers `status` or `timeout` passes.
bool wait_for_status(std::uint16_t port, const std::string& path, int status,
                     std::chrono::milliseconds timeout);

/// A TCP port that was free a moment ago.
std::uint16_t free_port();

} // namespace ap::test
