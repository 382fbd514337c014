#include "http/errors.hpp"

#include <caf/error.hpp>
#include <caf/sec.hpp>

#include "actors/errors.hpp"
#include "core/json.hpp"
#include "core/log.hpp"

namespace ap::http {

namespace {

// The answer without the order id an error may name.
response plain_response_for(const caf::error& err) {
  if (err.category() == error_category()) {
    auto message = error_message(err);
    auto field = error_field(err);
    auto name = error_name(err);
    auto named = [&](int status, const char* code) {
      return error_response(status, name.empty() ? code : name, message, field);
    };
    switch (static_cast<error_code>(err.code())) {
      case error_code::invalid_input:
        return named(400, "invalid_input");
      case error_code::forbidden:
        return named(403, "forbidden");
      case error_code::not_found:
        return named(404, "not_found");
      case error_code::conflict:
        return named(409, "conflict");
      case error_code::gone:
        return named(410, "gone");
      case error_code::idempotency_mismatch:
        return named(422, "idempotency_key_reused");
      case error_code::database_unavailable:
        if (message.empty())
          message = "the database is unavailable";
        return named(503, "database_unavailable");
      case error_code::upstream_unavailable:
        return named(502, "upstream_unavailable");
      case error_code::upstream_refused:
        return named(502, "upstream_refused");
      case error_code::timeout:
        return named(504, "timeout");
      case error_code::processing: {
        // Not a failure: the order is recorded and being finished.
        std::string body = "{\"orderId\":";
        json::append_quoted(body, error_order_id(err));
        body += ",\"status\":\"processing\"}";
        return json_response(202, std::move(body));
      }
      case error_code::internal:
        break;
    }
  } else if (err == caf::sec::request_timeout) {
    return error_response(504, "timeout", "the request timed out inside the service");
  } else if (err == caf::sec::request_receiver_down) {
    return error_response(503, "unavailable", "a component is restarting; retry shortly");
  }
  log::error("unexpected error from an actor", {{"error", caf::to_string(err)}});
  return error_response(500, "internal", "internal error");
}

} // namespace

int checkout_status(domain::checkout_outcome_kind kind) {
  switch (kind) {
    case domain::checkout_outcome_kind::completed:
      return 201;
    case domain::checkout_outcome_kind::payment_failed:
      return 402;
    case domain::checkout_outcome_kind::settlement_failed:
    case domain::checkout_outcome_kind::refused:
      return 502;
  }
  return 500;
}

response response_for(const caf::error& err) {
  auto res = plain_response_for(err);
  auto order_id = error_order_id(err);
  // SPEC §9: an answer about a checkout whose order id is assigned names it.
  if (!order_id.empty() && res.status >= 400 && res.body.size() > 1 && res.body.back() == '}'
      && res.body.find("\"orderId\"") == std::string::npos) {
    res.body.pop_back();
    res.body += ",\"orderId\":";
    json::append_quoted(res.body, order_id);
    res.body += '}';
  }
  return res;
}

} // namespace ap::http
