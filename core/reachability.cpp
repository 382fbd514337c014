#include "core/reachability.hpp"

#include "core/log.hpp"

namespace ap {

namespace {

/// A reason goes into the log as its first line, cut to this length: libpq's
/// messages run to several lines of advice.
constexpr std::size_t reason_limit = 200;

std::string first_line(std::string_view text) {
  auto end = text.find_first_of("\r\n");
  auto line = text.substr(0, end == std::string_view::npos ? text.size() : end);
  return std::string{line.substr(0, reason_limit)};
}

} // namespace

reachability::reachability(std::string upstream, std::chrono::milliseconds settle)
  : upstream_(std::move(upstream)), settle_(settle) {
}

bool reachability::unreachable(std::string_view reason) {
  if (settle_.count() > 0)
    last_failure_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                        std::memory_order_relaxed);
  if (down_.load(std::memory_order_relaxed))
    return false;
  std::lock_guard<std::mutex> guard{change_};
  if (down_.load(std::memory_order_relaxed))
    return false;
  down_.store(true, std::memory_order_relaxed);
  down_since_ = std::chrono::steady_clock::now();
  log::warn("an upstream is unreachable", {{"upstream", upstream_}, {"reason", first_line(reason)}});
  return true;
}

bool reachability::recovered() noexcept {
  if (settle_.count() > 0) {
    auto since = std::chrono::steady_clock::now().time_since_epoch().count()
                 - last_failure_.load(std::memory_order_relaxed);
    if (since < settle_.count())
      return false;
  }
  try {
    std::lock_guard<std::mutex> guard{change_};
    if (!down_.load(std::memory_order_relaxed))
      return false;
    down_.store(false, std::memory_order_relaxed);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - down_since_)
                .count();
    log::info("an upstream is reachable again",
              {{"upstream", upstream_}, {"downForMs", std::to_string(ms)}});
    return true;
  } catch (...) {
    // A line that cannot be formatted (out of memory) must not take the
    // caller's answered call down with it.
    return false;
  }
}

} // namespace ap
