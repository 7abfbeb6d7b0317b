// libFuzzer target: the bytes a client sends to a worker's HTTP port. The first byte sets the
// scene (an api_token or none; ready or not); the rest is one connection's bytes, however many
// requests they hold, served by the same session as a listener's connection (Beast's parser
// with forq's limits, keep-alive, routing, the /v1 API's checks). The worker's Redis connection
// is stopped, so whatever gets as far as Redis is answered 503 at once. Nothing may crash, hang
// or leak; every response forq writes must parse as HTTP; no request may reach a 500 (an
// exception route() did not expect); bytes that are more than blank lines get an answer.
#include "http/http.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <sys/socket.h>

namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using local = asio::local::stream_protocol;

struct scene {
  asio::io_context io;
  forq::config cfg;
  forq::redis::connection conn{io.get_executor(), forq::redis::connection_options{}};
  forq::http::http_context ctx;
  bool ready = true;

  scene() {
    spdlog::set_level(spdlog::level::off);
    conn.stop(); // every request to it fails at once with "shutting down"
    cfg.queues.push_back({"emails", 3, "echo", {}}); // a queue with a default handler

    ctx.cfg = &cfg;
    ctx.metrics = forq::process::shared_metrics::create();
    ctx.conn = &conn;
    ctx.not_ready = [this] { return ready ? std::string() : std::string("Redis unreachable"); };
    ctx.handlers = {"noop", "echo", "sleep", "fail"};
  }
};

// Sends `bytes`, ends its half of the connection, and reads all that comes back.
asio::awaitable<void> client(local::socket& s, std::string_view bytes, std::string& answer) {
  boost::system::error_code ec;
  co_await asio::async_write(s, asio::buffer(bytes.data(), bytes.size()),
                             asio::redirect_error(asio::use_awaitable, ec));
  s.shutdown(local::socket::shutdown_send, ec);
  char buf[8192];
  for (;;) {
    auto n = co_await s.async_read_some(asio::buffer(buf),
                                        asio::redirect_error(asio::use_awaitable, ec));
    answer.append(buf, n);
    if (ec) break;
  }
}

// Every response in `answer` parses, and none is a 500. A response to HEAD carries the length
// of the body GET would send, and no body: one whose header is followed by nothing or by the
// next response is read as that (forq's bodies are JSON or text, never "HTTP/1.").
void check(std::string_view answer) {
  while (!answer.empty()) {
    http::response_parser<http::string_body> head;
    head.body_limit(1u << 24);
    boost::system::error_code ec;
    auto header = head.put(asio::buffer(answer.data(), answer.size()), ec);
    if (ec || !head.is_header_done()) __builtin_trap(); // forq wrote something that is not HTTP
    const auto rest = answer.substr(header);
    // Server-Sent Events: the body runs to the connection's end (Connection: close).
    if (head.get()[http::field::content_type].starts_with("text/event-stream")) return;
    http::response_parser<http::string_body> p;
    p.body_limit(1u << 24);
    p.eager(true);
    if (rest.empty() || rest.starts_with("HTTP/1.")) p.skip(true);
    auto used = p.put(asio::buffer(answer.data(), answer.size()), ec);
    if (ec || !p.is_done()) __builtin_trap();
    if (p.get().result() == http::status::internal_server_error) __builtin_trap();
    answer.remove_prefix(used);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static scene* sc = new scene; // for the whole run: a static's destructor would race exit
  sc->cfg.api_token = (data[0] & 1) ? "fuzz-token-0123456789" : "";
  sc->ready = (data[0] & 2) == 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) __builtin_trap();
  local::socket peer(sc->io);
  peer.assign(local(), fds[0]);
  std::string answer;
  asio::co_spawn(sc->io, forq::http::serve_http_stream(sc->ctx, fds[1]), asio::detached);
  asio::co_spawn(sc->io, client(peer, bytes, answer), asio::detached);
  sc->io.restart();
  sc->io.run();
  // Bytes that are not only blank lines are a request, or a malformed one: either way they get
  // an answer (this also keeps the target honest: a session that never ran answers nothing).
  if (answer.empty() && bytes.find_first_not_of("\r\n") != std::string_view::npos) __builtin_trap();
  check(answer);
  return 0;
}
