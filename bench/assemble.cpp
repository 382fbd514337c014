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

#include "bench/sample_checkout.hpp"

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  if (iterations <= 0) {
    std::fprintf(stderr, "usage: bench-assemble [ITERATIONS > 0]\n");
    return 2;
  }
  const ap::bench::sample_checkout c;

  std::vector<double> rounds;
  std::size_t bytes = 0;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i)
      bytes += c.assemble().result.size();
    auto took = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start);
    rounds.push_back(took.count() / iterations);
  }
  std::sort(rounds.begin(), rounds.end());
  std::printf("assemble_completed us per order: median=%.2f min=%.2f max=%.2f (result %zu bytes)\n",
              rounds[2], rounds.front(), rounds.back(), bytes / (5 * std::size_t(iterations)));
  return 0;
}
