// The Redis connection: every Asio-heavy template of the Redis layer lives in this one
// translation unit (awaitable operators, SSL streams), to keep builds fast.
#include "forq/redis/connection.hpp"

#include "cloexec.hpp"
#include "redis/cluster.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <random>
#include <sstream>
#include <unistd.h>

namespace forq::redis {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;
using boost::system::error_code;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// "connection refused", as an operator reads it in a sentence.
std::string describe(const error_code& ec) {
  if (ec == asio::error::eof) return "connection closed by the server";
  auto text = ec.message();
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

// Through Sentinel, a failed connect means "ask the sentinels again", which is cheap: retries
// stay at most 250 ms apart, so a promoted replica is found soon after the sentinels name it.
connection_options for_sentinel(connection_options o) {
  if (o.endpoint.via_sentinel())
    o.reconnect.max_delay = std::min(o.reconnect.max_delay, milliseconds(250));
  return o;
}

std::string describe_endpoint(const redis_endpoint& ep) {
  if (ep.via_sentinel()) return "redis primary \"" + ep.master_name + "\" (via Sentinel)";
  if (ep.in_cluster()) return "redis cluster " + ep.redacted();
  if (ep.kind == redis_endpoint::transport::unix_socket) return "redis " + ep.path;
  auto host = ep.host.find(':') != std::string::npos ? "[" + ep.host + "]" : ep.host;
  return std::string(ep.kind == redis_endpoint::transport::tls ? "rediss " : "redis ") + host +
         ":" + std::to_string(ep.port);
}

void log_step(const connection_state::step& s) {
  if (s.log.empty()) return;
  if (s.warn)
    spdlog::warn("{}", s.log);
  else
    spdlog::info("{}", s.log);
}

bool is_ip_literal(const std::string& host) {
  error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// Has the `||` around this coroutine (run() or life()) asked it to stop? A wake-up through a
// timer's cancel() is not this: it only ends the wait.
asio::awaitable<bool> cancelled() {
  co_return (co_await asio::this_coro::cancellation_state).cancelled() !=
      asio::cancellation_type::none;
}

} // namespace

std::string client_name(std::string_view role) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  std::string name =
      "forq:" + std::string(host) + ":" + std::to_string(::getpid()) + ":" + std::string(role);
  for (auto& c : name) // CLIENT SETNAME refuses spaces and newlines
    if (std::isspace(static_cast<unsigned char>(c))) c = '-';
  return name;
}

// A byte stream to Redis: TCP, unix socket or TLS behind one interface, so the loops below are
// written once.
class connection::transport {
 public:
  virtual ~transport() = default;
  virtual asio::awaitable<std::tuple<error_code, std::size_t>>
  read_some(asio::mutable_buffer b) = 0;
  virtual asio::awaitable<std::tuple<error_code, std::size_t>>
  write(const std::vector<asio::const_buffer>& b) = 0;
  virtual void close() = 0;
};

namespace {

template <class Stream>
class stream_transport final : public connection::transport {
 public:
  template <class... Args>
  explicit stream_transport(Args&&... args)
      : stream(std::forward<Args>(args)...) {}

  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) override {
    co_return co_await stream.async_read_some(b, use_tuple);
  }
  asio::awaitable<std::tuple<error_code, std::size_t>>
  write(const std::vector<asio::const_buffer>& b) override {
    co_return co_await asio::async_write(stream, b, use_tuple);
  }
  void close() override {
    error_code ignored;
    stream.lowest_layer().close(ignored);
  }

  Stream stream;
};

// The SSL context lives as long as the stream that uses it.
struct tls_stream {
  tls_stream(tcp::socket socket, ssl::context context)
      : ctx(std::move(context))
      , stream(std::move(socket), ctx) {}
  template <class Buffer, class Token>
  auto async_read_some(const Buffer& b, Token&& t) {
    return stream.async_read_some(b, std::forward<Token>(t));
  }
  template <class Buffer, class Token>
  auto async_write_some(const Buffer& b, Token&& t) {
    return stream.async_write_some(b, std::forward<Token>(t));
  }
  using executor_type = ssl::stream<tcp::socket>::executor_type;
  executor_type get_executor() { return stream.get_executor(); }
  tcp::socket::lowest_layer_type& lowest_layer() { return stream.lowest_layer(); }

