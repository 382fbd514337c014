#include "actors/errors.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/make_message.hpp>

#include "domain/multisig.hpp"

namespace ap {

caf::atom_value error_category() {
  return caf::atom("ap");
}

std::string to_string(error_code code) {
  switch (code) {
    case error_code::invalid_input:
      return "invalid_input";
    case error_code::not_found:
      return "not_found";
    case error_code::forbidden:
      return "forbidden";
    case error_code::gone:
      return "gone";
    case error_code::conflict:
      return "conflict";
    case error_code::idempotency_mismatch:
      return "idempotency_mismatch";
    case error_code::database_unavailable:
      return "database_unavailable";
    case error_code::upstream_unavailable:
      return "upstream_unavailable";
    case error_code::upstream_refused:
      return "upstream_refused";
    case error_code::timeout:
      return "timeout";
    case error_code::processing:
      return "processing";
    case error_code::internal:
      return "internal";
  }
  return "unknown";
}

caf::error make_error(error_code code, std::string message, std::string field) {
  return caf::error{static_cast<std::uint8_t>(code), error_category(),
                    caf::make_message(std::move(message), std::move(field))};
}

caf::error make_named_error(error_code code, std::string name, std::string message,
                            std::string field) {
  return caf::error{static_cast<std::uint8_t>(code), error_category(),
                    caf::make_message(std::move(message), std::move(field), std::string{},
                                      std::move(name))};
}

caf::error make_order_error(error_code code, std::string message, std::string order_id) {
  return caf::error{static_cast<std::uint8_t>(code), error_category(),
                    caf::make_message(std::move(message), std::string{}, std::move(order_id))};
}

caf::error make_upstream_refusal(std::int32_t status, std::string excerpt) {
  return caf::error{static_cast<std::uint8_t>(error_code::upstream_refused), error_category(),
                    caf::make_message("the upstream refused it (" + std::to_string(status) + ")",
                                      std::string{}, std::string{}, std::string{"upstream_refused"},
                                      status, std::move(excerpt))};
}

caf::error refusal_error(const domain::multisig_refusal& r) {
  auto code = error_code::invalid_input;
  switch (r.kind) {
    case domain::refusal_kind::invalid_input:
      code = error_code::invalid_input;
      break;
    case domain::refusal_kind::forbidden:
      code = error_code::forbidden;
      break;
    case domain::refusal_kind::not_found:
      code = error_code::not_found;
      break;
    case domain::refusal_kind::conflict:
      code = error_code::conflict;
      break;
    case domain::refusal_kind::gone:
      code = error_code::gone;
      break;
  }
  return make_named_error(code, r.code, r.message, r.field);
}

bool is_definite_refusal(const caf::error& err) {
  if (err.category() != error_category())
    return false;
  auto code = static_cast<error_code>(err.code());
  return code == error_code::upstream_refused || code == error_code::invalid_input;
}

namespace {

std::string context_string(const caf::error& err, std::size_t index) {
  if (err.category() != error_category())
    return {};
  const auto& ctx = err.context();
  if (ctx.size() > index && ctx.match_element<std::string>(index))
    return ctx.get_as<std::string>(index);
  return {};
}

} // namespace

std::int32_t error_upstream_status(const caf::error& err) {
  if (err.category() != error_category())
    return 0;
  const auto& ctx = err.context();
  if (ctx.size() > 4 && ctx.match_element<std::int32_t>(4))
    return ctx.get_as<std::int32_t>(4);
  return 0;
}

std::string error_upstream_excerpt(const caf::error& err) {
  return context_string(err, 5);
}

std::string error_message(const caf::error& err) {
  return context_string(err, 0);
}

std::string error_field(const caf::error& err) {
  return context_string(err, 1);
}

std::string error_order_id(const caf::error& err) {
  return context_string(err, 2);
}

std::string error_name(const caf::error& err) {
  return context_string(err, 3);
}

void register_error_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(error_category(),
                         [](std::uint8_t code, caf::atom_value, const caf::message& ctx) {
                           auto text = to_string(static_cast<error_code>(code));
                           if (ctx.size() >= 1 && ctx.match_element<std::string>(0))
                             text += ": " + ctx.get_as<std::string>(0);
                           return text;
                         });
}

} // namespace ap
