#pragma once

// Work handed to another thread (queued on an io thread, say) wakes that
// thread when it sleeps, and a thread that hands over many items one at a
// time, with a little work between them, can wake it once per item: it
// handles the first, sleeps, and is woken again for the next. Inside a
// `handoff::batch`, what is handed over through `handoff::hold` is kept on
// the handing thread, and when the outermost batch on that thread ends,
// each destination gets all it was handed in one hand-off. Plain C++ (no
// CAF, no Beast): the HTTP edge holds its replies this way, and whoever
// answers many requests in a row opens the batch.

#include <functional>
#include <vector>

namespace ap::handoff {

using task = std::function<void()>;

/// Hands `tasks` to `target` in one go: they run there, in order.
using deliver_fn = void (*)(void* target, std::vector<task>&& tasks);

/// While one is open on a thread, `hold` keeps that thread's hand-offs.
/// Batches nest; the outermost one's end delivers, in the order held, one
/// call of `deliver` per destination. Not movable: it lives in one scope.
class batch {
public:
  batch();
  ~batch();
  batch(const batch&) = delete;
  batch& operator=(const batch&) = delete;
};

/// Keeps `t` for `target` (delivered by `deliver`) when a batch is open on
/// this thread, and returns true; returns false, leaving `t` as it was,
/// when none is, and the caller hands it over itself.
bool hold(void* target, deliver_fn deliver, task& t);

/// Whether a batch is open on this thread.
bool holding();

} // namespace ap::handoff
