#pragma once

#include <mutex>

#include <caf/typed_actor.hpp>

#include "actors/actors.hpp"

namespace ap {

/// Where the current handle of each supervised actor is found. The
/// supervisor publishes a new handle after every restart; HTTP handlers and
/// actors look handles up here at the time of use, so a restart is picked up
/// by the next request. Thread-safe.
class actor_directory {
public:
  database_actor database() const { return get(database_); }
  void set_database(database_actor h) { set(database_, std::move(h)); }
  payment_actor payment() const { return get(payment_); }
  void set_payment(payment_actor h) { set(payment_, std::move(h)); }
  ledger_actor ledger() const { return get(ledger_); }
  void set_ledger(ledger_actor h) { set(ledger_, std::move(h)); }
  kernel_actor kernel() const { return get(kernel_); }
  void set_kernel(kernel_actor h) { set(kernel_, std::move(h)); }
  audit_forwarder_actor forwarder() const { return get(forwarder_); }
  void set_forwarder(audit_forwarder_actor h) { set(forwarder_, std::move(h)); }
  multisig_actor multisig() const { return get(multisig_); }
  void set_multisig(multisig_actor h) { set(multisig_, std::move(h)); }
  proof_actor proof() const { return get(proof_); }
  void set_proof(proof_actor h) { set(proof_, std::move(h)); }
  checkout_actor checkout() const { return get(checkout_); }
  void set_checkout(checkout_actor h) { set(checkout_, std::move(h)); }

private:
  template <class T>
  T get(const T& slot) const {
    std::lock_guard<std::mutex> guard{mutex_};
    return slot;
  }
  template <class T>
  void set(T& slot, T value) {
    std::lock_guard<std::mutex> guard{mutex_};
    slot = std::move(value);
  }

  mutable std::mutex mutex_;
  database_actor database_;
  payment_actor payment_;
  ledger_actor ledger_;
  checkout_actor checkout_;
  kernel_actor kernel_;
  audit_forwarder_actor forwarder_;
  multisig_actor multisig_;
  proof_actor proof_;
};

} // namespace ap
