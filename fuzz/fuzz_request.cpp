// Request bodies as the checkout and multisig routes receive them: strict
// parsing, checkout validation, pricing, proposal parsing and the bounds on
// approvals (single, or the one-shot route's list). None of these
// is documented to throw, so an exception is left to abort the run.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "core/json.hpp"
#include "fuzz/property.hpp"
#include "domain/checkout.hpp"
#include "domain/multisig.hpp"

namespace {

using ap::fuzz::require;

// The catalog migration 0001 seeds.
const ap::domain::catalog& seeded_catalog() {
  static const ap::domain::catalog items = [] {
    ap::domain::catalog c;
    auto add = [&c](const char* sku, const char* title, std::int64_t amount, const char* sha256) {
      c[sku] = {sku, title, amount, "usd",
                std::string{"https://artifacts.artifact-publisher.invalid/"} + sku
                  + "/1.0.0.tar.gz",
                sha256};
    };
    add("creator-basic", "Creator Basic", 1200,
        "55efdfc37a34ece0bd2bb04fc7ae6708ebda7988e2b637fd43370e9d374a7052");
    add("creator-pro", "Creator Pro", 2500,
        "ed8d65e2ede091ac36104f06a93281410a451e32de0ee99e38dd9c64a5a9d855");
    add("artifact-license", "Artifact License", 800,
        "f81c750b02ca4c5e7c1a54adf8c1ab821eb7e0c712945c780ba2601a4ac77f16");
    add("artifact-compliance", "Artifact Compliance", 450,
        "6a489e443c77aa471490052d840dbacf62e5cfabdd423a91cfd4ce195b94270b");
    return c;
  }();
  return items;
}

// validate_proposal only asks whether an id is registered; the keys are
// never used here.
const std::map<std::string, std::string>& approver_registry() {
  static const std::map<std::string, std::string> registry{
    {"alice", std::string(32, 'a')}, {"bob", std::string(32, 'b')}, {"carol", std::string(32, 'c')}};
  return registry;
}

bool is_lower_hex64(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

void check_checkout(const rapidjson::Document& doc) {
  auto parsed = ap::domain::parse_checkout(doc);
  auto* req = std::get_if<ap::domain::checkout_request>(&parsed);
  if (!req)
    return;
  require(!req->items.empty() && req->items.size() <= 100, "accepted item count");
  require(is_lower_hex64(req->fingerprint), "fingerprint is hex SHA-256");

  auto priced = ap::domain::price(*req, seeded_catalog());
  auto* q = std::get_if<ap::domain::quote>(&priced);
  if (!q)
    return;
  // A quote must add up and be sorted, whatever the request looked like.
  require(q->items.size() == req->items.size(), "a quote prices every line");
  require(q->currency == req->currency, "quote currency");
  std::int64_t total = 0;
  for (const auto& line : q->items) {
    require(line.quantity >= 1 && line.quantity <= 1000, "quoted quantity");
    require(line.amount == line.quantity * line.unit_amount, "line amount");
    total += line.amount;
  }
  require(total == q->total, "quote total");
  require(std::is_sorted(q->items.begin(), q->items.end(),
                         [](const auto& a, const auto& b) { return a.sku < b.sku; }),
          "quote sorted by SKU");
}

void check_proposal(const rapidjson::Document& doc) {
  // The extra members each caller of parse_proposal admits.
  static const std::vector<std::vector<std::string>> callers{
    {}, {"approvals"}, {"upgradeId", "payloadHash", "threshold"}};
  for (const auto& extra : callers) {
    ap::domain::upgrade_proposal proposal;
    if (ap::domain::parse_proposal(doc, proposal, extra))
      continue;
    ap::domain::validate_proposal(proposal, approver_registry(), 2);
    require(is_lower_hex64(ap::domain::upgrade_payload_hash(proposal)), "payload hash is hex");
  }
}

// An approval is bounded before anything looks it up or records it: what
// passes has an approver id and a signature of bounded, non-zero length.
void check_approval(const rapidjson::Value& approval, const std::string& field) {
  if (!approval.IsObject() || !approval.HasMember("approver") || !approval["approver"].IsString()
      || !approval.HasMember("signature") || !approval["signature"].IsString())
    return;
  std::string approver{approval["approver"].GetString(), approval["approver"].GetStringLength()};
  std::string signature{approval["signature"].GetString(), approval["signature"].GetStringLength()};
  if (ap::domain::check_approval_fields(approver, signature, field))
    return;
  require(!approver.empty() && approver.size() <= ap::domain::max_approver_id,
          "accepted approver id length");
  require(!signature.empty() && signature.size() <= ap::domain::max_signature_b64,
          "accepted signature length");
}

void check_approvals(const rapidjson::Document& doc) {
  check_approval(doc, {});
  if (!doc.IsObject() || !doc.HasMember("approvals") || !doc["approvals"].IsArray())
    return;
  const auto& list = doc["approvals"];
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i)
    check_approval(list[i], "approvals[" + std::to_string(i) + "].");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  rapidjson::Document doc;
  if (ap::json::parse_strict(text, doc))
    return 0;
  check_checkout(doc);
  check_proposal(doc);
  check_approvals(doc);
  return 0;
}
