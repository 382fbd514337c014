#include "app/commands.hpp"

#include <iostream>
#include <set>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "actors/gateway.hpp"
#include "actors/node.hpp"
#include "core/config.hpp"
#include "core/heap.hpp"
#include "core/ids.hpp"
#include "core/json.hpp"
#include "core/log.hpp"
#include "core/secret_source.hpp"
#include "domain/secret_commitment.hpp"
#include "domain/secret_versions.hpp"
#include "http/routes.hpp"
#include "http/server.hpp"
#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"
#include "persistence/multisig_store.hpp"
#include "persistence/outbox_store.hpp"

namespace ap::app {

namespace {

std::optional<service_config> load_or_report() {
  auto loaded = load_config(process_env());
  if (!loaded.config) {
    for (const auto& problem : loaded.problems)
      log::error("invalid configuration", {{"problem", problem}});
    std::cerr << "artifact-publisher: refusing to start; fix the variables named above\n";
    return std::nullopt;
  }
  log::level lvl = log::level::info;
  log::parse_level(loaded.config->log_level, lvl);
  log::set_level(lvl);
  return loaded.config;
}

// The kids this instance needs but has no secret for: the active one of the
// last applied rotation and every one stored proofs were signed with, each
// with why, and what to set; "" when none is missing.
std::string missing_proof_kids(const domain::proof_keyring& keys,
                               const std::optional<std::string>& active,
                               const std::set<std::string>& signing) {
  std::string out;
  auto add = [&](const std::string& kid) {
    if (keys.find(kid))
      return;
    bool is_active = active && *active == kid;
    out += (out.empty() ? "" : ", ") + kid + " (";
    if (is_active)
      out += "the active kid of the last applied secret-rotation";
    if (signing.count(kid) != 0)
      out += std::string{is_active ? ", and " : ""} + "stored proofs may carry it";
    out += ")";
  };
  if (active)
    add(*active);
  for (const auto& kid : signing)
    if (!active || kid != *active)
      add(kid);
  if (out.empty())
    return out;
  return "proof kids without a configured secret: " + out
         + "; set ARTIFACT_PUBLISHER_PROOF_SECRETS to {\"<kid>\":\"<secret>\",...} with the "
           "secret each of them was configured with (or make one of them "
           "ARTIFACT_PUBLISHER_PROOF_KID with ARTIFACT_PUBLISHER_PROOF_SECRET)";
}

// Every configured version of the delivery, Stripe and Kernel-token sets
// with its commitment, each set's configured kid active.
std::shared_ptr<domain::secret_versions> secret_sets(const service_config& cfg) {
  auto out = std::make_shared<domain::secret_versions>();
  auto add_set = [&](domain::secret_set set, const std::map<std::string, std::string>& versions,
                     const std::string& active, bool as_given) {
    for (const auto& [kid, value] : versions) {
      // A Kernel token may be `@file`: it commits to what the file holds.
      auto secret = as_given ? secret_source::parse(value).current() : value;
      out->add(set, kid, value, domain::secret_commitment(set, kid, secret));
    }
    out->activate(set, active);
  };
  add_set(domain::secret_set::delivery, cfg.delivery_keys, cfg.delivery_kid, false);
  if (cfg.payment_processor == "stripe")
    add_set(domain::secret_set::stripe, cfg.stripe_secret_keys, cfg.stripe_kid, false);
  add_set(domain::secret_set::kernel_token, cfg.kernel_tokens, cfg.kernel_token_kid, true);
  return out;
}

// Where each set's versions are configured, for the operator.
std::string variable_of(domain::secret_set set) {
  switch (set) {
    case domain::secret_set::delivery:
      return "ARTIFACT_PUBLISHER_DELIVERY_KEYS";
    case domain::secret_set::stripe:
      return "ARTIFACT_PUBLISHER_STRIPE_SECRET_KEYS";
    case domain::secret_set::kernel_token:
      return "ARTIFACT_PUBLISHER_KERNEL_TOKENS";
    case domain::secret_set::proof:
      break;
  }
  return "ARTIFACT_PUBLISHER_PROOF_SECRETS";
}

// Activates the stored active version of each set other than the proof
// set; what is not configured here, with what to set ("" when nothing).
std::string follow_stored_versions(domain::secret_versions& secrets,
                                   const std::vector<std::string>& stored) {
  std::string out;
  for (const auto& version : stored) {
    auto t = domain::rotation_target_of(version);
    if (!t || t->set == domain::secret_set::proof)
      continue;
    if (secrets.activate(t->set, t->kid)) {
      log::info("secret version from the last applied rotation",
                {{"set", domain::to_string(t->set)}, {"kid", t->kid}});
      continue;
    }
    out += std::string{out.empty() ? "" : "; "} + domain::to_string(t->set) + " kid " + t->kid
           + " (the active version of the last applied secret-rotation) is not configured: add "
             "it to " + variable_of(t->set) + " with the secret it was configured with";
  }
  return out;
}

} // namespace

int check_config() {
  auto cfg = load_or_report();
  if (!cfg)
    return 2;
  std::cout << "configuration ok: " << cfg->redacted_summary() << std::endl;
  return 0;
}

int requeue_dead_letters(const std::vector<std::string>& args) {
  std::vector<std::string> event_ids;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--event-id" && i + 1 < args.size() && !args[i + 1].empty()) {
      event_ids.push_back(args[++i]);
      continue;
    }
    std::cerr << "usage: artifact-publisher requeue-dead-letters [--event-id ID]...\n";
    return 2;
  }
  auto cfg = load_or_report();
  if (!cfg)
    return 2;
  try {
    persistence::connection db{cfg->db_url};
    auto requeued = persistence::requeue_dead_letters(db, event_ids);
    std::cout << "{\"requeued\":" << requeued << "}" << std::endl;
    return 0;
  } catch (const std::exception& e) {
    log::error("requeueing dead-lettered audit events failed", {{"error", e.what()}});
    return 1;
  }
}

