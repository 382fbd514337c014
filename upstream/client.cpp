// The outbound HTTP client. With http/server.cpp, one of the two translation
// units that include Beast: the costliest to compile, so everything else
// talks to it through upstream/client.hpp.
#include "upstream/client.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
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

struct pending;

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
  /// Connecting (resolve, connect, handshake) has begun.
  bool opening = false;
  /// Connected (and the handshake done): requests can be written.
  bool ready = false;
  /// Has served a request before, or waited idle: the upstream may have
  /// closed it meanwhile.
  bool reused = false;
  /// Closed by this client; the handlers of its operations do nothing more.
  bool dead = false;
  bool writing = false;
  bool write_posted = false;
  bool reading = false;
  steady::time_point idle_since;
  /// When its last answer arrived, or its last write ended if later: the
  /// start of the current answer's service time.
  steady::time_point last_progress;
  /// The requests on this connection, in the order they are written and
  /// answered (HTTP/1.1 answers in order): the first `started` were part of
  /// a write begun, the others wait for the next write.
  std::deque<std::shared_ptr<pending>> line;
  std::size_t started = 0;
  /// The write in progress: its text, where each request in it ends, and
  /// those requests.
  std::string out;
  std::vector<std::size_t> out_ends;
  std::vector<std::shared_ptr<pending>> out_requests;
};

struct pending {
  explicit pending(net::io_context& ioc) : timer(ioc) {}

  bool finished() const { return !done; }

  request req;
  client::callback done;
  steady::time_point deadline;
  /// Fires at the deadline, wherever the request is then.
  net::steady_timer timer;
  /// The connection it is on while in flight, to cut it at the deadline.
  std::weak_ptr<connection> conn;
  /// Where it waits while queued.
  std::optional<std::list<std::shared_ptr<pending>>::iterator> queued;
  /// Written whole at least once: its outcome is in doubt if no answer comes.
  bool written = false;
  /// In a write not yet ended: it may have gone out whole already.
  bool writing = false;
  bool retried = false;

