#include "test/support/service.hpp"

#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace ap::test {

namespace {

const std::string bin_dir = AP_BIN_DIR;

std::string url_of(bool tls, std::uint16_t port) {
  // A test certificate names localhost; plain tests keep the address.
  return (tls ? "https://localhost:" : "http://127.0.0.1:") + std::to_string(port);
}

void add_tls_args(const std::optional<pem_pair>& tls, std::vector<std::string>& args) {
  if (tls)
    args.insert(args.end(), {"--tls-cert", tls->cert_file, "--tls-key", tls->key_file});
}

} // namespace

bool https_ok(std::uint16_t port, const std::string& path, const pem_pair* client) {
  std::string identity;
  if (client)
    identity = " --cert " + client->cert_file + " --key " + client->key_file;
  return shell("curl -sfk --max-time 2 -o /dev/null" + identity + " https://127.0.0.1:"
               + std::to_string(port) + path)
         == 0;
}

kernel_process::kernel_process(std::vector<std::string> extra_args, std::optional<pem_pair> tls)
  : port_(free_port()), extra_(std::move(extra_args)), tls_(std::move(tls)) {
  static int counter = 0;
  auto stem = "/tmp/ap-kernel-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  state_ = stem + ".state";
  log_ = stem + ".log";
  std::remove(state_.c_str());
  start();
}

kernel_process::~kernel_process() {
  stop();
  std::remove(state_.c_str());
  std::remove(log_.c_str());
}

std::string kernel_process::url() const {
  return url_of(tls_.has_value(), port_);
}

void kernel_process::stop() {
  if (proc_) {
    proc_->signal(SIGKILL);
    proc_->wait(std::chrono::seconds(10));
    proc_.reset();
  }
}

