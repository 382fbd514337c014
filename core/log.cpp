#include "core/log.hpp"

#include <atomic>
#include <unistd.h>

#include "core/time.hpp"
#include "core/json.hpp"

namespace ap::log {

namespace {

std::atomic<int> min_level{static_cast<int>(level::info)};

const char* name(level lvl) {
  switch (lvl) {
    case level::debug:
      return "debug";
    case level::info:
      return "info";
    case level::warn:
      return "warn";
    case level::error:
      return "error";
  }
  return "info";
}

} // namespace

bool parse_level(std::string_view text, level& out) {
  for (auto lvl : {level::debug, level::info, level::warn, level::error}) {
    if (text == name(lvl)) {
      out = lvl;
      return true;
    }
  }
  return false;
}

void set_level(level lvl) {
  min_level.store(static_cast<int>(lvl));
}

bool enabled(level lvl) {
  return static_cast<int>(lvl) >= min_level.load(std::memory_order_relaxed);
}

void write(level lvl, std::string_view msg, std::initializer_list<field> fields) {
  if (!enabled(lvl))
    return;
  std::string line;
  line.reserve(128 + msg.size());
  line += "{\"ts\":";
  json::append_quoted(line, now_rfc3339());
  line += ",\"level\":\"";
  line += name(lvl);
  line += "\",\"msg\":";
  json::append_quoted(line, msg);
  for (const auto& [key, value] : fields) {
    line += ',';
    json::append_quoted(line, key);
    line += ':';
    json::append_quoted(line, value);
  }
  line += "}\n";
  // One write(2) per line: atomic with respect to other writers on a pipe
  // for lines up to PIPE_BUF, and never interleaved mid-line in practice.
  auto rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void) rc;
}

} // namespace ap::log
