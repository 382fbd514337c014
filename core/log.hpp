#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ap::log {

/// Severity of a log line; lines below the configured level are dropped.
enum class level { debug, info, warn, error };

/// Parses `debug|info|warn|error`; returns false for anything else.
bool parse_level(std::string_view text, level& out);

/// Sets the lowest level that is written (default: info).
void set_level(level lvl);

/// Whether a line at `lvl` would be written.
bool enabled(level lvl);

/// One extra field of a log line. Values are written as JSON strings.
using field = std::pair<std::string_view, std::string_view>;

/// Writes one JSON object per line to stderr:
/// `{"ts":…,"level":…,"msg":…,<fields>}`. Thread-safe; a line is written
/// with one call so lines from several threads never interleave.
/// Callers never pass secrets: configuration is logged through its redacted
/// summary only.
void write(level lvl, std::string_view msg, std::initializer_list<field> fields = {});

inline void debug(std::string_view m, std::initializer_list<field> f = {}) {
  write(level::debug, m, f);
}
inline void info(std::string_view m, std::initializer_list<field> f = {}) {
  write(level::info, m, f);
}
inline void warn(std::string_view m, std::initializer_list<field> f = {}) {
  write(level::warn, m, f);
}
inline void error(std::string_view m, std::initializer_list<field> f = {}) {
  write(level::error, m, f);
}

} // namespace ap::log
