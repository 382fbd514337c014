#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "domain/secret_versions.hpp"
#include "upstream/client.hpp"

namespace ap {

/// Where the processor is and how hard to try (SPEC §9).
struct stripe_config {
  /// STRIPE_API_BASE.
  upstream::endpoint where;
  /// CA_FILE: roots trusted besides the system store.
  upstream::tls_options tls;
  /// STRIPE_SECRET_KEY, sent as `Authorization: Bearer`; never logged.
  std::string secret_key;
  /// Every processor key version and the active one, read at each attempt
  /// so that a rotation applied anywhere takes effect (SPEC §12). Null:
  /// only `secret_key`.
  std::shared_ptr<const domain::secret_versions> secrets;
  /// One HTTP exchange may take this long.
  std::chrono::milliseconds attempt_timeout{3000};
  /// Attempts of one call whose answers leave it in doubt; after the last the
  /// caller hears `upstream_unavailable` and the checkout stays recorded, so
  /// the reconciler drives it again later under the same key.
  int max_attempts = 3;
  /// Wait before the second attempt; doubled before each further one.
  std::chrono::milliseconds first_backoff{200};
};

/// One charge or refund in progress, across its attempts.
struct stripe_exchange {
  enum class kind : std::uint8_t { charge, refund };
  kind what = kind::charge;
  std::string target;
  std::string form;
  std::string idempotency_key;
  /// What it is for, for the logs: the order of a charge, the payment of a refund.
  std::string subject;
  int attempts = 0;
  /// An earlier attempt's answer left it in doubt: a refusal now proves
  /// nothing (the earlier attempt may have been carried out).
  bool was_in_doubt = false;
  caf::typed_response_promise<domain::charge_result> charged;
  caf::typed_response_promise<bool> refunded;
};

/// State of the Stripe connector.
struct stripe_connector_state {
  static constexpr const char* name = "payment";
  /// Null when the client could not be made: every charge is then in doubt.
  std::unique_ptr<upstream::client> http;
  std::uint64_t next_exchange = 0;
  std::map<std::uint64_t, stripe_exchange> exchanges;
};

/// The payment actor over Stripe's REST API (`PAYMENT_PROCESSOR=stripe`):
/// a charge is `POST /v1/payment_intents` (create and confirm), an undo
/// `POST /v1/refunds`, each under an Idempotency-Key derived from the
/// checkout's record. A decline is an answer; 400/401/403/404 is a definite
/// refusal (`upstream_refused`); anything else — 409, 429, 5xx, a timeout,
/// a closed connection — is in doubt and retried with the same key and
/// backoff, then answered `upstream_unavailable`. Counts
/// `ap_payment_charges_total{outcome}`, `ap_payment_refunds_total` and
/// `ap_payment_retries_total`.
stripe_connector_actor::behavior_type
stripe_connector(stripe_connector_actor::stateful_pointer<stripe_connector_state> self,
                 stripe_config cfg, metrics::registry* registry);

} // namespace ap
