#include "core/time.hpp"

#include <chrono>
#include <cstdio>
#include <cstring>
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
  // Digits at fixed places, then an optional fraction and the offset; any
  // other character anywhere makes it no time at all.
  auto digits = [&text](std::size_t at, std::size_t count, int& out) {
    if (at + count > text.size())
      return false;
    out = 0;
    for (std::size_t i = at; i < at + count; ++i) {
      if (text[i] < '0' || text[i] > '9')
        return false;
      out = out * 10 + (text[i] - '0');
    }
    return true;
  };
  auto is = [&text](std::size_t at, const char* any_of) {
    return at < text.size() && std::strchr(any_of, text[at]) != nullptr && text[at] != '\0';
  };
  int year, month, day, hour, minute, second;
  if (!digits(0, 4, year) || !is(4, "-") || !digits(5, 2, month) || !is(7, "-")
      || !digits(8, 2, day) || !is(10, "Tt") || !digits(11, 2, hour) || !is(13, ":")
      || !digits(14, 2, minute) || !is(16, ":") || !digits(17, 2, second))
    return 0;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return 0;
  std::size_t at = 19;
  std::int64_t fraction_ms = 0;
  if (is(at, ".")) {
    std::size_t first = ++at;
    int scale = 100;
    for (; at < text.size() && text[at] >= '0' && text[at] <= '9'; ++at, scale /= 10)
      if (scale > 0)
        fraction_ms += (text[at] - '0') * scale;
    if (at == first)
      return 0;
  }
  std::int64_t offset_s = 0;
  if (is(at, "Zz")) {
    ++at;
  } else if (is(at, "+-")) {
    int oh, om;
    if (!digits(at + 1, 2, oh) || !is(at + 3, ":") || !digits(at + 4, 2, om) || oh > 23 || om > 59)
      return 0;
    offset_s = (text[at] == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    at += 6;
  } else {
    return 0;
  }
  if (at != text.size())
    return 0;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  auto seconds = static_cast<std::int64_t>(timegm(&tm));
  // A day the month does not have (02-30) comes back as another date.
  if (tm.tm_mday != day && second != 60)
    return 0;
  return (seconds - offset_s) * 1000 + fraction_ms;
}

} // namespace ap
