// The only translation unit that includes Beast: it is the costliest to
// compile, so everything else talks to it through http/server.hpp.
#include "http/server.hpp"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "core/handoff.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "http/request_reading.hpp"
#include "http/wire.hpp"

namespace ap::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

namespace {

class session_base;
using session_list = std::list<std::weak_ptr<session_base>>;

// What the server holds of a connection, whichever stream it speaks over.
class session_base {
public:
  virtual ~session_base() = default;
  virtual void set_registration(session_list::iterator where) = 0;
  // Serves requests (after the TLS handshake, with TLS).
  virtual void start() = 0;
  // Answers 503 and closes: the connection cap is reached.
  virtual void reject() = 0;
  // Called on shutdown: an idle connection closes now, a busy one after its
  // reply is written.
  virtual void shutdown() = 0;
};

// OpenSSL reports a file it cannot open as a bare "system library" error;
// the reason (no such file, permission denied) is what an operator needs.
void require_readable(const std::string& what, const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    throw std::runtime_error(what + " '" + path + "' cannot be read: " + std::strerror(errno));
  std::fclose(f);
}

// Reads the certificate chain and key into a context that allows TLS 1.2
// and later only. Throws std::runtime_error naming what did not load.
std::shared_ptr<ssl::context> make_tls_context(const tls_files& files) {
  require_readable("TLS certificate chain", files.cert_file);
  require_readable("TLS private key", files.key_file);
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1)
    throw std::runtime_error("TLS: cannot require TLS 1.2 or later");
  // Compression invites CRIME-style attacks; renegotiation started by a
  // client costs the server a handshake each time the client asks.
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_compression
                   | SSL_OP_NO_RENEGOTIATION);
  beast::error_code ec;
  ctx->use_certificate_chain_file(files.cert_file, ec);
  if (ec)
    throw std::runtime_error("TLS certificate chain '" + files.cert_file + "' does not load: "
                             + ec.message());
  // OpenSSL checks the key against the certificate as it loads it; a
  // renewal that replaced one file but not yet the other fails here.
  ctx->use_private_key_file(files.key_file, ssl::context::pem, ec);
  if (ec && ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == X509_R_KEY_VALUES_MISMATCH)
    throw std::runtime_error("TLS private key '" + files.key_file + "' does not match the certificate '"
                             + files.cert_file + "'");
  if (ec)
    throw std::runtime_error("TLS private key '" + files.key_file + "' does not load: " + ec.message());
  if (!files.client_ca_file.empty()) {
    require_readable("TLS client CA", files.client_ca_file);
    ctx->load_verify_file(files.client_ca_file, ec);
    if (ec)
      throw std::runtime_error("TLS client CA '" + files.client_ca_file + "' does not load: "
                               + ec.message());
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return ctx;
}

} // namespace

struct server::impl : std::enable_shared_from_this<impl> {
  impl(router& r, metrics::registry& m, server_limits l)
    : routes(r),
      registry(m),
      limits(l),
      acceptor(ioc),
      control(net::make_strand(ioc)),
      drain_timer(control),
      rejected(m.get_counter("ap_http_connections_rejected_total",
                             "Connections refused because the connection cap was reached")),
      accepted(m.get_counter("ap_http_connections_accepted_total", "Connections accepted")) {
  }

  void accept();
  void on_accept(beast::error_code ec, tcp::socket socket);
  void begin_shutdown();
  void session_closed(session_list::iterator where);
  void wait_for_signal();
  void reload_tls();
  std::shared_ptr<ssl::context> current_tls();

  /// A request's series: looked up in the registry once per route, method
  /// and status (each from a fixed set), not once per request.
  struct request_series {
    metrics::counter* requests;
    metrics::histogram* duration;
  };
  request_series& request_series_of(std::string_view route, std::string_view method, int status) {
    std::lock_guard<std::mutex> guard{series_mutex};
    auto it = series.find(std::make_tuple(route, method, status));
    if (it == series.end()) {
      std::string r{route}, m{method};
      request_series s{
        &registry.get_counter("ap_http_requests_total", "HTTP requests by route, method and status",
                              {{"route", r}, {"method", m}, {"status", std::to_string(status)}}),
        &registry.get_histogram("ap_http_request_duration_seconds",
                                "HTTP request latency from the last byte read to the reply",
                                {{"route", r}, {"method", m}})};
      it = series.emplace(std::make_tuple(std::move(r), std::move(m), status), s).first;
    }
    return it->second;
  }

