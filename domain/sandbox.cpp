#include "domain/sandbox.hpp"

#include <ctime>
#include <set>

#include "core/crypto.hpp"
#include "core/time.hpp"
#include "core/json.hpp"
#include "domain/order.hpp"
#include "domain/proof.hpp"

namespace ap::domain {

namespace {

constexpr std::size_t max_instructions = 100;
const std::set<std::string> known_ops{"checkout", "proof", "license"};

using alloc_t = rapidjson::Document::AllocatorType;

rapidjson::Value str(const std::string& s, alloc_t& a) {
  return json::string_value(s, a);
}

// An id or number derived from the seed, so nothing depends on the clock or
// on randomness.
std::string derived(const std::string& seed, const std::string& purpose, std::size_t index) {
  return crypto::hmac_sha256_hex(seed, "sandbox|" + purpose + "|" + std::to_string(index));
}

// 2000-01-01T00:00:00Z plus an offset of up to a year chosen by the seed,
// plus one second per instruction.
std::string timestamp_at(const std::string& seed, std::size_t index, long extra_days = 0) {
  auto offset = std::stoul(derived(seed, "epoch", 0).substr(0, 8), nullptr, 16) % (365UL * 86400);
  std::int64_t seconds = 946684800 + static_cast<std::int64_t>(offset + index) + extra_days * 86400;
  return format_rfc3339(seconds * 1000, false);
}

proof_key sandbox_key(const std::string& seed) {
  return derive_proof_key("sandbox", crypto::hmac_sha256_hex(seed, "artifact-publisher sandbox proof key"));
}

rapidjson::Value error_value(const std::string& code, const std::string& message,
                             const std::string& field, alloc_t& a) {
  rapidjson::Value v{rapidjson::kObjectType};
  v.AddMember("error", str(code, a), a);
  if (!field.empty())
    v.AddMember("field", str(field, a), a);
  v.AddMember("message", str(message, a), a);
  return v;
}

rapidjson::Value run_checkout(const rapidjson::Value& payload, const std::string& seed,
                              std::size_t index, const catalog& items, alloc_t& a, bool& ok) {
  auto parsed = parse_checkout(payload);
  if (auto* e = std::get_if<input_error>(&parsed)) {
    ok = false;
    return error_value("invalid_input", e->message, e->field, a);
  }
  const auto& req = std::get<checkout_request>(parsed);
  auto priced = price(req, items);
  if (auto* e = std::get_if<input_error>(&priced)) {
    ok = false;
    return error_value("invalid_input", e->message, e->field, a);
  }
  const auto& q = std::get<quote>(priced);
  auto order_id = "order_" + derived(seed, "order", index).substr(0, 24);
  charge_result payment;
  payment.payment_id = "pay_" + derived(seed, "payment", index).substr(0, 24);
  journal_entry entry;
  entry.entry_id = "fin_" + derived(seed, "ledger", index).substr(0, 24);
  auto proof = sign_proof(sandbox_key(seed), proof_payload(order_id, req, q, payment, entry),
                          timestamp_at(seed, index));
  rapidjson::Value v{rapidjson::kObjectType};
  v.AddMember("currency", str(q.currency, a), a);
  v.AddMember("items", priced_items_json(q, a), a);
  v.AddMember("orderId", str(order_id, a), a);
  v.AddMember("proofFingerprint", str(proof.payload_hash, a), a);
  v.AddMember("proofId", str(proof.proof_id, a), a);
  v.AddMember("total", q.total, a);
  return v;
}

rapidjson::Value run_proof(const rapidjson::Value& payload, const std::string& seed,
                           std::size_t index, alloc_t& a, bool& ok) {
  auto key = sandbox_key(seed);
  auto inner = payload.IsObject() ? payload.FindMember("payload") : payload.MemberEnd();
  if (!payload.IsObject() || inner == payload.MemberEnd() || !inner->value.IsObject()) {
    ok = false;
    return error_value("invalid_input", "a proof op needs {payload} to sign or {proof, payload} to verify",
                       "payload", a);
  }
  auto proof = payload.FindMember("proof");
  if (proof != payload.MemberEnd()) {
    proof_keyring ring{"sandbox", {{"sandbox", key.secret}}};
    auto result = verify_proof(ring, proof->value, inner->value);
    rapidjson::Value v{rapidjson::kObjectType};
    if (!result.valid)
      v.AddMember("reason", str(result.reason, a), a);
    v.AddMember("valid", result.valid, a);
    return v;
  }
  try {
    auto signed_proof = sign_proof(key, inner->value, timestamp_at(seed, index));
    rapidjson::Document d;
    d.Parse(signed_proof.record.c_str(), signed_proof.record.size());
    return rapidjson::Value{d, a};
  } catch (const std::invalid_argument&) {
    ok = false;
    return error_value("invalid_input", "the payload may hold integers but no fractions",
                       "payload", a);
  }
}

rapidjson::Value run_license(const rapidjson::Value& payload, const std::string& seed,
                             std::size_t index, alloc_t& a, bool& ok) {
  auto customer = payload.IsObject() ? payload.FindMember("customerId") : payload.MemberEnd();
  auto skus = payload.IsObject() ? payload.FindMember("skus") : payload.MemberEnd();
  bool valid = customer != payload.MemberEnd() && customer->value.IsString()
               && is_valid_customer_id(customer->value.GetString()) && skus != payload.MemberEnd()
               && skus->value.IsArray() && !skus->value.Empty() && skus->value.Size() <= 100;
  if (valid)
    for (const auto& s : skus->value.GetArray())
      valid = valid && s.IsString() && is_valid_sku_format(s.GetString());
  if (!valid) {
    ok = false;
    return error_value("invalid_input", "a license op needs {customerId, skus:[1-100 SKUs]}",
                       "payload", a);
  }
  rapidjson::Value v{rapidjson::kObjectType};
  v.AddMember("expiresAt", str(timestamp_at(seed, index, 365), a), a);
  v.AddMember("issuedAt", str(timestamp_at(seed, index), a), a);
  v.AddMember("issuedTo", rapidjson::Value{customer->value, a}, a);
  v.AddMember("licenseId", str("lic_" + derived(seed, "license", index).substr(0, 24), a), a);
  v.AddMember("skus", rapidjson::Value{skus->value, a}, a);
  return v;
}

} // namespace

std::optional<input_error> validate_sandbox(const rapidjson::Value& body) {
  if (!body.IsObject())
    return input_error{"", "the body must be {instructions:[{op, payload}]}"};
  auto list = body.FindMember("instructions");
  if (list == body.MemberEnd())
    return input_error{"instructions", "instructions is required"};
  if (!list->value.IsArray() || list->value.Empty() || list->value.Size() > max_instructions)
    return input_error{"instructions", "instructions must be an array of 1 to 100 entries"};
  for (rapidjson::SizeType i = 0; i < list->value.Size(); ++i) {
    const auto& ins = list->value[i];
    auto where = "instructions[" + std::to_string(i) + "]";
    if (!ins.IsObject() || !ins.HasMember("op") || !ins["op"].IsString())
      return input_error{where + ".op", "each instruction needs an op"};
    if (!known_ops.count(ins["op"].GetString()))
      return input_error{where + ".op", "unknown op '" + std::string{ins["op"].GetString()}
                                          + "'; use checkout, proof or license"};
    if (!ins.HasMember("payload"))
      return input_error{where + ".payload", "each instruction needs a payload"};
  }
  return std::nullopt;
}

std::string run_sandbox(const rapidjson::Value& body, const std::string& seed,
                        const catalog& items) {
  rapidjson::Document out{rapidjson::kObjectType};
  auto& a = out.GetAllocator();
  rapidjson::Value transcript{rapidjson::kArrayType};
  int exit_code = 0;
  const auto& list = body["instructions"];
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    const auto& ins = list[i];
    std::string op = ins["op"].GetString();
    const auto& payload = ins["payload"];
    bool ok = true;
    rapidjson::Value result;
    if (op == "checkout")
      result = run_checkout(payload, seed, i, items, a, ok);
    else if (op == "proof")
      result = run_proof(payload, seed, i, a, ok);
    else
      result = run_license(payload, seed, i, a, ok);
    if (!ok)
      exit_code = 1;
    std::string digest_input = op + "|";
    try {
      digest_input += json::canonical(payload);
    } catch (const std::invalid_argument&) {
      digest_input += json::to_string(payload);
    }
    rapidjson::Value entry{rapidjson::kObjectType};
    entry.AddMember("digest", str(crypto::sha256_hex(digest_input), a), a);
    entry.AddMember("op", str(op, a), a);
    entry.AddMember("result", result, a);
    entry.AddMember("timestamp", str(timestamp_at(seed, i), a), a);
    transcript.PushBack(entry, a);
  }
  out.AddMember("exitCode", exit_code, a);
  out.AddMember("transcript", transcript, a);
  return json::canonical(out);
}

} // namespace ap::domain
