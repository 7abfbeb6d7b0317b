// The http handler: POSTs each job to the app (the sidecar's delivery). Boost.Beast client,
// keep-alive connections reused per handler (one handler per worker and name).
#include "cloexec.hpp"
#include "forq/handlers.hpp"
#include "queue/job.hpp"
#include "utf8.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <deque>
#include <memory>
#include <variant>

namespace forq::handlers {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct target {
  std::string host, port, path, host_header;
};

struct pool_state {
  http_options options;
  target where;
  std::vector<tcp::endpoint> endpoints; // resolved once
  std::deque<std::unique_ptr<beast::tcp_stream>> idle;
};

// Reads a response: its header, then its body up to `cap` bytes. A longer body is cut there
// (`truncated`) and the rest left unread, so that connection is not reused.
asio::awaitable<boost::system::error_code>
read_capped(beast::tcp_stream& stream, beast::flat_buffer& buffer,
            bhttp::response_parser<bhttp::buffer_body>& parser, std::size_t cap, std::string& body,
            bool& truncated) {
  parser.body_limit(boost::none); // the cap below keeps what is read
  auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, use_tuple);
  (void)n;
  if (ec) co_return ec;
  std::array<char, 16384> chunk;
  while (!parser.is_done()) {
    parser.get().body().data = chunk.data();
    parser.get().body().size = chunk.size();
    auto [e, m] = co_await bhttp::async_read(stream, buffer, parser, use_tuple);
    (void)m;
    if (e && e != bhttp::error::need_buffer) co_return e;
    auto got = chunk.size() - parser.get().body().size;
    if (body.size() + got > cap) {
      body.append(chunk.data(), cap - body.size());
      truncated = true;
      co_return boost::system::error_code{};
    }
    body.append(chunk.data(), got);
  }
  co_return boost::system::error_code{};
}

std::string head_of(std::string_view body) {
  std::string h(body.substr(0, 512));
  while (!h.empty() && (h.back() == '\n' || h.back() == '\r'))
    h.pop_back();
  return h;
}

std::optional<std::chrono::milliseconds> retry_after(std::string_view v) {
  long long s = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), s);
  if (ec != std::errc() || p != v.data() + v.size() || s < 0) return std::nullopt; // dates: no
  return std::chrono::milliseconds(std::min<long long>(s, 86400) * 1000);
}

// The POST of one attempt: the job as JSON, its id, attempt, queue and deadline as headers.
bhttp::request<bhttp::string_body> job_request(const pool_state& state,
                                               const queue::delivered_job& job,
                                               std::chrono::system_clock::time_point deadline) {
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, state.where.path, 11};
  req.set(bhttp::field::host, state.where.host_header);
  req.set(bhttp::field::content_type, "application/json");
  req.set(bhttp::field::user_agent, "forq");
  req.set("Forq-Job-Id", job.id);
  req.set("Forq-Attempt", std::to_string(job.attempt + 1));
  req.set("Forq-Stalls", std::to_string(job.stalls));
  req.set("Forq-Queue", job.queue);
  const auto deadline_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline.time_since_epoch()).count();
  req.set("Forq-Deadline", std::to_string(deadline_ms));
  req.keep_alive(true);
  req.body() = queue::handoff_json(job, deadline_ms);
  req.prepare_payload();
  return req;
}

// The attempt's outcome from the app's reply (docs/handlers.md): 2xx done, its body the result;
// 408, 429 and 5xx retried (after Retry-After when given); any other status dead at once.
queue::outcome outcome_of(const bhttp::response_parser<bhttp::buffer_body>& parser,
                          std::string body, bool truncated) {
  const auto& res = parser.get();
  const unsigned status = res.result_int();
  if (status >= 200 && status < 300) {
    if (truncated) { // as exec: the first max_output bytes, said to be cut
      boost::json::object note;
      note["output_truncated"] = true;
      if (auto length = parser.content_length()) note["output_bytes"] = *length;
      note["kept_bytes"] = body.size();
      note["head"] = to_utf8(body);
      return queue::outcome::success(boost::json::serialize(note));
    }
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r'))
      body.pop_back();
    return queue::outcome::success(body.empty() ? "null" : body);
  }
  auto reason = "http: " + std::to_string(status) + " " + std::string(res.reason());
  auto head = head_of(body);
  if (!head.empty()) reason += ": " + head;
  if (status == 408 || status == 429 || status >= 500)
    return queue::outcome::retry_later(reason, retry_after(res[bhttp::field::retry_after]));
  return queue::outcome::failure(reason); // the app said: not this job, ever
}

} // namespace