  router& routes;
  metrics::registry& registry;
  std::mutex series_mutex;
  std::map<std::tuple<std::string, std::string, int>, request_series, std::less<>> series;
  server_limits limits;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::strand<net::io_context::executor_type> control;
  net::steady_timer drain_timer;
  std::optional<net::signal_set> signals;
  std::vector<std::thread> threads;
  metrics::counter& rejected;
  metrics::counter& accepted;

  std::atomic<std::size_t> connections{0};
  std::atomic<bool> draining{false};
  std::mutex sessions_mutex;
  session_list sessions;

  // With TLS: where the certificate comes from, and the context new
  // connections take. A reload swaps the pointer; each connection holds
  // the context it started with.
  std::optional<tls_files> tls_source;
  std::mutex tls_mutex;
  std::shared_ptr<ssl::context> tls;
  metrics::counter* handshake_failures = nullptr;
};

namespace {

// Hands tasks held in a batch to the io threads in one post; each then
// goes to its connection's strand, at once when the strand is free.
void run_on_io_threads(void* ioc, std::vector<handoff::task>&& tasks) {
  net::post(*static_cast<net::io_context*>(ioc), [tasks = std::move(tasks)] {
    for (const auto& t : tasks)
      t();
  });
}

using plain_stream = beast::tcp_stream;
using tls_stream = beast::ssl_stream<beast::tcp_stream>;

// How long a closing TLS connection waits for the client's close_notify.
constexpr auto tls_shutdown_timeout = std::chrono::seconds(2);

// One connection, over plain TCP or TLS: one implementation, so both obey
// the same limits, timeouts and error answers. Every handler runs on the
// connection's strand; replies from actors are posted back onto it, so no
// lock guards the session.
template <class Stream>
class session : public session_base, public std::enable_shared_from_this<session<Stream>> {
  static constexpr bool is_tls = std::is_same_v<Stream, tls_stream>;

public:
  // `tls` is the context to handshake with; null for a plain connection.
  session(tcp::socket&& socket, std::shared_ptr<ssl::context> tls, std::shared_ptr<server::impl> srv)
    : tls_(std::move(tls)),
      stream_(open(std::move(socket), tls_.get())),
      srv_(std::move(srv)),
      deadline_(stream_.get_executor()) {
  }

  ~session() override { srv_->session_closed(where_); }

  void set_registration(session_list::iterator where) override { where_ = where; }

  void start() override {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&session::handshake, this->shared_from_this()));
  }

  void reject() override {
    rejected_ = true;
    start();
  }

  void shutdown() override {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      self->closing_ = true;
      if (self->state_ == state::handshaking || self->state_ == state::reading) {
        beast::error_code ec;
        self->socket().cancel(ec);
      }
    });
  }

