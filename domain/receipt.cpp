#include "domain/receipt.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/crypto.hpp"
#include "core/json.hpp"
#include "domain/delivery.hpp"

namespace ap::domain {

const char* to_string(receipt_check c) {
  switch (c) {
    case receipt_check::ok:
      return "ok";
    case receipt_check::malformed:
      return "malformed";
    case receipt_check::event_id_mismatch:
      return "event_id_mismatch";
    case receipt_check::hash_mismatch:
      return "hash_mismatch";
    case receipt_check::unknown_signer:
      return "unknown_signer";
    case receipt_check::bad_signature:
      return "bad_signature";
  }
  return "malformed";
}

namespace {

// The encoding of SPEC §5: hashes are lower-case hex.
bool is_hash(std::string_view text) {
  return text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

} // namespace

std::optional<std::string> receipt_hash(std::string_view payload, std::string_view prev_hash) {
  std::string input{payload};
  if (!prev_hash.empty()) {
    auto prev = crypto::hex_decode(prev_hash);
    if (!prev || prev->size() != 32)
      return std::nullopt;
    input += *prev;
  }
  return crypto::sha256_hex(input);
}

namespace {

// A receipt that passed every check but its signature's: what remains to
// verify.
struct signed_hash {
  const crypto::ed25519_verifier* key = nullptr;
  std::string hash;      // the 32 bytes signed
  std::string signature; // 64 bytes
};

// Every check but the signature's: its verdict when one fails, else
// nullopt with `out` filled.
std::optional<receipt_check> check_all_but_signature(const kernel::audit_ack& receipt,
                                                     std::string_view event_id,
                                                     std::string_view payload,
                                                     const signer_keys& keys, signed_hash& out) {
  auto signature = crypto::base64_decode(receipt.signature);
  if (receipt.kernel_id.empty() || receipt.event_id.empty() || receipt.signer_id.empty()
      || !is_hash(receipt.hash) || !(receipt.prev_hash.empty() || is_hash(receipt.prev_hash))
      || !signature || signature->size() != 64)
    return receipt_check::malformed;
  if (receipt.event_id != event_id)
    return receipt_check::event_id_mismatch;
  // Recomputed from what was sent, not from what the Kernel echoes: the
  // receipt must commit to the service's own bytes.
  if (receipt_hash(payload, receipt.prev_hash) != receipt.hash)
    return receipt_check::hash_mismatch;
  auto key = keys.find(receipt.signer_id);
  if (key == keys.end())
    return receipt_check::unknown_signer;
  out.key = &key->second;
  out.hash = *crypto::hex_decode(receipt.hash);
  out.signature = std::move(*signature);
  return std::nullopt;
}

} // namespace

receipt_check check_receipt(const kernel::audit_ack& receipt, std::string_view event_id,
                            std::string_view payload, const signer_keys& keys) {
  signed_hash s;
  if (auto failed = check_all_but_signature(receipt, event_id, payload, keys, s))
    return *failed;
  return s.key->verify(s.hash, s.signature) ? receipt_check::ok : receipt_check::bad_signature;
}

std::vector<receipt_check> check_receipts(const std::vector<receipt_to_check>& receipts,
                                          const signer_keys& keys) {
  std::vector<receipt_check> out(receipts.size(), receipt_check::ok);
  std::vector<signed_hash> signed_hashes(receipts.size());
  std::vector<crypto::ed25519_verifier::check> checks;
  std::vector<std::size_t> at; // the receipt each check is for
  for (std::size_t i = 0; i < receipts.size(); ++i) {
    const auto& r = receipts[i];
    if (auto failed = check_all_but_signature(*r.receipt, r.event_id, r.payload, keys,
                                              signed_hashes[i])) {
      out[i] = *failed;
      continue;
    }
    const auto& s = signed_hashes[i];
    checks.push_back({s.key, s.hash, s.signature});
    at.push_back(i);
  }
  auto verified = crypto::ed25519_verifier::verify_each(checks);
  for (std::size_t j = 0; j < at.size(); ++j)
    if (!verified[j])
      out[at[j]] = receipt_check::bad_signature;
  return out;
}

std::string to_json(const audit_receipt& r) {
  std::string out = "{\"eventId\":";
  json::append_quoted(out, r.ack.event_id);
  out += ",\"eventType\":";
  json::append_quoted(out, r.event_type);
  out += ",\"hash\":";
  json::append_quoted(out, r.ack.hash);
  out += ",\"kernelEventId\":";
  json::append_quoted(out, r.ack.kernel_id);
  out += ",\"prevHash\":";
  json::append_quoted(out, r.ack.prev_hash);
  out += ",\"signature\":";
  json::append_quoted(out, r.ack.signature);
  out += ",\"signerId\":";
  json::append_quoted(out, r.ack.signer_id);
  out += ",\"ts\":";
  json::append_quoted(out, r.ack.ts);
  return out + "}";
}

namespace {

// Printable ASCII but for '"' and the backslash: quoted as it is, in any encoding.
bool plain(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) {
    return c >= 0x20 && c <= 0x7e && c != '"' && c != '\\';
  });
}

// The bytes of lower-case hex, which encode(bytes, 'hex') writes back.
std::optional<std::string> lower_hex_bytes(std::string_view text) {
  bool lower = std::all_of(text.begin(), text.end(),
                           [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
  return lower ? crypto::hex_decode(text) : std::nullopt;
}

} // namespace

std::optional<receipt_columns> receipt_in_columns(const audit_receipt& r) {
  const auto& a = r.ack;
  if (!plain(a.event_id) || !plain(r.event_type) || !plain(a.kernel_id) || !plain(a.signer_id)
      || !plain(a.ts))
    return std::nullopt;
  auto hash = lower_hex_bytes(a.hash);
  auto prev_hash = lower_hex_bytes(a.prev_hash);
  // Strict: the one spelling of its bytes that base64_encode writes.
  auto signature = crypto::base64_decode(a.signature);
  if (!hash || !prev_hash || !signature)
    return std::nullopt;
  return receipt_columns{std::move(*hash), std::move(*prev_hash), std::move(*signature),
                         a.kernel_id, a.signer_id, a.ts};
}

audit_receipt receipt_of_columns(std::string event_id, std::string event_type,
                                 const receipt_columns& c) {
  return {std::move(event_type),
          {c.kernel_id, std::move(event_id), crypto::hex_encode(c.hash),
           crypto::hex_encode(c.prev_hash), crypto::base64_encode(c.signature), c.signer_id, c.ts}};
}

std::optional<audit_receipt> receipt_from_json(const rapidjson::Value& v) {
  if (!v.IsObject())
    return std::nullopt;
  bool complete = true;
  auto field = [&](const char* name) -> std::string {
    auto it = v.FindMember(name);
    if (it == v.MemberEnd() || !it->value.IsString()) {
      complete = false;
      return {};
    }
    return {it->value.GetString(), it->value.GetStringLength()};
  };
  audit_receipt r;
  r.event_type = field("eventType");
  r.ack.event_id = field("eventId");
  r.ack.hash = field("hash");
  r.ack.kernel_id = field("kernelEventId");
  r.ack.prev_hash = field("prevHash");
  r.ack.signature = field("signature");
  r.ack.signer_id = field("signerId");
  r.ack.ts = field("ts");
  if (!complete)
    return std::nullopt;
  return r;
}

std::optional<std::vector<kernel::signer_key>> parse_kernel_keys(std::string_view text) {
  rapidjson::Document doc;
  if (json::parse_strict(text, doc) || !doc.IsObject())
    return std::nullopt;
  auto signers = doc.FindMember("signers");
  if (signers == doc.MemberEnd() || !signers->value.IsArray())
    return std::nullopt;
  std::vector<kernel::signer_key> out;
  for (const auto& s : signers->value.GetArray()) {
    auto id = json::string_member(s, "signerId");
    auto key = crypto::base64_decode(json::string_member(s, "publicKey"));
    if (id.empty() || json::string_member(s, "algorithm") != "ed25519" || !key || key->size() != 32)
      continue;
    out.push_back({std::move(id), std::move(*key)});
  }
  return out;
}

signer_keys keys_by_signer(const std::vector<kernel::signer_key>& keys) {
  signer_keys out;
  // A Kernel publishes a few keys; each one that signs a receipt builds
  // tables of 165 KB, so only the first few published may, and a document
  // listing thousands cannot make the forwarder hold hundreds of megabytes.
  constexpr std::size_t tabled_keys = 8;
  for (const auto& k : keys) {
    auto held = out.find(k.signer_id);
    bool tabled = held != out.end() ? held->second.tabled() : out.size() < tabled_keys;
    out.insert_or_assign(k.signer_id, crypto::ed25519_verifier{k.public_key, tabled});
  }
  return out;
}

std::string result_with_receipts(const std::string& stored_result, order_status status,
                                 const std::vector<std::string>& receipts) {
  rapidjson::Document doc;
  if (json::parse_strict(stored_result, doc) || !doc.IsObject())
    throw std::invalid_argument("an order's stored result is not a JSON object");
  auto& a = doc.GetAllocator();
  // Orders stored before deliveries named their master key were all
  // sealed with the legacy kid.
  if (auto delivery = doc.FindMember("delivery"); delivery != doc.MemberEnd())
    name_delivery_key_id(delivery->value, a);
  auto expected = audit_event_types(status);
  // Each receipt with the place of its event among the order's events; a
  // receipt of another type (which no order writes today) goes last.
  std::vector<std::pair<std::size_t, rapidjson::Value>> shown;
  std::vector<bool> covered(expected.size(), false);
  for (const auto& text : receipts) {
    rapidjson::Document r;
    if (json::parse_strict(text, r) || !r.IsObject())
      continue;
    auto type = json::string_member(r, "eventType");
    auto at = static_cast<std::size_t>(std::find(expected.begin(), expected.end(), type)
                                       - expected.begin());
    if (at < expected.size())
      covered[at] = true;
    shown.emplace_back(at, rapidjson::Value{r, a});
  }
  std::stable_sort(shown.begin(), shown.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  bool delivered = std::all_of(covered.begin(), covered.end(), [](bool c) { return c; });

  rapidjson::Value list{rapidjson::kArrayType};
  for (auto& s : shown)
    list.PushBack(s.second, a);
  rapidjson::Value audit{rapidjson::kObjectType};
  auto old = doc.FindMember("audit");
  if (old != doc.MemberEnd() && old->value.IsObject() && old->value.HasMember("eventId"))
    audit.AddMember("eventId", json::string_value(json::string_member(old->value, "eventId"), a), a);
  audit.AddMember("receipts", list, a);
  audit.AddMember("status", rapidjson::StringRef(delivered ? "delivered" : "pending"), a);
  if (old != doc.MemberEnd())
    old->value = audit;
  else
    doc.AddMember("audit", audit, a);
  return json::canonical(doc);
}

} // namespace ap::domain
