#include "domain/order.hpp"

#include <chrono>
#include <cstddef>
#include <ctime>

#include "core/crypto.hpp"
#include "core/ids.hpp"
#include "core/time.hpp"
#include "core/json.hpp"
#include "domain/delivery.hpp"

namespace ap::domain {

const char* to_string(order_status s) {
  switch (s) {
    case order_status::completed:
      return "completed";
    case order_status::payment_failed:
      return "payment_failed";
    case order_status::settlement_failed:
      return "settlement_failed";
  }
  return "unknown";
}

std::optional<order_status> order_status_from(std::string_view text) {
  for (auto s : {order_status::completed, order_status::payment_failed,
                 order_status::settlement_failed})
    if (text == to_string(s))
      return s;
  return std::nullopt;
}

checkout_outcome_kind outcome_of(order_status s) {
  switch (s) {
    case order_status::completed:
      return checkout_outcome_kind::completed;
    case order_status::payment_failed:
      return checkout_outcome_kind::payment_failed;
    case order_status::settlement_failed:
      return checkout_outcome_kind::settlement_failed;
  }
  return checkout_outcome_kind::refused;
}

const char* to_string(checkout_outcome_kind k) {
  switch (k) {
    case checkout_outcome_kind::completed:
      return "completed";
    case checkout_outcome_kind::payment_failed:
      return "payment_failed";
    case checkout_outcome_kind::settlement_failed:
      return "settlement_failed";
    case checkout_outcome_kind::refused:
      return "refused";
  }
  return "unknown";
}

namespace {

constexpr int license_days = 365;

using alloc_t = rapidjson::Document::AllocatorType;

rapidjson::Value str(const std::string& s, alloc_t& a) {
  return json::string_value(s, a);
}


} // namespace

rapidjson::Value priced_items_json(const quote& q, alloc_t& a) {
  rapidjson::Value items{rapidjson::kArrayType};
  for (const auto& it : q.items) {
    rapidjson::Value v{rapidjson::kObjectType};
    v.AddMember("amount", it.amount, a);
    v.AddMember("quantity", it.quantity, a);
    v.AddMember("sku", str(it.sku, a), a);
    v.AddMember("unitAmount", it.unit_amount, a);
    items.PushBack(v, a);
  }
  return items;
}

std::string priced_items_text(const std::vector<priced_item>& items) {
  std::string out = "[";
  for (const auto& it : items) {
    if (out.size() > 1)
      out += ',';
    out += "{\"amount\":" + std::to_string(it.amount) + ",\"quantity\":"
           + std::to_string(it.quantity) + ",\"sku\":";
    json::append_quoted(out, it.sku);
    out += ",\"unitAmount\":" + std::to_string(it.unit_amount) + "}";
  }
  return out + "]";
}

namespace {

// Appends `,"name":` and `text` quoted; `name_and_colon` is the literal
// `,"name":` (or `{"name":` for an object's first member).
void append_member(std::string& out, const char* name_and_colon, std::string_view text) {
  out += name_and_colon;
  json::append_quoted(out, text);
}

// Appends a payment as an order's result holds it, canonical:
// `{amount, currency, paymentId, processor, status}`.
void append_payment(std::string& out, const charge_result& p) {
  out += "{\"amount\":" + std::to_string(p.amount);
  append_member(out, ",\"currency\":", p.currency);
  append_member(out, ",\"paymentId\":", p.payment_id);
  append_member(out, ",\"processor\":", p.processor);
  append_member(out, ",\"status\":", p.status);
  out += '}';
}

// A document whose values live in a buffer of its own (and on the heap
// only past it) rather than in the 64 KiB pool a Document takes from the
// heap by default: an order's small documents are made and dropped on every
// checkout.
class small_document {
public:
  small_document() : pool_{buffer_, sizeof buffer_}, doc_{rapidjson::kObjectType, &pool_} {}
  small_document(const small_document&) = delete;
  small_document& operator=(const small_document&) = delete;
  rapidjson::Document& operator*() { return doc_; }

private:
  alignas(std::max_align_t) char buffer_[4096];
  rapidjson::MemoryPoolAllocator<> pool_;
  rapidjson::Document doc_;
};

} // namespace

order_ids new_order_ids() {
  order_ids ids;
  auto now = unix_ms_now();
  // Ids that key an index are ordered by their second (see record_id_hex);
  // the license and delivery ids key none.
  // Their random bytes come from one draw from the pool of bytes made
  // public, which asks the kernel for more about once every eight orders.
  auto random = crypto::public_random_bytes(3 * 8 + 2 * 12);
  std::string_view bytes{random};
  ids.order_id = "order_" + record_id_hex(now, bytes.substr(0, 8));
  ids.payment_key = ids.order_id;
  ids.license_id = "lic_" + hex_of(bytes.substr(8, 12));
  ids.delivery_id = "dlv_" + hex_of(bytes.substr(20, 12));
  ids.completed_event_id = "evt_" + record_id_hex(now, bytes.substr(32, 8));
  ids.delivery_event_id = "evt_" + record_id_hex(now, bytes.substr(40, 8));
  ids.created_at = format_rfc3339(now);
  ids.license_expires_at =
    format_rfc3339(now + std::int64_t{license_days} * 86'400'000, false);
  return ids;
}

rapidjson::Document proof_payload(const std::string& order_id, const checkout_request& req,
                                  const quote& q, const charge_result& payment,
                                  const journal_entry& entry) {
  rapidjson::Document d{rapidjson::kObjectType};
  auto& a = d.GetAllocator();
  d.AddMember("currency", str(q.currency, a), a);
  d.AddMember("customerId", str(req.customer_id, a), a);
  d.AddMember("financeEntry", str(entry.entry_id, a), a);
  d.AddMember("items", priced_items_json(q, a), a);
  d.AddMember("orderId", str(order_id, a), a);
  d.AddMember("paymentId", str(payment.payment_id, a), a);
  d.AddMember("total", q.total, a);
  return d;
}

std::string order_completed_payload(const completed_sale& sale) {
  small_document doc;
  auto& d = *doc;
  auto& a = d.GetAllocator();
  d.AddMember("currency", str(sale.currency, a), a);
  d.AddMember("customerId", str(sale.customer_id, a), a);
  d.AddMember("financeEntry", str(sale.finance_entry, a), a);
  d.AddMember("orderId", str(sale.order_id, a), a);
  d.AddMember("paymentId", str(sale.payment_id, a), a);
  d.AddMember("proofId", str(sale.proof_id, a), a);
  d.AddMember("payloadHash", str(sale.payload_hash, a), a);
  d.AddMember("total", sale.total, a);
  return json::canonical(d);
}

std::string delivery_generated_payload(const generated_delivery& delivery) {
  small_document doc;
  auto& d = *doc;
  auto& a = d.GetAllocator();
  d.AddMember("deliveryId", str(delivery.delivery_id, a), a);
  d.AddMember("keyMode", str(delivery.key_mode, a), a);
  d.AddMember("licenseId", str(delivery.license_id, a), a);
  d.AddMember("orderId", str(delivery.order_id, a), a);
  return json::canonical(d);
}

std::optional<std::string> event_payload_from_result(const rapidjson::Value& result,
                                                     std::string_view event_type) {
  bool complete = true;
  auto object = [&](const rapidjson::Value& v, const char* name) -> const rapidjson::Value& {
    static const rapidjson::Value none{rapidjson::kObjectType};
    auto it = v.IsObject() ? v.FindMember(name) : v.MemberEnd();
    if (!v.IsObject() || it == v.MemberEnd() || !it->value.IsObject()) {
      complete = false;
      return none;
    }
    return it->value;
  };
  auto text = [&](const rapidjson::Value& v, const char* name) {
    auto it = v.IsObject() ? v.FindMember(name) : v.MemberEnd();
    if (!v.IsObject() || it == v.MemberEnd() || !it->value.IsString()) {
      complete = false;
      return std::string{};
    }
    return std::string{it->value.GetString(), it->value.GetStringLength()};
  };
  std::string payload;
  if (event_type == "order.completed") {
    const auto& proof = object(result, "proof");
    auto total = result.IsObject() ? result.FindMember("total") : result.MemberEnd();
    if (!result.IsObject() || total == result.MemberEnd() || !total->value.IsInt64())
      return std::nullopt;
    completed_sale sale{text(result, "orderId"),
                        // The customer as the signed proof names it.
                        text(object(proof, "payload"), "customerId"),
                        text(result, "currency"),
                        total->value.GetInt64(),
                        text(object(result, "payment"), "paymentId"),
                        text(object(result, "finance"), "entryId"),
                        text(proof, "proofId"),
                        text(proof, "payloadHash")};
    payload = order_completed_payload(sale);
  } else if (event_type == "delivery.generated") {
    const auto& delivery = object(result, "delivery");
    generated_delivery d{text(result, "orderId"), text(delivery, "licenseId"),
                         text(delivery, "deliveryId"), text(delivery, "keyMode")};
    payload = delivery_generated_payload(d);
  } else {
    return std::nullopt;
  }
  if (!complete)
    return std::nullopt;
  return payload;
}

std::vector<std::string> audit_event_types(order_status s) {
  switch (s) {
    case order_status::completed:
      return {"order.completed", "delivery.generated"};
    case order_status::payment_failed:
      return {"order.payment_failed"};
    case order_status::settlement_failed:
      return {"order.settlement_failed"};
  }
  return {};
}

order_record assemble_completed(const order_ids& ids, const checkout_request& req, const quote& q,
                                const charge_result& payment, const journal_entry& entry,
                                const signed_proof& proof, const delivery_master& master,
                                const catalog& items) {
  order_record rec;
  rec.order_id = ids.order_id;
  rec.customer_id = req.customer_id;
  rec.email = req.email;
  rec.status = order_status::completed;
  rec.currency = q.currency;
  rec.total = q.total;
  rec.payment_id = payment.payment_id;
  rec.finance_entry_id = entry.entry_id;
  rec.items = q.items;
  rec.created_at = ids.created_at;

  const auto& proof_doc = proof.record;

  // The artifacts travel only inside the ciphertext.
  small_document plain_holder;
  auto& plain = *plain_holder;
  auto& pa = plain.GetAllocator();
  rapidjson::Value artifacts{rapidjson::kArrayType};
  for (const auto& line : q.items) {
    const auto& item = items.at(line.sku);
    rapidjson::Value art{rapidjson::kObjectType};
    art.AddMember("sha256", str(item.artifact_sha256, pa), pa);
    art.AddMember("sku", str(item.sku, pa), pa);
    art.AddMember("url", str(item.artifact_url, pa), pa);
    artifacts.PushBack(art, pa);
  }
  plain.AddMember("artifacts", artifacts, pa);
  plain.AddMember("licenseId", str(ids.license_id, pa), pa);
  plain.AddMember("orderId", str(ids.order_id, pa), pa);
  auto sealed = seal_delivery(master.key, ids.order_id, ids.license_id,
                              json::canonical(plain), req.buyer_public_key);

  small_document license_holder;
  auto& license = *license_holder;
  auto& la = license.GetAllocator();
  license.AddMember("expiresAt", str(ids.license_expires_at, la), la);
  license.AddMember("issuedAt", str(ids.created_at, la), la);
  license.AddMember("issuedTo", str(req.customer_id, la), la);
  if (!sealed.license_key_b64.empty())
    license.AddMember("licenseKey", str(sealed.license_key_b64, la), la);
  license.AddMember("licenseId", str(ids.license_id, la), la);
  license.AddMember("orderId", str(ids.order_id, la), la);
  rapidjson::Value skus{rapidjson::kArrayType};
  for (const auto& line : q.items)
    skus.PushBack(str(line.sku, la), la);
  license.AddMember("skus", skus, la);
  auto license_doc = json::canonical(license);

  small_document delivery_holder;
  auto& delivery = *delivery_holder;
  auto& da = delivery.GetAllocator();
  delivery.AddMember("aad", str(sealed.aad, da), da);
  delivery.AddMember("algorithm", "aes-256-gcm", da);
  delivery.AddMember("cipherText", str(sealed.cipher_text_b64, da), da);
  delivery.AddMember("deliveryId", str(ids.delivery_id, da), da);
  // Which master key made it (SPEC §12), so that it can be re-derived
  // after the active kid has changed.
  delivery.AddMember("keyId", str(master.kid, da), da);
  delivery.AddMember("keyMode", str(sealed.key_mode, da), da);
  delivery.AddMember("licenseId", str(ids.license_id, da), da);
  delivery.AddMember("nonce", str(sealed.nonce_b64, da), da);
  delivery.AddMember("orderId", str(ids.order_id, da), da);
  if (!sealed.wrapped_key_b64.empty())
    delivery.AddMember("wrappedKey", str(sealed.wrapped_key_b64, da), da);
  auto delivery_doc = json::canonical(delivery);

  // The result, written canonically in one pass: its members in byte
  // order, the delivery, license and proof (each canonical already) as
  // they are, rather than parsed back and written again.
  std::string& out = rec.result;
  out.reserve(delivery_doc.size() + license_doc.size() + proof_doc.size() + 512);
  append_member(out, "{\"audit\":{\"eventId\":", ids.completed_event_id);
  out += ",\"status\":\"pending\"}";
  append_member(out, ",\"createdAt\":", ids.created_at);
  append_member(out, ",\"currency\":", q.currency);
  out += ",\"delivery\":";
  out += delivery_doc;
  out += ",\"finance\":{\"credit\":" + std::to_string(entry.credit);
  append_member(out, ",\"currency\":", entry.currency);
  out += ",\"debit\":" + std::to_string(entry.debit);
  append_member(out, ",\"entryId\":", entry.entry_id);
  append_member(out, ",\"ledgerId\":", entry.ledger_id);
  out += "},\"license\":";
  out += license_doc;
  append_member(out, ",\"orderId\":", ids.order_id);
  out += ",\"payment\":";
  append_payment(out, payment);
  out += ",\"proof\":";
  out += proof_doc;
  out += ",\"status\":\"completed\",\"total\":";
  out += std::to_string(q.total);
  out += '}';

  rec.events.push_back({ids.completed_event_id, "order.completed",
                        order_completed_payload({ids.order_id, req.customer_id, q.currency,
                                                 q.total, payment.payment_id, entry.entry_id,
                                                 proof.proof_id, proof.payload_hash})});
  rec.events.push_back({ids.delivery_event_id, "delivery.generated",
                        delivery_generated_payload(
                          {ids.order_id, ids.license_id, ids.delivery_id, sealed.key_mode})});
  return rec;
}

namespace {

// The record of an order that did not complete (payment_failed,
// settlement_failed): its columns, and the view GET answers,
// `{audit, createdAt, currency[, failure], orderId, payment, status, total}`.
order_record unfinished_sale(const order_ids& ids, const checkout_request& req, const quote& q,
                             const charge_result& payment, order_status status,
                             const std::string& failure) {
  order_record rec;
  rec.order_id = ids.order_id;
  rec.customer_id = req.customer_id;
  rec.email = req.email;
  rec.status = status;
  rec.currency = q.currency;
  rec.total = q.total;
  rec.payment_id = payment.payment_id;
  rec.items = q.items;
  rec.created_at = ids.created_at;

  // Written canonically in one pass, its members in byte order.
  std::string& out = rec.result;
  append_member(out, "{\"audit\":{\"eventId\":", ids.completed_event_id);
  out += ",\"status\":\"pending\"}";
  append_member(out, ",\"createdAt\":", ids.created_at);
  append_member(out, ",\"currency\":", q.currency);
  if (!failure.empty())
    append_member(out, ",\"failure\":", failure);
  append_member(out, ",\"orderId\":", ids.order_id);
  out += ",\"payment\":";
  append_payment(out, payment);
  append_member(out, ",\"status\":", to_string(status));
  out += ",\"total\":" + std::to_string(q.total) + '}';
  return rec;
}

} // namespace

std::string order_error_body(std::string_view code, const std::string& message,
                             const std::string& order_id) {
  auto body = std::string{"{\"error\":"};
  json::append_quoted(body, code);
  body += ",\"message\":";
  json::append_quoted(body, message);
  body += ",\"orderId\":";
  json::append_quoted(body, order_id);
  body += '}';
  return body;
}

order_record assemble_payment_failed(const order_ids& ids, const checkout_request& req,
                                     const quote& q, const charge_result& payment) {
  auto rec = unfinished_sale(ids, req, q, payment, order_status::payment_failed, {});
  rec.failure_body = order_error_body(
    "payment_declined",
    "the card was declined ("
      + (payment.decline_code.empty() ? std::string{"declined"} : payment.decline_code)
      + "); order " + ids.order_id + " was not completed",
    ids.order_id);

  rapidjson::Document failed{rapidjson::kObjectType};
  auto& fa = failed.GetAllocator();
  failed.AddMember("currency", str(q.currency, fa), fa);
  failed.AddMember("customerId", str(req.customer_id, fa), fa);
  failed.AddMember("declineCode", str(payment.decline_code, fa), fa);
  failed.AddMember("orderId", str(ids.order_id, fa), fa);
  failed.AddMember("paymentId", str(payment.payment_id, fa), fa);
  failed.AddMember("total", q.total, fa);
  rec.events.push_back({ids.completed_event_id, "order.payment_failed", json::canonical(failed)});
  return rec;
}

std::string payment_key_for(const std::string& customer_id, const std::string& idempotency_key) {
  // The customer id cannot hold a newline, so the pair maps to one string.
  return "ck_" + crypto::sha256_hex(customer_id + "\n" + idempotency_key).substr(0, 40);
}

order_record assemble_settlement_failed(const order_ids& ids, const checkout_request& req,
                                        const quote& q, const charge_result& payment,
                                        const std::string& reason) {
  auto refunded = payment;
  refunded.status = "refunded";
  auto rec = unfinished_sale(ids, req, q, refunded, order_status::settlement_failed, reason);
  rec.failure_body = order_error_body("settlement_failed",
                                       "the sale could not be settled (" + reason
                                         + "); the payment of order " + ids.order_id
                                         + " was refunded",
                                       ids.order_id);

  rapidjson::Document failed{rapidjson::kObjectType};
  auto& fa = failed.GetAllocator();
  failed.AddMember("currency", str(q.currency, fa), fa);
  failed.AddMember("customerId", str(req.customer_id, fa), fa);
  failed.AddMember("orderId", str(ids.order_id, fa), fa);
  failed.AddMember("paymentId", str(payment.payment_id, fa), fa);
  failed.AddMember("reason", str(reason, fa), fa);
  failed.AddMember("refunded", true, fa);
  failed.AddMember("total", q.total, fa);
  rec.events.push_back(
    {ids.completed_event_id, "order.settlement_failed", json::canonical(failed)});
  return rec;
}

std::string encode_intent(const checkout_request& req, const order_ids& ids) {
  rapidjson::Document d{rapidjson::kObjectType};
  auto& a = d.GetAllocator();
  rapidjson::Value r{rapidjson::kObjectType};
  r.AddMember("buyerPublicKey", str(req.buyer_public_key, a), a);
  r.AddMember("currency", str(req.currency, a), a);
  r.AddMember("customerId", str(req.customer_id, a), a);
  r.AddMember("email", str(req.email, a), a);
  r.AddMember("fingerprint", str(req.fingerprint, a), a);
  rapidjson::Value items{rapidjson::kArrayType};
  for (const auto& it : req.items) {
    rapidjson::Value v{rapidjson::kObjectType};
    v.AddMember("quantity", it.quantity, a);
    v.AddMember("sku", str(it.sku, a), a);
    items.PushBack(v, a);
  }
  r.AddMember("items", items, a);
  r.AddMember("paymentMethod", str(req.payment_method, a), a);
  d.AddMember("request", r, a);
  rapidjson::Value i{rapidjson::kObjectType};
  i.AddMember("completedEventId", str(ids.completed_event_id, a), a);
  i.AddMember("createdAt", str(ids.created_at, a), a);
  i.AddMember("deliveryEventId", str(ids.delivery_event_id, a), a);
  i.AddMember("deliveryId", str(ids.delivery_id, a), a);
  i.AddMember("licenseExpiresAt", str(ids.license_expires_at, a), a);
  i.AddMember("licenseId", str(ids.license_id, a), a);
  i.AddMember("orderId", str(ids.order_id, a), a);
  i.AddMember("paymentKey", str(ids.payment_key, a), a);
  d.AddMember("ids", i, a);
  return json::canonical(d);
}

bool decode_intent(const std::string& text, checkout_request& req, order_ids& ids) {
  rapidjson::Document d;
  if (json::parse_strict(text, d) || !d.IsObject())
    return false;
  auto r = d.FindMember("request");
  auto i = d.FindMember("ids");
  if (r == d.MemberEnd() || i == d.MemberEnd() || !r->value.IsObject() || !i->value.IsObject())
    return false;
  const auto& rv = r->value;
  req.buyer_public_key = json::string_member(rv, "buyerPublicKey");
  req.currency = json::string_member(rv, "currency");
  req.customer_id = json::string_member(rv, "customerId");
  req.email = json::string_member(rv, "email");
  req.fingerprint = json::string_member(rv, "fingerprint");
  req.payment_method = json::string_member(rv, "paymentMethod");
  req.items.clear();
  auto items = rv.FindMember("items");
  if (items == rv.MemberEnd() || !items->value.IsArray())
    return false;
  for (const auto& it : items->value.GetArray()) {
    auto q = it.IsObject() ? it.FindMember("quantity") : it.MemberEnd();
    if (!it.IsObject() || q == it.MemberEnd() || !q->value.IsInt64())
      return false;
    req.items.push_back({json::string_member(it, "sku"), q->value.GetInt64()});
  }
  const auto& iv = i->value;
  ids.completed_event_id = json::string_member(iv, "completedEventId");
  ids.created_at = json::string_member(iv, "createdAt");
  ids.delivery_event_id = json::string_member(iv, "deliveryEventId");
  ids.delivery_id = json::string_member(iv, "deliveryId");
  ids.license_expires_at = json::string_member(iv, "licenseExpiresAt");
  ids.license_id = json::string_member(iv, "licenseId");
  ids.order_id = json::string_member(iv, "orderId");
  ids.payment_key = json::string_member(iv, "paymentKey");
  return !ids.order_id.empty() && !ids.payment_key.empty() && !req.customer_id.empty()
         && !req.items.empty();
}

} // namespace ap::domain
