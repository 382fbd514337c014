#include "domain/secret_versions.hpp"

#include "core/json.hpp"

namespace ap::domain {

void secret_versions::add(secret_set set, const std::string& kid, const std::string& value,
                          const std::string& commitment) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto& s = sets_[set];
  s.versions[kid] = held{value, commitment};
  if (s.active.empty())
    s.active = kid;
}

bool secret_versions::activate(secret_set set, const std::string& kid) {
  std::lock_guard<std::mutex> guard{mutex_};
  auto s = sets_.find(set);
  if (s == sets_.end() || s->second.versions.count(kid) == 0)
    return false;
  s->second.active = kid;
  return true;
}

std::optional<secret_version> secret_versions::active(secret_set set) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto s = sets_.find(set);
  if (s == sets_.end() || s->second.active.empty())
    return std::nullopt;
  return secret_version{s->second.active, s->second.versions.at(s->second.active).value};
}

std::optional<std::string> secret_versions::commitment(secret_set set,
                                                       const std::string& kid) const {
  std::lock_guard<std::mutex> guard{mutex_};
  auto s = sets_.find(set);
  if (s == sets_.end())
    return std::nullopt;
  auto v = s->second.versions.find(kid);
  if (v == s->second.versions.end())
    return std::nullopt;
  return v->second.commitment;
}

std::string secret_versions::key_set_members() const {
  std::lock_guard<std::mutex> guard{mutex_};
  std::string out;
  for (const auto& [set, versions] : sets_)
    for (const auto& [kid, version] : versions.versions) {
      if (!out.empty())
        out += ',';
      json::append_quoted(out, reported_name({set, kid}));
      out += ':';
      json::append_quoted(out, version.commitment);
    }
  return out;
}

} // namespace ap::domain