  ssl::context ctx;
  ssl::stream<tcp::socket> stream;
};

// A request written and its replies read, on a transport of its own (logging in, asking a
// sentinel). `buffer` holds the last read; bytes past the replies stay in `parser`.
struct exchange {
  connection::response replies;
  std::string failure; // empty: every reply arrived
};

asio::awaitable<exchange> roundtrip(connection::transport& t, reply_parser& parser,
                                    std::vector<char>& buffer, const request& req) {
  exchange x;
  std::vector<asio::const_buffer> out{asio::buffer(req.payload())};
  auto [wec, wn] = co_await t.write(out);
  if (wec) {
    x.failure = describe(wec);
    co_return x;
  }
  std::size_t reads = 0, last_read = 0;
  while (x.replies.size() < req.commands()) {
    reply r;
    auto st = parser.next(r);
    if (st == reply_parser::status::reply) {
      x.replies.push_back(std::move(r));
      continue;
    }
    if (st == reply_parser::status::protocol_error) {
      if (x.replies.empty() && reads == 1) {
        // Not RESP from the first byte: something else listens there (a wrong port). Say so,
        // and what it seems to be when it is an HTTP server (forq's own listener, say).
        std::string_view got(buffer.data(), last_read);
        x.failure = std::string("not a Redis server: its answer is not RESP (") +
                    parser.error_text() + ")" +
                    (got.starts_with("HTTP/") ? "; it answered in HTTP" : "");
      } else {
        x.failure = "malformed reply: " + parser.error_text();
      }
      co_return x;
    }
    auto [rec, n] = co_await t.read_some(asio::buffer(buffer));
    if (rec) {
      x.failure = describe(rec);
      co_return x;
    }
    ++reads;
    last_read = n;
    parser.feed({buffer.data(), n});
  }
  co_return x;
}

} // namespace

struct connection::pending {
  std::string_view payload; // the caller's request outlives the exec() that sent it
  std::size_t expected = 0;
  milliseconds extra{0};
  bool internal = false; // a health PING: nobody waits for it
  bool done = false;
  std::optional<steady_clock::time_point> give_up; // exec_options::deadline
  steady_clock::time_point sent{};
  steady_clock::time_point deadline{}; // for the reply, once sent
  error_code ec;
  response replies;
  // Emplaced, never assigned: Boost 1.81's any_completion_handler move-assignment re-wraps
  // the handler in itself without end.
  std::optional<asio::any_completion_handler<void()>> handler;
};

connection::connection(asio::any_io_executor ex, connection_options options)
    : ex_(std::move(ex))
    , options_(for_sentinel(std::move(options)))
    , where_(describe_endpoint(options_.endpoint))
    , state_(where_, options_.reconnect, options_.seed ? options_.seed : std::random_device{}())
    , read_buffer_(64 * 1024)
    , writer_wake_(ex_)
    , health_wake_(ex_)
    , room_(ex_, steady_clock::time_point::max())
    , stop_(ex_, steady_clock::time_point::max())
    , expire_wake_(ex_, steady_clock::time_point::max()) {
  if (options_.endpoint.in_cluster()) cluster_ = std::make_unique<cluster_router>(ex_, options_);
}

connection::~connection() {
  // Normally run() has ended and nothing is left. If the io_context is being torn down with
  // callers still suspended, break the cycle pending -> handler -> coroutine frame -> pending.
  for (auto* q : {&queued_, &awaiting_}) {
    while (!q->empty()) {
      pending* p = q->front();
      q->pop_front();
      if (!p->handler) continue;
      // Destroying the handler destroys the caller's frame, and with it *p: move it out first.
      auto h = std::move(*p->handler);
      p->handler.reset();
    }
  }
}

asio::awaitable<void> connection::run() {
  if (stopped_ || running_) co_return;
  running_ = true;
  if (cluster_) {
    co_await cluster_->run();
    running_ = false;
    stopped_ = true;
    co_return;
  }
  try {
    co_await (life() || wait_for_stop() || expire_queued() || follow_failovers());
  } catch (const boost::system::system_error&) {
    // Cancelled from outside while life() was between steps: the cleanup below still runs.
  }
  running_ = false;
  ready_ = false;
  // Whether stop() or an outer cancellation ended it, the connection is done: later exec()
  // calls get redis_shutdown instead of waiting for a run() that will not come.
  stopped_ = true;
  room_.cancel();
  if (transport_) transport_->close();
  transport_.reset();
  fail_awaiting(false);
  fail_queued(fatal_ ? fatal_ : error_code(errc::redis_shutdown));
  parser_.reset();
}

