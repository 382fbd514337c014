#include "domain/checkout.hpp"

#include <algorithm>
#include <set>

#include "core/crypto.hpp"
#include "core/json.hpp"

namespace ap::domain {

namespace {

constexpr std::size_t max_items = 100;
constexpr std::int64_t max_quantity = 1000;

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string type_name(const rapidjson::Value& v) {
  switch (v.GetType()) {
    case rapidjson::kNullType:
      return "null";
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      return "a boolean";
    case rapidjson::kObjectType:
      return "an object";
    case rapidjson::kArrayType:
      return "an array";
    case rapidjson::kStringType:
      return "a string";
    case rapidjson::kNumberType:
      return "a number";
  }
  return "unknown";
}

// Reads a required (or, when `optional`, possibly absent or null) string.
std::variant<std::string, input_error, std::monostate>
read_string(const rapidjson::Value& obj, const char* name, bool optional) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd() || (optional && it->value.IsNull())) {
    if (optional)
      return std::monostate{};
    return input_error{name, std::string{name} + " is required"};
  }
  if (!it->value.IsString())
    return input_error{name, std::string{name} + " must be a string, not " + type_name(it->value)};
  return std::string{it->value.GetString(), it->value.GetStringLength()};
}

// The license key is wrapped to the buyer's key on the checkout actor, and a
// public RSA operation costs time cubic in the modulus and linear in the
// exponent's length: a 16,384-bit key with a large exponent held the actor
// for a second, and a body's worth of modulus for minutes. 8192 bits is more
// than any buyer needs; 2^32 admits every exponent in common use.
constexpr unsigned min_buyer_key_bits = 2048;
constexpr unsigned max_buyer_key_bits = 8192;
constexpr std::uint64_t max_buyer_key_exponent = std::uint64_t{1} << 32;

bool is_acceptable_buyer_key(const std::string& pem) {
  crypto::rsa_public_key_shape shape;
  try {
    shape = crypto::rsa_public_key_shape_of(pem);
  } catch (const crypto::crypto_error&) {
    return false;
  }
  return shape.modulus_bits >= min_buyer_key_bits && shape.modulus_bits <= max_buyer_key_bits
         && shape.exponent && *shape.exponent >= 3 && *shape.exponent <= max_buyer_key_exponent
         && *shape.exponent % 2 == 1;
}

} // namespace

bool is_valid_customer_id(std::string_view id) {
  if (id.empty() || id.size() > 128)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return is_alnum(c) || c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
  });
}

bool is_plausible_email(std::string_view email) {
  if (email.size() < 3 || email.size() > 254)
    return false;
  auto at = email.find('@');
  if (at == std::string_view::npos || at == 0 || email.find('@', at + 1) != std::string_view::npos)
    return false;
  auto local = email.substr(0, at);
  auto domain = email.substr(at + 1);
  if (local.size() > 64 || local.front() == '.' || local.back() == '.'
      || local.find("..") != std::string_view::npos)
    return false;
  for (char c : local) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '(' || c == ')' || c == '<' || c == '>' || c == ','
        || c == ';' || c == ':' || c == '\\' || c == '"' || c == '[' || c == ']')
      return false;
  }
  // The domain: dot-separated labels of letters, digits and inner hyphens,
  // at least two labels, an alphabetic top-level label.
  if (domain.empty() || domain.size() > 253)
    return false;
  std::size_t labels = 0;
  std::size_t start = 0;
  std::string_view last;
  while (start <= domain.size()) {
    auto dot = domain.find('.', start);
    auto label = domain.substr(start, dot == std::string_view::npos ? std::string_view::npos
                                                                     : dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
      return false;
    if (!std::all_of(label.begin(), label.end(), [](char c) { return is_alnum(c) || c == '-'; }))
      return false;
    ++labels;
    last = label;
    if (dot == std::string_view::npos)
      break;
    start = dot + 1;
  }
  return labels >= 2 && last.size() >= 2
         && std::all_of(last.begin(), last.end(),
                        [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); });
}

