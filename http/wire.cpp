#include "http/wire.hpp"

#include <algorithm>
#include <cctype>

namespace ap::http::wire {
namespace {

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size()
         && std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
              return std::tolower(x) == std::tolower(y);
            });
}

bool is_framing(std::string_view name) {
  return same_name(name, "content-length") || same_name(name, "transfer-encoding")
         || same_name(name, "connection");
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
  text_ += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  text_ += std::to_string(status);
  text_ += ' ';
  append_line_safe(text_, reason);
  text_ += "\r\n";
}

head::head(std::string_view method, std::string_view target) {
  text_.reserve(160 + target.size());
  append_line_safe(text_, method);
  text_ += ' ';
  append_line_safe(text_, target);
  text_ += " HTTP/1.1\r\n";
}

void head::line(std::string_view name, std::string_view value) {
  append_line_safe(text_, name);
  text_ += ": ";
  append_line_safe(text_, value);
  text_ += "\r\n";
}

head& head::field(std::string_view name, std::string_view value) {
  if (!is_framing(name))
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
