// The service's CPU for one completed order's documents: assemble_completed
// (delivery sealed, license, result written canonically) for a checkout of
// two items, as the benchmark's checkouts are, in a loop.
//
//   cmake --build build-release --target bench-assemble
//   build-release/bin/bench-assemble [ITERATIONS]
//
// Prints the median of five rounds in microseconds per order. The loop's
// allocations are the only ones in the process, so a build that takes
// 64 KiB pools from the heap can make glibc give the top of its heap back
// to the kernel and take it again on every order, which the service, whose
// heaps stay large, pays far less: compare builds also with
// GLIBC_TUNABLES=glibc.malloc.trim_threshold=16777216, which keeps it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "domain/delivery.hpp"
#include "domain/order.hpp"
#include "domain/proof.hpp"

using namespace ap::domain;

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  if (iterations <= 0) {
    std::fprintf(stderr, "usage: bench-assemble [ITERATIONS > 0]\n");
    return 2;
  }
  checkout_request req;
  req.customer_id = "bench-customer";
  req.email = "buyer@example.com";
  req.currency = "usd";
  quote q;
  q.currency = "usd";
  q.items = {{"artifact-license", 2, 800, 1600}, {"creator-basic", 1, 1200, 1200}};
  q.total = 2800;
  charge_result payment;
  payment.payment_id = "pay_6b0d76fa227a43dec0b631e3";
  payment.amount = 2800;
  payment.currency = "usd";
  payment.status = "captured";
  payment.processor = "embedded";
  journal_entry entry;
  entry.entry_id = "fin_6b0d76fa227a43dec0b631e3";
  entry.ledger_id = "ledger-main";
  entry.currency = "usd";
  entry.debit = entry.credit = 2800;
  catalog items;
  items["artifact-license"] = {"artifact-license", "Artifact License", 800, "usd",
                               "https://artifacts.example.com/license.zip", std::string(64, 'a')};
  items["creator-basic"] = {"creator-basic", "Creator Basic", 1200, "usd",
                            "https://artifacts.example.com/basic.zip", std::string(64, 'b')};
  auto ids = new_order_ids();
  auto proof = sign_proof(derive_proof_key("v1", "bench-proof-secret-0123456789abcdef"),
                          proof_payload(ids.order_id, req, q, payment, entry), ids.created_at);
  delivery_master master{"d1", "bench-delivery-key-0123456789abcdef"};

  std::vector<double> rounds;
  std::size_t bytes = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i)
      bytes += assemble_completed(ids, req, q, payment, entry, proof, master, items).result.size();
    auto took = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start);
    rounds.push_back(took.count() / iterations);
  }
  std::sort(rounds.begin(), rounds.end());
  std::printf("assemble_completed us per order: median=%.2f min=%.2f max=%.2f (result %zu bytes)\n",
              rounds[2], rounds.front(), rounds.back(), bytes / (5 * std::size_t(iterations)));
  return 0;
}
