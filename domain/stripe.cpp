#include "domain/stripe.hpp"

#include <cctype>

#include <rapidjson/document.h>

#include "core/json.hpp"

namespace ap::domain::stripe {

namespace {

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

void append_encoded(std::string& out, const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  for (unsigned char c : text) {
    if (unreserved(c)) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xF];
    }
  }
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string upper(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// Stripe's error object, `{"error":{type, code, decline_code, message, …}}`.
struct error_object {
  std::string type;
  std::string code;
  std::string decline_code;
  std::string message;
  std::string payment_intent;
};

bool read_error(const rapidjson::Document& doc, error_object& out) {
  if (!doc.IsObject() || !doc.HasMember("error") || !doc["error"].IsObject())
    return false;
  const auto& e = doc["error"];
  out.type = json::string_member(e, "type");
  out.code = json::string_member(e, "code");
  out.decline_code = json::string_member(e, "decline_code");
  out.message = json::string_member(e, "message");
  if (e.HasMember("payment_intent") && e["payment_intent"].IsObject())
    out.payment_intent = json::string_member(e["payment_intent"], "id");
  return true;
}

// What a status without a readable success means: a definite refusal for the
// client errors that say the request was not carried out, doubt otherwise.
verdict verdict_of_failure(int status) {
  if (status == 400 || status == 401 || status == 403 || status == 404)
    return verdict::refused;
  return verdict::in_doubt;
}

std::string describe(int status, const error_object& e, const std::string& fallback) {
  std::string text = "HTTP " + std::to_string(status);
  if (!e.type.empty())
    text += " " + e.type;
  if (!e.code.empty())
    text += " (" + e.code + ")";
  if (!e.message.empty())
    text += ": " + e.message;
  else if (!fallback.empty())
    text += ": " + fallback;
  return text;
}

} // namespace

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string out;
  for (const auto& [key, value] : params) {
    if (!out.empty())
      out += '&';
    append_encoded(out, key);
    out += '=';
    append_encoded(out, value);
  }
  return out;
}

std::string charge_form(const charge_request& req) {
  return form_encode({
    {"amount", std::to_string(req.amount)},
    {"currency", lower(req.currency)},
    {"payment_method", req.payment_method.empty() ? default_payment_method : req.payment_method},
    {"confirm", "true"},
    {"payment_method_types[]", "card"},
    {"metadata[order_id]", req.order_id},
    {"metadata[customer_id]", req.customer_id},
  });
}

std::string refund_form(const std::string& payment_intent) {
  return form_encode({{"payment_intent", payment_intent}, {"reason", "requested_by_customer"}});
}

std::string charge_key(const charge_request& req) {
  return req.idempotency_key.empty() ? req.order_id : req.idempotency_key;
}

std::string refund_key(const std::string& payment_intent) {
  return "refund-" + payment_intent;
}

charge_reading read_charge(int status, const std::string& body,
                           const std::string& transport_error,
                           const std::string& idempotency_key) {
  charge_reading out;
  if (status == 0) {
    out.reason = "no answer: " + (transport_error.empty() ? std::string{"unknown"} : transport_error);
    return out;
  }
  rapidjson::Document doc;
  bool parsed = !doc.Parse(body.data(), body.size()).HasParseError() && doc.IsObject();
  out.result.processor = "stripe";
  if (status == 200) {
    if (!parsed || json::string_member(doc, "object") != "payment_intent"
        || json::string_member(doc, "id").empty() || !doc.HasMember("amount")
        || !doc["amount"].IsInt64()) {
      out.reason = "HTTP 200 without a readable PaymentIntent";
      return out;
    }
    out.result.payment_id = json::string_member(doc, "id");
    out.result.amount = doc["amount"].GetInt64();
    out.result.currency = upper(json::string_member(doc, "currency"));
    auto state = json::string_member(doc, "status");
    if (state == "succeeded") {
      out.kind = verdict::captured;
      out.result.status = "captured";
      return out;
    }
    if (state == "processing") {
      // The charge may still succeed: only a later answer can tell.
      out.reason = "the PaymentIntent is still processing";
      return out;
    }
    // requires_payment_method, requires_action, canceled…: no money moved,
    // and a server-side checkout cannot take the buyer through more steps.
    out.kind = verdict::declined;
    out.result.status = "declined";
    out.result.decline_code = state == "requires_action" ? "authentication_required" : state;
    if (doc.HasMember("last_payment_error") && doc["last_payment_error"].IsObject()) {
      auto code = json::string_member(doc["last_payment_error"], "decline_code");
      if (code.empty())
        code = json::string_member(doc["last_payment_error"], "code");
      if (!code.empty())
        out.result.decline_code = code;
    }
    return out;
  }
  error_object err;
  bool has_error = parsed && read_error(doc, err);
  if (status == 402 && has_error && err.type == "card_error") {
    out.kind = verdict::declined;
    out.result.status = "declined";
    out.result.payment_id = err.payment_intent;
    if (out.result.payment_id.empty())
      out.result.payment_id = "declined_" + idempotency_key;
    out.result.decline_code = err.decline_code.empty() ? err.code : err.decline_code;
    if (out.result.decline_code.empty())
      out.result.decline_code = "card_declined";
    return out;
  }
  out.kind = has_error && err.type == "idempotency_error" ? verdict::in_doubt
                                                          : verdict_of_failure(status);
  out.reason = describe(status, err, has_error ? "" : "no error object");
  return out;
}

refund_reading read_refund(int status, const std::string& body,
                           const std::string& transport_error) {
  refund_reading out;
  if (status == 0) {
    out.reason = "no answer: " + (transport_error.empty() ? std::string{"unknown"} : transport_error);
    return out;
  }
  rapidjson::Document doc;
  bool parsed = !doc.Parse(body.data(), body.size()).HasParseError() && doc.IsObject();
  if (status == 200) {
    if (!parsed || json::string_member(doc, "object") != "refund") {
      out.reason = "HTTP 200 without a readable Refund";
      return out;
    }
    auto state = json::string_member(doc, "status");
    if (state == "succeeded" || state == "pending") {
      out.refunded = true;
      return out;
    }
    out.kind = state == "failed" || state == "canceled" ? verdict::refused : verdict::in_doubt;
    out.reason = "the refund is " + state;
    return out;
  }
  error_object err;
  bool has_error = parsed && read_error(doc, err);
  if (has_error && err.code == "charge_already_refunded") {
    out.refunded = true;
    return out;
  }
  out.kind = verdict_of_failure(status);
  out.reason = describe(status, err, has_error ? "" : "no error object");
  return out;
}

} // namespace ap::domain::stripe
