#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <rapidjson/document.h>

namespace ap::http {

/// A parsed HTTP request as handlers see it: no Beast types, so handlers and
/// their tests compile without Beast.
struct request {
  std::string method;
  /// The path without the query string.
  std::string path;
  std::string query;
  /// Header names in lower case.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  /// Echoed in `X-Request-Id` and in every log line about this request.
  std::string request_id;
  /// Values of `{name}` segments of the matched route pattern.
  std::map<std::string, std::string> params;
  /// The parsed body, for routes that take JSON.
  std::shared_ptr<rapidjson::Document> json;
  std::chrono::steady_clock::time_point received_at = std::chrono::steady_clock::now();

  /// The first header named `name` (lower case), or empty.
  std::string_view header(std::string_view name) const;
};

/// A response to write.
struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  /// Extra headers, e.g. `Allow` on a 405.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Instead of answering, reset the connection (a fault peers are tested
  /// against; the kernel mock injects it).
  bool reset = false;
};

/// Returns a JSON response with the SPEC §4 error body.
response error_response(int status, std::string_view code, std::string_view message,
                        std::string_view field = {});

/// Returns a JSON response with the given body.
response json_response(int status, std::string body);

/// Delivers the response for one request. Callable from any thread, at most
/// once; the server writes it on the connection's own strand.
using reply_fn = std::function<void(response)>;

} // namespace ap::http
