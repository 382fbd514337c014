#pragma once

#include <chrono>
#include <map>
#include <string>
#include <sys/types.h>
#include <vector>

namespace ap::test {

/// A child process for end-to-end tests: the real binaries, started with
/// their own environment, output appended to a log file.
class process {
public:
  process(const std::string& path, const std::vector<std::string>& args,
          const std::map<std::string, std::string>& env, const std::string& log_file);
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }
  /// Sends a signal.
  void signal(int sig);
  /// Waits for exit; returns the exit code, 128+signal if killed, or -1 on
  /// timeout.
  int wait(std::chrono::milliseconds timeout);
  bool running();

private:
  pid_t pid_ = -1;
  int status_ = -1;
};

/// Runs a shell command; returns its exit status.
int shell(const std::string& command);

/// Reads a whole file ("" if missing).
std::string read_file(const std::string& path);

} // namespace ap::test
