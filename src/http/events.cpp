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
  asio::steady_timer pause(co_await asio::this_coro::executor);
  auto quiet_since = std::chrono::steady_clock::now();
  bool told_down = false;
  while (!ctx.stopping) {
    redis::exec_options opts;
    opts.deadline = std::chrono::steady_clock::now() + ctx.redis_deadline;
    client c(*ctx.conn, opts);
    // The first read, without `after`: the newest `last` (0: only what comes from now on, so
    // the newest one is read for its id alone).
    const bool starting = after.empty();
    expected<std::vector<queue_event>> got; // (no co_await in a ?: : GCC 12 miscompiles it)
    if (starting)
      got =
          co_await c.last_events(queue, static_cast<std::size_t>(std::max<std::int64_t>(last, 1)));
    else
      got = co_await c.events(queue, after, 500);
    // The worker leaves, or Redis refuses the id (route() let only ids it takes through).
    if (!got && (got.error() == errc::redis_shutdown || got.error() == errc::invalid_value))
      co_return;
    std::string out;
    if (got) {
      told_down = false;
      if (!starting || last > 0)
        for (const auto& e : *got)
          out += sse_message(e);
      if (!got->empty())
        after = got->back().event_id;
      else if (starting)
        after = "0-0";
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
    // A full read goes on at once; otherwise look again in 200 ms (1 s while Redis is away).
    if (got && !starting && got->size() >= 500) continue;
    pause.expires_after(got ? 200ms : 1s);
    co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

} // namespace forq::http
