// The outbound HTTP client. With http/server.cpp, one of the two translation
// units that include Beast: the costliest to compile, so everything else
// talks to it through upstream/client.hpp.
#include "upstream/client.hpp"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <list>
#include <optional>
#include <stdexcept>
#include <thread>

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/log.hpp"
#include "core/reachability.hpp"
#include "http/wire.hpp"

namespace ap::upstream {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;

namespace {

/// How a request ended, for `ap_upstream_requests_total{outcome}`.
enum class outcome { answered, queue_full, timeout, connect, tls, closed };
constexpr std::size_t outcome_count = 6;
constexpr const char* outcome_names[outcome_count] = {"answered", "queue_full", "timeout",
                                                      "connect",  "tls",        "closed"};

/// The same handshake failure is logged at most this often.
constexpr auto tls_log_interval = std::chrono::seconds{10};

struct connection {
  connection(net::io_context& ioc, ssl::context* tls) {
    if (tls)
      secure.emplace(ioc, *tls);
    else
      plain.emplace(ioc);
    // Beast reads as much as the buffer has room for, and at least 512
    // bytes: with room for a whole reply, a reply is one read, not two.
    buffer.reserve(read_room);
  }

  static constexpr std::size_t read_room = 8192;

  beast::tcp_stream& tcp() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  /// Runs `f` on the stream requests go through: TLS over TCP, or TCP.
  template <class F>
  void with_stream(F&& f) {
    if (secure)
      f(*secure);
    else
      f(*plain);
  }

  void close() {
    beast::error_code ignored;
    tcp().socket().shutdown(tcp::socket::shutdown_both, ignored);
    tcp().socket().close(ignored);
  }

  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  std::optional<beast::tcp_stream> plain;
  beast::flat_buffer buffer;
  bool connected = false;
  bool reused = false;
  steady::time_point idle_since;
};

struct pending {
  explicit pending(net::io_context& ioc) : timer(ioc) {}

  bool finished() const { return !done; }