void connection::drop(const std::string& reason) {
  if (cluster_) return cluster_->drop(reason);
  if (!ready_ || !transport_ || stopped_) return;
  if (lost_reason_.empty()) lost_reason_ = reason;
  transport_->close(); // the reader's read fails: life() handles it as a lost connection
}

void connection::stop() {
  if (cluster_) cluster_->stop();
  if (stopped_) return;
  stopped_ = true;
  stop_.cancel();
  room_.cancel();
  if (!running_) fail_queued(errc::redis_shutdown);
}

asio::awaitable<void> connection::wait_for_stop() {
  if (!stopped_) co_await stop_.async_wait(use_tuple);
}

asio::awaitable<void> connection::expire_queued() {
  for (;;) {
    expire_wake_.expires_at(next_expiry_);
    co_await expire_wake_.async_wait(use_tuple);
    if (stopped_ || co_await cancelled()) co_return;
    // Requests that waited for a connection past their caller's deadline: never sent.
    auto now = steady_clock::now();
    next_expiry_ = steady_clock::time_point::max();
    for (auto it = queued_.begin(); it != queued_.end();) {
      pending* p = *it;
      if (p->give_up && *p->give_up <= now) {
        it = queued_.erase(it);
        complete(*p, errc::redis_unavailable);
        continue;
      }
      if (p->give_up) next_expiry_ = std::min(next_expiry_, *p->give_up);
      ++it;
    }
  }
}

asio::awaitable<void> connection::sleep(milliseconds d) {
  asio::steady_timer t(ex_, d);
  co_await t.async_wait(use_tuple);
}

asio::awaitable<void> connection::life() {
  while (!stopped_) {
    std::string failure;
    auto attempt = co_await (connect_and_login() || sleep(options_.connect_timeout));
    if (attempt.index() == 0)
      failure = std::get<0>(attempt);
    else
      failure = "no answer within " + std::to_string(options_.connect_timeout.count()) + " ms";
    if (!failure.empty()) {
      if (transport_) transport_->close();
      transport_.reset();
      if (stopped_ || co_await cancelled()) break; // stopping, not a failure worth a line
      last_failure_ = failure;
      if (auth_failed_) {
        // The same credentials get the same answer: say so once, and give up.
        spdlog::error("{} refused forq's credentials ({}); check the user and password in the "
                      "Redis URL (retrying cannot help)",
                      where_, failure);
        fatal_ = errc::redis_auth_failed;
        break;
      }
      auto step = state_.on_connect_failed(failure);
      log_step(step);
      co_await sleep(step.delay);
      if (co_await cancelled()) break;
      continue;
    }

    ++stats_.connects;
    last_failure_.clear();
    spdlog::info("{}", state_.on_ready(steady_clock::now()));
    ready_ = true;
    timed_out_ = false;
    lost_reason_.clear();
    last_traffic_ = steady_clock::now();
    co_await (reader() || writer() || health());

    ready_ = false;
    transport_->close();
    auto failed = fail_awaiting(timed_out_);
    transport_.reset();
    parser_.reset();
    if (stopped_ || co_await cancelled()) break; // stopping, not a lost connection
    auto step = state_.on_lost(lost_reason_, failed, steady_clock::now());
    log_step(step);
    if (options_.on_lost) options_.on_lost();
    co_await sleep(step.delay);
    if (co_await cancelled()) break;
  }
}

asio::awaitable<std::string> connection::connect_and_login() {
  redis_endpoint ep = options_.endpoint;
  parser_.reset();
  if (ep.via_sentinel()) {
    auto failure = co_await find_primary(ep);
    if (!failure.empty()) co_return failure;
    auto found = ep.host + ":" + std::to_string(ep.port);
    if (found != primary_) spdlog::info("{}: the sentinels name {} as the primary", where_, found);
    primary_ = found;
  }
  auto failure = co_await open(ep, transport_);
  if (!failure.empty()) co_return failure;
  co_return co_await login(ep);
}

