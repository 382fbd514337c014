#include "test/support/service.hpp"

#include <signal.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace ap::test {

namespace {

const std::string bin_dir = AP_BIN_DIR;

} // namespace

kernel_process::kernel_process(std::vector<std::string> extra_args)
  : port_(free_port()), extra_(std::move(extra_args)) {
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
  args.insert(args.end(), extra_.begin(), extra_.end());
  proc_ = std::make_unique<process>(bin_dir + "/kernel-mock", args,
                                    std::map<std::string, std::string>{}, log_);
  // Any answer means it listens (with --outage, /health answers 503).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!http_call(port_, "GET", "/health").complete) {
    if (std::chrono::steady_clock::now() > deadline)
      throw std::runtime_error("kernel-mock did not start:\n" + read_file(log_));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
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

void service_process::start() {
  auto env = env_;
  env["ARTIFACT_PUBLISHER_DB_URL"] = db_url_;
  env["ARTIFACT_PUBLISHER_PORT"] = std::to_string(port_);
  proc_ = std::make_unique<process>(bin_dir + "/artifact-publisher", std::vector<std::string>{"serve"},
                                    env, log_);
  if (!wait_for_status(port_, "/readyz", 200, std::chrono::seconds(20)))
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

rapidjson::Document parse_json(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse(body.c_str(), body.size());
  if (doc.HasParseError())
    throw std::runtime_error("not JSON: " + body);
  return doc;
}

} // namespace ap::test
