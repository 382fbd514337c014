// What passing a batch's text to PostgreSQL costs, as an array literal
// (to_pg_array: every quote and backslash escaped, parsed back by the
// server's array_in) and as a binary array (text_array: each element's
// length and bytes). The batch is what store_orders gets for 16 completed
// orders (bench/sample_checkout.hpp): their results and their events'
// payloads.
//
//   cmake --build build-release --target bench-array-params
//   build-release/bin/bench-array-params DB_URL [CALLS]
//
// The server must run on this machine: its CPU is read from /proc for the
// session's backend. Prints, for each form, the median of five rounds in
// microseconds per order: wall time, the backend's CPU and this process's.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench/sample_checkout.hpp"
#include "persistence/connection.hpp"

using namespace ap;

namespace {

// User + system CPU of process `pid` in microseconds.
double process_cpu_us(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long ticks = 0;
  for (int n = 3; n <= 15 && fields >> field; ++n)
    if (n >= 14)
      ticks += std::stol(field);
  return static_cast<double>(ticks) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double own_cpu_us() {
  return static_cast<double>(std::clock()) * 1e6 / CLOCKS_PER_SEC;
}

} // namespace

int main(int argc, char** argv) {
  int calls = argc > 2 ? std::atoi(argv[2]) : 2000;
  if (argc < 2 || calls <= 0) {
    std::fprintf(stderr, "usage: bench-array-params DB_URL [CALLS > 0]\n");
    return 2;
  }
  constexpr int orders_per_call = 16;
  std::vector<std::string> results, payloads;
  std::size_t bytes = 0;
  for (int n = 0; n < orders_per_call; ++n) {
    auto o = bench::sample_checkout{}.assemble();
    results.push_back(o.result);
    bytes += o.result.size();
    for (const auto& e : o.events) {
      payloads.push_back(e.payload);
      bytes += e.payload.size();
    }
  }
  persistence::connection db{argv[1]};
  auto backend = db.exec("SELECT pg_backend_pid()").value(0, 0);
  const std::string sql = "SELECT cardinality($1::text[]) + cardinality($2::text[])";
  auto run = [&](bool binary) {
    if (binary)
      db.exec(sql, {persistence::text_array(results), persistence::text_array(payloads)});
    else
      db.exec(sql, {persistence::to_pg_array(results), persistence::to_pg_array(payloads)});
  };
  struct sample {
    double wall, server, client;
  };
  std::vector<sample> rounds[2];
  for (int round = 0; round < 5; ++round) {
    for (int binary = 0; binary < 2; ++binary) {
      auto server = process_cpu_us(backend);
      auto client = own_cpu_us();
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < calls; ++i)
        run(binary == 1);
      auto wall = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start);
      double orders = static_cast<double>(calls) * orders_per_call;
      rounds[binary].push_back({wall.count() / orders, (process_cpu_us(backend) - server) / orders,
                                (own_cpu_us() - client) / orders});
    }
  }
  auto median = [](std::vector<sample> v, double sample::*field) {
    std::sort(v.begin(), v.end(), [&](const sample& a, const sample& b) { return a.*field < b.*field; });
    return v[v.size() / 2].*field;
  };
  std::printf("%d orders a call, %zu bytes of text an order (result and event payloads)\n",
              orders_per_call, bytes / orders_per_call);
  for (int binary = 0; binary < 2; ++binary)
    std::printf("%s us per order: wall=%.2f server=%.2f client=%.2f\n",
                binary ? "binary array " : "array literal", median(rounds[binary], &sample::wall),
                median(rounds[binary], &sample::server), median(rounds[binary], &sample::client));
  return 0;
}
