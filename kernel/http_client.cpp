// The Kernel's HTTP client: the second (and last) translation unit with Beast.
#include "kernel/http_client.hpp"

#include <deque>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace ap::kernel {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::optional<endpoint> parse_http_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0)
    return std::nullopt;
  auto rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  endpoint e;
  e.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!e.base_path.empty() && e.base_path.back() == '/')
    e.base_path.pop_back();
  auto colon = authority.rfind(':');
  e.host = authority.substr(0, colon);
  if (e.host.empty())
    return std::nullopt;
  if (colon != std::string::npos) {
    try {
      std::size_t used = 0;
      auto port = std::stol(authority.substr(colon + 1), &used);
      if (used != authority.size() - colon - 1 || port < 1 || port > 65535)
        return std::nullopt;
      e.port = static_cast<std::uint16_t>(port);
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return e;
}

namespace {

struct pending {
  std::string method;
  std::string target;
  std::string body;
  std::chrono::milliseconds timeout;
  http_client::callback done;
  std::vector<std::pair<std::string, std::string>> headers;
  bool retried = false;
};

struct connection {
  explicit connection(net::io_context& ioc) : stream(ioc) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
  bool reused = false;
};

} // namespace

// All state is touched only on the single io thread.
struct http_client::impl : std::enable_shared_from_this<impl> {
  impl(endpoint where, std::size_t max, bool resend)
    : where(std::move(where)), max_connections(max), resend_after_write(resend),
      guard(net::make_work_guard(ioc)) {
  }

  void start(pending p) {
    std::shared_ptr<connection> c;
    if (!idle.empty()) {
      c = idle.back();
      idle.pop_back();
      c->reused = true;
    } else if (active < max_connections) {
      c = std::make_shared<connection>(ioc);
    } else {
      queue.push_back(std::move(p));
      return;
    }
    ++active;
    exchange(std::move(c), std::make_shared<pending>(std::move(p)));
  }

  void exchange(std::shared_ptr<connection> c, std::shared_ptr<pending> p) {
    auto self = shared_from_this();
    c->stream.expires_after(p->timeout);
    if (!c->connected) {
      resolver.async_resolve(where.host, std::to_string(where.port),
                             [self, c, p](beast::error_code ec, tcp::resolver::results_type r) {
                               if (ec)
                                 return self->finish(c, p, {}, ec, false);
                               c->stream.async_connect(
                                 r, [self, c, p](beast::error_code ec2, tcp::endpoint) {
                                   if (ec2)
                                     return self->finish(c, p, {}, ec2, false);
                                   c->connected = true;
                                   self->send(c, p);
                                 });
                             });
      return;
    }
    send(c, p);
  }

  void send(std::shared_ptr<connection> c, std::shared_ptr<pending> p) {
    auto req = std::make_shared<bhttp::request<bhttp::string_body>>();
    req->method_string(p->method);
    req->target(where.base_path + p->target);
    req->version(11);
    req->set(bhttp::field::host, where.host);
    req->set(bhttp::field::content_type, "application/json");
    req->keep_alive(true);
    for (const auto& [name, value] : p->headers)
      req->set(name, value);
    req->body() = p->body;
    req->prepare_payload();
    auto self = shared_from_this();
    bhttp::async_write(c->stream, *req, [self, c, p, req](beast::error_code ec, std::size_t) {
      if (ec)
        return self->finish(c, p, {}, ec, c->reused);
      auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
      bhttp::async_read(c->stream, c->buffer, *res,
                        [self, c, p, res](beast::error_code ec2, std::size_t) {
                          if (ec2)
                            return self->finish(c, p, {}, ec2,
                                                c->reused && self->resend_after_write);
                          http_reply reply;
                          reply.status = static_cast<std::int32_t>(res->result_int());
                          reply.body = std::move(res->body());
                          bool keep = res->keep_alive();
                          self->finish(c, p, std::move(reply), {}, false, keep);
                        });
    });
  }

  void finish(std::shared_ptr<connection> c, std::shared_ptr<pending> p, http_reply reply,
              beast::error_code ec, bool may_retry, bool keep = false) {
    --active;
    if (ec) {
      beast::error_code ignored;
      c->stream.socket().close(ignored);
      if (may_retry && !p->retried && ec != beast::error::timeout) {
        // A keep-alive connection the server had closed: try a fresh one.
        p->retried = true;
        ++active;
        exchange(std::make_shared<connection>(ioc), p);
        return;
      }
      reply.status = 0;
      reply.error = ec == beast::error::timeout ? "timeout" : ec.message();
    } else if (keep) {
      c->stream.expires_never();
      idle.push_back(std::move(c));
    }
    auto done = std::move(p->done);
    if (done)
      done(std::move(reply));
    if (!queue.empty()) {
      auto next = std::move(queue.front());
      queue.pop_front();
      start(std::move(next));
    }
  }

  endpoint where;
  std::size_t max_connections;
  bool resend_after_write;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> guard;
  tcp::resolver resolver{ioc};
  std::vector<std::shared_ptr<connection>> idle;
  std::deque<pending> queue;
  std::size_t active = 0;
  std::thread thread;
};

http_client::http_client(endpoint where, std::size_t max_connections, bool resend_after_write)
  : impl_(std::make_shared<impl>(std::move(where), max_connections, resend_after_write)) {
  impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
}

http_client::~http_client() {
  impl_->guard.reset();
  impl_->ioc.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

void http_client::request(std::string method, std::string target, std::string body,
                          std::chrono::milliseconds timeout, callback done,
                          std::vector<std::pair<std::string, std::string>> headers) {
  net::post(impl_->ioc, [i = impl_, p = pending{std::move(method), std::move(target), std::move(body),
                                                timeout, std::move(done), std::move(headers)}]() mutable {
    i->start(std::move(p));
  });
}

} // namespace ap::kernel