  request req;
  client::callback done;
  steady::time_point deadline;
  /// Fires at the deadline, wherever the request is then.
  net::steady_timer timer;
  /// The connection it is using while in flight, to cut it at the deadline.
  std::shared_ptr<connection> conn;
  /// Where it waits while queued.
  std::optional<std::list<std::shared_ptr<pending>>::iterator> queued;
  /// Written whole at least once: its outcome is in doubt if no answer comes.
  bool written = false;
  bool retried = false;
};

bool idempotent(const std::string& method) {
  return method == "GET" || method == "HEAD";
}

// An idle connection whose peer has closed it (or sent anything, such as a
// TLS alert) is not reused: a request written into it would be in doubt.
bool still_open(connection& c) {
  if (!c.tcp().socket().is_open())
    return false;
  char byte = 0;
  auto n = ::recv(c.tcp().socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::unique_ptr<ssl::context> make_tls_context(const tls_options& tls) {
  auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  ctx->set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  ctx->set_default_verify_paths(ec);
  if (ec)
    log::warn("the system's trusted certificates cannot be loaded", {{"error", ec.message()}});
  auto load = [](const std::string& what, const std::string& file, auto&& step) {
    beast::error_code e;
    step(e);
    if (e)
      throw std::runtime_error(what + ": cannot load '" + file + "': " + e.message());
  };
  if (!tls.ca_file.empty())
    load("CA_FILE", tls.ca_file, [&](beast::error_code& e) { ctx->load_verify_file(tls.ca_file, e); });
  if (tls.client_cert_file.empty() != tls.client_key_file.empty())
    throw std::runtime_error("a client certificate needs its key, and a key its certificate");
  if (!tls.client_cert_file.empty()) {
    load("client certificate", tls.client_cert_file, [&](beast::error_code& e) {
      ctx->use_certificate_chain_file(tls.client_cert_file, e);
    });
    load("client key", tls.client_key_file, [&](beast::error_code& e) {
      ctx->use_private_key_file(tls.client_key_file, ssl::context::pem, e);
    });
  }
  return ctx;
}

} // namespace

std::optional<std::string> tls_problem(const tls_options& tls) {
  try {
    make_tls_context(tls);
  } catch (const std::exception& e) {
    return std::string{e.what()};
  }
  return std::nullopt;
}

// All state but the counters is touched only on the single io thread.
struct client::impl : std::enable_shared_from_this<impl> {
  impl(endpoint e, client_options o)
    : where(std::move(e)), options(std::move(o)), guard(net::make_work_guard(ioc)),
      health(options.name) {
    if (where.tls)
      tls = make_tls_context(options.tls);
    if (options.registry)
      for (std::size_t i = 0; i < outcome_count; ++i)
        outcomes[i] = &options.registry->get_counter(
          "ap_upstream_requests_total", "Requests to upstreams by how they ended",
          {{"upstream", options.name}, {"outcome", outcome_names[i]}});
  }

  using pending_ptr = std::shared_ptr<pending>;
  using connection_ptr = std::shared_ptr<connection>;

  void enqueue(request r, client::callback done, steady::time_point deadline) {
    auto p = std::make_shared<pending>(ioc);
    p->req = std::move(r);
    p->done = std::move(done);
    p->deadline = deadline;
    enqueue(std::move(p));
  }

  void enqueue(pending_ptr p) {
    p->timer.expires_at(p->deadline);
    p->timer.async_wait([self = shared_from_this(), p](beast::error_code ec) {
      if (!ec)
        self->expire(p);
    });
    if (auto c = take_idle())
      return start(std::move(p), std::move(c));
    if (active < options.max_connections) {
      ++active;
      return start(std::move(p), std::make_shared<connection>(ioc, tls.get()));
    }
    if (queue.size() >= options.max_queue)
      return complete(p, reply{0, {}, "queue_full", false}, outcome::queue_full);
    p->queued = queue.insert(queue.end(), p);
    queued_count = queue.size();
  }

  connection_ptr take_idle() {
    while (!idle.empty()) {
      auto c = std::move(idle.back());
      idle.pop_back();
      if (steady::now() - c->idle_since > options.max_idle || !still_open(*c)) {
        c->close();
        continue;
      }
      c->reused = true;
      ++active;
      return c;
    }
    return nullptr;
  }

  void start(pending_ptr p, connection_ptr c) {
    p->conn = c;
    if (c->connected)
      write(std::move(p), std::move(c));
    else
      connect(std::move(p), std::move(c));
  }

  void connect(pending_ptr p, connection_ptr c) {
    auto self = shared_from_this();
    resolver.async_resolve(
      where.host, std::to_string(where.port),
      [self, p, c](beast::error_code ec, tcp::resolver::results_type found) {
        if (p->finished())
          return self->abandon(c);
        if (ec)
          return self->fail(p, c, "connect: " + ec.message(), outcome::connect);
        c->tcp().async_connect(found, [self, p, c](beast::error_code ec2, tcp::endpoint) {
          if (p->finished())
            return self->abandon(c);
          if (ec2)
            return self->fail(p, c, "connect: " + ec2.message(), outcome::connect);
          beast::error_code ignored;
          c->tcp().socket().set_option(tcp::no_delay(true), ignored);
          c->connected = true;
          if (c->secure)
            self->handshake(p, c);
          else
            self->write(p, c);
        });
      });
  }

  void handshake(pending_ptr p, connection_ptr c) {
    SSL* native = c->secure->native_handle();
    if (where.ip_literal()) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), where.host.c_str());
    } else {
      // SNI names the host, and OpenSSL checks the certificate names it too.
      SSL_set_tlsext_host_name(native, where.host.c_str());
      SSL_set1_host(native, where.host.c_str());
    }
    auto self = shared_from_this();
    c->secure->async_handshake(ssl::stream_base::client, [self, p, c](beast::error_code ec) {
      if (p->finished())
        return self->abandon(c);
      if (ec) {
        auto reason = self->handshake_failure(*c, ec);
        return self->fail(p, c, "tls: " + reason, outcome::tls);
      }
      self->write(p, c);
    });
  }

