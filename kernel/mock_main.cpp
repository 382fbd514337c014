// kernel-mock: a local stand-in for the upstream Kernel (SPEC §6): the
// hash-chained, Ed25519-signed audit log with search, chain verification and
// keys, plus faults (latency with jitter, error rate, outage) settable by
// flags and at run time through /mock/faults.
#include <atomic>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "core/config.hpp"
#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "domain/multisig.hpp"
#include "kernel/audit_log.hpp"

namespace {

using namespace ap;

constexpr const char* usage =
  "usage: kernel-mock [options]\n"
  "\n"
  "A local stand-in for the upstream Kernel: audit log (hash chain, Ed25519), search,\n"
  "verification, keys; faults for tests.\n"
  "\n"
  "options:\n"
  "  --port N              port to listen on (default 6050; 0 picks a free one)\n"
  "  --bind ADDRESS        address to bind (default 127.0.0.1)\n"
  "  --state FILE          keep the audit log in FILE (JSON lines) across restarts\n"
  "  --signing-seed HEX    the signer's 32-byte Ed25519 seed as 64 hex digits\n"
  "                        (default: a fresh random key)\n"
  "  --approvers JSON|@F   the approver registry (default: ARTIFACT_PUBLISHER_APPROVERS)\n"
  "  --threshold N         approvals needed to apply (default: ARTIFACT_PUBLISHER_MULTISIG_THRESHOLD or 2)\n"
  "  --latency-ms N        added to every /kernel/* answer\n"
  "  --jitter-ms N         up to N more, at random\n"
  "  --error-rate R        answer 500 to this fraction (0..1) of /kernel/* requests\n"
  "  --outage              answer 503 to everything but /mock/faults\n"
  "  --help, --version\n"
  "\n"
  "At run time: GET /mock/faults shows the faults, POST /mock/faults\n"
  "{\"latencyMs\",\"jitterMs\",\"errorRate\",\"resetRate\",\"outage\"} changes any of\n"
  "them; resetRate is the fraction of /kernel/* requests that are carried out\n"
  "and then answered with a connection reset instead of a response.\n";

struct faults {
  std::atomic<long> latency_ms{0};
  std::atomic<long> jitter_ms{0};
  std::atomic<double> error_rate{0};
  std::atomic<double> reset_rate{0};
  std::atomic<bool> outage{false};

  std::string to_json() const {
    return "{\"errorRate\":" + std::to_string(error_rate.load()) + ",\"jitterMs\":"
           + std::to_string(jitter_ms.load()) + ",\"latencyMs\":" + std::to_string(latency_ms.load())
           + ",\"outage\":" + (outage.load() ? "true" : "false")
           + ",\"resetRate\":" + std::to_string(reset_rate.load()) + "}";
  }
};

// Runs callbacks after a delay on one background thread, so injected
// latency never blocks the io thread.
class delay_queue {
public:
  delay_queue() : worker_([this] { loop(); }) {}
  ~delay_queue() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  void after(std::chrono::milliseconds delay, std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      queue_.emplace(std::chrono::steady_clock::now() + delay, std::move(fn));
    }
    cv_.notify_all();
  }

private:
  void loop() {
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
  std::mutex mutex_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread worker_;
};

struct kernel_mock {
  kernel::audit_log log;
  domain::upgrade_book upgrades;
  std::vector<std::string> approver_ids;
  std::mutex mutex;
  std::ofstream state;
  faults f;
  delay_queue delays;
  std::mt19937_64 rng{std::random_device{}()};
  /// Guards `rng` alone: routes answer while holding `mutex`.
  std::mutex rng_mutex;

  kernel_mock(const std::string& seed, std::map<std::string, std::string> registry, int threshold)
    : log(seed, "kernel-mock"), upgrades(std::move(registry), threshold) {}

