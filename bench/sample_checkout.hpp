#pragma once
// The checkout the benchmarks' programs build documents for: two items, as
// bench/checkout.lua's checkouts are, paid and journaled, with its proof
// signed. Each one is a distinct order: its payment and ledger entry are
// named after its order id, as the processor and the ledger name them.
#include <string>
#include <utility>

#include "domain/delivery.hpp"
#include "domain/order.hpp"
#include "domain/proof.hpp"

namespace ap::bench {

struct sample_checkout {
  domain::checkout_request req;
  domain::quote q;
  domain::charge_result payment;
  domain::journal_entry entry;
  domain::catalog items;
  domain::order_ids ids = domain::new_order_ids();
  domain::delivery_master master{"d1", "bench-delivery-key-0123456789abcdef"};
  domain::signed_proof proof;

  explicit sample_checkout(std::string customer_id = "bench-customer") {
    req.customer_id = std::move(customer_id);
    req.email = "buyer@example.com";
    req.currency = "usd";
    q.currency = "usd";
    q.items = {{"artifact-license", 2, 800, 1600}, {"creator-basic", 1, 1200, 1200}};
    q.total = 2800;
    payment.payment_id = "pay_" + ids.order_id.substr(6);
    payment.amount = 2800;
    payment.currency = "usd";
    payment.status = "captured";
    payment.processor = "embedded";
    entry.entry_id = "fin_" + ids.order_id.substr(6);
    entry.ledger_id = "ledger-main";
    entry.currency = "usd";
    entry.debit = entry.credit = 2800;
    items["artifact-license"] = {"artifact-license", "Artifact License", 800, "usd",
                                 "https://artifacts.example.com/license.zip",
                                 std::string(64, 'a')};
    items["creator-basic"] = {"creator-basic", "Creator Basic", 1200, "usd",
                              "https://artifacts.example.com/basic.zip", std::string(64, 'b')};
    proof = domain::sign_proof(domain::derive_proof_key("v1", "bench-proof-secret-0123456789abcdef"),
                               domain::proof_payload(ids.order_id, req, q, payment, entry),
                               ids.created_at);
  }

  /// The completed order: its result, events and items.
  domain::order_record assemble() const {
    return domain::assemble_completed(ids, req, q, payment, entry, proof, master, items);
  }
};

} // namespace ap::bench
