// artifact-publisher: command-line entry point.
#include <cstring>
#include <iostream>
#include <string>

#include "app/commands.hpp"

namespace {

constexpr const char* usage =
  "usage: artifact-publisher [COMMAND]\n"
  "\n"
  "Sells digital artifacts and proves every sale.\n"
  "\n"
  "commands:\n"
  "  serve      run the HTTP service (the default)\n"
  "  migrate    apply missing database migrations (idempotent) and print a report\n"
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
  if (argc > 2) {
    std::cerr << "artifact-publisher: '" << command << "' takes no arguments\n\n" << usage;
    return 2;
  }
  if (command == "serve")
    return ap::app::serve();
  if (command == "migrate")
    return ap::app::migrate();
  std::cerr << "artifact-publisher: unknown command '" << command << "'\n\n" << usage;
  return 2;
}
