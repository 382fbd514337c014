#include "core/metrics.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace ap::metrics {

namespace {

void atomic_add(std::atomic<double>& target, double delta) noexcept {
  auto current = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(current, current + delta, std::memory_order_relaxed))
    ;
}

std::string format_number(double v) {
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v))
    return "NaN";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  else
    std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

std::string escape_help(const std::string& help) {
  std::string out;
  for (char c : help) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string series(const std::string& name, const std::string& label_text,
                   const std::string& extra = {}) {
  std::string out = name;
  if (!label_text.empty() || !extra.empty()) {
    out += '{';
    out += label_text;
    if (!label_text.empty() && !extra.empty())
      out += ',';
    out += extra;
    out += '}';
  }
  return out;
}

} // namespace

void gauge::add(double d) noexcept {
  atomic_add(value_, d);
}

histogram::histogram(std::vector<double> bounds)
  : bounds_(std::move(bounds)),
    counts_(new std::atomic<std::uint64_t>[bounds_.size() + 1]) {
  for (std::size_t i = 0; i <= bounds_.size(); ++i)
    counts_[i].store(0);
}

void histogram::observe(double value) noexcept {
  std::size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i])
    ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, value);
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10};
}

std::string render_labels(const labels& l) {
  std::string out;
  for (const auto& [key, value] : l) {
    if (!out.empty())
      out += ',';
    out += key;
    out += "=\"";
    for (char c : value) {
      if (c == '\\')
        out += "\\\\";
      else if (c == '"')
        out += "\\\"";
      else if (c == '\n')
        out += "\\n";
      else
        out += c;
    }
    out += '"';
  }
  return out;
}

registry::family& registry::get_family(const std::string& name, kind type,
                                       const std::string& help) {
  auto [it, added] = families_.try_emplace(name);
  if (added) {
    it->second.type = type;
    it->second.help = help;
  } else if (it->second.type != type) {
    throw std::logic_error("metric " + name + " registered with two types");
  }
  return it->second;
}

counter& registry::get_counter(const std::string& name, const std::string& help,
                               const labels& l) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& slot = get_family(name, kind::counter, help).counters[render_labels(l)];
  if (!slot)
    slot = std::make_unique<counter>();
  return *slot;
}

gauge& registry::get_gauge(const std::string& name, const std::string& help, const labels& l) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& slot = get_family(name, kind::gauge, help).gauges[render_labels(l)];
  if (!slot)
    slot = std::make_unique<gauge>();
  return *slot;
}

histogram& registry::get_histogram(const std::string& name, const std::string& help,
                                   const labels& l, std::vector<double> bounds) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& slot = get_family(name, kind::histogram, help).histograms[render_labels(l)];
  if (!slot)
    slot = std::make_unique<histogram>(std::move(bounds));
  return *slot;
}

void registry::add_callback_gauge(const std::string& name, const std::string& help,
                                  const labels& l, std::function<double()> read) {
  std::lock_guard<std::mutex> guard{mutex_};
  get_family(name, kind::gauge, help).callbacks[render_labels(l)] = std::move(read);
}

std::string registry::render() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::string out;
  out.reserve(4096);
  for (const auto& [name, fam] : families_) {
    out += "# HELP " + name + " " + escape_help(fam.help) + "\n";
    switch (fam.type) {
      case kind::counter:
        out += "# TYPE " + name + " counter\n";
        for (const auto& [lbl, c] : fam.counters)
          out += series(name, lbl) + " " + format_number(static_cast<double>(c->value())) + "\n";
        break;
      case kind::gauge: {
        out += "# TYPE " + name + " gauge\n";
        // Merge both sources so each series appears once, in label order.
        std::map<std::string, double> values;
        for (const auto& [lbl, g] : fam.gauges)
          values[lbl] = g->value();
        for (const auto& [lbl, read] : fam.callbacks)
          values[lbl] = read();
        for (const auto& [lbl, v] : values)
          out += series(name, lbl) + " " + format_number(v) + "\n";
        break;
      }
      case kind::histogram:
        out += "# TYPE " + name + " histogram\n";
        for (const auto& [lbl, h] : fam.histograms) {
          std::uint64_t cumulative = 0;
          for (std::size_t i = 0; i < h->bounds().size(); ++i) {
            cumulative += h->bucket_count(i);
            out += series(name + "_bucket", lbl, "le=\"" + format_number(h->bounds()[i]) + "\"")
                   + " " + std::to_string(cumulative) + "\n";
          }
          cumulative += h->bucket_count(h->bounds().size());
          out += series(name + "_bucket", lbl, "le=\"+Inf\"") + " " + std::to_string(cumulative)
                 + "\n";
          out += series(name + "_sum", lbl) + " " + format_number(h->sum()) + "\n";
          out += series(name + "_count", lbl) + " " + std::to_string(cumulative) + "\n";
        }
        break;
    }
  }
  return out;
}

} // namespace ap::metrics
