#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ap {

/// A secret given as its value or as `@file` (SPEC §10 `KERNEL_TOKEN`). A
/// file is read again whenever it changes (inode, size or modification
/// time), so a rotated token takes effect without a restart; surrounding
/// white space (a trailing newline) is not part of the secret. Not
/// thread-safe: one owner (the Kernel client actor) asks for it.
class secret_source {
public:
  secret_source() = default;

  /// `value` as it is, or the contents of the file after `@`.
  static secret_source parse(const std::string& value_or_file);

  /// The secret now: the last readable, non-empty contents of the file
  /// (empty if it never had any), or the value.
  const std::string& current();

  /// Reads the file now; the reason when it is missing, unreadable or empty.
  std::optional<std::string> check();

  bool from_file() const { return !path_.empty(); }
  /// How often the file was found changed and read again.
  std::uint64_t reloads() const { return reloads_; }

private:
  std::string path_;
  std::string value_;
  // What the file looked like when it was last read.
  std::uint64_t inode_ = 0;
  std::int64_t size_ = -1;
  std::int64_t mtime_ns_ = -1;
  std::uint64_t reloads_ = 0;
  bool warned_ = false;
};

} // namespace ap
