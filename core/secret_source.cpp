#include "core/secret_source.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "core/log.hpp"

namespace ap {

namespace {

std::string trimmed(std::string text) {
  const char* space = " \t\r\n";
  auto first = text.find_first_not_of(space);
  if (first == std::string::npos)
    return {};
  auto last = text.find_last_not_of(space);
  return text.substr(first, last - first + 1);
}

} // namespace

secret_source secret_source::parse(const std::string& value_or_file) {
  secret_source s;
  if (!value_or_file.empty() && value_or_file.front() == '@')
    s.path_ = value_or_file.substr(1);
  else
    s.value_ = value_or_file;
  return s;
}

std::optional<std::string> secret_source::check() {
  if (path_.empty())
    return value_.empty() ? std::optional<std::string>{"empty"} : std::nullopt;
  std::ifstream in{path_, std::ios::binary};
  if (!in)
    return "cannot read " + path_;
  std::ostringstream text;
  text << in.rdbuf();
  if (trimmed(text.str()).empty())
    return path_ + " is empty";
  return std::nullopt;
}

const std::string& secret_source::current() {
  if (path_.empty())
    return value_;
  // One stat per call: cheap next to the HTTP exchange it is made for.
  struct stat st {};
  if (::stat(path_.c_str(), &st) != 0) {
    if (!warned_)
      log::warn("a secret file cannot be read; keeping the last value", {{"file", path_}});
    warned_ = true;
    return value_;
  }
  auto mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (static_cast<std::uint64_t>(st.st_ino) == inode_ && st.st_size == size_
      && mtime_ns == mtime_ns_)
    return value_;
  std::ifstream in{path_, std::ios::binary};
  std::ostringstream text;
  if (in)
    text << in.rdbuf();
  auto fresh = trimmed(text.str());
  if (fresh.empty()) {
    // Half-written (or emptied) during a rotation: try again on the next
    // call, keep the last value meanwhile.
    if (!warned_)
      log::warn("a secret file is empty or unreadable; keeping the last value", {{"file", path_}});
    warned_ = true;
    return value_;
  }
  inode_ = static_cast<std::uint64_t>(st.st_ino);
  size_ = st.st_size;
  mtime_ns_ = mtime_ns;
  warned_ = false;
  if (fresh != value_) {
    if (!value_.empty())
      log::info("a secret file changed; using its new value",
                {{"file", path_}, {"bytes", std::to_string(fresh.size())}});
    value_ = std::move(fresh);
    ++reloads_;
  }
  return value_;
}

} // namespace ap
