#include "actors/node.hpp"

#include <caf/all.hpp>

#include "actors/errors.hpp"

namespace ap {

void configure_actor_system(caf::actor_system_config& cfg) {
  register_error_category(cfg);
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
}

supervisor_actor start_node(caf::actor_system& sys, node_options opts, actor_directory& dir,
                            metrics::registry& registry) {
  std::vector<child_spec> children;
  children.push_back({"database", [&dir, cfg = opts.database](caf::actor_system& s) {
                        auto handle = s.spawn(database, cfg);
                        dir.set_database(handle);
                        return caf::actor_cast<caf::actor>(handle);
                      }});
  return sys.spawn(supervisor, std::move(children), opts.supervision, &registry);
}

} // namespace ap
