// kernel-mock: a stand-in for the upstream Kernel (SPEC §6). So far it
// answers GET /health; the audit and upgrade routes come with audit
// forwarding.
#include <cstring>
#include <iostream>
#include <string>

#include "core/log.hpp"
#include "http/router.hpp"
#include "http/server.hpp"

namespace {

constexpr const char* usage =
  "usage: kernel-mock [--port N] [--bind ADDRESS]\n"
  "\n"
  "A local stand-in for the upstream Kernel. Answers GET /health.\n"
  "\n"
  "options:\n"
  "  --port N        port to listen on (default 6050)\n"
  "  --bind ADDRESS  address to bind (default 127.0.0.1)\n"
  "  --help          show this text\n"
  "  --version       show the version\n";

} // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  long port = 6050;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    }
    if (arg == "--version") {
      std::cout << "kernel-mock " << AP_VERSION << "\n";
      return 0;
    }
    if ((arg == "--port" || arg == "--bind") && i + 1 < argc) {
      std::string value = argv[++i];
      if (arg == "--bind") {
        bind = value;
        continue;
      }
      try {
        std::size_t used = 0;
        port = std::stol(value, &used);
        if (used != value.size() || port < 0 || port > 65535)
          throw std::out_of_range("port");
      } catch (const std::exception&) {
        std::cerr << "kernel-mock: --port needs an integer from 0 to 65535\n";
        return 2;
      }
      continue;
    }
    std::cerr << "kernel-mock: unknown argument '" << arg << "'\n\n" << usage;
    return 2;
  }

  ap::http::router routes;
  routes.add("GET", "/health", ap::http::access::open, ap::http::body_kind::none,
             [](ap::http::request&, ap::http::reply_fn reply) {
               reply(ap::http::json_response(200, "{\"status\":\"ok\",\"service\":\"kernel-mock\"}"));
             });
  ap::metrics::registry registry;
  ap::http::server server{routes, registry, {}};
  try {
    auto bound = server.listen(bind, static_cast<std::uint16_t>(port));
    ap::log::info("kernel-mock listening",
                  {{"url", "http://" + bind + ":" + std::to_string(bound)}});
  } catch (const std::exception& e) {
    ap::log::error("kernel-mock cannot listen", {{"error", e.what()}});
    return 1;
  }
  server.run(1, true);
  return 0;
}
