// Server-Sent Events of a queue's events (events.hpp).
#include "http/events.hpp"

#include "forq/error.hpp"
#include "http/http.hpp"
#include "utf8.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace forq::http {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string sse_message(const queue_event& e) {
  // The event id is digits and a dash; the JSON is one line (serialize never breaks lines).
  return "id: " + e.event_id + "\ndata: " + serialize_utf8(e.to_json()) + "\n\n";
}

asio::awaitable<void> stream_events(http_context& ctx, std::string queue, std::string after,
                                    std::int64_t last,
                                    std::function<asio::awaitable<bool>(std::string)> write) {
  redis::exec_options opts;
  opts.deadline = std::chrono::steady_clock::now() + ctx.redis_deadline;
  asio::steady_timer pause(co_await asio::this_coro::executor);
  auto quiet_since = std::chrono::steady_clock::now();
  bool told_down = false;
  // Where to start: after `after`, or at the newest `last` (0: only what comes from now on).
  while (after.empty() && !ctx.stopping) {
    opts.deadline = std::chrono::steady_clock::now() + ctx.redis_deadline;
    client c(*ctx.conn, opts);
    auto newest =
        co_await c.last_events(queue, static_cast<std::size_t>(std::max<std::int64_t>(last, 1)));
    if (!newest && newest.error() == errc::redis_shutdown) co_return; // the worker leaves
    if (newest) {
      std::string out;
      if (last > 0)
        for (const auto& e : *newest)
          out += sse_message(e);
      after = newest->empty() ? "0-0" : newest->back().event_id;
      if (!out.empty() && !co_await write(std::move(out))) co_return;
      break;
    }
    if (!told_down && !co_await write(": Redis cannot be read now; trying again\n\n")) co_return;
    told_down = true;
    pause.expires_after(1s);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  while (!ctx.stopping) {
    opts.deadline = std::chrono::steady_clock::now() + ctx.redis_deadline;
    client c(*ctx.conn, opts);
    auto more = co_await c.events(queue, after, 500);
    // The worker leaves, or Redis refuses the id (route() let only ids it takes through).
    if (!more && (more.error() == errc::redis_shutdown || more.error() == errc::invalid_value))
      co_return;
    std::string out;
    if (more) {
      told_down = false;
      for (const auto& e : *more)
        out += sse_message(e);
      if (!more->empty()) after = more->back().event_id;
    } else if (!told_down) {
      out = ": Redis cannot be read now; trying again\n\n";
      told_down = true;
    }
    const auto now = std::chrono::steady_clock::now();
    if (out.empty() && now - quiet_since >= 15s) out = ": quiet\n\n";
    if (!out.empty()) {
      quiet_since = now;
      if (!co_await write(std::move(out))) co_return;
    }
    // A full read goes on at once; otherwise look again in 200 ms.
    if (more && more->size() >= 500) continue;
    pause.expires_after(more ? 200ms : 1s);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

} // namespace forq::http
