#include "kernel/mock/audit_log.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/crypto.hpp"
#include "core/json.hpp"

namespace ap::kernel {

std::string chain_hash(const std::string& canonical_payload, const std::string& prev_hash) {
  std::string input = canonical_payload;
  if (!prev_hash.empty()) {
    auto prev = crypto::hex_decode(prev_hash);
    if (!prev || prev->size() != 32)
      throw std::invalid_argument("prevHash must be 64 hex characters");
    input += *prev;
  }
  return crypto::sha256_hex(input);
}

std::string to_json(const logged_event& e) {
  std::string out = "{\"eventType\":";
  json::append_quoted(out, e.event_type);
  out += ",\"hash\":\"" + e.hash + "\",\"id\":";
  json::append_quoted(out, e.id);
  out += ",\"metadata\":{\"eventId\":";
  json::append_quoted(out, e.event_id);
  out += ",\"source\":";
  json::append_quoted(out, e.source);
  out += "},\"payload\":" + e.payload + ",\"prevHash\":\"" + e.prev_hash + "\",\"signature\":";
  json::append_quoted(out, e.signature);
  out += ",\"signerId\":";
  json::append_quoted(out, e.signer_id);
  out += ",\"ts\":";
  json::append_quoted(out, e.ts);
  out += '}';
  return out;
}

audit_log::audit_log(std::string signing_seed, std::string signer_id)
  : signer_(signing_seed), signer_id_(std::move(signer_id)) {
}

audit_log::append_result audit_log::append(const std::string& event_type,
                                           const rapidjson::Value& payload,
                                           const std::string& event_id, const std::string& source,
                                           const std::string& ts) {
  if (auto it = by_event_id_.find(event_id); it != by_event_id_.end())
    return {&events_[it->second], false};
  if (!payload.IsObject())
    throw std::invalid_argument("payload must be an object");
  logged_event e;
  e.event_type = event_type;
  e.payload = json::canonical(payload);
  e.event_id = event_id;
  e.source = source;
  e.prev_hash = events_.empty() ? "" : events_.back().hash;
  e.hash = chain_hash(e.payload, e.prev_hash);
  e.signature = crypto::base64_encode(signer_.sign(*crypto::hex_decode(e.hash)));
  e.signer_id = signer_id_;
  e.ts = ts;
  e.id = "kae_" + e.hash.substr(0, 24);
  e.fields.reserve(payload.MemberCount());
  for (auto it = payload.MemberBegin(); it != payload.MemberEnd(); ++it)
    e.fields.emplace_back(std::string{it->name.GetString(), it->name.GetStringLength()},
                          json::canonical(it->value));
  by_id_.emplace(e.id, events_.size());
  by_event_id_.emplace(e.event_id, events_.size());
  events_.push_back(std::move(e));
  return {&events_.back(), true};
}

const logged_event* audit_log::find(const std::string& id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &events_[it->second];
}

std::vector<const logged_event*>
audit_log::search(const std::map<std::string, std::string>& criteria,
                  const std::string& event_type, std::size_t limit) const {
  std::vector<const logged_event*> out;
  for (const auto& e : events_) {
    if (out.size() >= limit)
      break;
    if (!event_type.empty() && e.event_type != event_type)
      continue;
    bool match = true;
    for (const auto& [field, value] : criteria) {
      auto it = std::find_if(e.fields.begin(), e.fields.end(),
                             [&](const auto& f) { return f.first == field; });
      if (it == e.fields.end() || it->second != value) {
        match = false;
        break;
      }
    }
    if (match)
      out.push_back(&e);
  }
  return out;
}

audit_log::verification audit_log::verify() const {
  std::string prev;
  for (const auto& e : events_) {
    auto raw = crypto::hex_decode(e.hash);
    auto sig = crypto::base64_decode(e.signature);
    if (e.prev_hash != prev || chain_hash(e.payload, e.prev_hash) != e.hash || !raw || !sig
        || !crypto::ed25519_verify(signer_.public_key(), *raw, *sig))
      return {false, events_.size(), events_.empty() ? "" : events_.back().hash};
    prev = e.hash;
  }
  return {true, events_.size(), prev};
}

std::string audit_log::to_line(const logged_event& e) {
  return to_json(e);
}

bool audit_log::restore_line(const std::string& line) {
  rapidjson::Document d;
  if (json::parse_strict(line, d) || !d.IsObject())
    return false;
  auto get = [&](const char* name) -> std::string {
    return d.HasMember(name) && d[name].IsString() ? d[name].GetString() : "";
  };
  if (!d.HasMember("payload") || !d.HasMember("metadata") || !d["metadata"].IsObject())
    return false;
  const auto& meta = d["metadata"];
  auto event_id = meta.HasMember("eventId") && meta["eventId"].IsString() ? meta["eventId"].GetString() : "";
  auto source = meta.HasMember("source") && meta["source"].IsString() ? meta["source"].GetString() : "";
  auto result = append(get("eventType"), d["payload"], event_id, source, get("ts"));
  // The replayed event must be the one that was written.
  return result.created && result.event->hash == get("hash") && result.event->prev_hash == get("prevHash");
}

} // namespace ap::kernel
