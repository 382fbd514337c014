#include "http/wire.hpp"

#include <algorithm>

#include "core/text.hpp"

namespace ap::http::wire {
namespace {

bool is_framing(std::string_view name) {
  return equals_ignoring_case(name, "content-length")
         || equals_ignoring_case(name, "transfer-encoding")
         || equals_ignoring_case(name, "connection");
}

// RFC 9110 §5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA.
bool is_token(std::string_view name) {
  constexpr std::string_view others = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [&](unsigned char c) {
    return std::isalnum(c) || others.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

// Appends `text` without CR, LF or NUL.
void append_line_safe(std::string& out, std::string_view text) {
  if (text.find_first_of(std::string_view{"\r\n\0", 3}) == std::string_view::npos) {
    out += text;
    return;
  }
  for (char c : text)
    if (c != '\r' && c != '\n' && c != '\0')
      out += c;
}

} // namespace

head::head(unsigned version, int status, std::string_view reason) {
  text_.reserve(160);
  text_ += "HTTP/";
  text_ += std::to_string(version / 10);
  text_ += '.';
  text_ += std::to_string(version % 10);
  text_ += ' ';
  text_ += std::to_string(status);
  text_ += ' ';
  append_line_safe(text_, reason);
  text_ += "\r\n";
  fields_at_ = text_.size();
}

head::head(std::string_view method, std::string_view target) {
  text_.reserve(160 + target.size());
  append_line_safe(text_, method);
  text_ += ' ';
  append_line_safe(text_, target);
  text_ += " HTTP/1.1\r\n";
  fields_at_ = text_.size();
}

bool head::written(std::string_view name) const {
  // A handful of short lines: a scan costs less than keeping the names.
  std::string_view fields{text_};
  fields.remove_prefix(fields_at_);
  while (!fields.empty()) {
    auto end = fields.find("\r\n");
    auto line = fields.substr(0, end);
    if (equals_ignoring_case(line.substr(0, line.find(':')), name))
      return true;
    if (end == std::string_view::npos)
      break;
    fields.remove_prefix(end + 2);
  }
  return false;
}

void head::line(std::string_view name, std::string_view value) {
  text_ += name;
  text_ += ": ";
  append_line_safe(text_, value);
  text_ += "\r\n";
}

head& head::field(std::string_view name, std::string_view value) {
  if (is_token(name) && !is_framing(name) && !written(name))
    line(name, value);
  return *this;
}

head& head::content_length(std::size_t length) {
  line("Content-Length", std::to_string(length));
  return *this;
}

head& head::connection(std::string_view value) {
  line("Connection", value);
  return *this;
}

std::string head::finish(std::string_view body) {
  text_.reserve(text_.size() + 2 + body.size());
  text_ += "\r\n";
  text_ += body;
  return std::move(text_);
}

bool status_has_no_body(int status) {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

} // namespace ap::http::wire