// A transport to `ep` (TCP, unix socket or TLS), connected and handshaken, in `out`; or why not.
asio::awaitable<std::string> connection::open(const redis_endpoint& ep,
                                              std::unique_ptr<transport>& out) {
  if (ep.kind == redis_endpoint::transport::unix_socket) {
    asio::local::stream_protocol::socket socket(ex_);
    auto [ec] =
        co_await socket.async_connect(asio::local::stream_protocol::endpoint(ep.path), use_tuple);
    if (ec) co_return describe(ec);
    set_cloexec(socket.native_handle());
    out =
        std::make_unique<stream_transport<asio::local::stream_protocol::socket>>(std::move(socket));
    co_return std::string();
  }

  std::vector<tcp::endpoint> endpoints;
  if (is_ip_literal(ep.host)) {
    endpoints.emplace_back(asio::ip::make_address(ep.host), ep.port);
  } else {
    // getaddrinfo cannot be cancelled, and `||` waits for every branch: resolve in a coroutine
    // of its own and wait for it on a timer, which connect_timeout and stop() can cut short.
    struct lookup {
      explicit lookup(asio::any_io_executor ex)
          : resolver(ex)
          , done(ex) {}
      tcp::resolver resolver;
      asio::steady_timer done;
      error_code ec;
      tcp::resolver::results_type results;
      bool finished = false;
    };
    auto l = std::make_shared<lookup>(ex_);
    l->done.expires_at(steady_clock::time_point::max());
    asio::co_spawn(
        ex_,
        [l, host = ep.host, port = std::to_string(ep.port)]() -> asio::awaitable<void> {
          std::tie(l->ec, l->results) = co_await l->resolver.async_resolve(host, port, use_tuple);
          l->finished = true;
          l->done.cancel();
        },
        asio::detached);
    co_await l->done.async_wait(use_tuple);
    if (!l->finished) co_return std::string("name lookup of ") + ep.host + " did not finish";
    if (l->ec) co_return "cannot resolve " + ep.host + ": " + describe(l->ec);
    for (const auto& r : l->results)
      endpoints.push_back(r.endpoint());
  }
  tcp::socket socket(ex_);
  auto [cec, endpoint] = co_await asio::async_connect(socket, endpoints, use_tuple);
  if (cec) co_return describe(cec);
  set_cloexec(socket.native_handle());
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored); // pipelined small writes must not wait
  socket.set_option(asio::socket_base::keep_alive(true), ignored);

  if (ep.kind == redis_endpoint::transport::tcp) {
    out = std::make_unique<stream_transport<tcp::socket>>(std::move(socket));
    co_return std::string();
  }

  ssl::context ctx(ssl::context::tls_client);
  error_code ctx_ec;
  if (options_.tls_ca_file.empty())
    ctx.set_default_verify_paths(ctx_ec);
  else
    ctx.load_verify_file(options_.tls_ca_file, ctx_ec);
  if (ctx_ec) co_return "cannot load TLS certificates: " + describe(ctx_ec);
  auto tls = std::make_unique<stream_transport<tls_stream>>(std::move(socket), std::move(ctx));
  auto& stream = tls->stream.stream;
  if (options_.tls_verify) {
    stream.set_verify_mode(ssl::verify_peer);
    stream.set_verify_callback(ssl::host_name_verification(ep.host));
  } else {
    stream.set_verify_mode(ssl::verify_none);
  }
  if (!is_ip_literal(ep.host)) // SNI, spelled out: the OpenSSL macro is an old-style cast
    SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(ep.host.c_str()));
  auto [hec] = co_await stream.async_handshake(ssl::stream_base::client, use_tuple);
  if (hec) co_return "TLS handshake failed: " + describe(hec);
  out = std::move(tls);
  co_return std::string();
}