private:
  enum class state { handshaking, reading, handling, writing, closing };

  static Stream open(tcp::socket&& socket, ssl::context* tls) {
    if constexpr (is_tls)
      return Stream(std::move(socket), *tls);
    else
      return Stream(std::move(socket));
  }

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  tcp::socket& socket() { return lowest().socket(); }

  // With TLS, the handshake comes first, under the read timeout: a client
  // that connects and stalls holds a connection no longer than one that
  // stalls in its headers. A client that speaks plain HTTP fails the
  // handshake and is closed without an answer, since it could not read one.
  void handshake() {
    if constexpr (is_tls) {
      state_ = state::handshaking;
      lowest().expires_after(srv_->limits.read_timeout);
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) {
                                  // A handshake cut short by a shutdown is no client's failure.
                                  if (!self->closing_)
                                    self->srv_->handshake_failures->inc();
                                  if (log::enabled(log::level::debug))
                                    log::debug("TLS handshake failed", {{"error", ec.message()}});
                                  return self->close();
                                }
                                self->serve();
                              });
    } else {
      serve();
    }
  }

  void serve() {
    if (!rejected_)
      return read_request();
    keep_alive_ = false;
    route_ = "rejected";
    method_ = "-";
    request_id_ = new_request_id();
    started_ = std::chrono::steady_clock::now();
    write(error_response(503, "overloaded", "too many open connections; retry later"));
  }

  void read_request() {
    if (closing_ || srv_->draining.load())
      return close();
    state_ = state::reading;
    parser_.emplace();
    limit_parser(*parser_, srv_->limits);
    // One deadline covers the headers and the body (SPEC §8), and an idle
    // keep-alive connection waiting for its next request.
    lowest().expires_after(srv_->limits.read_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&session::on_header,
                                                       this->shared_from_this()));
  }

  // The framing is judged before any of the body is read, so bytes whose
  // place in the stream is in doubt are never parsed as a request.
  void on_header(beast::error_code ec, std::size_t bytes) {
    if (ec)
      return on_read(ec, bytes);
    if (auto problem = framing_problem(parser_->get())) {
      started_ = std::chrono::steady_clock::now();
      note_unreadable_request();
      return write(error_response(400, "bad_request", problem));
    }
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&session::on_read, this->shared_from_this()));
  }

  // For a request answered without being handled: what the reply and the
  // metrics need, and no keep-alive, since the rest of the stream cannot be
  // trusted to start at a request boundary.
  void note_unreadable_request() {
    keep_alive_ = false;
    version_ = parser_->is_header_done() ? parser_->get().version() : 11;
    method_ = parser_->is_header_done() ? std::string{parser_->get().method_string()} : "-";
    request_id_ = parser_->is_header_done() ? pick_request_id(parser_->get()) : new_request_id();
    route_ = "invalid";
  }

  void on_read(beast::error_code ec, std::size_t) {
    started_ = std::chrono::steady_clock::now();
    if (ec == bhttp::error::end_of_stream || ec == net::error::operation_aborted
        || ec == beast::error::timeout || ec == net::error::connection_reset
        || ec == net::error::eof)
      return close();
    if (ec) {
      // The request could not be read whole: answer, then close.
      note_unreadable_request();
      if (ec == bhttp::error::body_limit)
        return write(error_response(413, "payload_too_large",
                                    "the body exceeds "
                                      + std::to_string(srv_->limits.body_limit) + " bytes"));
      if (ec == bhttp::error::header_limit)
        return write(error_response(431, "headers_too_large",
                                    "the request headers exceed "
                                      + std::to_string(srv_->limits.header_limit) + " bytes"));
      if (ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category())
        return write(error_response(400, "bad_request", "malformed HTTP request: " + ec.message()));
      return close();
    }
    handle(parser_->release());
  }

  template <class Message>
  static std::string pick_request_id(const Message& msg) {
    auto it = msg.find("x-request-id");
    if (it != msg.end() && is_acceptable_request_id({it->value().data(), it->value().size()}))
      return std::string{it->value()};
    return new_request_id();
  }

  void handle(bhttp::request<bhttp::string_body> msg) {
    state_ = state::handling;
    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    method_ = std::string{msg.method_string()};
    request_id_ = pick_request_id(msg);

    request req = to_request(msg);
    req.request_id = request_id_;
    req.received_at = started_;

    auto replied = std::make_shared<std::atomic<bool>>(false);
    auto self = this->shared_from_this();
    reply_fn reply = [self, replied](response res) {
      if (replied->exchange(true))
        return;
      auto write = [self, res = std::move(res)]() mutable { self->write(std::move(res)); };
      if (!handoff::holding())
        return net::post(self->stream_.get_executor(), std::move(write));
      // Inside a hand-off batch (a checkout actor answering a database
      // batch's checkouts in a row), the replies reach the io thread
      // together, and wake it once.
      handoff::task to_strand = [self, write = std::move(write)]() mutable {
        net::dispatch(self->stream_.get_executor(), std::move(write));
      };
      if (!handoff::hold(&self->srv_->ioc, &run_on_io_threads, to_strand))
        net::post(self->stream_.get_executor(), std::move(to_strand));
    };
    deadline_.expires_after(srv_->limits.handler_deadline);
    deadline_.async_wait([self, replied](beast::error_code ec) {
      if (ec || replied->exchange(true))
        return;
      log::error("handler missed its deadline", {{"requestId", self->request_id_}});
      self->write(error_response(504, "timeout", "the request took too long"));
    });
    try {
      route_ = srv_->routes.dispatch(req, reply);
    } catch (const std::exception& e) {
      log::error("handler failed", {{"requestId", request_id_}, {"error", e.what()}});
      reply(error_response(500, "internal", "internal error"));
    }
  }

  void write(response res) {
    deadline_.cancel();
    if (res.reset) {
      // Linger 0: close() sends a TCP reset, not an orderly FIN (nor, with
      // TLS, a close_notify).
      beast::error_code ec;
      socket().set_option(net::socket_base::linger(true, 0), ec);
      state_ = state::closing;
      lowest().close();
      return;
    }
    state_ = state::writing;
    bool keep = keep_alive_ && !closing_ && !srv_->draining.load();
    // The message is written by hand into one string and sent in one write:
    // Beast's serializer cost about a tenth of an io thread's time, most of
    // it walking its buffer sequences (docs/performance.md). One buffer, not
    // the head and the body as two: under TLS, Beast's flat_stream ends an
    // asio write of two buffers early once the first is written (it sizes
    // the next write by the first buffer, by then empty), so a body over
    // 16 KiB was never sent.
    auto reason = bhttp::obsolete_reason(bhttp::int_to_status(static_cast<unsigned>(res.status)));
    wire::head head{version_, res.status, {reason.data(), reason.size()}};
    head.field("Content-Type", res.content_type).field("X-Request-Id", request_id_);
    for (const auto& [name, value] : res.headers)
      head.field(name, value);
    // As Beast's keep_alive(): HTTP/1.1 keeps the connection unless told,
    // HTTP/1.0 closes it unless told.
    if (version_ >= 11 && !keep)
      head.connection("close");
    else if (version_ < 11 && keep)
      head.connection("keep-alive");
    std::string_view body;
    if (!wire::status_has_no_body(res.status)) {
      head.content_length(res.body.size());
      if (method_ != "HEAD")
        body = res.body;
    }
    auto out = std::make_shared<std::string>(head.finish(body));
    record(res.status);
    lowest().expires_after(srv_->limits.write_timeout);
    net::async_write(stream_, net::buffer(*out),
                     [self = this->shared_from_this(), out, keep](beast::error_code ec, std::size_t) {
                       if (ec)
                         return self->close();
                       if (!keep)
                         return self->close_gracefully();
                       self->read_request();
                     });
  }

  void record(int status) {
    auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_);
    std::string route{route_};
    // Series are never dropped, so a label may only take values from a fixed
    // set: the route is a pattern or a fixed name, the method one the
    // service serves, "OTHER", or "-" when no request line was read.
    std::string method{method_ == "-" ? std::string_view{method_} : method_label(method_)};
    auto& series = srv_->request_series_of(route, method, status);
    series.requests->inc();
    series.duration->observe(elapsed.count());
    if (status >= 500)
      log::warn("request failed", {{"requestId", request_id_}, {"route", route},
                                   {"status", std::to_string(status)}});
    else if (log::enabled(log::level::debug))
      log::debug("request", {{"requestId", request_id_}, {"route", route},
                             {"status", std::to_string(status)}});
  }

  // Half-closes, then reads and discards what the client still sends, so the
  // final close does not reset the connection and destroy the reply in
  // flight (the client may still be sending an oversized body). With TLS,
  // the close_notify comes first; OpenSSL ends its wait for the client's
  // with an error when application data arrives instead (the rest of that
  // body), and then the TCP half-close and the drain follow all the same,
  // below TLS.
  void close_gracefully() {
    state_ = state::closing;
    if constexpr (is_tls) {
      lowest().expires_after(tls_shutdown_timeout);
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code ec) {
        if (!ec || !self->socket().is_open())
          return self->close();
        self->half_close_and_drain();
      });
    } else {
      half_close_and_drain();
    }
  }

  void half_close_and_drain() {
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().expires_after(std::chrono::seconds(2));
    drain();
  }

  // Reads below TLS: what still arrives is discarded unread.
  void drain() {
    lowest().async_read_some(net::buffer(discard_),
                            [self = this->shared_from_this()](beast::error_code ec, std::size_t n) {
                              self->discarded_ += n;
                              if (ec || self->discarded_ > (1u << 20))
                                return self->close();
                              self->drain();
                            });
  }

  void close() {
    state_ = state::closing;
    beast::error_code ec;
    socket().shutdown(tcp::socket::shutdown_both, ec);
    lowest().close();
  }

  // Declared before the stream, which is built from it; kept alive by the
  // session, since a reload may replace the server's context meanwhile.
  std::shared_ptr<ssl::context> tls_;
  Stream stream_;
  std::shared_ptr<server::impl> srv_;
  net::steady_timer deadline_;
  beast::flat_buffer buffer_;
  std::optional<request_parser> parser_;
  session_list::iterator where_;
  state state_ = state::handshaking;
  bool rejected_ = false;
  bool closing_ = false;
  bool keep_alive_ = true;
  unsigned version_ = 11;
  std::string method_;
  std::string request_id_;
  std::string_view route_ = "unmatched";
  std::chrono::steady_clock::time_point started_;
  std::array<char, 4096> discard_{};
  std::size_t discarded_ = 0;
};

} // namespace