void kernel_process::start() {
  std::vector<std::string> args{"--port", std::to_string(port_), "--state", state_,
                                "--signing-seed", std::string(64, '7')};
  add_tls_args(tls_, args);
  args.insert(args.end(), extra_.begin(), extra_.end());
  proc_ = std::make_unique<process>(bin_dir + "/kernel-mock", args,
                                    std::map<std::string, std::string>{}, log_);
  // /mock/faults answers whatever the faults and the required token are,
  // and is not counted among the requests made without the token.
  auto answers = [this] {
    // Its own certificate doubles as a client certificate (it carries
    // clientAuth), for a mock started with --client-ca.
    return tls_ ? https_ok(port_, "/mock/faults", &*tls_)
                : http_call(port_, "GET", "/mock/faults").complete;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!answers()) {
    // A mock that refused its state file has exited: no need to wait it out.
    if (!proc_->running() || std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("kernel-mock did not start:\n" + read_file(log_));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

payments_process::payments_process(std::vector<std::string> extra_args, std::optional<pem_pair> tls)
  : port_(free_port()), extra_(std::move(extra_args)), tls_(std::move(tls)) {
  static int counter = 0;
  auto stem = "/tmp/ap-payments-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
  state_ = stem + ".state";
  log_ = stem + ".log";
  std::remove(state_.c_str());
  start();
}

payments_process::~payments_process() {
  stop();
  std::remove(state_.c_str());
  std::remove(log_.c_str());
}

std::string payments_process::url() const {
  return url_of(tls_.has_value(), port_);
}

std::string payments_process::log() const {
  return read_file(log_);
}

void payments_process::stop() {
  if (proc_) {
    proc_->signal(SIGKILL);
    proc_->wait(std::chrono::seconds(10));
    proc_.reset();
  }
}

void payments_process::start() {
  std::vector<std::string> args{"--port", std::to_string(port_), "--state", state_,
                                "--secret-key", secret_key};
  add_tls_args(tls_, args);
  args.insert(args.end(), extra_.begin(), extra_.end());
  proc_ = std::make_unique<process>(bin_dir + "/payments-mock", args, std::map<std::string, std::string>{},
                                    log_);
  auto answers = [this] {
    return tls_ ? https_ok(port_, "/health") : http_call(port_, "GET", "/health").complete;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!answers()) {
    if (std::chrono::steady_clock::now() > deadline || !proc_->running())
      throw std::runtime_error("payments-mock did not start:\n" + read_file(log_));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::map<std::string, std::int64_t> processor_records::refunded() const {
  std::map<std::string, std::int64_t> out;
  for (const auto& r : refunds)
    if (r.status == "succeeded")
      out[r.payment_intent] += r.amount;
  return out;
}

namespace {

std::string text_member(const rapidjson::Value& obj, const char* name) {
  return obj.HasMember(name) && obj[name].IsString() ? std::string{obj[name].GetString()} : std::string{};
}

std::int64_t integer_member(const rapidjson::Value& obj, const char* name) {
  return obj.HasMember(name) && obj[name].IsInt64() ? obj[name].GetInt64() : 0;
}

// Calls `each` with every object of a Stripe list, following has_more with
// starting_after.
template <class Each>
void read_all_pages(std::uint16_t port, const std::string& secret_key, const std::string& path, Each each) {
  std::string after;
  for (;;) {
    auto target = path + "?limit=100" + (after.empty() ? "" : "&starting_after=" + after);
    auto reply = http_call(port, "GET", target, {{"Authorization", "Bearer " + secret_key}});
    if (!reply.complete || reply.status != 200)
      throw std::runtime_error("GET " + target + " answered " + std::to_string(reply.status) + ": "
                               + reply.body);
    auto doc = parse_json(reply.body);
    if (!doc.IsObject() || !doc.HasMember("data") || !doc["data"].IsArray() || !doc.HasMember("has_more")
        || !doc["has_more"].IsBool())
      throw std::runtime_error("GET " + target + " is not a list: " + reply.body);
    const auto& data = doc["data"];
    for (const auto& item : data.GetArray())
      each(item);
    if (!doc["has_more"].GetBool() || data.Empty())
      return;
    after = text_member(data[data.Size() - 1], "id");
  }
}

} // namespace

processor_records read_processor_records(std::uint16_t port, const std::string& secret_key) {
  processor_records out;
  read_all_pages(port, secret_key, "/v1/payment_intents", [&](const rapidjson::Value& v) {
    processor_records::intent i;
    i.id = text_member(v, "id");
    i.status = text_member(v, "status");
    i.currency = text_member(v, "currency");
    i.amount = integer_member(v, "amount");
    i.amount_received = integer_member(v, "amount_received");
    if (v.HasMember("metadata") && v["metadata"].IsObject())
      i.order_id = text_member(v["metadata"], "order_id");
    out.intents.push_back(std::move(i));
  });
  read_all_pages(port, secret_key, "/v1/refunds", [&](const rapidjson::Value& v) {
    processor_records::refund r;
    r.id = text_member(v, "id");
    r.payment_intent = text_member(v, "payment_intent");
    r.status = text_member(v, "status");
    r.amount = integer_member(v, "amount");
    out.refunds.push_back(std::move(r));
  });
  return out;
}

void migrate_database(const std::string& url) {
  auto log = "/tmp/ap-migrate-" + std::to_string(::getpid()) + ".log";
  process p{bin_dir + "/artifact-publisher", {"migrate"}, {{"ARTIFACT_PUBLISHER_DB_URL", url}}, log};
  int rc = p.wait(std::chrono::seconds(60));
  auto out = read_file(log);
  std::remove(log.c_str());
  if (rc != 0)
    throw std::runtime_error("migrate failed: " + out);
}

service_process::service_process(std::string db_url, std::map<std::string, std::string> env)
  : db_url_(std::move(db_url)), env_(std::move(env)), port_(free_port()) {
  static int counter = 0;
  log_ = "/tmp/ap-service-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + ".log";
  migrate_database(db_url_);
  start();
}

service_process::~service_process() {
  if (proc_) {
    proc_->signal(SIGTERM);
    proc_->wait(std::chrono::seconds(10));
  }
  std::remove(log_.c_str());
}

bool service_process::tls() const {
  auto it = env_.find("ARTIFACT_PUBLISHER_TLS_CERT_FILE");
  return it != env_.end() && !it->second.empty();
}

std::string service_process::url() const {
  return url_of(tls(), port_);
}

bool service_process::ready(std::chrono::milliseconds timeout) const {
  if (!tls())
    return wait_for_status(port_, "/readyz", 200, timeout);
  // /readyz answers 503 until the database is reached; curl -f fails on it.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (https_ok(port_, "/readyz"))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

void service_process::start() {
  auto env = env_;
  env["ARTIFACT_PUBLISHER_DB_URL"] = db_url_;
  env["ARTIFACT_PUBLISHER_PORT"] = std::to_string(port_);
  proc_ = std::make_unique<process>(bin_dir + "/artifact-publisher", std::vector<std::string>{"serve"},
                                    env, log_);
  if (!ready(std::chrono::seconds(20)))
    throw std::runtime_error("service did not become ready:\n" + read_file(log_));
}

void service_process::kill() {
  proc_->signal(SIGKILL);
  proc_->wait(std::chrono::seconds(15));
}

void service_process::restart() {
  proc_->signal(SIGTERM);
  if (proc_->wait(std::chrono::seconds(15)) != 0)
    throw std::runtime_error("service did not stop cleanly:\n" + read_file(log_));
  start();
}

std::pair<int, std::string> run_cli(const std::vector<std::string>& args,
                                    const std::map<std::string, std::string>& env) {
  auto log = "/tmp/ap-cli-" + std::to_string(::getpid()) + ".log";
  std::remove(log.c_str());
  process p{bin_dir + "/artifact-publisher", args, env, log};
  int rc = p.wait(std::chrono::seconds(20));
  auto out = read_file(log);
  std::remove(log.c_str());
  return {rc, out};
}

rapidjson::Document parse_json(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str(), body.size());
  if (doc.HasParseError())
    throw std::runtime_error("not JSON: " + body);
  return doc;
}

std::map<std::string, std::string> production_env(std::map<std::string, std::string> env,
                                                  const std::string& db_url) {
  env["ARTIFACT_PUBLISHER_ENV"] = "production";
  env["ARTIFACT_PUBLISHER_DB_URL"] = db_url;
  env["ARTIFACT_PUBLISHER_PORT"] = std::to_string(free_port());
  env.emplace("ARTIFACT_PUBLISHER_PROOF_SECRET", "first-proof-secret-for-production-0123456789");
  if (!env.count("ARTIFACT_PUBLISHER_DELIVERY_KEYS"))
    env.emplace("ARTIFACT_PUBLISHER_DELIVERY_KEY", "delivery-key-for-production-tests-0123456789");
  env.emplace("ARTIFACT_PUBLISHER_KERNEL_TOKEN", "kernel-token-for-production-tests-0123456789");
  return env;
}

} // namespace ap::test
