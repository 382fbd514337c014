#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

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
///
/// Info, warn and error lines pass one process-wide `limiter`, so a failure
/// that repeats per request (a database that is down under load) writes a
/// few lines and then one summary per interval, not a line per request:
/// `{…,"level":"error","msg":"1234 more like this in the last 10 s",
/// "like":"database request failed","actor":"database-worker"}`. Debug
/// lines, asked for by the operator, are never held back.
void write(level lvl, std::string_view msg, std::initializer_list<field> fields = {});

/// Decides which lines of a kind are written. A kind is a line's level, its
/// message and its `actor`, `upstream` and `file` fields — never what else
/// it carries (request ids, order ids, error texts), so client input cannot
/// make new kinds. In each interval, opened by the first line of its kind,
/// the first `burst` lines are written and the rest counted; the count is
/// reported by one summary once the interval is over, and while a kind keeps
/// repeating, every following interval only has its summary. A kind quiet
/// for a whole interval starts afresh. At most `max_kinds` kinds are
/// followed; lines of kinds beyond share one.
///
/// Not thread-safe: `write` serialises the process-wide one. Time comes in
/// as an argument, so tests drive it with a simulated clock.
class limiter {
public:
  using clock = std::chrono::steady_clock;

  struct settings {
    std::chrono::milliseconds interval{10000};
    std::size_t burst = 3;
    std::size_t max_kinds = 256;
  };

  /// The line that stands for those of one kind held back in an interval.
  struct summary {
    level lvl = level::info;
    /// The kind's message and its identifying fields (`actor`, `upstream`,
    /// `file`, `problem`; only those present).
    std::string like;
    std::vector<std::pair<std::string, std::string>> fields;
    std::uint64_t held = 0;
    /// The held lines fell within this many seconds before the summary.
    std::int64_t seconds = 0;
  };

  explicit limiter(settings s);
  limiter() : limiter(settings{}) {}

  /// Whether the line of `lvl`, `msg` and `fields` arriving at `now` is
  /// written. Appends to `due` the summaries that are due by `now` (write
  /// them before the line).
  bool admit(level lvl, std::string_view msg, std::initializer_list<field> fields,
             clock::time_point now, std::vector<summary>& due);

  /// Appends the summaries due by `now` and forgets kinds that fell quiet.
  void sweep(clock::time_point now, std::vector<summary>& due);

  /// Kinds followed now (at most `max_kinds` + 1).
  std::size_t kinds() const { return kinds_.size(); }

  /// Lines held back so far (each is counted in a summary).
  std::uint64_t held_total() const { return held_total_; }

private:
  struct kind {
    level lvl = level::info;
    std::string like;
    std::vector<std::pair<std::string, std::string>> fields;
    clock::time_point opened{};
    std::size_t written = 0;
    std::uint64_t held = 0;
    /// The last interval ended with lines held back: this one writes none.
    bool storm = false;
  };
  // Closes the interval of `k` if it is over by `now`; false when `k` fell
  // quiet (nothing held, no storm) and may be forgotten.
  bool close_if_over(kind& k, clock::time_point now, std::vector<summary>& due);

  settings settings_;
  std::unordered_map<std::string, kind> kinds_;
  std::string key_;
  clock::time_point next_sweep_{};
  std::uint64_t held_total_ = 0;
};

/// The text of a summary: "N more like this in the last S s".
std::string summary_message(const limiter::summary& s);

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