void server::impl::accept() {
  acceptor.async_accept(net::make_strand(ioc),
                        beast::bind_front_handler(&impl::on_accept, shared_from_this()));
}

void server::impl::on_accept(beast::error_code ec, tcp::socket socket) {
  if (draining.load() || !acceptor.is_open())
    return;
  if (ec) {
    log::warn("accept failed", {{"error", ec.message()}});
    return accept();
  }
  accepted.inc();
  // A reply goes out as soon as it is written: with Nagle's algorithm, the
  // reply to a pipelined request would wait for the client to acknowledge
  // the reply before it, up to its delayed-acknowledgement timer (40 ms).
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::shared_ptr<session_base> s;
  if (auto ctx = current_tls())
    s = std::make_shared<session<tls_stream>>(std::move(socket), std::move(ctx), shared_from_this());
  else
    s = std::make_shared<session<plain_stream>>(std::move(socket), nullptr, shared_from_this());
  {
    std::lock_guard<std::mutex> guard{sessions_mutex};
    s->set_registration(sessions.insert(sessions.end(), s));
  }
  if (connections.fetch_add(1) >= limits.max_connections) {
    rejected.inc();
    s->reject();
  } else {
    s->start();
  }
  accept();
}

std::shared_ptr<ssl::context> server::impl::current_tls() {
  std::lock_guard<std::mutex> guard{tls_mutex};
  return tls;
}

