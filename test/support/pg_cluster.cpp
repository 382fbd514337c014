#include "test/support/pg_cluster.hpp"

#include <cstdlib>
#include <stdexcept>
#include <unistd.h>

#include "test/support/http_client.hpp"
#include "test/support/process.hpp"

namespace ap::test {

namespace {

std::string pg_script() {
  return std::string{AP_SOURCE_DIR} + "/scripts/pg.sh";
}

std::string run_capture(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char buf[512];
    while (auto n = std::fread(buf, 1, sizeof(buf), pipe))
      out.append(buf, n);
    if (::pclose(pipe) != 0)
      throw std::runtime_error("command failed: " + command);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
    out.pop_back();
  return out;
}

} // namespace

std::uint16_t shared_pg_port() {
  const char* port = std::getenv("AP_TEST_PG_PORT");
  if (!port || !*port)
    throw std::runtime_error("AP_TEST_PG_PORT is not set: run the tests through ./run-tests.sh");
  return static_cast<std::uint16_t>(std::stoi(port));
}

std::string fresh_database(const std::string& name) {
  return run_capture(pg_script() + " createdb " + std::to_string(shared_pg_port()) + " " + name);
}

pg_cluster::pg_cluster() : port_(free_port()) {
  char tmpl[] = "/tmp/ap-test-pg-XXXXXX";
  if (!::mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  dir_ = std::string{tmpl} + "/data";
  if (shell("chmod 755 " + std::string{tmpl}) != 0)
    throw std::runtime_error("chmod failed");
  start();
}

pg_cluster::~pg_cluster() {
  stop();
  shell("rm -rf " + dir_.substr(0, dir_.rfind('/')));
}

std::string pg_cluster::url() const {
  return "postgresql://artifact_publisher:artifact_publisher@127.0.0.1:" + std::to_string(port_)
         + "/artifact_publisher";
}

void pg_cluster::stop() {
  shell(pg_script() + " stop " + dir_ + " >/dev/null");
}

void pg_cluster::start() {
  run_capture(pg_script() + " start " + dir_ + " " + std::to_string(port_));
}

} // namespace ap::test
