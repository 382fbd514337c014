#include "http/io_loop.hpp"

#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace ap::http {

namespace net = boost::asio;

struct io_loop::impl {
  impl() : guard(net::make_work_guard(context)) {}

  net::io_context context;
  net::executor_work_guard<net::io_context::executor_type> guard;
  std::vector<std::thread> threads;
};

io_loop::io_loop(std::size_t threads) : impl_(std::make_unique<impl>()) {
  for (std::size_t i = 0; i < threads; ++i)
    impl_->threads.emplace_back([i = impl_.get()] { i->context.run(); });
}

io_loop::~io_loop() {
  stop();
}

void io_loop::stop() {
  impl_->guard.reset();
  impl_->context.stop();
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
}

net::io_context& io_loop::context() {
  return impl_->context;
}

} // namespace ap::http