// Runs on the control strand. Reading two small files blocks an io thread
// briefly, once per SIGHUP.
void server::impl::reload_tls() {
  try {
    auto fresh = make_tls_context(*tls_source);
    {
      std::lock_guard<std::mutex> guard{tls_mutex};
      tls = std::move(fresh);
    }
    log::info("TLS certificate reloaded: new connections use it",
              {{"certFile", tls_source->cert_file}, {"keyFile", tls_source->key_file}});
  } catch (const std::exception& e) {
    log::error("TLS certificate reload failed: keeping the previous certificate",
               {{"error", e.what()}});
  }
}

void server::impl::session_closed(session_list::iterator where) {
  {
    std::lock_guard<std::mutex> guard{sessions_mutex};
    sessions.erase(where);
  }
  if (connections.fetch_sub(1) == 1 && draining.load())
    net::post(control, [self = shared_from_this()] { self->drain_timer.cancel(); });
}

void server::impl::begin_shutdown() {
  if (draining.exchange(true))
    return;
  log::info("shutting down: no new connections, finishing in-flight requests");
  beast::error_code ec;
  acceptor.close(ec);
  if (signals)
    signals->cancel(ec);
  std::vector<std::shared_ptr<session_base>> open;
  {
    std::lock_guard<std::mutex> guard{sessions_mutex};
    for (auto& weak : sessions)
      if (auto s = weak.lock())
        open.push_back(std::move(s));
  }
  for (auto& s : open)
    s->shutdown();
  if (connections.load() == 0)
    return;
  // Waits for the last connection (session_closed cancels the timer) or gives
  // up on stragglers when the drain timeout passes.
  drain_timer.expires_after(limits.drain_timeout);
  drain_timer.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (!ec) {
      log::warn("drain timeout: closing remaining connections");
      self->ioc.stop();
    }
  });
}