bool is_valid_sku_format(std::string_view sku) {
  if (sku.empty() || sku.size() > 64)
    return false;
  if (!((sku[0] >= 'a' && sku[0] <= 'z') || (sku[0] >= '0' && sku[0] <= '9')))
    return false;
  return std::all_of(sku.begin(), sku.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::variant<checkout_request, input_error> parse_checkout(const rapidjson::Value& body) {
  if (!body.IsObject())
    return input_error{"", "the body must be a JSON object"};
  static const std::set<std::string> known{"customerId", "email",         "currency",
                                           "items",      "paymentMethod", "buyerPublicKey"};
  for (auto it = body.MemberBegin(); it != body.MemberEnd(); ++it) {
    std::string name{it->name.GetString(), it->name.GetStringLength()};
    if (!known.count(name))
      return input_error{name, "unknown field '" + name + "'"};
  }
  checkout_request req;

  auto customer = read_string(body, "customerId", false);
  if (auto* e = std::get_if<input_error>(&customer))
    return *e;
  req.customer_id = std::get<std::string>(customer);
  if (!is_valid_customer_id(req.customer_id))
    return input_error{"customerId", "customerId must be 1-128 characters of A-Z a-z 0-9 . _ : @ -"};

  auto email = read_string(body, "email", false);
  if (auto* e = std::get_if<input_error>(&email))
    return *e;
  req.email = std::get<std::string>(email);
  if (!is_plausible_email(req.email))
    return input_error{"email", "email must be a plausible address of at most 254 characters"};

  auto currency = read_string(body, "currency", false);
  if (auto* e = std::get_if<input_error>(&currency))
    return *e;
  req.currency = std::get<std::string>(currency);
  if (req.currency.size() != 3
      || !std::all_of(req.currency.begin(), req.currency.end(),
                      [](char c) { return c >= 'a' && c <= 'z'; }))
    return input_error{"currency", "currency must be a lower-case ISO 4217 code such as \"usd\""};

  auto items = body.FindMember("items");
  if (items == body.MemberEnd())
    return input_error{"items", "items is required"};
  if (!items->value.IsArray())
    return input_error{"items", "items must be an array, not " + type_name(items->value)};
  const auto& list = items->value;
  if (list.Empty() || list.Size() > max_items)
    return input_error{"items", "items must hold 1 to " + std::to_string(max_items) + " entries"};
  std::set<std::string> seen;
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    auto where = "items[" + std::to_string(i) + "]";
    const auto& entry = list[i];
    if (!entry.IsObject())
      return input_error{where, where + " must be an object {sku, quantity}"};
    for (auto it = entry.MemberBegin(); it != entry.MemberEnd(); ++it) {
      std::string name{it->name.GetString(), it->name.GetStringLength()};
      if (name != "sku" && name != "quantity")
        return input_error{where + "." + name, "unknown field '" + name + "'"};
    }
    auto sku = entry.FindMember("sku");
    if (sku == entry.MemberEnd())
      return input_error{where + ".sku", "sku is required"};
    if (!sku->value.IsString())
      return input_error{where + ".sku", "sku must be a string, not " + type_name(sku->value)};
    std::string sku_text{sku->value.GetString(), sku->value.GetStringLength()};
    if (!is_valid_sku_format(sku_text))
      return input_error{where + ".sku", "unknown SKU"};
    if (!seen.insert(sku_text).second)
      return input_error{where + ".sku", "SKU '" + sku_text + "' appears more than once"};
    auto qty = entry.FindMember("quantity");
    if (qty == entry.MemberEnd())
      return input_error{where + ".quantity", "quantity is required"};
    const auto& q = qty->value;
    // RapidJSON keeps 2.0 and 1e3 as doubles: only plain integers pass.
    if (!q.IsInt64())
      return input_error{where + ".quantity",
                         q.IsNumber() ? "quantity must be an integer from 1 to 1000"
                                      : "quantity must be an integer, not " + type_name(q)};
    if (q.GetInt64() < 1 || q.GetInt64() > max_quantity)
      return input_error{where + ".quantity", "quantity must be an integer from 1 to 1000"};
    req.items.push_back({std::move(sku_text), q.GetInt64()});
  }

  auto method = read_string(body, "paymentMethod", true);
  if (auto* e = std::get_if<input_error>(&method))
    return *e;
  if (auto* m = std::get_if<std::string>(&method)) {
    if (*m != pm_visa && *m != pm_declined && *m != pm_insufficient_funds)
      return input_error{"paymentMethod", "paymentMethod must be pm_card_visa, "
                                          "pm_card_chargeDeclined or "
                                          "pm_card_chargeDeclinedInsufficientFunds"};
    req.payment_method = *m;
  }

  auto key = read_string(body, "buyerPublicKey", true);
  if (auto* e = std::get_if<input_error>(&key))
    return *e;
  if (auto* k = std::get_if<std::string>(&key)) {
    if (!is_acceptable_buyer_key(*k))
      return input_error{"buyerPublicKey",
                         "buyerPublicKey must be a PEM SubjectPublicKeyInfo RSA key with a "
                         "modulus of 2048 to 8192 bits and an odd public exponent from 3 to "
                         "2^32"};
    req.buyer_public_key = *k;
  }

  req.fingerprint = crypto::sha256_hex(json::canonical(body));
  return req;
}

std::variant<quote, input_error> price(const checkout_request& req, const catalog& items) {
  quote q;
  q.currency = req.currency;
  for (std::size_t i = 0; i < req.items.size(); ++i) {
    const auto& line = req.items[i];
    auto where = "items[" + std::to_string(i) + "].sku";
    auto it = items.find(line.sku);
    if (it == items.end())
      return input_error{where, "unknown SKU"};
    if (it->second.currency != req.currency)
      return input_error{"currency", "currency '" + req.currency + "' does not match the "
                                       + it->second.currency + " price of " + line.sku};
    priced_item p{line.sku, line.quantity, it->second.unit_amount,
                  line.quantity * it->second.unit_amount};
    q.total += p.amount;
    q.items.push_back(std::move(p));
  }
  std::sort(q.items.begin(), q.items.end(),
            [](const priced_item& a, const priced_item& b) { return a.sku < b.sku; });
  return q;
}

std::string catalog_json(std::vector<catalog_item> items) {
  std::sort(items.begin(), items.end(),
            [](const catalog_item& a, const catalog_item& b) { return a.sku < b.sku; });
  std::string out = "{\"items\":[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& item = items[i];
    if (i > 0)
      out += ',';
    out += "{\"currency\":";
    json::append_quoted(out, item.currency);
    out += ",\"name\":";
    json::append_quoted(out, item.title);
    out += ",\"sku\":";
    json::append_quoted(out, item.sku);
    out += ",\"unitAmount\":" + std::to_string(item.unit_amount) + '}';
  }
  out += "]}";
  return out;
}

} // namespace ap::domain