asio::awaitable<std::string> connection::login(const redis_endpoint& ep) {
  auth_failed_ = false;
  request req;
  bool auth = !ep.password.empty();
  if (auth && !ep.user.empty())
    req.push("AUTH", ep.user, ep.password);
  else if (auth)
    req.push("AUTH", ep.password);
  if (ep.db != 0) req.push("SELECT", ep.db);
  req.push("CLIENT", "SETNAME", options_.client_name);
  req.push("PING"); // answers -LOADING while the server loads its data
  // The sentinels' answer can be stale (a failover under way): the server says what it is.
  const std::size_t role_at = req.commands();
  if (ep.via_sentinel()) req.push("ROLE");
  if (options_.want_client_id) req.push("CLIENT", "ID");

  auto x = co_await roundtrip(*transport_, parser_, read_buffer_, req);
  if (!x.failure.empty()) co_return x.failure;
  const auto& replies = x.replies;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto& r = replies[i];
    if (!r.is_error()) continue;
    // A refused AUTH, or a server that wants one we did not send: the credentials are wrong.
    if ((auth && i == 0) || r.error_code() == "NOAUTH" || r.error_code() == "WRONGPASS") {
      auth_failed_ = true;
      co_return "authentication failed: " + std::string(r.str());
    }
    if (r.is_retry_later()) co_return "not ready: " + std::string(r.str());
    if (options_.want_client_id && i + 1 == replies.size()) continue; // no id: no UNBLOCK
    co_return "login failed: " + std::string(r.str());
  }
  if (ep.via_sentinel()) {
    const auto& role = replies[role_at];
    std::string what = role.is_array() && !role.elements().empty()
                           ? std::string(role.elements()[0].str())
                           : role.to_string();
    if (what != "master")
      co_return "the server the sentinels named, " + ep.host + ":" + std::to_string(ep.port) +
          ", is a " + what + ", not the primary (a failover under way?)";
  }
  client_id_ = options_.want_client_id ? replies.back().as_integer().value_or(0) : 0;
  co_return std::string();
}

// The sentinels in turn, each with a short timeout, until one names the primary; that one is
// asked first next time (the Sentinel client spec's order). Fills ep.host and ep.port.
asio::awaitable<std::string> connection::find_primary(redis_endpoint& ep) {
  if (sentinels_.empty()) sentinels_ = ep.sentinels;
  const auto each = std::clamp(options_.connect_timeout / 3, milliseconds(100), milliseconds(500));
  std::string tried;
  for (std::size_t i = 0; i < sentinels_.size(); ++i) {
    redis_endpoint s;
    s.kind = ep.kind;
    s.host = sentinels_[i].host;
    s.port = sentinels_[i].port;
    std::string why;
    auto r = co_await (ask_sentinel(s, ep) || sleep(each));
    if (r.index() == 0)
      why = std::get<0>(r);
    else
      why = "no answer within " + std::to_string(each.count()) + " ms";
    if (why.empty()) {
      std::rotate(sentinels_.begin(), sentinels_.begin() + static_cast<std::ptrdiff_t>(i),
                  sentinels_.begin() + static_cast<std::ptrdiff_t>(i) + 1);
      co_return std::string();
    }
    tried += (tried.empty() ? "" : "; ") + s.host + ":" + std::to_string(s.port) + ": " + why;
  }
  co_return "no sentinel named the primary \"" + ep.master_name + "\" (" + tried + ")";
}

asio::awaitable<std::string> connection::ask_sentinel(const redis_endpoint& sentinel,
                                                      redis_endpoint& primary) {
  std::unique_ptr<transport> t;
  auto failure = co_await open(sentinel, t);
  if (!failure.empty()) co_return failure;
  request req;
  if (!options_.sentinel_password.empty()) req.push("AUTH", options_.sentinel_password);
  req.push("SENTINEL", "get-master-addr-by-name", primary.master_name);
  reply_parser parser;
  std::vector<char> buffer(4096);
  auto x = co_await roundtrip(*t, parser, buffer, req);
  t->close();
  if (!x.failure.empty()) co_return x.failure;
  for (const auto& r : x.replies)
    if (r.is_error()) co_return "it answered " + std::string(r.str());
  const auto& a = x.replies.back();
  if (a.is_nil()) co_return "it watches no primary named \"" + primary.master_name + "\"";
  auto port = a.is_array() && a.elements().size() == 2 ? a.elements()[1].as_integer()
                                                       : std::optional<std::int64_t>();
  if (!port || *port <= 0 || *port > 65535) co_return "it answered " + a.to_string();
  primary.host = std::string(a.elements()[0].str());
  primary.port = static_cast<std::uint16_t>(*port);
  co_return std::string();
}

