#include "kernel/mock/mock_state.hpp"

#include "core/json.hpp"

namespace ap::kernel::mock {

void faults::refuse_event_type(std::string type) {
  std::lock_guard<std::mutex> guard{refused_type_mutex_};
  refused_type_ = std::move(type);
}

bool faults::refuses(const std::string& type) const {
  std::lock_guard<std::mutex> guard{refused_type_mutex_};
  return !refused_type_.empty() && refused_type_ == type;
}

std::string faults::to_json() const {
  std::string refused_type;
  {
    std::lock_guard<std::mutex> guard{refused_type_mutex_};
    refused_type = refused_type_;
  }
  std::string out = "{\"errorRate\":" + std::to_string(error_rate.load()) + ",\"jitterMs\":"
                    + std::to_string(jitter_ms.load()) + ",\"latencyMs\":"
                    + std::to_string(latency_ms.load()) + ",\"outage\":"
                    + (outage.load() ? "true" : "false") + ",\"refuseEventType\":";
  json::append_quoted(out, refused_type);
  return out + ",\"refused\":" + std::to_string(refused.load())
         + ",\"resetRate\":" + std::to_string(reset_rate.load())
         + ",\"upgradeResets\":" + std::to_string(upgrade_resets.load()) + "}";
}

bool faults::take_upgrade_reset() {
  long left = upgrade_resets.load();
  while (left > 0)
    if (upgrade_resets.compare_exchange_weak(left, left - 1))
      return true;
  return false;
}

void token_check::require(std::string token) {
  std::lock_guard<std::mutex> guard{mutex_};
  token_ = std::move(token);
}

bool token_check::admits(const http::request& req) {
  std::lock_guard<std::mutex> guard{mutex_};
  if (token_.empty())
    return true;
  bool ok = http::constant_time_equal(req.header("authorization"), "Bearer " + token_);
  ++(ok ? authorized_ : unauthorized_);
  return ok;
}

std::string token_check::to_json() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return "{\"authorized\":" + std::to_string(authorized_) + ",\"tokenRequired\":"
         + (token_.empty() ? "false" : "true") + ",\"unauthorized\":" + std::to_string(unauthorized_)
         + "}";
}

delay_queue::delay_queue() : worker_([this] { loop(); }) {}

delay_queue::~delay_queue() {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void delay_queue::after(std::chrono::milliseconds delay, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> guard{mutex_};
    queue_.emplace(std::chrono::steady_clock::now() + delay, std::move(fn));
  }
  cv_.notify_all();
}

void delay_queue::loop() {
  std::unique_lock<std::mutex> lock{mutex_};
  while (!stopping_) {
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = queue_.begin();
    if (cv_.wait_until(lock, first->first) == std::cv_status::timeout || first->first <= std::chrono::steady_clock::now()) {
      auto due = queue_.begin();
      if (due->first > std::chrono::steady_clock::now())
        continue;
      auto fn = std::move(due->second);
      queue_.erase(due);
      lock.unlock();
      fn();
      lock.lock();
    }
  }
}

void mock_state::answer(http::reply_fn reply, http::response res) {
  long delay = f.latency_ms.load();
  if (long jitter = f.jitter_ms.load(); jitter > 0) {
    std::lock_guard<std::mutex> guard{rng_mutex};
    delay += static_cast<long>(rng() % static_cast<unsigned long>(jitter + 1));
  }
  if (delay <= 0)
    return reply(std::move(res));
  delays.after(std::chrono::milliseconds(delay),
               [reply, res = std::move(res)]() mutable { reply(std::move(res)); });
}

void mock_state::persist(const std::string& line) {
  if (!state.is_open())
    return;
  state << line << '\n';
  state.flush();
}

bool mock_state::draw(double rate) {
  if (rate <= 0)
    return false;
  std::lock_guard<std::mutex> guard{rng_mutex};
  return std::uniform_real_distribution<double>(0, 1)(rng) < rate;
}

http::handler guarded(mock_state& k, http::handler inner) {
  return [&k, inner = std::move(inner)](http::request& req, http::reply_fn reply) {
    if (k.token.admits(req))
      return inner(req, std::move(reply));
    auto res = http::error_response(401, "unauthorized",
                                    req.header("authorization").empty()
                                      ? "this Kernel requires Authorization: Bearer <token>"
                                      : "the bearer token is not the one this Kernel accepts");
    res.headers.emplace_back("WWW-Authenticate", "Bearer");
    reply(std::move(res));
  };
}

http::handler faulty(mock_state& k, http::handler inner) {
  return guarded(k, [&k, inner](http::request& req, http::reply_fn reply) {
    if (k.f.outage.load())
      return reply(http::error_response(503, "outage", "the Kernel is unavailable (injected)"));
    if (k.injected_error())
      return k.answer(reply, http::error_response(500, "injected", "injected failure"));
    inner(req, [&k, reply](http::response res) {
      // The request took effect; the client never learns it did.
      if (k.injected_reset())
        res.reset = true;
      k.answer(reply, std::move(res));
    });
  });
}

} // namespace ap::kernel::mock