int migrate() {
  auto cfg = load_or_report();
  if (!cfg)
    return 2;
  try {
    persistence::connection db{cfg->db_url};
    auto report = persistence::migrate(db);
    std::string out = "{\"from\":" + std::to_string(report.from)
                      + ",\"to\":" + std::to_string(report.to) + ",\"applied\":[";
    for (std::size_t i = 0; i < report.applied.size(); ++i) {
      if (i > 0)
        out += ',';
      json::append_quoted(out, report.applied[i]);
    }
    out += "]}";
    std::cout << out << std::endl;
    return 0;
  } catch (const std::exception& e) {
    log::error("migration failed", {{"error", e.what()}});
    return 1;
  }
}

namespace {

/// How long shutdown waits for the outbox to reach the Kernel.
constexpr auto shutdown_flush_limit = std::chrono::seconds{3};

} // namespace

int serve() {
  auto cfg = load_or_report();
  if (!cfg)
    return 2;
  log::info("starting", {{"config", cfg->redacted_summary()}});

  // Declared before the actor system, so they outlive every actor: the
  // system's destructor waits for the actors, which use both until the end.
  metrics::registry registry;
  registry.add_callback_gauge("ap_heap_allocated_bytes", "Bytes in the heap's live allocations",
                              {{"allocator", heap::allocator()}}, heap::allocated_bytes);
  registry.add_callback_gauge("ap_heap_held_bytes",
                              "Bytes the heap's allocator holds from the system, in use or not",
                              {{"allocator", heap::allocator()}}, heap::held_bytes);
  actor_directory directory;
  caf::actor_system_config actor_cfg;
  configure_actor_system(actor_cfg, cfg->actor_threads);
  caf::actor_system system{actor_cfg};

  domain::proof_keyring keys;
  try {
    auto secrets = cfg->proof_secrets;
    secrets[cfg->proof_kid] = cfg->proof_secret;
    keys = domain::proof_keyring{cfg->proof_kid, secrets};
  } catch (const std::exception& e) {
    log::error("invalid proof keys", {{"error", e.what()}});
    return 2;
  }
  // An applied secret rotation outlives restarts, and so do the proofs
  // signed with every key before it. Starting without one of those secrets
  // would sign with an older key again and leave proofs unverifiable:
  // production refuses, elsewhere the instance shows itself degraded.
  std::vector<std::string> degraded_reasons;
  auto secrets = secret_sets(*cfg);
  try {
    persistence::connection db{cfg->db_url};
    auto active = persistence::active_proof_kid(db);
    if (active && keys.activate(*active))
      log::info("proof key from the last applied rotation", {{"kid", *active}});
    // False when production must not start.
    auto tolerable = [&](std::string problem) {
      if (problem.empty())
        return true;
      if (cfg->production) {
        log::error("refusing to start", {{"problem", problem}});
        std::cerr << "artifact-publisher: refusing to start: " << problem << "\n";
        return false;
      }
      log::warn("starting degraded", {{"reason", problem}});
      degraded_reasons.push_back(std::move(problem));
      return true;
    };
    if (!tolerable(missing_proof_kids(keys, active, persistence::proof_signing_kids(db))))
      return 2;
    persistence::record_signing_kid(db, keys.active_kid());
    if (!tolerable(follow_stored_versions(*secrets, persistence::active_rotations(db))))
      return 2;
  } catch (const std::exception& e) {
    log::warn("could not check the proof keys against the stored ones; using PROOF_KID",
              {{"error", e.what()}});
  }

  node_options opts;
  opts.database.url = cfg->db_url;
  opts.database.workers = cfg->db_pool_size;
  opts.database.limits.statement_timeout = cfg->db_statement_timeout;
  opts.database.limits.lock_timeout = cfg->db_lock_timeout;
  opts.database.limits.idle_in_transaction_timeout = cfg->db_idle_in_transaction_timeout;
  opts.database.limits.call_deadline = cfg->db_call_deadline;
  for (const auto& a : cfg->approvers)
    opts.database.approvers[a.id] = a.public_key;
  opts.database.multisig_threshold = cfg->multisig_threshold;
  opts.proof.keys = std::move(keys);
  opts.checkout.delivery = {cfg->delivery_kid, cfg->delivery_key};
  opts.checkout.secrets = secrets;
  opts.proof.secrets = secrets;
  opts.kernel.secrets = secrets;
  opts.checkout.deadline = cfg->request_timeout;
  opts.deterministic_salt = cfg->deterministic_salt;
  opts.ledger_id = cfg->ledger_id;
  // load_config checked both URLs; the TLS files are checked here, by
  // loading them as the clients will.
  opts.kernel.where = *upstream::parse_url(cfg->kernel_url);
  opts.kernel.token = secret_source::parse(cfg->kernel_token);
  opts.kernel.tls.ca_file = cfg->ca_file;
  opts.kernel.tls.client_cert_file = cfg->kernel_client_cert;
  opts.kernel.tls.client_key_file = cfg->kernel_client_key;
  if (auto problem = upstream::tls_problem(opts.kernel.tls)) {
    log::error("invalid configuration", {{"problem", "the Kernel's TLS files: " + *problem}});
    return 2;
  }
  if (cfg->payment_processor == "stripe") {
    stripe_config stripe;
    stripe.where = *upstream::parse_url(cfg->stripe_api_base);
    stripe.tls.ca_file = cfg->ca_file;
    stripe.secret_key = cfg->stripe_secret_key;
    stripe.secrets = secrets;
    opts.stripe = stripe;
  }
  opts.forwarder.instance_id = random_hex(6);
  opts.reconciler.instance_id = opts.forwarder.instance_id;
  opts.proof.instance_id = opts.forwarder.instance_id;
  opts.reconciler.after = cfg->reconcile_after;
  opts.reconciler.resume_timeout = std::max(cfg->request_timeout * 2, std::chrono::milliseconds{5000});
  opts.janitor.idempotency_retention = cfg->idempotency_retention;
  opts.janitor.outbox_retention = cfg->outbox_retention;
  opts.janitor.interval = cfg->retention_sweep_interval;
  opts.janitor.vacuum_interval = cfg->queue_vacuum_interval;
  auto root = start_node(system, opts, directory, registry);

  gateway actors{system, directory, cfg->catalog_refresh};
  http::router routes;
  http::add_service_routes(routes, {&actors, &registry, &*cfg, degraded_reasons});
  http::server_limits limits;
  limits.max_connections = cfg->max_connections;
  // A last-resort guard above every actor timeout (the longest is a
  // one-shot multisig upgrade's).
  limits.handler_deadline =
    std::max<std::chrono::milliseconds>(cfg->request_timeout, http::multisig_timeout)
    + std::chrono::seconds(1);
  http::server server{routes, registry, limits};
  bool tls = !cfg->tls_cert_file.empty() && !cfg->tls_key_file.empty();
  try {
    if (tls)
      server.use_tls({cfg->tls_cert_file, cfg->tls_key_file});
    auto port = server.listen(cfg->bind, cfg->port);
    log::info("listening",
              {{"url", (tls ? "https://" : "http://") + cfg->bind + ":" + std::to_string(port)},
               {"instance", opts.forwarder.instance_id}});
  } catch (const std::exception& e) {
    log::error("cannot listen", {{"bind", cfg->bind},
                                 {"port", std::to_string(cfg->port)},
                                 {"error", e.what()}});
    stop_node(system, root);
    return 1;
  }
  // Returns after SIGTERM/SIGINT once in-flight requests have been answered.
  server.run(cfg->io_threads, true);
  flush_outbox(system, directory, shutdown_flush_limit);
  stop_node(system, root);
  // A stopped instance no longer holds a rotation back; one that crashed
  // stops counting once its key set is older than the live window.
  try {
    persistence::connection db{cfg->db_url};
    persistence::forget_proof_keys(db, opts.proof.instance_id);
  } catch (const std::exception& e) {
    log::warn("could not withdraw this instance's proof key set", {{"error", e.what()}});
  }
  log::info("stopped");
  return 0;
}

} // namespace ap::app
