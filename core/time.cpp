#include "core/time.hpp"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace ap {

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

std::string format_rfc3339(std::int64_t unix_ms, bool with_millis) {
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  if (with_millis)
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(unix_ms % 1000));
  else
    std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string now_rfc3339() {
  return format_rfc3339(unix_ms_now());
}

std::int64_t parse_rfc3339_ms(const std::string& text) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest)
    return 0;
  std::int64_t ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  // Milliseconds: the first three digits of a fraction.
  if (rest[0] == '.') {
    int scale = 100;
    for (const char* p = rest + 1; *p >= '0' && *p <= '9' && scale > 0; ++p, scale /= 10)
      ms += (*p - '0') * scale;
  }
  return ms;
}

} // namespace ap
