#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ap::http::wire {

/// One HTTP/1.x message in one string, its start line and header fields in
/// the order given and then its body, for one write: the server's responses
/// and the upstream client's requests.
///
/// The writer owns the message's framing: fields named Content-Length,
/// Transfer-Encoding or Connection are not taken from callers (`field`
/// skips them; `content_length` and `connection` write them), and a CR,
/// LF or NUL in any part of a line is dropped, so nothing a line carries
/// can end it early and start another.
class head {
public:
  /// `HTTP/1.x <status> <reason>`; `version` as Beast counts it (10, 11).
  head(unsigned version, int status, std::string_view reason);
  /// `<method> <target> HTTP/1.1`.
  head(std::string_view method, std::string_view target);

  /// Adds `name: value`, unless `name` is one of the framing fields above.
  head& field(std::string_view name, std::string_view value);
  head& content_length(std::size_t length);
  /// `Connection: <value>`.
  head& connection(std::string_view value);

  /// The head, its closing empty line and `body`; the builder is spent.
  std::string finish(std::string_view body = {});

private:
  void line(std::string_view name, std::string_view value);
  std::string text_;
};

/// Whether a response with `status` carries no body and no Content-Length
/// (1xx, 204, 304: RFC 9110 §8.6, RFC 9112 §6.3).
bool status_has_no_body(int status);

} // namespace ap::http::wire
