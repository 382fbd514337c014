#include "core/log.hpp"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <mutex>
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

// Each part of a kind's key, and what a summary repeats of it, is cut at
// this length: the kinds' memory stays bounded whatever a message holds.
constexpr std::size_t kind_part_limit = 256;

std::string_view cut(std::string_view text) {
  return text.substr(0, kind_part_limit);
}

// The fields that say which component a line is about (or, for `problem`,
// which configuration mistake: every one is reported at start), and so are
// part of its kind. Their values come from the code and the configuration,
// never from a request.
constexpr std::string_view identifying_fields[] = {"actor", "upstream", "file", "problem"};

template <class Fields>
std::string render(level lvl, std::string_view msg, const Fields& fields) {
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
  return line;
}

void emit(const std::string& line) {
  // One write(2) per line: atomic with respect to other writers on a pipe
  // for lines up to PIPE_BUF, and never interleaved mid-line in practice.
  auto rc = ::write(STDERR_FILENO, line.data(), line.size());
  (void) rc;
}

struct shared_limiter {
  std::mutex mutex;
  limiter lines;
};

// Never destroyed: a line may still be written while statics are torn down.
shared_limiter& process_limiter() {
  static auto* shared = new shared_limiter;
  return *shared;
}

} // namespace

limiter::limiter(settings s) : settings_(s) {
  settings_.burst = std::max<std::size_t>(settings_.burst, 1);
  settings_.max_kinds = std::max<std::size_t>(settings_.max_kinds, 1);
}

bool limiter::close_if_over(kind& k, clock::time_point now, std::vector<summary>& due) {
  if (now < k.opened + settings_.interval)
    return true;
  if (k.held > 0) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now - k.opened).count();
    due.push_back({k.lvl, k.like, k.fields, k.held, (ms + 999) / 1000});
  }
  k.storm = k.held > 0;
  k.held = 0;
  k.written = 0;
  k.opened = now;
  return k.storm;
}

void limiter::sweep(clock::time_point now, std::vector<summary>& due) {
  next_sweep_ = now + std::min<clock::duration>(settings_.interval, std::chrono::seconds{1});
  for (auto it = kinds_.begin(); it != kinds_.end();) {
    if (close_if_over(it->second, now, due))
      ++it;
    else
      it = kinds_.erase(it);
  }
}

bool limiter::admit(level lvl, std::string_view msg, std::initializer_list<field> fields,
                    clock::time_point now, std::vector<summary>& due) {
  if (now >= next_sweep_)
    sweep(now, due);
  // The key: level, message and identifying fields, separated by a
  // character no message holds.
  key_.assign(1, static_cast<char>('0' + static_cast<int>(lvl)));
  key_ += cut(msg);
  std::string_view ids[std::size(identifying_fields)];
  for (const auto& [k, v] : fields)
    for (std::size_t i = 0; i < std::size(identifying_fields); ++i)
      if (k == identifying_fields[i])
        ids[i] = cut(v);
  for (auto id : ids) {
    key_ += '\x1f';
    key_ += id;
  }
  auto it = kinds_.find(key_);
  if (it == kinds_.end()) {
    if (kinds_.size() >= settings_.max_kinds) {
      // Every kind beyond the limit is one: "\x1e" starts no other key.
      key_.assign("\x1e");
      it = kinds_.find(key_);
      if (it == kinds_.end()) {
        kind other;
        other.lvl = lvl;
        other.like = "lines of kinds beyond the followed ones";
        other.opened = now;
        it = kinds_.emplace(key_, std::move(other)).first;
      }
      it->second.lvl = std::max(it->second.lvl, lvl);
    } else {
      kind fresh;
      fresh.lvl = lvl;
      fresh.like = std::string{cut(msg)};
      for (std::size_t i = 0; i < std::size(identifying_fields); ++i)
        if (!ids[i].empty())
          fresh.fields.emplace_back(identifying_fields[i], ids[i]);
      fresh.opened = now;
      it = kinds_.emplace(key_, std::move(fresh)).first;
    }
  } else {
    close_if_over(it->second, now, due);
  }
  auto& k = it->second;
  if (k.written < (k.storm ? 0 : settings_.burst)) {
    ++k.written;
    return true;
  }
  ++k.held;
  ++held_total_;
  return false;
}

std::string summary_message(const limiter::summary& s) {
  return std::to_string(s.held) + " more like this in the last " + std::to_string(s.seconds)
         + " s";
}

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
  if (lvl != level::debug) {
    std::vector<limiter::summary> due;
    bool admitted = false;
    {
      auto& shared = process_limiter();
      std::lock_guard<std::mutex> guard{shared.mutex};
      admitted = shared.lines.admit(lvl, msg, fields, limiter::clock::now(), due);
    }
    for (auto& s : due) {
      std::vector<std::pair<std::string, std::string>> summary_fields{{"like", std::move(s.like)}};
      summary_fields.insert(summary_fields.end(), s.fields.begin(), s.fields.end());
      emit(render(s.lvl, summary_message(s), summary_fields));
    }
    if (!admitted)
      return;
  }
  emit(render(lvl, msg, fields));
}

} // namespace ap::log
