#pragma once

#include <mutex>

#include "actors/actors.hpp"

namespace ap {

/// Where the current handle of each supervised actor is found. The
/// supervisor publishes a new handle after every restart; HTTP handlers and
/// actors look handles up here at the time of use, so a restart is picked up
/// by the next request. Thread-safe.
class actor_directory {
public:
  database_actor database() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return database_;
  }
  void set_database(database_actor handle) {
    std::lock_guard<std::mutex> guard{mutex_};
    database_ = std::move(handle);
  }

private:
  mutable std::mutex mutex_;
  database_actor database_;
};

} // namespace ap
