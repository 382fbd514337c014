#include "actors/proof.hpp"

#include <memory>

#include <caf/send.hpp>

#include "actors/errors.hpp"
#include "actors/metering.hpp"
#include "core/json.hpp"
#include "core/log.hpp"

namespace ap {

namespace {

using self_ptr = proof_actor::stateful_pointer<proof_state>;

/// One report-and-read may take this long; the next poll tries again.
constexpr auto store_timeout = std::chrono::seconds{3};

struct context {
  self_ptr self;
  std::shared_ptr<proof_config> cfg;
  /// Reported every poll: what this instance can sign and verify with.
  std::string key_set;
  metrics::gauge* unconfigured;
  metrics::counter* signed_total;
};

// Follows the stored active kid: switches to it when it is configured here,
// and says so once when it is not (this instance then keeps signing with
// the key it has, and verifies what the others sign only with kids it has).
void follow(const context& ctx, const std::string& stored) {
  auto& st = ctx.self->state;
  auto& keys = ctx.cfg->keys;
  if (stored.empty() || stored == keys.active_kid()) {
    st.stored_active = stored;
    ctx.unconfigured->set(0);
    return;
  }
  if (keys.activate(stored)) {
    ctx.unconfigured->set(0);
    log::info("proof key activated", {{"actor", "proof"}, {"kid", stored}});
  } else {
    ctx.unconfigured->set(1);
    if (stored != st.stored_active)
      log::error("the active proof kid has no secret on this instance; still signing with "
                 "the previous key",
                 {{"actor", "proof"}, {"kid", stored}, {"signingKid", keys.active_kid()}});
  }
  st.stored_active = stored;
}

void poll(const context& ctx) {
  auto self = ctx.self;
  self->delayed_send(self, ctx.cfg->poll_interval, atoms::poll_atom::value);
  if (self->state.polling)
    return;
  self->state.polling = true;
  self->request(ctx.cfg->store(), store_timeout, atoms::keyset_atom::value, ctx.cfg->instance_id,
                ctx.key_set)
    .then(
      [ctx](std::string& active) {
        ctx.self->state.polling = false;
        follow(ctx, active);
      },
      [ctx](caf::error& e) {
        ctx.self->state.polling = false;
        log::debug("reading the active proof kid failed; keeping the current one",
                   {{"actor", "proof"}, {"error", caf::to_string(e)}});
      });
}

domain::verification verify(const domain::proof_keyring& keys, const std::string& proof_text,
                            const std::string& payload_text) {
  rapidjson::Document proof;
  rapidjson::Document payload;
  if (json::parse_strict(proof_text, proof) || !proof.IsObject())
    return {false, "proof_malformed"};
  if (json::parse_strict(payload_text, payload) || !payload.IsObject())
    return {false, "payload_malformed"};
  return domain::verify_proof(keys, proof, payload);
}

caf::result<bool> check_rotation(const context& ctx, const std::string& kid,
                                 const std::string& binary_hash) {
  // The approvers sign exactly which key: binaryHash names its public key.
  const auto* key = ctx.cfg->keys.find(kid);
  if (!key)
    return make_error(error_code::invalid_input,
                      "no proof secret is configured for kid '" + kid + "'", "version");
  if (domain::key_commitment(*key) != binary_hash)
    return make_error(error_code::invalid_input,
                      "binaryHash must be the SHA-256 of kid '" + kid + "''s Ed25519 public key",
                      "binaryHash");
  // Every live instance must sign with the same key once it is applied.
  auto promise = ctx.self->make_response_promise<bool>();
  auto within = static_cast<std::int32_t>(ctx.cfg->live_within.count());
  ctx.self->request(ctx.cfg->store(), store_timeout, atoms::rotation_atom::value, kid, binary_hash,
                    within)
    .then(
      [promise, kid](std::vector<std::string>& problems) mutable {
        if (problems.empty()) {
          promise.deliver(true);
          return;
        }
        std::string message = "kid '" + kid + "' cannot be activated on every instance: ";
        for (std::size_t i = 0; i < problems.size(); ++i)
          message += (i ? "; " : "") + problems[i];
        promise.deliver(make_error(error_code::invalid_input, std::move(message), "version"));
      },
      [promise](caf::error& e) mutable { promise.deliver(std::move(e)); });
  return promise;
}

} // namespace

proof_actor::behavior_type proof(proof_actor::stateful_pointer<proof_state> self, proof_config cfg,
                                 metrics::registry* registry) {
  auto key_set = domain::key_set_document(cfg.keys);
  context ctx{self, std::make_shared<proof_config>(std::move(cfg)), std::move(key_set),
              &registry->get_gauge("ap_proof_active_kid_unconfigured",
                                   "1 while the stored active proof kid has no secret here"),
              &registry->get_counter("ap_proofs_signed_total", "Proofs signed")};
  // The first poll at once: a restarted actor starts from the configured
  // kid and catches up with the stored one within a round trip.
  self->send(self, atoms::poll_atom::value);
  auto meter_ = actor_meter::make(*registry, "proof");
  return {
    metered(self, meter_, [ctx](atoms::sign_atom, const std::string& payload,
                                const std::string& issued_at) -> domain::signed_proof {
      ctx.signed_total->inc();
      return domain::sign_canonical_proof(ctx.cfg->keys.active(), payload, issued_at);
    }),
    metered(self, meter_, [ctx](atoms::verify_atom, const std::string& proof,
                                const std::string& payload) -> domain::verification {
      return verify(ctx.cfg->keys, proof, payload);
    }),
    metered(self, meter_, [ctx](atoms::pubkeys_atom) -> std::string {
      return domain::public_keys_document(ctx.cfg->keys);
    }),
    metered(self, meter_, [ctx](atoms::rotation_atom, const std::string& kid,
                                const std::string& binary_hash) -> caf::result<bool> {
      return check_rotation(ctx, kid, binary_hash);
    }),
    metered(self, meter_, [ctx](atoms::activate_atom, const std::string& kid) -> bool {
      follow(ctx, kid);
      return ctx.cfg->keys.active_kid() == kid;
    }),
    metered(self, meter_, [ctx](atoms::poll_atom) { poll(ctx); }),
  };
}

} // namespace ap
