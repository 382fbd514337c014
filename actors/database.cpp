#include "actors/database.hpp"

#include <caf/all.hpp>

#include "persistence/connection.hpp"
#include "persistence/migrations.hpp"

namespace ap {

database_actor::behavior_type database(database_actor::stateful_pointer<database_state> self,
                                       database_config cfg) {
  for (std::size_t i = 0; i < std::max<std::size_t>(cfg.workers, 1); ++i)
    self->state.workers.push_back(
      self->spawn<caf::detached + caf::linked>(database_worker, cfg.url));
  return {
    [=](atoms::ping_atom ping) -> caf::result<persistence::db_status> {
      auto& st = self->state;
      auto& worker = st.workers[st.next++ % st.workers.size()];
      return self->delegate(worker, ping);
    },
  };
}

database_worker_actor::behavior_type
database_worker(database_worker_actor::stateful_pointer<database_worker_state> self,
                std::string url) {
  self->state.conn = std::make_unique<persistence::connection>(std::move(url));
  return {
    [=](atoms::ping_atom) -> persistence::db_status {
      persistence::db_status status;
      status.expected_version = persistence::latest_version();
      // A connection the server dropped (say, by restarting) is only found
      // out by using it: one retry reconnects.
      for (int attempt = 0; attempt < 2; ++attempt) {
        try {
          auto& db = *self->state.conn;
          db.exec("SELECT 1");
          status.schema_version = persistence::current_version(db);
          status.reachable = true;
          status.detail = status.ready() ? "" : "migrations pending: run 'artifact-publisher migrate'";
          return status;
        } catch (const persistence::db_error& e) {
          status.detail = e.what();
          if (!e.connection_lost())
            break;
        }
      }
      return status;
    },
  };
}

} // namespace ap