queue::handler http(http_options options) {
  auto state = std::make_shared<pool_state>();
  state->options = std::move(options);
  if (auto u = boost::urls::parse_uri(state->options.url); u) {
    state->where.host = u->host();
    state->where.port = u->has_port() ? std::string(u->port()) : "80";
    state->where.path = u->encoded_target().empty() ? "/" : std::string(u->encoded_target());
    state->where.host_header = std::string(u->encoded_host_and_port());
  }
  return [state](const queue::delivered_job& job,
                 queue::context& ctx) -> asio::awaitable<queue::outcome> {
    auto ex = co_await asio::this_coro::executor;
    const auto& o = state->options;
    if (state->where.host.empty()) co_return queue::outcome::failure("http: bad URL " + o.url);
    // The queue's deadline, when it comes first, cancels the request (the attempt is bound to
    // the context's cancellation): the app is told the earlier one.
    auto deadline = std::chrono::system_clock::now() + o.timeout;
    if (auto d = ctx.deadline()) deadline = std::min(deadline, *d);
    auto unreachable = [&](const std::string& why) {
      return queue::outcome::retry_later("http: cannot deliver to " + o.url + ": " + why);
    };
    if (state->endpoints.empty()) {
      tcp::resolver resolver(ex);
      auto [ec, found] =
          co_await resolver.async_resolve(state->where.host, state->where.port, use_tuple);
      if (ec) co_return unreachable("cannot resolve " + state->where.host + ": " + ec.message());
      for (const auto& e : found)
        state->endpoints.push_back(e.endpoint());
    }
    auto req = job_request(*state, job, deadline);

    // A cancel (the job's, the queue's timeout, the worker leaving) abandons the exchange: the
    // socket in use is cancelled, and the attempt ends as the cancel says.
    beast::tcp_stream* current = nullptr;
    auto told = [&]() -> asio::awaitable<queue::outcome> {
      co_await ctx.until_cancelled();
      if (!ctx.cancelled()) co_return queue::outcome::success(); // the delivery ended first
      if (current) {
        boost::system::error_code ignored;
        current->socket().cancel(ignored);
      }
      co_return queue::outcome::cancelled(ctx.cancel_reason());
    };
    auto deliver = [&]() -> asio::awaitable<queue::outcome> {
      // A kept-alive connection may have been closed by the app meanwhile: one more try on a
      // fresh connection if a reused one fails before any reply.
      for (int tries = 0; tries < 2; ++tries) {
        std::unique_ptr<beast::tcp_stream> stream;
        struct forget { // `current` never outlives the stream it names
          beast::tcp_stream*& at;
          ~forget() { at = nullptr; }
        } forget_current{current};
        bool reused = false;
        if (!state->idle.empty()) {
          stream = std::move(state->idle.front());
          state->idle.pop_front();
          reused = true;
        } else {
          stream = std::make_unique<beast::tcp_stream>(ex);
          current = stream.get();
          stream->expires_after(o.timeout);
          auto [cec, at] = co_await stream->async_connect(state->endpoints, use_tuple);
          (void)at;
          set_cloexec(stream->socket().native_handle());
          if (cec == beast::error::timeout)
            co_return queue::outcome::retry_later("http: timed out after " +
                                                  std::to_string(o.timeout.count()) +
                                                  " ms connecting to " + o.url);
          if (cec) co_return unreachable(cec.message());
        }
        current = stream.get();
        stream->expires_after(o.timeout); // the whole exchange; the lease is renewed meanwhile
        auto [wec, wn] = co_await bhttp::async_write(*stream, req, use_tuple);
        (void)wn;
        beast::flat_buffer buffer;
        bhttp::response_parser<bhttp::buffer_body> parser;
        std::string body;
        bool truncated = false;
        boost::system::error_code rec;
        if (!wec)
          rec = co_await read_capped(*stream, buffer, parser, o.max_output, body, truncated);
        auto ec = wec ? wec : rec;
        if (ec && reused && !parser.is_header_done() && ec != beast::error::timeout)
          continue; // the app had closed the idle connection
        if (ec == beast::error::timeout)
          co_return queue::outcome::retry_later(
              "http: timed out after " + std::to_string(o.timeout.count()) + " ms at " + o.url);
        if (ec) co_return unreachable(ec.message());
        current = nullptr;
        if (!truncated && parser.get().keep_alive() && !ctx.cancelled())
          state->idle.push_back(std::move(stream));
        co_return outcome_of(parser, std::move(body), truncated);
      }
      co_return unreachable("the connection closed before a reply");
    };
    auto first = co_await (deliver() || told());
    co_return std::visit([](auto& out) { return std::move(out); }, first);
  };
}

} // namespace forq::handlers