  // Applies the fault settings to a /kernel/* answer.
  void answer(http::reply_fn reply, http::response res) {
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

  bool injected_error() { return draw(f.error_rate.load()); }
  bool injected_reset() { return draw(f.reset_rate.load()); }

  // True with probability `rate`.
  bool draw(double rate) {
    if (rate <= 0)
      return false;
    std::lock_guard<std::mutex> guard{rng_mutex};
    return std::uniform_real_distribution<double>(0, 1)(rng) < rate;
  }
};

// Wraps a Kernel route with the outage and error-rate faults and latency.
http::handler faulty(kernel_mock& k, http::handler inner) {
  return [&k, inner](http::request& req, http::reply_fn reply) {
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
  };
}

std::string events_json(const std::vector<const kernel::audit_event*>& events) {
  std::string out = "{\"results\":[";
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (i > 0)
      out += ',';
    out += kernel::to_json(*events[i]);
  }
  return out + "]}";
}

void add_routes(http::router& r, kernel_mock& k) {
  using http::access;
  using http::body_kind;
  r.add("GET", "/health", access::open, body_kind::none, [&k](http::request&, http::reply_fn reply) {
    if (k.f.outage.load())
      return reply(http::error_response(503, "outage", "the Kernel is unavailable (injected)"));
    reply(http::json_response(200, R"({"service":"kernel-mock","status":"ok"})"));
  });

  r.add("POST", "/kernel/audit", access::open, body_kind::json,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          const auto& body = *req.json;
          auto is_str = [](const rapidjson::Value& o, const char* n) {
            return o.IsObject() && o.HasMember(n) && o[n].IsString() && o[n].GetStringLength() > 0;
          };
          if (!is_str(body, "eventType"))
            return reply(http::error_response(400, "invalid_input", "eventType is required", "eventType"));
          if (!body.HasMember("payload") || !body["payload"].IsObject())
            return reply(http::error_response(400, "invalid_input", "payload must be an object", "payload"));
          if (!body.HasMember("metadata") || !is_str(body["metadata"], "eventId"))
            return reply(http::error_response(400, "invalid_input", "metadata.eventId is required",
                                              "metadata.eventId"));
          const auto& meta = body["metadata"];
          std::string source = is_str(meta, "source") ? meta["source"].GetString() : "";
          std::lock_guard<std::mutex> guard{k.mutex};
          try {
            auto result = k.log.append(body["eventType"].GetString(), body["payload"],
                                       meta["eventId"].GetString(), source, now_rfc3339());
            if (result.created && k.state.is_open()) {
              k.state << kernel::audit_log::to_line(*result.event) << '\n';
              k.state.flush();
            }
            reply(http::json_response(202, kernel::to_json(*result.event)));
          } catch (const std::invalid_argument& e) {
            reply(http::error_response(400, "invalid_input", e.what(), "payload"));
          }
        }));

  r.add("GET", "/kernel/audit/verify", access::open, body_kind::none,
        faulty(k, [&k](http::request&, http::reply_fn reply) {
          std::lock_guard<std::mutex> guard{k.mutex};
          auto v = k.log.verify();
          reply(http::json_response(200, std::string{"{\"head\":\""} + v.head + "\",\"length\":"
                                           + std::to_string(v.length) + ",\"valid\":"
                                           + (v.valid ? "true" : "false") + "}"));
        }));

  r.add("GET", "/kernel/audit/{id}", access::open, body_kind::none,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          std::lock_guard<std::mutex> guard{k.mutex};
          const auto* e = k.log.find(req.params.at("id"));
          if (!e)
            return reply(http::error_response(404, "not_found", "no audit event " + req.params.at("id")));
          reply(http::json_response(200, kernel::to_json(*e)));
        }));

  r.add("POST", "/kernel/audit/search", access::open, body_kind::json,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          const auto& body = *req.json;
          std::map<std::string, std::string> criteria;
          if (body.IsObject() && body.HasMember("criteria")) {
            if (!body["criteria"].IsObject())
              return reply(http::error_response(400, "invalid_input", "criteria must be an object",
                                                "criteria"));
            for (auto it = body["criteria"].MemberBegin(); it != body["criteria"].MemberEnd(); ++it) {
              try {
                criteria[it->name.GetString()] = json::canonical(it->value);
              } catch (const std::invalid_argument&) {
                return reply(http::error_response(400, "invalid_input", "criteria values must be "
                                                  "strings, integers, booleans or null", "criteria"));
              }
            }
          }
          std::string type = body.IsObject() && body.HasMember("eventType") && body["eventType"].IsString()
                               ? body["eventType"].GetString()
                               : "";
          std::size_t limit = 100;
          if (body.IsObject() && body.HasMember("limit")) {
            if (!body["limit"].IsInt64() || body["limit"].GetInt64() < 1 || body["limit"].GetInt64() > 10000)
              return reply(http::error_response(400, "invalid_input", "limit must be 1-10000", "limit"));
            limit = static_cast<std::size_t>(body["limit"].GetInt64());
          }
          std::lock_guard<std::mutex> guard{k.mutex};
          reply(http::json_response(200, events_json(k.log.search(criteria, type, limit))));
        }));

  r.add("GET", "/kernel/keys", access::open, body_kind::none,
        faulty(k, [&k](http::request&, http::reply_fn reply) {
          reply(http::json_response(200, R"({"signers":[{"algorithm":"ed25519","publicKey":")"
                                           + crypto::base64_encode(k.log.public_key())
                                           + R"(","signerId":")" + k.log.signer_id() + "\"}]}"));
        }));

  // Upgrades (SPEC §6, §7): the Kernel enforces the multisig rules itself.
  auto now_ms = [] { return unix_ms_now(); };
  auto refusal = [](const domain::multisig_refusal& m) {
    return http::error_response(m.status, m.code, m.message, m.field);
  };
  r.add("POST", "/kernel/upgrade", access::open, body_kind::json,
        faulty(k, [&k, now_ms, refusal](http::request& req, http::reply_fn reply) {
          domain::upgrade_proposal p;
          if (auto bad = domain::parse_proposal(*req.json, p, {"upgradeId", "payloadHash", "threshold"}))
            return reply(refusal(*bad));
          const auto& body = *req.json;
          auto claimed = body.HasMember("upgradeId") && body["upgradeId"].IsString()
                           ? std::string{body["upgradeId"].GetString()}
                           : std::string{};
          if (!claimed.empty() && claimed != domain::upgrade_id_for(domain::upgrade_payload_hash(p)))
            return reply(http::error_response(400, "invalid_input",
                                              "upgradeId does not match the proposal", "upgradeId"));
          std::lock_guard<std::mutex> guard{k.mutex};
          domain::upgrade_record rec;
          if (auto bad = k.upgrades.propose(p, now_ms(), rec))
            return reply(refusal(*bad));
          reply(http::json_response(201, "{\"upgrade\":" + domain::upgrade_json(rec) + "}"));
        }));
  r.add("POST", "/kernel/upgrade/{id}/approve", access::open, body_kind::json,
        faulty(k, [&k, now_ms, refusal](http::request& req, http::reply_fn reply) {
          const auto& b = *req.json;
          for (const char* f : {"approverId", "signature"})
            if (!b.IsObject() || !b.HasMember(f) || !b[f].IsString())
              return reply(http::error_response(400, "invalid_input", std::string{f} + " is required", f));
          std::lock_guard<std::mutex> guard{k.mutex};
          domain::upgrade_record rec;
          if (auto bad = k.upgrades.approve(req.params.at("id"), b["approverId"].GetString(),
                                            b["signature"].GetString(), now_ms(), rec))
            return reply(refusal(*bad));
          reply(http::json_response(201, "{\"upgrade\":" + domain::upgrade_json(rec) + "}"));
        }));
  r.add("POST", "/kernel/upgrade/{id}/apply", access::open, body_kind::none,
        faulty(k, [&k, now_ms, refusal](http::request& req, http::reply_fn reply) {
          std::string by{req.header("x-applied-by")};
          std::lock_guard<std::mutex> guard{k.mutex};
          domain::upgrade_record rec;
          if (auto bad = k.upgrades.apply(req.params.at("id"), by.empty() ? "unknown" : by, now_ms(), rec))
            return reply(refusal(*bad));
          auto full = domain::upgrade_json(rec);
          std::string approvers = "[";
          for (std::size_t i = 0; i < rec.approvals.size(); ++i) {
            if (i > 0)
              approvers += ',';
            json::append_quoted(approvers, rec.approvals[i].approver);
          }
          approvers += "]";
          rapidjson::Document doc;
          json::parse_strict(full, doc);
          std::string out = "{\"quorum\":{\"approvers\":" + approvers + ",\"required\":"
                            + std::to_string(rec.threshold) + "},\"upgrade\":{\"appliedAt\":";
          json::append_quoted(out, doc["appliedAt"].GetString());
          out += ",\"appliedBy\":";
          json::append_quoted(out, rec.applied_by);
          out += ",\"status\":\"applied\",\"upgradeId\":";
          json::append_quoted(out, rec.upgrade_id);
          out += "}}";
          reply(http::json_response(200, std::move(out)));
        }));
  r.add("GET", "/kernel/upgrade/{id}", access::open, body_kind::none,
        faulty(k, [&k](http::request& req, http::reply_fn reply) {
          std::lock_guard<std::mutex> guard{k.mutex};
          const auto* rec = k.upgrades.find(req.params.at("id"));
          if (!rec)
            return reply(http::error_response(404, "not_found", "no upgrade " + req.params.at("id")));
          reply(http::json_response(200, "{\"upgrade\":" + domain::upgrade_json(*rec) + "}"));
        }));

  r.add("GET", "/mock/faults", access::open, body_kind::none,
        [&k](http::request&, http::reply_fn reply) { reply(http::json_response(200, k.f.to_json())); });
  r.add("POST", "/mock/faults", access::open, body_kind::json,
        [&k](http::request& req, http::reply_fn reply) {
          const auto& b = *req.json;
          if (!b.IsObject())
            return reply(http::error_response(400, "invalid_input", "send an object"));
          auto non_negative = [&](const char* n) { return b[n].IsInt64() && b[n].GetInt64() >= 0; };
          if (b.HasMember("latencyMs")) {
            if (!non_negative("latencyMs"))
              return reply(http::error_response(400, "invalid_input", "latencyMs >= 0", "latencyMs"));
            k.f.latency_ms = static_cast<long>(b["latencyMs"].GetInt64());
          }
          if (b.HasMember("jitterMs")) {
            if (!non_negative("jitterMs"))
              return reply(http::error_response(400, "invalid_input", "jitterMs >= 0", "jitterMs"));
            k.f.jitter_ms = static_cast<long>(b["jitterMs"].GetInt64());
          }
          if (b.HasMember("errorRate")) {
            if (!b["errorRate"].IsNumber() || b["errorRate"].GetDouble() < 0 || b["errorRate"].GetDouble() > 1)
              return reply(http::error_response(400, "invalid_input", "errorRate in 0..1", "errorRate"));
            k.f.error_rate = b["errorRate"].GetDouble();
          }
          if (b.HasMember("resetRate")) {
            if (!b["resetRate"].IsNumber() || b["resetRate"].GetDouble() < 0 || b["resetRate"].GetDouble() > 1)
              return reply(http::error_response(400, "invalid_input", "resetRate in 0..1", "resetRate"));
            k.f.reset_rate = b["resetRate"].GetDouble();
          }
          if (b.HasMember("outage")) {
            if (!b["outage"].IsBool())
              return reply(http::error_response(400, "invalid_input", "outage is a boolean", "outage"));
            k.f.outage = b["outage"].GetBool();
          }
          reply(http::json_response(200, k.f.to_json()));
        });
}

} // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  long port = 6050;
  long latency = 0;
  long jitter = 0;
  double error_rate = 0;
  bool outage = false;
  std::string state_file;
  std::string seed_hex;
  std::string approvers_arg;
  long threshold = 2;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc)
        return std::nullopt;
      return std::string{argv[++i]};
    };
    auto fail = [&](const std::string& why) {
      std::cerr << "kernel-mock: " << why << "\n\n" << usage;
      return 2;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "kernel-mock " << AP_VERSION << "\n";
      return 0;
    }
    if (arg == "--outage") {
      outage = true;
      continue;
    }
    auto v = value();
    if (!v)
      return fail("unknown argument or missing value: '" + arg + "'");
    if (arg == "--bind") {
      bind = *v;
    } else if (arg == "--port") {
      if (!parse_integer_in(*v, 0, 65535, port))
        return fail("--port needs an integer from 0 to 65535");
    } else if (arg == "--latency-ms") {
      if (!parse_integer_in(*v, 0, 600000, latency))
        return fail("--latency-ms needs a non-negative integer");
    } else if (arg == "--jitter-ms") {
      if (!parse_integer_in(*v, 0, 600000, jitter))
        return fail("--jitter-ms needs a non-negative integer");
    } else if (arg == "--error-rate") {
      try {
        error_rate = std::stod(*v);
      } catch (const std::exception&) {
        error_rate = -1;
      }
      if (error_rate < 0 || error_rate > 1)
        return fail("--error-rate needs a number from 0 to 1");
    } else if (arg == "--state") {
      state_file = *v;
    } else if (arg == "--signing-seed") {
      seed_hex = *v;
    } else if (arg == "--approvers") {
      approvers_arg = *v;
    } else if (arg == "--threshold") {
      if (!parse_integer_in(*v, 2, 10, threshold))
        return fail("--threshold needs an integer from 2 to 10");
    } else {
      return fail("unknown argument '" + arg + "'");
    }
  }

  std::string seed;
  if (seed_hex.empty()) {
    seed = crypto::random_bytes(32);
  } else {
    auto decoded = crypto::hex_decode(seed_hex);
    if (!decoded || decoded->size() != 32) {
      std::cerr << "kernel-mock: --signing-seed needs 64 hex digits\n";
      return 2;
    }
    seed = *decoded;
  }
  // The approver registry: --approvers, else the service's own variable.
  if (approvers_arg.empty())
    approvers_arg = lookup_setting(process_env(), "APPROVERS").value_or("");
  std::map<std::string, std::string> approver_keys;
  if (!approvers_arg.empty()) {
    std::vector<std::string> problems;
    for (auto& a : parse_approver_registry(approvers_arg, "--approvers", problems))
      approver_keys[a.id] = a.public_key;
    if (!problems.empty()) {
      for (const auto& p : problems)
        std::cerr << "kernel-mock: " << p << "\n";
      return 2;
    }
  }
  if (threshold == 2)
    if (auto t = lookup_setting(process_env(), "MULTISIG_THRESHOLD"))
      parse_integer_in(*t, 2, 10, threshold);
  kernel_mock k{seed, approver_keys, static_cast<int>(threshold)};
  k.f.latency_ms = latency;
  k.f.jitter_ms = jitter;
  k.f.error_rate = error_rate;
  k.f.outage = outage;
  if (!state_file.empty()) {
    std::ifstream in{state_file};
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      if (line.empty())
        continue;
      if (!k.log.restore_line(line)) {
        log::error("kernel-mock state does not verify (another signing seed?)",
                   {{"file", state_file}, {"line", std::to_string(n + 1)}});
        return 1;
      }
      ++n;
    }
    k.state.open(state_file, std::ios::app);
    if (!k.state) {
      log::error("kernel-mock cannot write its state file", {{"file", state_file}});
      return 1;
    }
    log::info("kernel-mock state loaded", {{"events", std::to_string(n)}});
  }

  http::router routes;
  add_routes(routes, k);
  metrics::registry registry;
  http::server server{routes, registry, {}};
  try {
    auto bound = server.listen(bind, static_cast<std::uint16_t>(port));
    log::info("kernel-mock listening", {{"url", "http://" + bind + ":" + std::to_string(bound)},
                                        {"publicKey", crypto::base64_encode(k.log.public_key())}});
  } catch (const std::exception& e) {
    log::error("kernel-mock cannot listen", {{"error", e.what()}});
    return 1;
  }
  server.run(1, true);
  return 0;
}
