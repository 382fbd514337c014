#include "actors/proof.hpp"

#include <map>
#include <memory>
#include <vector>

#include <caf/send.hpp>

#include "actors/errors.hpp"
#include "actors/metering.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "domain/secret_commitment.hpp"

namespace ap {

namespace {

using self_ptr = proof_actor::stateful_pointer<proof_state>;

/// One report-and-read may take this long; the next poll tries again.
constexpr auto store_timeout = std::chrono::seconds{3};

struct context {
  self_ptr self;
  std::shared_ptr<proof_config> cfg;
  /// Reported every poll: what this instance can sign and verify with, and
  /// the commitment of each version of the other sets.
  std::string key_set;
  metrics::gauge* unconfigured;
  metrics::counter* signed_total;
  /// ap_secret_active_kid_unconfigured by set (the other sets).
  std::map<domain::secret_set, metrics::gauge*> set_unconfigured;
};

// Follows the stored active proof kid: switches to it when it is configured
// here, and says so once when it is not (this instance then keeps signing
// with the key it has, and verifies what the others sign only with kids it
// has).
void follow_proof(const context& ctx, const std::string& stored) {
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

// The same for the delivery, Stripe and Kernel-token sets, whose users read
// the active version from `secrets` at each use.
void follow_set(const context& ctx, const domain::rotation_target& t) {
  auto& secrets = *ctx.cfg->secrets;
  auto& seen = ctx.self->state.stored_sets[t.set];
  auto* gauge = ctx.set_unconfigured.at(t.set);
  auto before = secrets.active(t.set);
  if (before && before->kid == t.kid) {
    gauge->set(0);
  } else if (secrets.activate(t.set, t.kid)) {
    gauge->set(0);
    log::info("secret version activated",
              {{"actor", "proof"}, {"set", domain::to_string(t.set)}, {"kid", t.kid}});
  } else {
    gauge->set(1);
    if (seen != t.kid)
      log::error("the active version of a secret set is not configured on this instance; "
                 "still using the previous one",
                 {{"actor", "proof"},
                  {"set", domain::to_string(t.set)},
                  {"kid", t.kid},
                  {"usingKid", before ? before->kid : std::string{}}});
  }
  seen = t.kid;
}

// Follows each applied rotation version (`v2`, `delivery:d2`).
void follow(const context& ctx, const std::vector<std::string>& versions) {
  bool proof_seen = false;
  for (const auto& version : versions) {
    auto t = domain::rotation_target_of(version);
    if (!t)
      continue;  // validated at propose; nothing else is stored
    if (t->set == domain::secret_set::proof) {
      proof_seen = true;
      follow_proof(ctx, t->kid);
    } else if (ctx.cfg->secrets) {
      follow_set(ctx, *t);
    }
  }
  if (!proof_seen)
    follow_proof(ctx, "");
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
      [ctx](std::vector<std::string>& versions) {
        ctx.self->state.polling = false;
        follow(ctx, versions);
      },
      [ctx](caf::error& e) {
        ctx.self->state.polling = false;
        log::debug("reading the active versions failed; keeping the current ones",
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

// The commitment this instance holds for a rotation's target, or the
// refusal (the approvers sign exactly which version: binaryHash commits to it).
caf::expected<std::string> own_commitment(const context& ctx, const domain::rotation_target& t,
                                          const std::string& binary_hash) {
  if (t.set == domain::secret_set::proof) {
    const auto* key = ctx.cfg->keys.find(t.kid);
    if (!key)
      return make_error(error_code::invalid_input,
                        "no proof secret is configured for kid '" + t.kid + "'", "version");
    if (domain::key_commitment(*key) != binary_hash)
      return make_error(error_code::invalid_input,
                        "binaryHash must be the SHA-256 of kid '" + t.kid + "''s Ed25519 public key",
                        "binaryHash");
    return binary_hash;
  }
  std::string set = domain::to_string(t.set);
  auto held = ctx.cfg->secrets ? ctx.cfg->secrets->commitment(t.set, t.kid) : std::nullopt;
  if (!held)
    return make_error(error_code::invalid_input,
                      "no " + set + " secret is configured for kid '" + t.kid + "'", "version");
  if (*held != binary_hash)
    return make_error(error_code::invalid_input,
                      "binaryHash must be the commitment to " + set + " kid '" + t.kid
                        + "' (as `artifact-publisher commit-secret --set " + set + " --kid "
                        + t.kid + "` prints it)",
                      "binaryHash");
  return binary_hash;
}

caf::result<bool> check_rotation(const context& ctx, const std::string& version,
                                 const std::string& binary_hash) {
  auto target = domain::rotation_target_of(version);
  if (!target)
    return make_error(error_code::invalid_input, domain::rotation_version_rule, "version");
  auto mine = own_commitment(ctx, *target, binary_hash);
  if (!mine)
    return mine.error();
  // Every live instance must be able to use the version once it is applied.
  auto reported = domain::reported_name(*target);
  auto promise = ctx.self->make_response_promise<bool>();
  auto within = static_cast<std::int32_t>(ctx.cfg->live_within.count());
  ctx.self->request(ctx.cfg->store(), store_timeout, atoms::rotation_atom::value, reported,
                    binary_hash, within)
    .then(
      [promise, reported](std::vector<std::string>& problems) mutable {
        if (problems.empty()) {
          promise.deliver(true);
          return;
        }
        std::string message = "kid '" + reported + "' cannot be activated on every instance: ";
        for (std::size_t i = 0; i < problems.size(); ++i)
          message += (i ? "; " : "") + problems[i];
        promise.deliver(make_error(error_code::invalid_input, std::move(message), "version"));
      },
      [promise](caf::error& e) mutable { promise.deliver(std::move(e)); });
  return promise;
}

// Makes an applied rotation active here at once.
bool activate(const context& ctx, const std::string& version) {
  auto t = domain::rotation_target_of(version);
  if (!t)
    return false;
  if (t->set == domain::secret_set::proof) {
    follow_proof(ctx, t->kid);
    return ctx.cfg->keys.active_kid() == t->kid;
  }
  if (!ctx.cfg->secrets)
    return false;
  follow_set(ctx, *t);
  auto now = ctx.cfg->secrets->active(t->set);
  return now && now->kid == t->kid;
}

} // namespace

proof_actor::behavior_type proof(proof_actor::stateful_pointer<proof_state> self, proof_config cfg,
                                 metrics::registry* registry) {
  auto key_set = domain::key_set_document(cfg.keys);
  if (cfg.secrets) {
    auto others = cfg.secrets->key_set_members();
    if (!others.empty())
      key_set.insert(key_set.size() - 1, (key_set.size() > 2 ? "," : "") + others);
  }
  context ctx{self, std::make_shared<proof_config>(std::move(cfg)), std::move(key_set),
              &registry->get_gauge("ap_proof_active_kid_unconfigured",
                                   "1 while the stored active proof kid has no secret here"),
              &registry->get_counter("ap_proofs_signed_total", "Proofs signed"),
              {}};
  for (auto set : {domain::secret_set::delivery, domain::secret_set::stripe,
                   domain::secret_set::kernel_token})
    ctx.set_unconfigured[set] = &registry->get_gauge(
      "ap_secret_active_kid_unconfigured",
      "1 while the stored active version of a secret set has no secret here",
      {{"set", domain::to_string(set)}});
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
    metered(self, meter_, [ctx](atoms::activate_atom, const std::string& version) -> bool {
      return activate(ctx, version);
    }),
    metered(self, meter_, [ctx](atoms::poll_atom) { poll(ctx); }),
  };
}

} // namespace ap
