// The HTTP surface every worker serves on the listener the master bound before forking
// (docs/http.md): the session (Boost.Beast: requests read, routed, answered; the events stream
// sent) and the listener. What a request asks of Redis is carried out in api.cpp.
#include "http/http.hpp"

#include "cloexec.hpp"
#include "forq/client.hpp"
#include "http/api.hpp"
#include "http/events.hpp"
#include "http/routes.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

namespace forq::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t max_body = (1u << 20) + 4096; // a 1 MiB payload and its envelope

// Whether the request carries `Authorization: Bearer <token>`, compared in time that depends on
// the lengths only, not on where the first difference is.
bool bearer_matches(const bhttp::request<bhttp::string_body>& req, const std::string& token) {
  constexpr std::string_view scheme = "Bearer ";
  auto auth = req[bhttp::field::authorization];
  if (auth.size() != scheme.size() + token.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < auth.size(); ++i) {
    char want = i < scheme.size() ? scheme[i] : token[i - scheme.size()];
    diff |= static_cast<unsigned char>(auth[i] ^ want);
  }
  return diff == 0;
}

asio::awaitable<reply_t> handle(http_context& ctx, const bhttp::request<bhttp::string_body>& req,
                                const asio::ip::address& peer) {
  request_view view;
  view.method = std::string(req.method_string());
  view.target = std::string(req.target());
  view.body = req.body();
  view.bearer_ok = !ctx.cfg->api_token.empty() && bearer_matches(req, ctx.cfg->api_token);
  view.peer = peer;
  view.host = std::string(req[bhttp::field::host]);
  view.origin = std::string(req[bhttp::field::origin]);
  view.sec_fetch_site = std::string(req["Sec-Fetch-Site"]);
  view.if_none_match = std::string(req[bhttp::field::if_none_match]);
  view.last_event_id = std::string(req["Last-Event-ID"]);
  auto routed = route(*ctx.cfg, ctx.handlers, view);
  if (auto* a = std::get_if<answer>(&routed)) co_return to_reply(std::move(*a));
  co_return co_await run_call(ctx, std::move(std::get<api_call>(routed)));
}

// GET /v1/queues/{queue}/events: the head, then the stream (events.hpp) until either side goes.
// No length and Connection: close: the body ends when the connection does.
template <class Stream>
asio::awaitable<void> send_events(http_context& ctx, Stream& stream, const api_call& call) {
  ++ctx.event_streams;
  struct count_down {
    std::size_t& n;
    ~count_down() { --n; }
  } leave{ctx.event_streams};
  std::string head = "HTTP/1.1 200 OK\r\nServer: forq\r\n"
                     "Content-Type: text/event-stream; charset=utf-8\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n"
                     "X-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n"
                     "Content-Security-Policy: " +
                     std::string(content_security_policy) + "\r\n\r\n";
  auto write = [&stream](std::string text) -> asio::awaitable<bool> {
    stream.expires_after(10s); // a client that reads nothing loses its stream
    auto [ec, n] =
        co_await asio::async_write(stream, asio::buffer(text), asio::as_tuple(asio::use_awaitable));
    (void)n;
    co_return !ec;
  };
  if (!co_await write(std::move(head))) co_return;
  co_await stream_events(ctx, call.queue, call.id, call.limit, write);
}

