#include "core/handoff.hpp"

#include <exception>
#include <utility>

#include "core/log.hpp"

namespace ap::handoff {

namespace {

// What one destination was handed within the open batch.
struct destination {
  void* target;
  deliver_fn deliver;
  std::vector<task> tasks;
};

struct held {
  int depth = 0;
  // Few destinations (the edge has one io_context): a short list, in the
  // order first handed to.
  std::vector<destination> destinations;
};

thread_local held here;

} // namespace

batch::batch() {
  ++here.depth;
}

batch::~batch() {
  if (--here.depth > 0)
    return;
  // Taken out first: a delivery that hands over more (none does now) does
  // so outside any batch.
  auto destinations = std::move(here.destinations);
  here.destinations.clear();
  for (auto& d : destinations) {
    try {
      d.deliver(d.target, std::move(d.tasks));
    } catch (const std::exception& e) {
      // Not even queued (out of memory): whoever waits on them has a
      // deadline of its own.
      log::error("handing work to another thread failed", {{"error", e.what()}});
    }
  }
}

bool hold(void* target, deliver_fn deliver, task& t) {
  if (here.depth == 0)
    return false;
  for (auto& d : here.destinations)
    if (d.target == target && d.deliver == deliver) {
      d.tasks.push_back(std::move(t));
      return true;
    }
  here.destinations.push_back({target, deliver, {}});
  here.destinations.back().tasks.push_back(std::move(t));
  return true;
}

bool holding() {
  return here.depth > 0;
}

} // namespace ap::handoff
