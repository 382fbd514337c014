#pragma once

#include <cstddef>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace ap::http {

/// An io_context and the threads that run it, for the HTTP edge and the
/// upstream clients to share: a checkout's reply to its buyer and its audit
/// events to the Kernel then wake one thread instead of two.
///
/// The threads start with the loop and run until `stop`, whether or not
/// anything is queued, so whatever uses the context (a server that has
/// drained, a client flushing the outbox at shutdown) can rely on it to the
/// end. Declare it before everything that uses it.
class io_loop {
public:
  explicit io_loop(std::size_t threads);
  /// Stops, then destroys the handlers still queued without running them.
  ~io_loop();
  io_loop(const io_loop&) = delete;
  io_loop& operator=(const io_loop&) = delete;

  /// Stops the context and joins the threads (once; later calls do nothing).
  /// A thread that has called into the actor system holds a reference to its
  /// logger, which the system's destructor waits for: stop the loop after the
  /// actors are done and before the system is destroyed.
  void stop();

  boost::asio::io_context& context();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace ap::http