  // Why a handshake failed: the certificate check's own reason when there is
  // one ("certificate has expired", "hostname mismatch", ...). Logged once
  // per change of reason, then at most every tls_log_interval.
  std::string handshake_failure(connection& c, const beast::error_code& ec) {
    auto verdict = SSL_get_verify_result(c.secure->native_handle());
    std::string reason = verdict != X509_V_OK
                           ? std::string{"certificate verify failed: "}
                               + X509_verify_cert_error_string(verdict)
                           : ec.message();
    auto now = steady::now();
    if (reason != last_tls_failure || now - last_tls_log >= tls_log_interval) {
      last_tls_failure = reason;
      last_tls_log = now;
      log::error("the TLS handshake with an upstream failed",
                 {{"upstream", options.name}, {"url", where.url()}, {"reason", reason}});
    }
    return reason;
  }

  void write(pending_ptr p, connection_ptr c) {
    // The message by hand, in one string, in one write (http/wire.hpp):
    // Beast's serializer cost this thread about a seventh of its time.
    const auto& req = p->req;
    http::wire::head head{req.method, where.base_path + req.target};
    head.field("Host", where.host);
    bool has_body = !req.body.empty() || req.method == "POST" || req.method == "PUT";
    if (has_body)
      head.field("Content-Type", req.content_type);
    for (const auto& [name, value] : req.headers)
      head.field(name, value);
    if (has_body)
      head.content_length(req.body.size());
    auto text = std::make_shared<std::string>(head.finish(req.body));
    auto self = shared_from_this();
    c->with_stream([&](auto& stream) {
      net::async_write(stream, net::buffer(*text), [self, p, c, text](beast::error_code ec, std::size_t) {
        if (p->finished())
          return self->abandon(c);
        if (ec) {
          // Not written whole, so not acted upon: on a reused connection
          // (closed by the peer while idle) it goes once more on a fresh one.
          if (c->reused && !p->retried)
            return self->retry(p, c);
          return self->fail(p, c, "write: " + ec.message(), outcome::closed);
        }
        p->written = true;
        self->read(p, c);
      });
    });
  }

  void read(pending_ptr p, connection_ptr c) {
    auto parser = std::make_shared<bhttp::response_parser<bhttp::string_body>>();
    parser->body_limit(options.body_limit);
    auto self = shared_from_this();
    c->with_stream([&](auto& stream) {
      bhttp::async_read(stream, c->buffer, *parser, [self, p, c, parser](beast::error_code ec,
                                                                            std::size_t) {
        if (p->finished())
          return self->abandon(c);
        if (ec) {
          if (c->reused && !p->retried && idempotent(p->req.method))
            return self->retry(p, c);
          return self->fail(p, c, "closed before the reply: " + ec.message(), outcome::closed);
        }
        auto& res = parser->get();
        reply r;
        r.status = static_cast<std::int32_t>(res.result_int());
        r.body = std::move(res.body());
        r.sent = true;
        bool keep = res.keep_alive();
        self->complete(p, std::move(r), outcome::answered);
        self->release(c, keep);
      });
    });
  }

  void retry(pending_ptr p, connection_ptr c) {
    c->close();
    p->retried = true;
    p->conn = std::make_shared<connection>(ioc, tls.get());
    connect(p, p->conn);
  }

  void fail(pending_ptr p, connection_ptr c, std::string why, outcome how) {
    complete(p, reply{0, {}, std::move(why), p->written}, how);
    c->close();
    release(std::move(c), false);
  }

  // The request already ended (its deadline passed): the connection it was
  // using is closed and its slot freed.
  void abandon(connection_ptr c) {
    c->close();
    release(std::move(c), false);
  }

  void expire(pending_ptr p) {
    if (p->finished())
      return;
    if (p->queued) {
      queue.erase(*p->queued);
      p->queued.reset();
      queued_count = queue.size();
    }
    // An exchange in flight is cut short: complete() first, so the aborted
    // operation's handler finds the request finished and frees its slot.
    auto c = p->conn;
    complete(p, reply{0, {}, "timeout", p->written}, outcome::timeout);
    if (c)
      c->close();
  }

  void complete(const pending_ptr& p, reply r, outcome how) {
    auto done = std::move(p->done);
    p->done = nullptr;
    p->conn.reset();
    p->timer.cancel();
    if (outcomes[static_cast<std::size_t>(how)])
      outcomes[static_cast<std::size_t>(how)]->inc();
    note_reachability(r, how);
    if (done)
      done(std::move(r));
  }

