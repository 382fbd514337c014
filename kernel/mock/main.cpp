// kernel-mock: a local stand-in for the upstream Kernel (SPEC §6): the
// hash-chained, Ed25519-signed audit log with search, chain verification and
// keys, plus faults (latency with jitter, error rate, outage) settable by
// flags and at run time through /mock/faults; optionally over TLS and behind
// a bearer token, as the real Kernel is reached (SPEC §10). This file reads
// the flags and the state file; the routes live by area in audit_routes.cpp,
// upgrade_routes.cpp and control_routes.cpp.
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/config.hpp"
#include "core/crypto.hpp"
#include "core/log.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "kernel/mock/mock_state.hpp"
#include "kernel/mock/state_file.hpp"

namespace {

using namespace ap;

constexpr const char* usage =
  "usage: kernel-mock [options]\n"
  "\n"
  "A local stand-in for the upstream Kernel: audit log (hash chain, Ed25519), search,\n"
  "verification, keys; faults for tests.\n"
  "\n"
  "options:\n"
  "  --port N              port to listen on (default 6050; 0 picks a free one)\n"
  "  --bind ADDRESS        address to bind (default 127.0.0.1)\n"
  "  --state FILE          keep the audit log and the upgrades in FILE across\n"
  "                        restarts (see \"State file\" below)\n"
  "  --signing-seed HEX    the signer's 32-byte Ed25519 seed as 64 hex digits\n"
  "                        (default: a fresh random key)\n"
  "  --approvers JSON|@F   the approver registry (default: ARTIFACT_PUBLISHER_APPROVERS)\n"
  "  --threshold N         approvals needed to apply (default: ARTIFACT_PUBLISHER_MULTISIG_THRESHOLD or 2)\n"
  "  --latency-ms N        added to every /kernel/* and /health answer\n"
  "  --jitter-ms N         up to N more, at random\n"
  "  --error-rate R        answer 500 to this fraction (0..1) of /kernel/* requests\n"
  "  --outage              answer 503 to everything but /mock/*\n"
  "  --tls-cert FILE       serve https:// only, with this certificate chain (PEM);\n"
  "  --tls-key FILE        and this private key (PEM); both or neither\n"
  "  --client-ca FILE      with TLS: require a client certificate issued by these\n"
  "                        roots (PEM), as a Kernel that wants mutual TLS does\n"
  "  --require-token T     answer 401 to every /kernel/* and /health request that\n"
  "                        lacks Authorization: Bearer T (/mock/* stays open)\n"
  "  --help, --version\n"
  "\n"
  "At run time: GET /mock/faults shows the faults, POST /mock/faults\n"
  "{\"latencyMs\",\"jitterMs\",\"errorRate\",\"resetRate\",\"upgradeResets\",\"outage\",\n"
  "\"requireToken\",\"refuseEventType\"} changes any of them; resetRate is the fraction\n"
  "of /kernel/* requests that are carried out and then answered with a connection\n"
  "reset instead of a response; upgradeResets is how many of the next upgrade steps\n"
  "(propose, approve, apply) are answered that way after they took effect;\n"
  "requireToken replaces the token (\"\" requires none); refuseEventType answers 413\n"
  "to every audit event of that type (\"\" none), counted as \"refused\" in\n"
  "GET /mock/faults. GET /mock/requests counts\n"
  "the /kernel/* and /health requests made while a token was required:\n"
  "{\"authorized\":N,\"unauthorized\":M,\"tokenRequired\":true|false}.\n"
  "\n"
  "State file: JSON lines, appended and flushed before each answer. A line is an\n"
  "audit event as GET /kernel/audit/{id} answers it, or an upgrade step that took\n"
  "effect: {\"upgradeStep\":\"propose\"|\"approve\"|\"apply\",\"upgradeId\",\"atMs\",...}\n"
  "with the step's input (a proposal also its threshold). At start the events are chained again and checked against\n"
  "the hashes written, and the steps replayed under the multisig rules at their\n"
  "recorded times, so the log and the upgrade records are those of before; a file\n"
  "of audit events only (an older one) is read as it is. A line that does not verify (another --signing-seed) or\n"
  "does not replay (another registry or threshold) stops the start with an error\n"
  "naming the file and the line.\n";

} // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  long port = 6050;
  long latency = 0;
  long jitter = 0;
  double error_rate = 0;
  bool outage = false;
  std::string state_file;
  std::string seed_hex;
  std::string approvers_arg;
  long threshold = 2;
  http::tls_files tls;
  std::string token;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc)
        return std::nullopt;
      return std::string{argv[++i]};
    };
    auto fail = [&](const std::string& why) {
      std::cerr << "kernel-mock: " << why << "\n\n" << usage;
      return 2;
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "kernel-mock " << AP_VERSION << "\n";
      return 0;
    }
    if (arg == "--outage") {
      outage = true;
      continue;
    }
    auto v = value();
    if (!v)
      return fail("unknown argument or missing value: '" + arg + "'");
    if (arg == "--bind") {
      bind = *v;
    } else if (arg == "--port") {
      if (!parse_integer_in(*v, 0, 65535, port))
        return fail("--port needs an integer from 0 to 65535");
    } else if (arg == "--latency-ms") {
      if (!parse_integer_in(*v, 0, 600000, latency))
        return fail("--latency-ms needs a non-negative integer");
    } else if (arg == "--jitter-ms") {
      if (!parse_integer_in(*v, 0, 600000, jitter))
        return fail("--jitter-ms needs a non-negative integer");
    } else if (arg == "--error-rate") {
      try {
        error_rate = std::stod(*v);
      } catch (const std::exception&) {
        error_rate = -1;
      }
      if (error_rate < 0 || error_rate > 1)
        return fail("--error-rate needs a number from 0 to 1");
    } else if (arg == "--state") {
      state_file = *v;
    } else if (arg == "--signing-seed") {
      seed_hex = *v;
    } else if (arg == "--approvers") {
      approvers_arg = *v;
    } else if (arg == "--threshold") {
      if (!parse_integer_in(*v, 2, 10, threshold))
        return fail("--threshold needs an integer from 2 to 10");
    } else if (arg == "--tls-cert") {
      tls.cert_file = *v;
    } else if (arg == "--tls-key") {
      tls.key_file = *v;
    } else if (arg == "--client-ca") {
      tls.client_ca_file = *v;
    } else if (arg == "--require-token") {
      if (v->empty())
        return fail("--require-token needs a token");
      token = *v;
    } else {
      return fail("unknown argument '" + arg + "'");
    }
  }
  if (!tls.client_ca_file.empty() && tls.cert_file.empty()) {
    std::cerr << "kernel-mock: --client-ca needs --tls-cert and --tls-key\n\n" << usage;
    return 2;
  }
  if (tls.cert_file.empty() != tls.key_file.empty()) {
    std::cerr << "kernel-mock: --tls-cert and --tls-key: give both or neither\n\n" << usage;
    return 2;
  }

  std::string seed;
  if (seed_hex.empty()) {
    seed = crypto::random_bytes(32);
  } else {
    auto decoded = crypto::hex_decode(seed_hex);
    if (!decoded || decoded->size() != 32) {
      std::cerr << "kernel-mock: --signing-seed needs 64 hex digits\n";
      return 2;
    }
    seed = *decoded;
  }
  // The approver registry: --approvers, else the service's own variable.
  if (approvers_arg.empty())
    approvers_arg = lookup_setting(process_env(), "APPROVERS").value_or("");
  std::map<std::string, std::string> approver_keys;
  if (!approvers_arg.empty()) {
    std::vector<std::string> problems;
    for (auto& a : parse_approver_registry(approvers_arg, "--approvers", problems))
      approver_keys[a.id] = a.public_key;
    if (!problems.empty()) {
      for (const auto& p : problems)
        std::cerr << "kernel-mock: " << p << "\n";
      return 2;
    }
  }
  if (threshold == 2)
    if (auto t = lookup_setting(process_env(), "MULTISIG_THRESHOLD"))
      parse_integer_in(*t, 2, 10, threshold);
  kernel::mock::mock_state k{seed, approver_keys, static_cast<int>(threshold)};
  k.f.latency_ms = latency;
  k.f.jitter_ms = jitter;
  k.f.error_rate = error_rate;
  k.f.outage = outage;
  k.token.require(token);
  if (!state_file.empty()) {
    if (!kernel::mock::load_state(k, state_file))
      return 1;
    k.state.open(state_file, std::ios::app);
    if (!k.state) {
      log::error("kernel-mock cannot write its state file", {{"file", state_file}});
      return 1;
    }
  }

  http::router routes;
  // The areas' paths are disjoint: the order they are added in changes no answer.
  kernel::mock::add_control_routes(routes, k);
  kernel::mock::add_audit_routes(routes, k);
  kernel::mock::add_upgrade_routes(routes, k);
  metrics::registry registry;
  http::server server{routes, registry, {}};
  try {
    if (!tls.cert_file.empty())
      server.use_tls(tls);
  } catch (const std::exception& e) {
    log::error("kernel-mock cannot use its TLS certificate", {{"error", e.what()}});
    return 1;
  }
  try {
    auto bound = server.listen(bind, static_cast<std::uint16_t>(port));
    auto scheme = tls.cert_file.empty() ? "http://" : "https://";
    log::info("kernel-mock listening", {{"url", scheme + bind + ":" + std::to_string(bound)},
                                        {"publicKey", crypto::base64_encode(k.log.public_key())}});
  } catch (const std::exception& e) {
    log::error("kernel-mock cannot listen", {{"error", e.what()}});
    return 1;
  }
  server.run(1, true);
  return 0;
}