  /// Whether the upstream may have read it whole.
  bool maybe_sent() const { return written || writing; }
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
    if (options.registry && options.pipeline > 1)
      pipelined = &options.registry->get_counter(
        "ap_upstream_pipelined_total",
        "Requests to upstreams put on a connection behind others awaiting their answers",
        {{"upstream", options.name}});
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
    if (auto c = place())
      return assign(std::move(p), std::move(c));
    if (queue.size() >= options.max_queue)
      return complete(p, reply{0, {}, "queue_full", false}, outcome::queue_full);
    p->queued = queue.insert(queue.end(), p);
    queued_count = queue.size();
  }

  // The connection the next request goes on, or null when it must wait: an
  // idle one, else a new one under the cap, else the one in use with the
  // fewest requests on it and room in its pipeline. Pipelining takes the
  // place of waiting in the queue, never of a connection of its own: an
  // upstream serves a connection's requests one after another, so requests
  // spread over connections are answered side by side.
  connection_ptr place() {
    if (auto c = take_idle())
      return c;
    if (busy.size() < options.max_connections) {
      auto c = std::make_shared<connection>(ioc, tls.get());
      busy.push_back(c);
      return c;
    }
    if (options.pipeline <= 1)
      return nullptr;
    connection_ptr best;
    for (auto& c : busy)
      if (has_room(*c) && (!best || c->line.size() < best->line.size()))
        best = c;
    return best;
  }

  // Whether one more request may wait on `c` behind those it carries: only
  // while the upstream answers at a measured pace that would answer them
  // all within the pipeline's budget, and has not gone quiet on `c` for
  // longer than that. An upstream that serves one request at a time per
  // connection (most do) is never made to hold a request behind a slow one.
  bool has_room(const connection& c) const {
    if (c.dead || !c.ready || c.line.empty() || c.line.size() >= options.pipeline || !pace)
      return false;
    if (steady::now() - c.last_progress > options.pipeline_budget)
      return false;
    return *pace * static_cast<long>(c.line.size() + 1) <= options.pipeline_budget;
  }

  void note_pace(steady::duration sample) {
    pace = pace ? *pace + (sample - *pace) / 8 : sample;
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
      busy.push_back(c);
      return c;
    }
    return nullptr;
  }

  void assign(pending_ptr p, connection_ptr c) {
    p->conn = c;
    if (c->line.empty())
      c->last_progress = steady::now();
    else if (pipelined)
      pipelined->inc();
    c->line.push_back(std::move(p));
    if (!c->opening) {
      c->opening = true;
      return connect(std::move(c));
    }
    if (c->ready)
      schedule_write(std::move(c));
  }

  // The write goes after the handler that assigned the request, so that the
  // requests handed over together (send_all) leave in one write.
  void schedule_write(connection_ptr c) {
    if (c->writing || c->write_posted)
      return;
    c->write_posted = true;
    net::post(ioc, [self = shared_from_this(), c] {
      c->write_posted = false;
      if (!c->dead)
        self->write(c);
    });
  }

  void connect(connection_ptr c) {
    auto self = shared_from_this();
    resolver.async_resolve(
      where.host, std::to_string(where.port),
      [self, c](beast::error_code ec, tcp::resolver::results_type found) {
        if (c->dead)
          return;
        if (ec)
          return self->fail_all(c, "connect: " + ec.message(), outcome::connect);
        c->tcp().async_connect(found, [self, c](beast::error_code ec2, tcp::endpoint) {
          if (c->dead)
            return;
          if (ec2)
            return self->fail_all(c, "connect: " + ec2.message(), outcome::connect);
          beast::error_code ignored;
          c->tcp().socket().set_option(tcp::no_delay(true), ignored);
          if (c->secure)
            self->handshake(c);
          else
            self->opened(c);
        });
      });
  }

  void handshake(connection_ptr c) {
    SSL* native = c->secure->native_handle();
    if (where.ip_literal()) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), where.host.c_str());
    } else {
      // SNI names the host, and OpenSSL checks the certificate names it too.
      SSL_set_tlsext_host_name(native, where.host.c_str());
      SSL_set1_host(native, where.host.c_str());
    }
    auto self = shared_from_this();
    c->secure->async_handshake(ssl::stream_base::client, [self, c](beast::error_code ec) {
      if (c->dead)
        return;
      if (ec) {
        auto reason = self->handshake_failure(*c, ec);
        return self->fail_all(c, "tls: " + reason, outcome::tls);
      }
      self->opened(c);
    });
  }

  void opened(const connection_ptr& c) {
    c->ready = true;
    if (c->line.empty())
      return release(c);
    write(c);
    // Room on it for requests waiting in the queue.
    pump();
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

  // Writes every request on `c` not yet written, in one write. The messages
  // are made by hand, in one string (http/wire.hpp): Beast's serializer cost
  // this thread about a seventh of its time.
  void write(const connection_ptr& c) {
    if (c->dead || c->writing || c->started == c->line.size())
      return;
    c->out.clear();
    c->out_ends.clear();
    c->out_requests.clear();
    for (auto k = c->started; k < c->line.size(); ++k) {
      const auto& req = c->line[k]->req;
      http::wire::head head{req.method, where.base_path + req.target};
      head.field("Host", where.host);
      bool has_body = !req.body.empty() || req.method == "POST" || req.method == "PUT";
      if (has_body)
        head.field("Content-Type", req.content_type);
      for (const auto& [name, value] : req.headers)
        head.field(name, value);
      if (has_body)
        head.content_length(req.body.size());
      if (c->out.empty())
        c->out = head.finish(req.body);
      else
        c->out += head.finish(req.body);
      c->out_ends.push_back(c->out.size());
      c->out_requests.push_back(c->line[k]);
      c->line[k]->writing = true;
    }
    c->started = c->line.size();
    c->writing = true;
    auto self = shared_from_this();
    c->with_stream([&](auto& stream) {
      net::async_write(stream, net::buffer(c->out), [self, c](beast::error_code ec, std::size_t n) {
        c->writing = false;
        // What went out whole may have been acted upon, even if the rest
        // did not.
        for (std::size_t k = 0; k < c->out_requests.size(); ++k) {
          auto& p = *c->out_requests[k];
          if (p.finished() || p.conn.lock() != c)
            continue;  // ended, or gone on another connection since
          p.writing = false;
          if (c->out_ends[k] <= n)
            p.written = true;
        }
        bool first_on_line = !c->line.empty() && c->line.front() == c->out_requests.front();
        c->out_requests.clear();
        if (c->dead)
          return;
        if (ec)
          return self->break_connection(c, "write: " + ec.message(), outcome::closed);
        // The answer's wait begins now, if nothing was waiting before it.
        if (first_on_line)
          c->last_progress = steady::now();
        if (!c->reading && c->started > 0)
          self->read(c);
        self->write(c);
      });
    });
  }

  // Reads the answer to the first request on `c`, and goes on while
  // requests written wait for theirs.
  void read(const connection_ptr& c) {
    c->reading = true;
    auto parser = std::make_shared<bhttp::response_parser<bhttp::string_body>>();
    parser->body_limit(options.body_limit);
    auto self = shared_from_this();
    c->with_stream([&](auto& stream) {
      bhttp::async_read(stream, c->buffer, *parser, [self, c, parser](beast::error_code ec,
                                                                         std::size_t) {
        c->reading = false;
        if (c->dead)
          return;
        if (ec || c->started == 0)
          return self->break_connection(
            c, "closed before the reply: " + (ec ? ec.message() : "an answer nothing asked for"),
            outcome::closed);
        auto p = std::move(c->line.front());
        c->line.pop_front();
        --c->started;
        auto now = steady::now();
        self->note_pace(now - c->last_progress);
        c->last_progress = now;
        c->reused = true;
        auto& res = parser->get();
        reply r;
        r.status = static_cast<std::int32_t>(res.result_int());
        r.body = std::move(res.body());
        r.sent = true;
        bool keep = res.keep_alive();
        self->complete(p, std::move(r), outcome::answered);
        if (!keep) {
          // The upstream closes after this answer: what else is on the
          // connection goes as if it had closed under it.
          if (!c->line.empty())
            return self->break_connection(c, "closed before the reply: the upstream closed the "
                                             "connection after an earlier answer",
                                          outcome::closed);
          self->retire(c);
          return self->pump();
        }
        if (c->line.empty())
          return self->release(c);
        if (c->started > 0)
          self->read(c);
        // Else the rest waits for its write, which starts the next read.
      });
    });
  }

  // `c` is lost with requests on it. Each ends by what may have reached the
  // upstream: one written whole, or in a write not yet ended, is in doubt
  // and fails (the caller decides, under its idempotency key), unless it is
  // a GET on a reused connection, which goes once more; one partly written
  // goes once more if the connection was reused (closed by the peer while
  // idle), else fails; one never written goes on another connection, ahead
  // of the queue.
  void break_connection(const connection_ptr& c, const std::string& why, outcome how) {
    auto line = std::move(c->line);
    auto started = c->started;
    c->line.clear();
    c->started = 0;
    retire(c);
    std::vector<pending_ptr> again;
    for (std::size_t k = 0; k < line.size(); ++k) {
      auto& p = line[k];
      if (p->finished())
        continue;
      bool resend = p->maybe_sent() ? c->reused && !p->retried && idempotent(p->req.method)
                                    : k >= started || (c->reused && !p->retried);
      if (!resend) {
        complete(p, reply{0, {}, why, p->maybe_sent()}, how);
        continue;
      }
      if (k < started)
        p->retried = true;
      p->conn.reset();
      again.push_back(std::move(p));
    }
    for (auto it = again.rbegin(); it != again.rend(); ++it)
      (*it)->queued = queue.insert(queue.begin(), *it);
    queued_count = queue.size();
    pump();
  }

  // `c` could not be opened: nothing on it was written.
  void fail_all(const connection_ptr& c, const std::string& why, outcome how) {
    auto line = std::move(c->line);
    c->line.clear();
    retire(c);
    for (auto& p : line)
      if (!p->finished())
        complete(p, reply{0, {}, why, false}, how);
    pump();
  }

  void expire(pending_ptr p) {
    if (p->finished())
      return;
    if (p->queued) {
      queue.erase(*p->queued);
      p->queued.reset();
      queued_count = queue.size();
    }
    auto c = p->conn.lock();
    complete(p, reply{0, {}, "timeout", p->maybe_sent()}, outcome::timeout);
    if (!c || c->dead)
      return;
    auto at = std::find(c->line.begin(), c->line.end(), p);
    if (at == c->line.end())
      return;
    if (static_cast<std::size_t>(at - c->line.begin()) >= c->started) {
      // Not written yet: it just leaves the line.
      c->line.erase(at);
      if (!c->line.empty() || c->writing || c->reading)
        return;
      if (c->ready)
        return release(c);
      retire(c);
      return pump();
    }
    // Written, or being written: the exchange is cut short, and the pace of
    // this upstream is no longer one to pipeline at.
    pace = std::max<steady::duration>(pace.value_or(steady::duration::zero()), p->req.timeout);
    break_connection(c, "closed before the reply: the connection was closed when a request on it "
                        "timed out",
                     outcome::closed);
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

  // `c` is closed and its slot freed.
  void retire(const connection_ptr& c) {
    c->dead = true;
    c->close();
    forget(c);
  }

  void forget(const connection_ptr& c) {
    auto at = std::find(busy.begin(), busy.end(), c);
    if (at != busy.end()) {
      *at = std::move(busy.back());
      busy.pop_back();
    }
  }

  // `c` carries nothing more: it waits idle for the next request.
  void release(const connection_ptr& c) {
    forget(c);
    if (c->tcp().socket().is_open()) {
      c->idle_since = steady::now();
      idle.push_back(c);
    }
    pump();
  }

  // Hands freed connections, and room on them, to the oldest waiting
  // requests.
  void pump() {
    while (!queue.empty()) {
      auto c = place();
      if (!c)
        return;
      auto p = std::move(queue.front());
      queue.pop_front();
      p->queued.reset();
      queued_count = queue.size();
      assign(std::move(p), std::move(c));
    }
  }

  endpoint where;
  client_options options;
  net::io_context ioc;
  net::executor_work_guard<net::io_context::executor_type> guard;
  std::unique_ptr<ssl::context> tls;
  tcp::resolver resolver{ioc};
  std::vector<connection_ptr> idle;
  /// Connections carrying requests, or being opened for them.
  std::vector<connection_ptr> busy;
  std::list<pending_ptr> queue;
  /// The upstream's recent time to answer one request (a moving average),
  /// once measured.
  std::optional<steady::duration> pace;
  std::atomic<std::size_t> queued_count{0};
  metrics::counter* outcomes[outcome_count] = {};
  metrics::counter* pipelined = nullptr;
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
