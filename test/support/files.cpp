#include "test/support/files.hpp"

#include <stdlib.h>

#include <fstream>
#include <stdexcept>

namespace ap::test {

std::string temp_dir(const std::string& stem) {
  std::string pattern = "/tmp/ap-" + stem + ".XXXXXX";
  if (!::mkdtemp(pattern.data()))
    throw std::runtime_error("mkdtemp failed for " + pattern);
  return pattern;
}

void write_file(const std::string& path, const std::string& contents) {
  std::ofstream out{path, std::ios::binary | std::ios::trunc};
  out << contents;
  if (!out.flush())
    throw std::runtime_error("cannot write " + path);
}

} // namespace ap::test
