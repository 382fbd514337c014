#include "actors/node.hpp"

#include <caf/actor_cast.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include <thread>

#include "actors/errors.hpp"
#include "actors/kernel_client.hpp"
#include "core/log.hpp"
#include "mocks/payments.hpp"

namespace ap {

void configure_actor_system(caf::actor_system_config& cfg, std::size_t threads) {
  register_error_category(cfg);
  if (threads > 0)
    cfg.set("scheduler.max-threads", threads);
  // An idle worker waits on its condition variable (woken by the next
  // message) right after its quick polls, instead of first polling up to
  // 500 times with 50 µs sleeps in between: on a machine it shares with
  // PostgreSQL those sleeps and wake-ups cost more CPU than they save
  // latency (docs/performance.md).
  cfg.set("work-stealing.moderate-poll-attempts", std::size_t{0});
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
}

supervisor_actor start_node(caf::actor_system& sys, node_options opts, actor_directory& dir,
                            metrics::registry& registry) {
  auto* reg = &registry;
  opts.database.registry = reg;
  // One for the facade and every worker it spawns, across its restarts.
  if (!opts.database.reachable)
    opts.database.reachable = std::make_shared<reachability>("database", database_settle);
  // The checkout hands the events it stored to the forwarder, which sends
  // them under the lease they were written with.
  opts.database.outbox_lease = {opts.forwarder.instance_id, opts.forwarder.lease_ms};
  opts.multisig.registry = reg;
  std::vector<child_spec> children;
  children.push_back({"database", [&dir, cfg = opts.database](caf::actor_system& s) {
                        auto handle = s.spawn(database, cfg);
                        dir.set_database(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  if (opts.stripe)
    children.push_back({"payment", [&dir, cfg = *opts.stripe, reg](caf::actor_system& s) {
                          auto handle = s.spawn(stripe_connector, cfg, reg);
                          dir.set_payment(handle);
                          return caf::actor_cast<caf::actor>(handle);
                        }});
  else
    children.push_back({"payment", [&dir, salt = opts.deterministic_salt, reg](caf::actor_system& s) {
                          auto handle = s.spawn(mocks::payment_mock, salt, reg);
                          dir.set_payment(handle);
                          return caf::actor_cast<caf::actor>(handle);
                        }});
  children.push_back({"ledger", [&dir, salt = opts.deterministic_salt, id = opts.ledger_id,
                                 reg](caf::actor_system& s) {
                        auto handle = s.spawn(mocks::ledger_mock, salt, id, reg);
                        dir.set_ledger(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  children.push_back({"kernel", [&dir, kernel = opts.kernel, reg](caf::actor_system& s) {
                        kernel_actor handle = s.spawn(kernel_client, kernel, reg);
                        dir.set_kernel(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  auto forwarder_cfg = opts.forwarder;
  forwarder_cfg.outbox = [&dir]() -> outbox_actor { return dir.database(); };
  forwarder_cfg.kernel = [&dir] { return dir.kernel(); };
  children.push_back({"audit-forwarder", [&dir, forwarder_cfg, reg](caf::actor_system& s) {
                        auto handle = s.spawn(audit_forwarder, forwarder_cfg, reg);
                        dir.set_forwarder(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  auto proof_cfg = opts.proof;
  proof_cfg.store = [&dir]() -> proof_store_actor { return dir.database(); };
  children.push_back({"proof", [&dir, proof_cfg, reg](caf::actor_system& s) {
                        auto handle = s.spawn(proof, proof_cfg, reg);
                        dir.set_proof(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  children.push_back({"multisig", [&dir, cfg = opts.multisig](caf::actor_system& s) {
                        auto handle = s.spawn(multisig, cfg, &dir);
                        dir.set_multisig(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  children.push_back({"checkout", [&dir, cfg = opts.checkout, reg](caf::actor_system& s) {
                        auto handle = s.spawn(checkout, cfg, &dir, reg);
                        dir.set_checkout(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  children.push_back({"reconciler", [&dir, cfg = opts.reconciler, reg](caf::actor_system& s) {
                        return caf::actor_cast<caf::actor>(s.spawn(reconciler, cfg, &dir, reg));
                      }});
  auto janitor_cfg = opts.janitor;
  janitor_cfg.store = [&dir]() -> retention_store_actor { return dir.database(); };
  children.push_back({"janitor", [janitor_cfg, reg](caf::actor_system& s) {
                        return caf::actor_cast<caf::actor>(s.spawn(janitor, janitor_cfg, reg));
                      }});
  return spawn_supervisor(sys, std::move(children), opts.supervision, &registry);
}

void flush_outbox(caf::actor_system& sys, actor_directory& dir, std::chrono::milliseconds limit) {
  caf::scoped_actor self{sys};
  if (auto forwarder = dir.forwarder())
    self->send(forwarder, atoms::wake_atom::value);
  auto deadline = std::chrono::steady_clock::now() + limit;
  std::int64_t pending = -1;
  outbox_actor outbox = dir.database();
  while (std::chrono::steady_clock::now() < deadline) {
    self->request(outbox, std::chrono::seconds{1}, atoms::stats_atom::value)
      .receive([&](domain::outbox_stats& s) { pending = s.pending; },
               [&](caf::error&) { pending = -1; });
    if (pending == 0)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  log::warn("stopping with audit events still in the outbox; they are forwarded after the next start",
            {{"pending", std::to_string(pending)}});
}

void stop_node(caf::actor_system& sys, const supervisor_actor& root) {
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  sys.await_all_actors_done();
}

} // namespace ap
