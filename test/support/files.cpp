#include "test/support/files.hpp"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace ap::test {

namespace {

// The directories made so far, removed when the test program ends.
struct made_directories {
  std::mutex mutex;
  std::vector<std::string> paths;
  ~made_directories() {
    for (const auto& p : paths) {
      std::error_code ignored;
      std::filesystem::remove_all(p, ignored);
    }
  }
};

made_directories& made() {
  static made_directories dirs;
  return dirs;
}

} // namespace

std::string temp_dir(const std::string& stem) {
  std::string pattern = "/tmp/ap-" + stem + ".XXXXXX";
  if (!::mkdtemp(pattern.data()))
    throw std::runtime_error("mkdtemp failed for " + pattern);
  auto& dirs = made();
  std::lock_guard<std::mutex> guard{dirs.mutex};
  dirs.paths.push_back(pattern);
  return pattern;
}

void write_file(const std::string& path, const std::string& contents) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << contents;
  if (!out.flush())
    throw std::runtime_error("cannot write " + path);
}

} // namespace ap::test