// With on_switch_master: a subscription to +switch-master on one sentinel at a time, for the
// connection's whole life. Without: nothing, until the connection stops.
asio::awaitable<void> connection::follow_failovers() {
  if (!options_.endpoint.via_sentinel() || !options_.on_switch_master) {
    asio::steady_timer forever(ex_, steady_clock::time_point::max());
    co_await forever.async_wait(use_tuple);
    co_return;
  }
  bool said = false; // one line per loss, not one per retry while no sentinel answers
  for (std::size_t n = 0;; ++n) {
    if (sentinels_.empty()) sentinels_ = options_.endpoint.sentinels;
    redis_endpoint s;
    s.kind = options_.endpoint.kind;
    s.host = sentinels_[n % sentinels_.size()].host;
    s.port = sentinels_[n % sentinels_.size()].port;
    auto why = co_await watch_sentinel(s, said);
    if (stopped_ || co_await cancelled()) co_return;
    if (!said)
      spdlog::warn("{}: no failover announcements from sentinel {}:{} ({}); trying the next "
                   "sentinel",
                   where_, s.host, s.port, why);
    said = true;
    co_await sleep(milliseconds(1000));
    if (co_await cancelled()) co_return;
  }
}

asio::awaitable<std::string> connection::watch_sentinel(const redis_endpoint& sentinel,
                                                        bool& said) {
  std::unique_ptr<transport> t;
  auto opened = co_await (open(sentinel, t) || sleep(options_.connect_timeout));
  if (opened.index() == 1) co_return "no answer";
  if (!std::get<0>(opened).empty()) co_return std::get<0>(opened);
  request req;
  if (!options_.sentinel_password.empty()) req.push("AUTH", options_.sentinel_password);
  req.push("SUBSCRIBE", "+switch-master");
  reply_parser parser;
  std::vector<char> buffer(4096);
  auto x = co_await roundtrip(*t, parser, buffer, req);
  if (!x.failure.empty()) co_return x.failure;
  for (const auto& r : x.replies)
    if (r.is_error()) co_return "it answered " + std::string(r.str());
  said = false;
  for (;;) {
    reply r;
    auto st = parser.next(r);
    if (st == reply_parser::status::protocol_error) co_return "malformed reply";
    if (st == reply_parser::status::need_more) {
      auto [ec, n] = co_await t->read_some(asio::buffer(buffer));
      if (ec) co_return describe(ec);
      parser.feed({buffer.data(), n});
      continue;
    }
    // ["message", "+switch-master", "<name> <old-ip> <old-port> <new-ip> <new-port>"]
    if (!r.is_array() || r.elements().size() != 3 || r.elements()[0].str() != "message") continue;
    std::istringstream words{std::string(r.elements()[2].str())};
    std::string name, old_ip, old_port, new_ip, new_port;
    words >> name >> old_ip >> old_port >> new_ip >> new_port;
    if (name != options_.endpoint.master_name || new_port.empty()) continue;
    auto now_at = new_ip + ":" + new_port;
    spdlog::warn("{}: the sentinels moved the primary from {}:{} to {}", where_, old_ip, old_port,
                 now_at);
    if (primary_ != now_at) drop("the sentinels moved the primary to " + now_at);
    options_.on_switch_master(now_at);
  }
}

asio::awaitable<void> connection::reader() {
  for (;;) {
    auto [ec, n] = co_await transport_->read_some(asio::buffer(read_buffer_));
    if (ec) {
      if (lost_reason_.empty()) lost_reason_ = describe(ec);
      co_return;
    }
    last_traffic_ = steady_clock::now();
    parser_.feed({read_buffer_.data(), n});
    for (reply r;;) {
      auto st = parser_.next(r);
      if (st == reply_parser::status::need_more) break;
      if (st == reply_parser::status::protocol_error || awaiting_.empty()) {
        lost_reason_ = st == reply_parser::status::protocol_error
                           ? "malformed reply: " + parser_.error_text()
                           : std::string("a reply arrived that no request was waiting for");
        protocol_error_ = true;
        co_return;
      }
      // A primary demoted to a replica says so in its errors: with Sentinel, find the new one.
      if (r.is_error() && options_.endpoint.via_sentinel() &&
          (r.error_code() == "READONLY" ||
           (r.error_code() == "UNBLOCKED" &&
            r.str().find("state changed") != std::string_view::npos)))
        demoted_ = true;
      auto& front = *awaiting_.front();
      front.replies.push_back(std::move(r));
      if (front.replies.size() == front.expected) {
        awaiting_.pop_front();
        complete(front, {});
      }
    }
    if (demoted_) {
      demoted_ = false;
      lost_reason_ = "the server is a replica now (READONLY); asking the sentinels for the primary";
      co_return;
    }
  }
}

