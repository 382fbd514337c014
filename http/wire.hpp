#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ap::http::wire {

/// One HTTP/1.x message in one string, its start line and header fields in
/// the order given and then its body, for one write: the server's responses
/// and the upstream client's requests.
///
/// The writer owns the message's framing: `field` never writes
/// Content-Length, Transfer-Encoding or Connection (`content_length` and
/// `connection` do), nor a name that is not an RFC 9110 token, nor a name
/// already written (the first stands, so a writer's own fields, written
/// first, cannot be written again by its callers); a CR, LF or NUL in the
/// start line or a value is dropped, so nothing a line carries can end it
/// early and start another.
class head {
public:
  /// `HTTP/<major>.<minor> <status> <reason>`; `version` as Beast counts
  /// it (10, 11: ten times the major number plus the minor).
  head(unsigned version, int status, std::string_view reason);
  /// `<method> <target> HTTP/1.1`.
  head(std::string_view method, std::string_view target);

  /// Adds `name: value`, unless `name` may not be written (above).
  head& field(std::string_view name, std::string_view value);
  head& content_length(std::size_t length);
  /// `Connection: <value>`.
  head& connection(std::string_view value);

  /// The head, its closing empty line and `body`; the builder is spent.
  std::string finish(std::string_view body = {});

private:
  bool written(std::string_view name) const;
  void line(std::string_view name, std::string_view value);
  std::string text_;
  /// Where the first field line starts.
  std::size_t fields_at_ = 0;
};

/// Whether a response with `status` carries no body and no Content-Length
/// (1xx, 204, 304: RFC 9110 §8.6, RFC 9112 §6.3).
bool status_has_no_body(int status);

} // namespace ap::http::wire