void server::impl::wait_for_signal() {
  signals->async_wait([self = shared_from_this()](beast::error_code ec, int sig) {
    if (ec)
      return;
    log::info("signal received", {{"signal", std::to_string(sig)}});
    if (sig == SIGHUP) {
      net::post(self->control, [self] {
        if (!self->draining.load())
          self->reload_tls();
      });
      return self->wait_for_signal();
    }
    net::post(self->control, [self] { self->begin_shutdown(); });
  });
}

server::server(router& routes, metrics::registry& registry, server_limits limits)
  : impl_(std::make_shared<impl>(routes, registry, limits)) {
  registry.add_callback_gauge("ap_http_connections_open", "Open HTTP connections", {},
                              [weak = std::weak_ptr<impl>(impl_)] {
                                auto p = weak.lock();
                                return p ? static_cast<double>(p->connections.load()) : 0.0;
                              });
}

server::~server() {
  stop();
}

void server::use_tls(tls_files files) {
  auto ctx = make_tls_context(files);
  if (!impl_->handshake_failures)
    impl_->handshake_failures = &impl_->registry.get_counter(
      "ap_http_tls_handshake_failures_total",
      "TLS handshakes that failed or timed out (no HTTP request was read)");
  std::lock_guard<std::mutex> guard{impl_->tls_mutex};
  impl_->tls_source = std::move(files);
  impl_->tls = std::move(ctx);
}

std::uint16_t server::listen(const std::string& address, std::uint16_t port) {
  auto& a = impl_->acceptor;
  tcp::endpoint endpoint{net::ip::make_address(address), port};
  a.open(endpoint.protocol());
  a.set_option(net::socket_base::reuse_address(true));
  a.bind(endpoint);
  a.listen(net::socket_base::max_listen_connections);
  impl_->accept();
  return a.local_endpoint().port();
}

void server::run(std::size_t threads, bool handle_signals) {
  if (handle_signals) {
    impl_->signals.emplace(impl_->ioc, SIGTERM, SIGINT);
    // SIGHUP is taken only to reload a certificate; without TLS it keeps
    // its default action.
    if (impl_->tls_source)
      impl_->signals->add(SIGHUP);
    impl_->wait_for_signal();
  }
  std::vector<std::thread> extra;
  for (std::size_t i = 1; i < threads; ++i)
    extra.emplace_back([this] { impl_->ioc.run(); });
  impl_->ioc.run();
  for (auto& t : extra)
    t.join();
}

void server::start(std::size_t threads) {
  for (std::size_t i = 0; i < threads; ++i)
    impl_->threads.emplace_back([self = impl_] { self->ioc.run(); });
}

void server::stop() {
  net::post(impl_->control, [self = impl_] { self->begin_shutdown(); });
  for (auto& t : impl_->threads)
    if (t.joinable())
      t.join();
  impl_->threads.clear();
}

} // namespace ap::http