asio::awaitable<void> connection::writer() {
  std::vector<asio::const_buffer> buffers;
  for (;;) {
    if (queued_.empty()) {
      writer_wake_.expires_at(steady_clock::time_point::max());
      writer_idle_ = true;
      co_await writer_wake_.async_wait(use_tuple);
      writer_idle_ = false;
      continue;
    }
    // The reader may have failed in this same turn: then nothing more goes out, and what is
    // queued stays queued (certainly not run) for the next connection.
    if (!lost_reason_.empty() || stopped_ || co_await cancelled()) co_return;
    // Everything requested since the last write goes out in this one.
    buffers.clear();
    bool wake_health = awaiting_.empty(); // a first deadline, or an earlier one, is coming
    auto now = steady_clock::now();
    while (!queued_.empty()) {
      pending* p = queued_.front();
      queued_.pop_front();
      if (p->give_up && *p->give_up <= now) { // its caller gave up before it could go out
        complete(*p, errc::redis_unavailable);
        continue;
      }
      buffers.push_back(asio::buffer(p->payload));
      p->sent = now;
      p->deadline = now + options_.command_timeout + p->extra;
      if (p->give_up) {
        p->deadline = std::min(p->deadline, *p->give_up);
        ++awaiting_with_deadline_;
        wake_health = true; // a caller's deadline may come before the others'
      }
      awaiting_.push_back(p);
    }
    if (buffers.empty()) continue;
    stats_.requests += buffers.size();
    ++stats_.writes;
    if (wake_health) health_wake_.cancel(); // the health loop looks at the deadlines again
    auto [ec, n] = co_await transport_->write(buffers);
    if (ec) {
      if (lost_reason_.empty()) lost_reason_ = describe(ec);
      co_return;
    }
    last_traffic_ = steady_clock::now();
  }
}

asio::awaitable<void> connection::health() {
  static const request ping("PING");
  for (;;) {
    if (!lost_reason_.empty() || stopped_ || co_await cancelled()) co_return;
    auto now = steady_clock::now();
    std::optional<steady_clock::time_point> oldest;
    const pending* late = nullptr; // the request whose deadline comes first
    if (!awaiting_.empty()) {
      late = awaiting_.front();
      // Callers' own deadlines can come before older requests' (a rare path: the HTTP API).
      if (awaiting_with_deadline_ > 0)
        for (const pending* p : awaiting_)
          if (p->deadline < late->deadline) late = p;
      oldest = late->deadline;
    }
    bool idle = awaiting_.empty() && queued_.empty();
    switch (connection_state::health(now, last_traffic_, oldest, idle, options_.health_interval)) {
    case connection_state::check::timed_out:
      ++stats_.timeouts;
      timed_out_ = true;
      lost_reason_ =
          "no reply within " +
          std::to_string(
              std::chrono::duration_cast<milliseconds>(late->deadline - late->sent).count()) +
          " ms";
      if (options_.on_silent) options_.on_silent(lost_reason_);
      co_return;
    case connection_state::check::ping:
      // Only when idle, so at most one is in flight: the connection owns it.
      ping_ = std::make_unique<pending>();
      ping_->payload = ping.payload();
      ping_->expected = 1;
      ping_->internal = true;
      enqueue(*ping_);
      idle = false;
      break;
    case connection_state::check::nothing:
      break;
    }
    health_wake_.expires_at(
        connection_state::next_check(now, last_traffic_, oldest, idle, options_.health_interval));
    co_await health_wake_.async_wait(use_tuple);
  }
}

