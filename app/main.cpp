// artifact-publisher: command-line entry point.
#include <cstring>
#include <iostream>
#include <string>
#include <vector>
#include <algorithm>

#include "app/commands.hpp"
#include "app/tools.hpp"

namespace {

constexpr const char* usage =
  "usage: artifact-publisher [COMMAND]\n"
  "\n"
  "Sells digital artifacts and proves every sale.\n"
  "\n"
  "commands:\n"
  "  serve      run the HTTP service (the default)\n"
  "  migrate    apply missing database migrations (idempotent) and print a report\n"
  "  check-config\n"
  "             check the configuration as serve reads it and print it (secrets as\n"
  "             their lengths), or name each variable at fault (exit status 2)\n"
  "  requeue-dead-letters [--event-id ID]...\n"
  "             send dead-lettered audit events (all, or those named) to the Kernel again,\n"
  "             once the cause of its refusal is fixed; prints how many\n"
  "  verify-proof FILE [--keys KEYS.json | --public-key BASE64] [--kernel-keys KERNEL_KEYS.json]\n"
  "             check a proof offline with the published Ed25519 key; with the Kernel's\n"
  "             keys (GET /kernel/keys), also the audit receipts of an order read back\n"
  "             after delivery\n"
  "  decrypt-delivery FILE [--license-key BASE64 | --private-key PEMFILE |\n"
  "                        --delivery-keys JSON|@FILE]\n"
  "             decrypt a delivery and print its plaintext; with the master keys, the\n"
  "             one the delivery's keyId names\n"
  "  keygen [--out NAME|PATH]\n"
  "             make an approver's Ed25519 key pair (base64; --out writes NAME.key, NAME.pub\n"
  "             into ${XDG_DATA_HOME:-$HOME/.local/share}/artifact-publisher/keys, or beside PATH)\n"
  "  commit-secret --set proof|delivery|stripe|kernel-token --kid KID --value SECRET|@FILE\n"
  "             print the commitment to a secret version: the binaryHash of the\n"
  "             secret-rotation that activates it\n"
  "  sign-approval --upgrade-id ID --payload-hash HEX --approver ID --private-key B64|@FILE\n"
  "             print an approver's signature for a multisig upgrade\n"
  "\n"
  "options:\n"
  "  --help     show this text\n"
  "  --version  show the version\n"
  "\n"
  "Configuration comes from ARTIFACT_PUBLISHER_* variables (REPOWRITER_* as a fallback);\n"
  "see the README.\n";

} // namespace

int main(int argc, char** argv) {
  std::string command = argc > 1 ? argv[1] : "serve";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::cout << usage;
      return 0;
    }
    if (std::strcmp(argv[i], "--version") == 0) {
      std::cout << "artifact-publisher " << AP_VERSION << "\n";
      return 0;
    }
  }
  std::vector<std::string> rest(argv + std::min(argc, 2), argv + argc);
  if (command == "verify-proof")
    return ap::app::verify_proof_command(rest);
  if (command == "decrypt-delivery")
    return ap::app::decrypt_delivery_command(rest);
  if (command == "keygen")
    return ap::app::keygen_command(rest);
  if (command == "requeue-dead-letters")
    return ap::app::requeue_dead_letters(rest);
  if (command == "commit-secret")
    return ap::app::commit_secret_command(rest);
  if (command == "sign-approval")
    return ap::app::sign_approval_command(rest);
  if (argc > 2) {
    std::cerr << "artifact-publisher: '" << command << "' takes no arguments\n\n" << usage;
    return 2;
  }
  if (command == "serve")
    return ap::app::serve();
  if (command == "migrate")
    return ap::app::migrate();
  if (command == "check-config")
    return ap::app::check_config();
  std::cerr << "artifact-publisher: unknown command '" << command << "'\n\n" << usage;
  return 2;
}
