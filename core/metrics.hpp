#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace ap::metrics {

/// Label pairs of one time series, in the order given.
using labels = std::vector<std::pair<std::string, std::string>>;

/// A monotonically increasing count. Lock-free; safe from any thread.
class counter {
public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down. Lock-free; safe from any thread.
class gauge {
public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept;
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
  std::atomic<double> value_{0};
};

/// A cumulative histogram with fixed upper bounds (seconds for latencies).
/// Lock-free; safe from any thread.
class histogram {
public:
  explicit histogram(std::vector<double> bounds);
  void observe(double value) noexcept;
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  /// Count of observations in bucket `i` (not cumulative); the last bucket
  /// is +Inf.
  std::uint64_t bucket_count(std::size_t i) const noexcept {
    return counts_[i].load(std::memory_order_relaxed);
  }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  double sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

/// Default latency buckets in seconds, from 0.5 ms to 10 s; 0.75 s is the
/// checkout latency objective (P95 ≤ 750 ms), counted exactly by its bucket.
std::vector<double> latency_buckets();

/// Owns every metric of the process and renders them in the Prometheus text
/// exposition format. Lookup takes a lock; callers on hot paths keep the
/// returned reference, which stays valid for the registry's lifetime.
class registry {
public:
  counter& get_counter(const std::string& name, const std::string& help, const labels& l = {});
  gauge& get_gauge(const std::string& name, const std::string& help, const labels& l = {});
  histogram& get_histogram(const std::string& name, const std::string& help, const labels& l = {},
                           std::vector<double> bounds = latency_buckets());

  /// Registers a gauge whose value is read when rendering (for figures
  /// another component owns, such as pool sizes).
  void add_callback_gauge(const std::string& name, const std::string& help, const labels& l,
                          std::function<double()> read);

  /// Renders every family, sorted by name, in the text format version 0.0.4.
  std::string render() const;

private:
  enum class kind { counter, gauge, histogram };
  struct family {
    kind type;
    std::string help;
    std::map<std::string, std::unique_ptr<counter>> counters;
    std::map<std::string, std::unique_ptr<gauge>> gauges;
    std::map<std::string, std::unique_ptr<histogram>> histograms;
    std::map<std::string, std::function<double()>> callbacks;
  };
  family& get_family(const std::string& name, kind type, const std::string& help);

  mutable std::mutex mutex_;
  std::map<std::string, family> families_;
};

/// Renders label pairs as `k1="v1",k2="v2"` with Prometheus escaping.
std::string render_labels(const labels& l);

} // namespace ap::metrics