asio::awaitable<boost::system::result<connection::response>> connection::exec(const request& req,
                                                                              exec_options opts) {
  if (req.empty()) co_return response{};
  if (cluster_) co_return co_await cluster_->exec(req, opts);
  auto size = req.payload().size();
  // Backpressure: wait for room, but never refuse the only request.
  while (!stopped_ && in_flight() > 0 &&
         (in_flight() >= options_.max_in_flight || bytes_ + size > options_.max_buffered_bytes)) {
    // Counted down however the wait ends, an exception from a cancelled caller included.
    struct waiting {
      std::size_t& n;
      explicit waiting(std::size_t& c)
          : n(++c) {}
      ~waiting() { --n; }
    } w(waiting_for_room_);
    if (!opts.deadline) {
      co_await room_.async_wait(use_tuple);
      continue;
    }
    // A caller's deadline holds here too: a full connection is not a reason to answer late.
    asio::steady_timer give_up(ex_, *opts.deadline);
    co_await (room_.async_wait(use_tuple) || give_up.async_wait(use_tuple));
    if (steady_clock::now() >= *opts.deadline) co_return error_code(errc::redis_unavailable);
  }
  if (stopped_) co_return fatal_ ? fatal_ : error_code(errc::redis_shutdown);
  if (opts.deadline && *opts.deadline <= steady_clock::now())
    co_return error_code(errc::redis_unavailable);

  // The record lives in this coroutine's frame: the connection only points at it, and lets go
  // of it (complete()) before this frame can resume. No allocation per request.
  pending p;
  p.payload = req.payload();
  p.expected = req.commands();
  p.extra = opts.extra_timeout;
  p.give_up = opts.deadline;
  p.replies.reserve(p.expected);
  // Queued only inside the initiation, once this coroutine is certain to suspend: a caller
  // cancelled just before would otherwise leave a pointer to its destroyed frame behind.
  // complete() hands the handler back to the loop; no extra coroutine frame on this hot path.
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [this, &p](auto handler) {
        p.handler.emplace(std::move(handler));
        enqueue(p);
      },
      asio::use_awaitable);
  if (p.ec) co_return p.ec;
  co_return std::move(p.replies);
}

void connection::enqueue(pending& p) {
  bytes_ += p.payload.size();
  queued_.push_back(&p);
  if (p.give_up && *p.give_up < next_expiry_) { // the expiry sweep must look sooner
    next_expiry_ = *p.give_up;
    expire_wake_.cancel();
  }
  if (writer_idle_) writer_wake_.cancel(); // a timer cancel is not free: only when it waits
}

void connection::complete(pending& p, error_code ec) {
  p.ec = ec;
  p.done = true;
  if (p.give_up && p.sent != steady_clock::time_point{}) --awaiting_with_deadline_;
  bytes_ -= p.payload.size();
  if (waiting_for_room_ > 0) room_.cancel_one();
  // Resume the caller from the loop, not from inside the reader.
  if (p.handler) {
    asio::post(ex_, [h = std::move(*p.handler)]() mutable { std::move(h)(); });
    p.handler.reset();
  }
}

std::size_t connection::fail_awaiting(bool timed_out) {
  std::size_t failed = 0;
  bool first = true;
  while (!awaiting_.empty()) {
    pending* p = awaiting_.front();
    awaiting_.pop_front();
    error_code ec = errc::redis_connection_lost;
    if (first && timed_out)
      ec = errc::redis_timeout;
    else if (first && protocol_error_)
      ec = errc::redis_protocol;
    first = false;
    if (!p->internal) ++failed;
    complete(*p, ec);
  }
  protocol_error_ = false;
  return failed;
}

void connection::fail_queued(error_code ec) {
  while (!queued_.empty()) {
    pending* p = queued_.front();
    queued_.pop_front();
    complete(*p, ec);
  }
}

bool connection::ready() const {
  // Lost but not yet torn down (the reader saw the end while the writer stops) is not ready:
  // a request queued now would wait for the next connection.
  return cluster_ ? cluster_->ready() : ready_ && lost_reason_.empty();
}

std::int64_t connection::client_id() const {
  if (cluster_) return cluster_->client_id();
  return ready_ ? client_id_ : 0;
}

error_code connection::fatal_error() const {
  return cluster_ ? cluster_->fatal_error() : fatal_;
}

const std::string& connection::last_failure() const {
  return cluster_ ? cluster_->last_failure() : last_failure_;
}

std::size_t connection::in_flight() const {
  return cluster_ ? cluster_->in_flight() : queued_.size() + awaiting_.size();
}

std::size_t connection::buffered_bytes() const {
  return cluster_ ? cluster_->buffered_bytes() : bytes_;
}

const connection::counters& connection::stats() const {
  if (cluster_) stats_ = cluster_->stats();
  return stats_;
}

boost::system::result<reply> connection::single(boost::system::result<response> r) {
  if (!r) return r.error();
  if (r->size() != 1) return error_code(errc::redis_protocol);
  auto& one = r->front();
  if (one.is_retry_later()) return error_code(errc::redis_retry_later);
  return std::move(one);
}

void set_timeouts(connection_options& o, std::chrono::milliseconds redis_timeout) {
  o.command_timeout = redis_timeout;
  o.connect_timeout = std::min<std::chrono::milliseconds>(redis_timeout, std::chrono::seconds(3));
}

} // namespace forq::redis