// One connection, until its client closes it, goes quiet for 10 s, or asks to close. A TCP
// connection from the listener, or (for the fuzz target) a unix stream socket.
template <class Protocol>
asio::awaitable<void> session(http_context& ctx, typename Protocol::socket socket) {
  beast::basic_stream<Protocol> stream(std::move(socket));
  beast::flat_buffer buffer;
  // The peer's address decides what it may change (http_access.hpp); a unix socket's peer is
  // on this machine.
  asio::ip::address peer = asio::ip::address_v4::loopback();
  if constexpr (std::is_same_v<Protocol, tcp>) {
    boost::system::error_code ec;
    auto remote = stream.socket().remote_endpoint(ec);
    if (!ec) peer = remote.address();
  }
  for (;;) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(max_body);
    parser.header_limit(16 * 1024);
    stream.expires_after(10s); // a slow or silent client loses only its own connection
    auto [ec, n] =
        co_await bhttp::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)n;
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::connection_reset || ec == asio::error::eof)
      break;
    reply_t r;
    bool keep = false;
    if (ec == bhttp::error::body_limit) {
      r = error_reply(bhttp::status::payload_too_large, "the body is over 1 MiB");
    } else if (ec) {
      r = error_reply(bhttp::status::bad_request, "malformed request: " + ec.message());
    } else {
      const auto& req = parser.get();
      keep = req.keep_alive();
      try {
        r = co_await handle(ctx, req, peer);
      } catch (const std::exception& e) {
        r = error_reply(bhttp::status::internal_server_error, e.what());
      }
    }
    if (r.events) { // Server-Sent Events until the client or the worker goes; then close
      co_await send_events(ctx, stream, *r.events);
      break;
    }
    bhttp::response<bhttp::string_body> res{r.status, 11};
    res.set(bhttp::field::server, "forq");
    res.set(bhttp::field::content_type, r.type);
    if (r.status == bhttp::status::unauthorized) // say which scheme
      res.set(bhttp::field::www_authenticate, "Bearer realm=\"forq\"");
    if (r.status == bhttp::status::method_not_allowed) // the probes, /ui/, a list
      res.set(bhttp::field::allow, "GET, HEAD");
    res.set("Content-Security-Policy", content_security_policy);
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Referrer-Policy", "no-referrer");
    for (const auto& [name, value] : r.headers)
      res.set(name, value);
    res.keep_alive(keep);
    res.body() = std::move(r.body);
    res.prepare_payload();
    if (!ec && parser.get().method() == bhttp::verb::head) { // the length of what GET would send
      auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    stream.expires_after(10s);
    auto [wec, wn] = co_await bhttp::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    if (wec || !keep) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(asio::socket_base::shutdown_send, ignored);
}

} // namespace

asio::awaitable<void> serve_http_stream(http_context& ctx, int fd) {
  asio::local::stream_protocol::socket socket(co_await asio::this_coro::executor);
  boost::system::error_code ec;
  socket.assign(asio::local::stream_protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    co_return;
  }
  co_await session<asio::local::stream_protocol>(ctx, std::move(socket));
}

asio::awaitable<void> serve_http(http_context& ctx, int listener_fd) {
  auto ex = co_await asio::this_coro::executor;
  tcp::acceptor acceptor(ex);
  ctx.acceptor = &acceptor;
  boost::system::error_code ec;
  // The master's socket, bound and listening before the fork; IPv6 or IPv4 as it was bound.
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  ::getsockname(listener_fd, reinterpret_cast<sockaddr*>(&addr), &len);
  acceptor.assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(),
                  ::fcntl(listener_fd, F_DUPFD_CLOEXEC, 0), ec);
  if (ec) {
    spdlog::error("cannot use the HTTP listener: {}", ec.message());
    co_return;
  }
  while (!ctx.stopping) {
    auto [aec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (aec == asio::error::operation_aborted || ctx.stopping) break;
    if (aec) {
      // EMFILE and friends: the connection waits in the backlog, and accepting again at once
      // would fail again at once (a busy loop on the worker's only thread). Wait a little.
      spdlog::warn("HTTP: cannot accept a connection ({}); trying again in 100 ms", aec.message());
      asio::steady_timer pause(ex, 100ms);
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
      continue;
    }
    set_cloexec(socket.native_handle());
    asio::co_spawn(ex, session<tcp>(ctx, std::move(socket)), asio::detached);
  }
  ctx.acceptor = nullptr;
}

} // namespace forq::http
