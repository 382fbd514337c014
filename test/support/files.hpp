#pragma once

// Files the tests write: token files, certificates, state.

#include <string>

namespace ap::test {

/// A fresh directory under /tmp whose name starts with `stem`, removed with
/// everything in it when the test program ends.
std::string temp_dir(const std::string& stem);

/// Replaces the contents of `path` (created if missing).
void write_file(const std::string& path, const std::string& contents);

} // namespace ap::test