  // A 5xx or no answer at all (no connection, a failed handshake, a
  // connection closed under the request, its deadline) finds the upstream
  // unreachable; any other answer finds it reachable. A full queue says
  // nothing about the upstream itself.
  void note_reachability(const reply& r, outcome how) {
    if (how == outcome::queue_full)
      return;
    if (how != outcome::answered)
      health.unreachable(r.error);
    else if (r.status >= 500) {
      // Already down: nothing to log, so no reason to format either.
      if (health.reachable())
        health.unreachable("answered " + std::to_string(r.status));
    }
    else
      health.answered();
  }

  void release(connection_ptr c, bool keep) {
    --active;
    if (keep && c->tcp().socket().is_open()) {
      c->idle_since = steady::now();
      idle.push_back(std::move(c));
    }
    pump();
  }

  // Hands freed connections to the oldest waiting requests.
  void pump() {
    while (!queue.empty()) {
      auto c = take_idle();
      if (!c) {
        if (active >= options.max_connections)
          return;
        ++active;
        c = std::make_shared<connection>(ioc, tls.get());
      }
      auto p = std::move(queue.front());
      queue.pop_front();
      p->queued.reset();
      queued_count = queue.size();
      start(std::move(p), std::move(c));
    }
  }

  endpoint where;
  client_options options;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> guard;
  std::unique_ptr<ssl::context> tls;
  tcp::resolver resolver{ioc};
  std::vector<connection_ptr> idle;
  std::list<pending_ptr> queue;
  std::size_t active = 0;
  std::atomic<std::size_t> queued_count{0};
  metrics::counter* outcomes[outcome_count] = {};
  std::string last_tls_failure;
  steady::time_point last_tls_log;
  reachability health;
  std::thread thread;
};

client::client(endpoint where, client_options options)
  : impl_(std::make_shared<impl>(std::move(where), std::move(options))) {
  if (auto* registry = impl_->options.registry)
    registry->add_callback_gauge("ap_upstream_queue_depth",
                                 "Requests waiting for a connection to an upstream",
                                 {{"upstream", impl_->options.name}},
                                 [weak = std::weak_ptr<impl>(impl_)] {
                                   auto i = weak.lock();
                                   return i ? static_cast<double>(i->queued_count.load()) : 0.0;
                                 });
  if (auto* registry = impl_->options.registry)
    registry->add_callback_gauge("ap_upstream_reachable",
                                 "1 unless the last call to the upstream found it unreachable",
                                 {{"upstream", impl_->options.name}},
                                 [weak = std::weak_ptr<impl>(impl_)] {
                                   auto i = weak.lock();
                                   return i && !i->health.reachable() ? 0.0 : 1.0;
                                 });
  impl_->thread = std::thread([i = impl_.get()] { i->ioc.run(); });
}

client::~client() {
  impl_->guard.reset();
  impl_->ioc.stop();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

std::unique_ptr<client> make_client(endpoint where, client_options options) {
  auto name = options.name;
  try {
    return std::make_unique<client>(std::move(where), std::move(options));
  } catch (const std::exception& e) {
    log::error("an upstream client cannot be made; the upstream counts as unreachable",
               {{"upstream", name}, {"error", e.what()}});
    return nullptr;
  }
}

void client::send(request r, callback done) {
  auto deadline = steady::now() + r.timeout;
  net::post(impl_->ioc, [i = impl_, r = std::move(r), done = std::move(done), deadline]() mutable {
    i->enqueue(std::move(r), std::move(done), deadline);
  });
}

void client::send_all(std::vector<std::pair<request, callback>> calls) {
  if (calls.empty())
    return;
  auto now = steady::now();
  std::vector<steady::time_point> deadlines;
  deadlines.reserve(calls.size());
  for (const auto& call : calls)
    deadlines.push_back(now + call.first.timeout);
  net::post(impl_->ioc, [i = impl_, calls = std::move(calls),
                         deadlines = std::move(deadlines)]() mutable {
    for (std::size_t k = 0; k < calls.size(); ++k)
      i->enqueue(std::move(calls[k].first), std::move(calls[k].second), deadlines[k]);
  });
}

} // namespace ap::upstream
